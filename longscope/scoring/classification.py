"""LongBench's classification score (its ``classification_score``): which candidate class names the prediction
mentions, with the official loop's skipping quirk."""

from __future__ import annotations

from collections.abc import Sequence

from longscope.scoring import SCORERS


def matched_classes(prediction: str, gold: str, classes: Sequence[str]) -> list[str]:
    """The class names LongBench keeps as the prediction's guesses for ``gold``.

    Every name of ``classes`` that is a substring of the prediction (case-sensitive, in list order, repeats
    and the empty name included) is found; then LongBench walks that list and removes each name that is part
    of the gold without being the gold ("Other" inside "Other location"). It removes from the list it is
    walking, so the name just after each removal is never looked at and stays: with classes Other, location,
    Other location and the prediction "Other location", removing "Other" skips "location", which is kept as a
    second guess. ``list.remove`` also takes out the first equal name, wherever it is."""
    found = [name for name in classes if name in prediction]
    position = 0
    while position < len(found):  # a for loop over a list reads it by position, as this does
        name = found[position]
        if name in gold and name != gold:
            found.remove(name)
        position += 1
    return found


def _class_score(prediction: str, gold: str, classes: Sequence[str]) -> float:
    found = matched_classes(prediction, gold, classes)
    return 1.0 / len(found) if gold in found else 0.0


@SCORERS.register("classification")
def classification(prediction: str, answers: Sequence[str], meta: dict) -> float:
    """LongBench's classification score, the best over the gold answers: 1/len(guesses) if the gold is among
    the guesses ``matched_classes`` keeps, else 0. Naming the right class alone scores 1, hedging between two
    scores 1/2. The class names are ``meta["all_classes"]``.

    This follows LongBench's code, quirk included: a class name contained in the gold is meant to be dropped
    from the guesses, but the name after each dropped one is kept unexamined, so "Type: Other location" with
    classes Other / location / Other location scores 0.5, not 1."""
    classes = list(meta.get("all_classes") or [])
    return max((_class_score(prediction, gold, classes) for gold in answers), default=0.0)
