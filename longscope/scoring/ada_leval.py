"""Ada-LEval's answer extraction and accuracy (its ``TextSort.evaluate`` and ``StackSelect.evaluate``): TSort's
segment order, BestAnswer's chosen answer designation."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from longscope.scoring import SCORERS, Details

# Ada-LEval's fallback reading tries the orders of four segments, the number every TSort file has.
_FALLBACK_SEGMENTS = 4
_NO_ORDER = [0] * _FALLBACK_SEGMENTS  # what Ada-LEval extracts when no single order can be read


def _is_subsequence(needle: str, haystack: str) -> bool:
    position = 0
    for char in needle:
        position = haystack.find(char, position) + 1
        if position == 0:
            return False
    return True


def answer_text(reply: str) -> str:
    """The part of a TSort reply Ada-LEval reads: with "Answer:" in it, the text between the first "Answer:"
    and the next one (or the end), stripped; else the whole reply. "Answer: [1, 2] Answer: [2, 1]" reads
    "[1, 2]"."""
    return reply.split("Answer:")[1].strip() if "Answer:" in reply else reply


def extract_order(reply: str) -> Any:
    """What Ada-LEval extracts from a TSort reply: ``answer_text`` parsed as JSON, whatever value it holds (a
    list, but also a string, an object or a number); if it is not JSON, the one order of 1, 2, 3, 4 whose
    digits occur in that order in the text, or [0, 0, 0, 0] when none or several do."""
    text = answer_text(reply)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    orders = [
        order
        for order in itertools.permutations(range(1, _FALLBACK_SEGMENTS + 1))
        if _is_subsequence("".join(map(str, order)), text)
    ]
    return list(orders[0]) if len(orders) == 1 else list(_NO_ORDER)


def tsort_score(reply: str, gold: Sequence[int]) -> tuple[float, Details]:
    """Ada-LEval's TSort hit: the extracted value and the gold order compared element by element, up to the
    shorter of the two, every compared pair equal. So, as in Ada-LEval, an empty list, "" or {} scores 1, a
    prefix of the gold ([2, 4] for [2, 4, 1, 3]) or a longer list starting with it scores 1, and a list of
    strings ["2", "4", "1", "3"] scores 0 (a string is compared character by character, and "2" is not 2).

    The detail ``full_order`` is 1 only when the extracted value is exactly the gold list: the strict reading.
    A reply whose JSON is a number, true/false or null stops Ada-LEval's evaluation with a TypeError; here it
    scores 0 with the reason in the details."""
    extracted = extract_order(reply)
    full = {"full_order": float(isinstance(extracted, list) and extracted == list(gold))}
    if not isinstance(extracted, (list, str, dict)):
        reason = (
            f"the answer is JSON {type(extracted).__name__}, not a list: Ada-LEval's comparison fails on it"
        )
        return 0.0, {**full, "reason": reason}
    hit = all(wanted == given for wanted, given in zip(gold, extracted, strict=False))
    return float(hit), full


def extract_designation(reply: str, choices: int) -> str | None:
    """The answer a BestAnswer reply picks, read as Ada-LEval reads it: of the designations A1..An that occur
    in the reply, the highest-numbered; failing any, of the bare numbers 1..n that occur, the highest."""
    for prefix in ("A", ""):
        found = [i for i in range(1, choices + 1) if f"{prefix}{i}" in reply]
        if found:
            return f"A{max(found)}"
    return None


@SCORERS.register("ada_leval")
def ada_leval(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, Details]:
    """Ada-LEval's accuracy. ``meta["ada_task"]`` says which: "tsort" (answers are the segment numbers in their
    correct order; scored by ``tsort_score``, Ada-LEval's comparison, quirks included) or "bestanswer" (answers
    hold the best designation such as "A3"; ``meta["num_choice"]`` is the number of candidates)."""
    task = meta.get("ada_task")
    if task == "tsort":
        return tsort_score(prediction, [int(answer) for answer in answers])
    if task == "bestanswer":
        chosen = extract_designation(prediction, int(meta["num_choice"]))
        return float(chosen is not None and chosen in answers), {}
    raise ValueError(f"ada_leval scorer: unknown task {task!r} in the sample metadata (tsort or bestanswer)")
