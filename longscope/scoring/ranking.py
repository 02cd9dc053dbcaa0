"""Ranking metrics: a reply's ranking of document ids ("ID3 > ID1 > ID2", parsed as HELMET parses it) scored by
NDCG@10 against graded relevance labels, as trec_eval (pytrec_eval, which HELMET calls) computes it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from longscope.scoring import SCORERS


def parse_rankings(output: str) -> dict[str, int]:
    """HELMET's ``parse_rankings``: brackets and colons out, "id" out (any case), then the longest run of numbers
    joined by ">" is the ranking; each id scores (number of ids - its position), a repeated id keeps its first
    place. With no number at all, the whole cleaned reply stands as one id (which matches nothing)."""
    cleaned = re.sub(r"[\[\]:]", "", output).lower().replace("id", "")
    longest = ""
    for found in re.finditer(r"(\d+)(?:\s*>\s*(\d+))*", cleaned):
        if len(found.group(0)) > len(longest):
            longest = found.group(0)
    ids = [part.strip() for part in longest.split(">") if part.strip().isdigit()] if longest else [cleaned]
    scores: dict[str, int] = {}
    for position, doc in enumerate(ids):
        scores.setdefault(doc, len(ids) - position)
    return scores


def ndcg_at(k: int, scores: Mapping[str, float], relevance: Mapping[str, int]) -> float:
    """trec_eval's ``ndcg_cut.k``: documents ranked by score (ties: the larger id first, as trec_eval breaks
    them), gain = the relevance label (0 for a document without one), discount log2(rank + 1); divided by the
    same sum over the labels in their best order. 0 when no document is relevant."""
    ranked = sorted(scores, key=lambda doc: (scores[doc], doc), reverse=True)[:k]
    gained = sum(max(0, relevance.get(doc, 0)) / math.log2(rank + 2) for rank, doc in enumerate(ranked))
    ideal_labels = sorted((label for label in relevance.values() if label > 0), reverse=True)[:k]
    ideal = sum(label / math.log2(rank + 2) for rank, label in enumerate(ideal_labels))
    return gained / ideal if ideal > 0 else 0.0


@SCORERS.register("ndcg_at_10")
def ndcg_at_10(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float]]:
    """NDCG@10 of the reply's ranking against the sample's ``qrels`` (document id -> relevance label)."""
    ranking = parse_rankings(meta.get("prepend", "") + prediction)  # eval.py's "Ranking:" put back in front
    relevance = {str(doc): int(label) for doc, label in meta.get("qrels", {}).items()}
    return ndcg_at(10, ranking, relevance), {"num_preds": float(len(ranking))}
