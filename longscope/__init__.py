"""longscope: how far does a language model really read, and what does that cost?"""

__version__ = "0.1.0"
