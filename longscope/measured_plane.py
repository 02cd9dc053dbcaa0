"""The difficulty plane measured on a sample rather than declared: scope and diffusion from its evidence."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.methods.prompt._retrieve import RETRIEVERS, ranking, scores


def measured_scope(evidence: Sequence[int], units: int) -> float:
    """The share of the context's units that carry what the answer needs."""
    if units < 1:
        raise ValueError("a context without units has no scope")
    return len(set(evidence)) / units


def reciprocal_rank(units: list[str], evidence: Sequence[int], question: str, retriever: str) -> float:
    """Mean over the evidence units of 1 / their rank (1 is best) when every unit is ranked for the question."""
    order = ranking(scores(retriever, units, question))
    rank = {unit: position + 1 for position, unit in enumerate(order)}
    return sum(1.0 / rank[unit] for unit in set(evidence)) / len(set(evidence))


def measured_diffusion(
    units: list[str], evidence: Sequence[int], question: str, retrievers: Sequence[str] = RETRIEVERS
) -> float:
    """1 − the evidence's mean reciprocal rank, averaged over the retrievers: 0 when a retriever puts the one
    evidence unit first, near 1 when it is buried. With several evidence units even a perfect ranking leaves
    some diffusion (ranks 1 and 2 give 0.25): the scale reads how far down a reader must go."""
    if not evidence:
        raise ValueError("diffusion needs at least one evidence unit")
    ranks = [reciprocal_rank(units, evidence, question, retriever) for retriever in retrievers]
    return 1.0 - sum(ranks) / len(ranks)
