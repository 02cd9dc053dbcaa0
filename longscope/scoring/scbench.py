"""SCBench's per-task scores where they differ from InfiniteBench's (its compute_scores.py, get_score_one).

SCBench maps most tasks onto InfiniteBench's getters, with two of its own changes: a key-value retrieval is right
when the gold value is a substring of the reply (its word split is commented out), and variable tracking takes
the share of gold names found in the reply, rounded to two decimals. Its dialogue/many-shot rule is right when
any gold, upper-cased, is a substring of the reply upper-cased.
"""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS


@SCORERS.register("scbench_kv")
def scbench_kv(prediction: str, answers: Sequence[str]) -> float:
    """KV retrieval (kv, kv_hard, hashhop, prefix_suffix): the gold value appears in the reply as written."""
    return float(any(gold in prediction for gold in answers))


@SCORERS.register("scbench_contains_any_upper")
def scbench_contains_any_upper(prediction: str, answers: Sequence[str]) -> float:
    """En.Dia-style QA and many-shot: any gold, upper-cased, inside the stripped reply upper-cased."""
    reply = prediction.strip().upper()
    return float(any(gold.upper() in reply for gold in answers))


@SCORERS.register("scbench_match_all")
def scbench_match_all(prediction: str, answers: Sequence[str]) -> float:
    """Variable tracking: the share of golds inside the reply, case-insensitive, rounded to two decimals."""
    if not answers:
        return 0.0
    reply = prediction.lower()
    return round(sum(1.0 for gold in answers if gold.lower() in reply) / len(answers), 2)
