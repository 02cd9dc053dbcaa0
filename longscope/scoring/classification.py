"""LongBench's classification score: which of the candidate class names the prediction mentions."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS


def _class_score(prediction: str, gold: str, classes: Sequence[str]) -> float:
    found = [name for name in classes if name and name in prediction]
    # A found class that is only part of the gold name ("happy" inside "unhappy") was matched because of the
    # gold itself, so it is not counted as a separate guess.
    found = [name for name in found if not (name in gold and name != gold)]
    return 1.0 / len(found) if gold in found else 0.0


@SCORERS.register("classification")
def classification(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """The class names of ``meta["all_classes"]`` that appear (case-sensitive substrings) in the prediction,
    less those contained in the gold but not equal to it; 1/len(found) if the gold is among them, else 0.
    Naming the right class alone scores 1, hedging between two scores 1/2. Best over the gold answers."""
    classes = list(meta.get("all_classes") or [])
    return max((_class_score(prediction, gold, classes) for gold in answers), default=0.0)
