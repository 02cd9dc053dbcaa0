"""Order and choice answers: a list of labels against the gold order (Kendall's tau), or one chosen label."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS


def labels_in_order(prediction: str, labels: Sequence[str]) -> list[str]:
    """The gold labels as the prediction first mentions them, each once.

    A label counts only as a whole token ("K" in "[K]" or "K," but not in "Kite"), matched case-sensitively,
    since labels are capitals and prose words such as "a" must not be read as labels.
    """
    if not labels:
        return []
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    found: list[str] = []
    for match in re.finditer(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", prediction):
        if match.group() not in found:
            found.append(match.group())
    return found


def kendall_tau(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """Kendall's tau between two orders of the same labels: 1 the same, -1 reversed."""
    if len(gold) < 2:
        return 1.0
    rank = {label: i for i, label in enumerate(predicted)}
    concordant = discordant = 0
    for i in range(len(gold)):
        for j in range(i + 1, len(gold)):
            if rank[gold[i]] < rank[gold[j]]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (concordant + discordant)


@SCORERS.register("order")
def order(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """1 for exactly the gold order of all labels, else 0; sub-scores Kendall's tau and (tau + 1) / 2.

    ``answers`` are the labels in their correct order. The predicted order is the labels as first mentioned;
    labels the prediction leaves out are placed after those it gives, in their gold order, which gives a
    partial answer credit for the pairs it orders and neither credit nor blame among the missing ones.
    """
    gold = list(answers)
    found = labels_in_order(prediction, gold)
    completed = found + [label for label in gold if label not in found]
    tau = kendall_tau(completed, gold)
    exact = float(bool(gold) and found == gold)
    return exact, {"kendall_tau": round(tau, 6), "tau_score": round((tau + 1) / 2, 6)}


@SCORERS.register("choice")
def choice(prediction: str, answers: Sequence[str]) -> float:
    """1 if the first option label in the prediction is the gold label, e.g. "C07" (also read as "[C07]",
    "C7" or "c07"); a prediction that names several options is judged by the first it names."""
    for answer in answers:
        shape = re.fullmatch(r"([A-Za-z]+)(\d+)", answer.strip())
        if shape is None:
            continue
        letters, number = shape.groups()
        first = re.search(rf"(?<![A-Za-z0-9]){re.escape(letters)}(\d+)(?![0-9])", prediction, re.IGNORECASE)
        if first is not None and int(first.group(1)) == int(number):
            return 1.0
    return 0.0
