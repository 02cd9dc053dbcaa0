"""The difficulty plane measured on a sample rather than declared: scope and diffusion from its evidence."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longscope.core import Sample
from longscope.haystack import split_sentences
from longscope.retrieval import RETRIEVERS, ranking, scores, scores_many

# Units shorter than this are not taken as part of a longer evidence passage merely because their text occurs
# inside it ("Yes." inside a paragraph); a unit that holds a piece of evidence always counts.
_MIN_INSIDE = 16


@dataclass(frozen=True)
class SamplePlane:
    """A sample's measured coordinates: scope for the sample, diffusion for each turn, per retriever."""

    scope: float
    diffusion: dict[str, tuple[float, ...]]  # retriever -> one value per turn

    def turn(self, turn: int) -> dict[str, float]:
        """The row fields of one turn: measured scope, and diffusion under each retriever."""
        fields = {"measured_scope": self.scope}
        for retriever, values in self.diffusion.items():
            fields[f"measured_diffusion_{retriever}"] = values[min(turn, len(values) - 1)]
        return fields


def measured_scope(evidence: Sequence[int], units: int) -> float:
    """The share of the context's units that carry what the answer needs."""
    if units < 1:
        raise ValueError("a context without units has no scope")
    return len(set(evidence)) / units


def _mean_reciprocal_rank(values: np.ndarray, evidence: Sequence[int]) -> float:
    rank = {unit: position + 1 for position, unit in enumerate(ranking(values))}
    return sum(1.0 / rank[unit] for unit in set(evidence)) / len(set(evidence))


def reciprocal_rank(units: list[str], evidence: Sequence[int], question: str, retriever: str) -> float:
    """Mean over the evidence units of 1 / their rank (1 is best) when every unit is ranked for the question."""
    return _mean_reciprocal_rank(scores(retriever, units, question), evidence)


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


def json_pairs(context: str) -> list[str] | None:
    """The key-value pairs of a context that is one JSON object (Needle Threading's haystack: one line of
    UUID pairs), each as it is written there; None for any other context."""
    text = context.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not parsed:
        return None
    pairs = []
    for key, value in parsed.items():
        written = [
            json.dumps(key, ensure_ascii=ascii) + separator + json.dumps(value, ensure_ascii=ascii)
            for ascii in (True, False)
            for separator in (": ", ":")
        ]
        found = next((pair for pair in written if pair in text), None)
        if found is None:
            return None  # written some other way: fall back to lines and sentences
        pairs.append(found)
    return pairs


def context_units(context: str) -> list[str]:
    """The context cut into the units the plane counts: its lines (records), each cut into sentences; the pairs
    of a context that is one JSON object (a sentence splitter would leave it whole)."""
    pairs = json_pairs(context)
    if pairs is not None:
        return pairs
    return [
        sentence.strip()
        for line in context.split("\n")
        for sentence in split_sentences(line)
        if sentence.strip()
    ]


def evidence_units(units: list[str], evidence: Sequence[str]) -> list[int]:
    """Indices of the units that hold a piece of evidence, or lie inside one (a passage of many sentences)."""
    pieces = [piece.strip() for piece in evidence if piece.strip()]
    return [
        i
        for i, unit in enumerate(units)
        if any(piece in unit or (len(unit) >= _MIN_INSIDE and unit in piece) for piece in pieces)
    ]


def measure_sample(sample: Sample, retrievers: Sequence[str] = RETRIEVERS) -> SamplePlane | None:
    """Scope and per-turn diffusion of a sample whose generator recorded its evidence; None where the evidence
    is not known (most published records) or no longer in the context (truncated away)."""
    units = context_units(sample.context)
    if not units:
        return None
    if sample.metadata.get("evidence") == "no unit":
        return SamplePlane(scope=0.0, diffusion={})  # nothing in the context is needed, so nothing to rank
    if sample.metadata.get("evidence") == "every unit":
        every = list(range(len(units)))
        turn_evidence = [every for _ in sample.turns]
    else:
        found = evidence_units(units, sample.evidence)
        if not found:
            return None
        per_turn = sample.metadata.get("turn_evidence") or []
        turn_evidence = [
            (evidence_units(units, per_turn[t]) if t < len(per_turn) else []) or found
            for t in range(len(sample.turns))
        ]
        every = found
    questions = [turn.question for turn in sample.turns]
    diffusion = {}
    for retriever in retrievers:
        ranked = scores_many(retriever, units, questions)
        diffusion[retriever] = tuple(
            round(1.0 - _mean_reciprocal_rank(values, wanted), 4)
            for values, wanted in zip(ranked, turn_evidence, strict=True)
        )
    return SamplePlane(scope=round(measured_scope(every, len(units)), 4), diffusion=diffusion)
