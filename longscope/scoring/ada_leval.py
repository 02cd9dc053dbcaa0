"""Ada-LEval's answer extraction and accuracy: TSort's segment order, BestAnswer's chosen answer designation."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

from longscope.scoring import SCORERS

# TSort orders four segments; permutations are enumerated for the fallback reading of a reply, so the
# number of segments that reading accepts is bounded.
_MOST_SEGMENTS = 8


def _is_subsequence(needle: str, haystack: str) -> bool:
    position = 0
    for char in needle:
        position = haystack.find(char, position) + 1
        if position == 0:
            return False
    return True


def extract_order(reply: str, segments: int) -> list[int] | None:
    """The order a TSort reply gives, read as Ada-LEval reads it: the text after the first "Answer:" (if any)
    parsed as a JSON list; failing that, the one permutation of 1..n whose digits appear in that order in
    the text (none, or several, give None). A JSON value that is not a list of integers also falls back to
    the permutation reading (Ada-LEval itself would fail on it)."""
    text = reply.split("Answer:", 1)[1].strip() if "Answer:" in reply else reply
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in parsed):
        return parsed
    if not 0 < segments <= _MOST_SEGMENTS:
        return None
    matches = [
        perm
        for perm in itertools.permutations(range(1, segments + 1))
        if _is_subsequence("".join(map(str, perm)), text)
    ]
    return list(matches[0]) if len(matches) == 1 else None


def extract_designation(reply: str, choices: int) -> str | None:
    """The answer a BestAnswer reply picks, read as Ada-LEval reads it: of the designations A1..An that occur
    in the reply, the highest-numbered; failing any, of the bare numbers 1..n that occur, the highest."""
    for prefix in ("A", ""):
        found = [i for i in range(1, choices + 1) if f"{prefix}{i}" in reply]
        if found:
            return f"A{max(found)}"
    return None


@SCORERS.register("ada_leval")
def ada_leval(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """Exact accuracy. ``meta["ada_task"]`` says which: "tsort" (answers are the segment numbers in their
    correct order; the extracted order must equal it) or "bestanswer" (answers hold the best designation
    such as "A3"; ``meta["num_choice"]`` is the number of candidates)."""
    task = meta.get("ada_task")
    if task == "tsort":
        gold = [int(answer) for answer in answers]
        return float(extract_order(prediction, len(gold)) == gold)
    if task == "bestanswer":
        chosen = extract_designation(prediction, int(meta["num_choice"]))
        return float(chosen is not None and chosen in answers)
    raise ValueError(f"ada_leval scorer: unknown task {task!r} in the sample metadata (tsort or bestanswer)")
