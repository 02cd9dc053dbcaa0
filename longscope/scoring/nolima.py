"""NoLiMa's four metrics, as its evaluation code scores a reply: exact match or containment of a gold answer,
on the whole reply or on its last line; case-sensitive, nothing normalised beyond stripping the reply."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS


def _last_line(prediction: str) -> str:
    return prediction.strip().split("\n")[-1]


@SCORERS.register("nolima_em")
def nolima_em(prediction: str, answers: Sequence[str]) -> float:
    """1 when the stripped reply is exactly one of the gold answers (NoLiMa's ``EM``)."""
    return float(prediction.strip() in answers)


@SCORERS.register("nolima_contains")
def nolima_contains(prediction: str, answers: Sequence[str]) -> float:
    """1 when a gold answer occurs in the reply as written, case included (NoLiMa's ``contains``, the metric
    of its published runs)."""
    return float(any(answer in prediction for answer in answers))


@SCORERS.register("nolima_lastline_em")
def nolima_lastline_em(prediction: str, answers: Sequence[str]) -> float:
    """``EM`` on the reply's last line (NoLiMa's chain-of-thought needle sets end with the answer)."""
    return float(_last_line(prediction) in answers)


@SCORERS.register("nolima_lastline_contains")
def nolima_lastline_contains(prediction: str, answers: Sequence[str]) -> float:
    """``contains`` on the reply's last line."""
    line = _last_line(prediction)
    return float(any(answer in line for answer in answers))
