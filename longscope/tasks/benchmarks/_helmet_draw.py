"""Which records of each HELMET dataset HELMET evaluates: its ``max_test_samples`` draw, loader by loader.

HELMET's data.py does not read a whole test file: each loader keeps ``max_test_samples`` records (100 in its
configs, 500 for many-shot ICL) with seed 42, and each draws in its own way. The rules, as data.py orders them:

- ``shuffle``: the file shuffled as ``datasets.Dataset.shuffle(seed=42)`` shuffles it (numpy's
  ``default_rng(42).permutation``), the first N kept in that order (JSON KV, RULER, ALCE, InfiniteBench,
  NarrativeQA; a file of N or fewer is still shuffled).
- ``shuffle_over``: the same, but only when the file holds more than N records; else it is kept in file order
  (Multi-LexSum).
- ``by_key``: the distinct keys (``id``, else ``question``, for KILT; ``qid``, else ``query``, for MS MARCO)
  sorted, N of them drawn by Python's ``random.Random(42).sample`` (eval.py seeds the global ``random`` with
  42 just before loading), and every record whose key was drawn kept in file order (a repeated question
  brings all its records).
- ``balanced``: many-shot ICL's test split over N records shuffled as above, then a label-balanced draw of N
  (load_icl's ``balance_labels`` with seed 42); a split of N or fewer is kept in file order.

Here each function takes what the rule needs of the valid records, in file order, and returns the positions
of the records drawn, in the order HELMET runs them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

SEED = 42  # HELMET's --seed
TEST_SAMPLES = 100  # max_test_samples in HELMET's configs
ICL_TEST_SAMPLES = 500  # ... and in its many-shot ICL configs


def shuffled(count: int, seed: int) -> list[int]:
    """The order ``datasets.Dataset.shuffle(seed=seed)`` puts ``count`` rows in (numpy's default_rng
    permutation)."""
    return [int(i) for i in np.random.default_rng(seed).permutation(count)]


def draw_shuffled(count: int, wanted: int, seed: int = SEED) -> list[int]:
    """``Dataset.shuffle(seed).select(range(min(wanted, count)))``: the first ``wanted`` of the shuffle."""
    return shuffled(count, seed)[:wanted]


def draw_shuffled_if_over(count: int, wanted: int, seed: int = SEED) -> list[int]:
    """Multi-LexSum's draw: shuffled and cut only when there are more than ``wanted`` records."""
    return draw_shuffled(count, wanted, seed) if count > wanted else list(range(count))


def draw_by_key(keys: Sequence[Hashable], wanted: int, seed: int = SEED) -> list[int]:
    """load_qa's and load_msmarco_rerank's draw: ``random.sample(sorted(set(keys)), min(wanted, distinct))``
    with a fresh ``random.seed(seed)``, then the records whose key was drawn, in file order."""
    distinct = sorted(set(keys))  # type: ignore[type-var]
    drawn = set(random.Random(seed).sample(distinct, min(wanted, len(distinct))))
    return [position for position, key in enumerate(keys) if key in drawn]


def draw_balanced(labels: Sequence[Hashable], wanted: int, seed: int = SEED) -> list[int]:
    """load_icl's test draw: a split of more than ``wanted`` shuffled as above, then ``balance_labels``; a
    position may come twice where a label has fewer records than rounds."""
    if len(labels) <= wanted:
        return list(range(len(labels)))
    order = shuffled(len(labels), seed)
    rows = [{"label": labels[i], "position": i} for i in order]
    return [row["position"] for row in balance_labels(rows, "label", wanted, seed)]


def balance_labels(rows: list[dict], field: str, shots: int, seed: int) -> list[dict]:
    """HELMET's ``balance_labels``: ``shots`` rows in rounds of one row per label (labels in order of first
    appearance), each round shuffled, drawn with ``random.Random(seed)``; a label with fewer rows than rounds
    is drawn again (its quirk: the first draw takes rounds mod its size)."""
    rand = random.Random(seed)
    by_label: dict[Any, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row[field], []).append(row)
    rounds = math.ceil(shots / len(by_label))
    grouped: list[list[dict]] = [[] for _ in range(rounds)]
    for members in by_label.values():
        indices = rand.sample(range(len(members)), rounds % len(members))
        while len(indices) < rounds:
            indices += rand.sample(range(len(members)), min(rounds - len(indices), len(members)))
        for place, index in enumerate(indices):
            grouped[place].append(members[index])
    for group in grouped:
        rand.shuffle(group)
    return [row for group in grouped for row in group][:shots]
