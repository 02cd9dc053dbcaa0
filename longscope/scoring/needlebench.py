"""NeedleBench (v2) scoring: needle keywords found verbatim in the reply, and the \\boxed{} answer of reasoning."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS


@SCORERS.register("needlebench_keywords")
def needlebench_keywords(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Share of the needles' keywords that appear verbatim (case-sensitive) in the reply: NeedleBench v2's
    single-needle score (1 or 0) and its multi-needle retrieval score (keywords found / needles). Sub-scores
    ``needle_1``, ``needle_2``... say which needle (in the order of ``answers``) was found."""
    if not answers:
        return 0.0, {}
    found = [float(keyword in prediction) for keyword in answers]
    details = {f"needle_{i}": hit for i, hit in enumerate(found, start=1)} if len(found) > 1 else {}
    return sum(found) / len(found), details


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with its braces balanced, without one
    pair of braces wrapped around all of it (``\\boxed{{X}}`` gives X); None without a closed box."""
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth, end = 0, None
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                end = i
                break
    if end is None:
        return None
    boxed = text[start : end + 1]
    if not boxed.startswith("\\boxed{"):
        return None  # an \fbox{...} is found but, as in NeedleBench, only \boxed{...} gives an answer
    answer = boxed[len("\\boxed{") : -1]
    wrapped = re.fullmatch(r"\{(.*)\}", answer)
    return wrapped.group(1) if wrapped else answer


def clean_boxed(answer: str) -> str:
    """NeedleBench's clean-up of a boxed name: LaTeX \\text{}/\\boxed{} unwrapped, backslashes, quotes and
    \\[ \\] dropped, tildes read as spaces, whitespace collapsed."""
    answer = re.sub(r"\\text\{([^}]+)\}", r"\1", answer)
    answer = re.sub(r"\\boxed\{([^}]+)\}", r"\1", answer)
    answer = re.sub(r"\\[\[\]]", "", answer)
    answer = answer.replace("\\\\", "").replace("\\", "")
    answer = re.sub(r"\s+", " ", answer).strip()
    answer = answer.replace('"', "").replace("'", "")
    return answer.replace("~", " ")


@SCORERS.register("needlebench_boxed")
def needlebench_boxed(prediction: str, answers: Sequence[str]) -> float:
    """1 if the reply's last \\boxed{} answer, cleaned, equals the gold name (NeedleBench v2's multi-needle
    reasoning and ancestral-trace score); a reply without a box scores 0."""
    boxed = last_boxed(prediction)
    if boxed is None:
        return 0.0
    given = clean_boxed(boxed).strip()
    return float(any(given == answer.strip() for answer in answers))
