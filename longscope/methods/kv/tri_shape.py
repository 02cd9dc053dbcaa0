"""``tri-shape``: the A-shaped sparse prefill over the context, with the question (the last query block)
attending to everything, after SCBench's Tri-shape; the cache keeps every entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from longscope.methods.kv.a_shape import AShape


@dataclass(frozen=True)
class TriShape(AShape):
    """Tri-shaped sparse prefill: the context is prefilled A-shaped (sinks + local window per query block), and
    the tokens after it (the question, fed as one chunk over the cached context) attend densely to every
    entry, which is SCBench's "last query block sees everything". In longscope the question is always its own
    chunk after the shared context, so the dense rows are exactly the question's, whatever its length.
    """

    name = "tri-shape"
    description = "sparse prefill: A-shape over the context, the question attends to everything"
    dense_question: ClassVar[bool] = True
