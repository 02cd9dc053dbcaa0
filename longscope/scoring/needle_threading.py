"""Needle Threading's exact-match scoring of retrieved UUID values: the one value, or exactly the set of values."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def uuids_in(text: str) -> list[str]:
    """The UUID-shaped strings of ``text`` in order of first mention, lower-cased, each once."""
    found: list[str] = []
    for match in _UUID.finditer(text):
        value = match.group().lower()
        if value not in found:
            found.append(value)
    return found


@SCORERS.register("needle_threading")
def needle_threading(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Exact match of the retrieved values (Roberts et al., 2024). One gold value: the first UUID the reply
    gives must be it (the authors compare the start of the reply with the value; a reply may here wrap the
    value in quotes or words). Several gold values (multiple or conditional needles, several threads): the
    set of UUIDs the reply gives must be exactly the gold set, in any order. The sub-score ``recall`` is the
    share of gold values the reply gives."""
    gold = [answer.strip().lower() for answer in answers if answer.strip()]
    if not gold:
        return 0.0, {"recall": 0.0}
    given = uuids_in(prediction)
    if not given and len(gold) == 1:  # a value that is not UUID-shaped: the reply must start with it
        reply = prediction.strip().strip("'\"").lower()
        hit = reply.startswith(gold[0])
        return float(hit), {"recall": float(hit)}
    recall = sum(value in given for value in gold) / len(gold)
    exact = given[:1] == gold if len(gold) == 1 else set(given) == set(gold)
    return float(exact), {"recall": round(recall, 6)}
