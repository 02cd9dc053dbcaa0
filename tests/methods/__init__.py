"""Tests of the long-context methods."""
