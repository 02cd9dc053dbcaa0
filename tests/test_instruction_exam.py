"""Instruction exam: a solver that sits the exam, every item type and layout, the items scorer, the plane."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_backend

from longscope.core import Sample, UsageError
from longscope.scoring import score, score_with_details
from longscope.tasks import make_task
from longscope.tasks.instruction_exam import GROUPS, Item

TOKENIZERS = [("chatml", "bytelevel"), ("llama3", "bytelevel"), ("inst", "metaspace")]
LAYOUTS = [
    "instruction_exam(layout=global)",
    "instruction_exam(layout=local)",
    "instruction_exam(layout=mixed)",
]

# What a global instruction asks, by a phrase it must contain.
GLOBAL_KINDS = {
    "sum": "arith",
    "subtraction": "arith",
    "multiplication": "arith",
    "backwards": "reverse",
    "number of letters": "count",
    "does not belong": "odd",
}
GROUP_OF = {word: group for group, words in GROUPS.items() for word in words}


def answer(text: str, kind: str | None) -> str:
    """Sit one item: ``kind`` is what the global instruction asks, or None when the item says it itself."""
    if kind == "arith" or (kind is None and text.startswith("What is")):
        a, op, b = re.search(r"(\d+) ([-+*]) (\d+)", text).groups()
        return str({"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op])
    word = re.search(r"'(\w+)'", text).group(1) if kind is None and "'" in text else text.strip()
    if kind == "reverse" or (kind is None and text.endswith("backwards.")):
        return word[::-1]
    if kind == "count" or (kind is None and text.startswith("How many letters")):
        return str(len(word))
    options = dict(re.findall(r"([ABCD])\) (\w+)", text))
    groups = [GROUP_OF[w] for w in options.values()]
    odd = [letter for letter, w in options.items() if groups.count(GROUP_OF[w]) == 1]
    assert len(odd) == 1 and len(options) == 4, text  # exactly one word stands apart
    return odd[0]


def solve(sample: Sample) -> tuple[str, ...]:
    """A reference solver: read every numbered item from the prompt, answer the asked ones as 'N: answer'."""
    user = sample.messages()[0]["content"]
    top = user.split("\n\n")[0]
    kinds = [kind for phrase, kind in GLOBAL_KINDS.items() if phrase in top]
    kind = kinds[0] if "its own instruction" not in top else None
    items: dict[int, str] = {}
    for line in sample.context.split("\n"):
        found = re.search(r"(\d+)\. (.+)$", line)  # the first line may open with filler
        if found:
            items[int(found.group(1))] = found.group(2)
    assert sorted(items) == list(range(1, len(items) + 1)) and len(items) == sample.metadata["items"]
    asked = re.search(r"Answer only items? ([\d, and]+),", sample.question).group(1)
    numbers = [int(n) for n in re.findall(r"\d+", asked)]
    return tuple(f"{n}: {answer(items[n], kind)}" for n in numbers)


@pytest.mark.parametrize("spec", LAYOUTS + ["instruction_exam(layout=local,item_type=odd_one_out)"])
@pytest.mark.parametrize("seed", range(6))
def test_reference_solver_recovers_the_gold(spec, seed):
    sample = make_task(spec).build(tiny_backend(), 2048, None, seed=seed)
    assert solve(sample) == sample.answers
    assert len(sample.answers) == 5 and sample.metadata["asked"] == [
        int(a.split(":")[0]) for a in sample.answers
    ]
    assert max(sample.metadata["asked"]) <= 20 < sample.metadata["items"]


def test_every_item_type_is_solved_in_every_layout():
    for spec in ("global", "local"):
        for kind in ("add", "subtract", "multiply", "reverse", "count", "odd_one_out"):
            task = make_task(f"instruction_exam(layout={spec},item_type={kind})")
            task.check(tiny_backend(), 2048)
            sample = task.build(tiny_backend(), 2048, None, seed=1)
            assert solve(sample) == sample.answers
            assert set(sample.metadata["asked_types"]) == {kind}
    mixed = make_task("instruction_exam(layout=mixed,asked=8,max_new_tokens=128)").build(
        tiny_backend(), 2048, None, seed=0
    )
    assert len(set(mixed.metadata["asked_types"])) > 2 and solve(mixed) == mixed.answers


def test_a_longer_length_holds_more_items_and_the_layout_is_a_breakdown():
    backend = tiny_backend()
    task = make_task("instruction_exam")
    a = task.build(backend, 1024, None, seed=5)
    c = task.build(backend, 4096, None, seed=5)
    assert c.metadata["items"] > 2 * a.metadata["items"]
    assert a.metadata["layout"] == "mixed" and task.breakdowns == ("layout",)


def test_plane_follows_the_layout():
    plane = {lay: make_task(f"instruction_exam(layout={lay})") for lay in ("global", "local", "mixed")}
    assert [(t.diffusion, t.scope) for t in plane.values()] == [(0.2, 0.3), (0.3, 0.3), (0.5, 0.4)]


def test_numbered_items_scoring_by_hand():
    gold = ("3: 12", "8: nretnal", "11: B", "14: 7")
    right = "3: 12\n8: NRETNAL\n11: B\n14: 7"
    assert score_with_details("numbered_items", right, gold) == (1.0, {"answered": 1.0})
    # 3 right; 8 wrong; 11 "b)" is B once wrapping marks go; 14 missing: 2 of 4 right, 3 of 4 answered.
    partly = "Here you go:\n3:12\n8: lantern\n11: b)\n"
    assert score_with_details("numbered_items", partly, gold) == (0.5, {"answered": 0.75})
    # Other numbering styles, a quoted answer with a full stop, the first line for a number counting.
    styled = "Item 3. 12\n**8:** 'nretnal'.\n11) C\n11: B\n14 - 7 letters"
    assert score("numbered_items", styled, gold) == 0.75  # 11 is C (first line), 14's first word is 7
    assert score_with_details("numbered_items", "I do not know.", gold) == (0.0, {"answered": 0.0})
    assert score("numbered_items", "12\nnretnal\nB\n7", gold) == 0.0  # no numbers: nothing can be marked


def test_build_without_check_still_refuses_when_min_items_do_not_fit():
    with pytest.raises(UsageError, match="min_items=400"):
        make_task("instruction_exam(min_items=400)").build(tiny_backend(), 2048, None, seed=0)


@pytest.mark.parametrize("spec", LAYOUTS)
def test_seeds_give_distinct_deterministic_exact_samples(spec):
    backend = tiny_backend()
    task = make_task(spec)
    first, again, other = (task.build(backend, 2048, None, seed=s) for s in (3, 3, 4))
    assert first == again and first.context != other.context
    for sample in (first, other):
        rendered = backend.render(sample.messages(), sample.turns[0].answer_prefix)
        assert backend.count_tokens(rendered) + sample.max_new_tokens == 2048
    assert task.cache_token() == "block-draws-v2"  # samples cached before the block draws are not served


def test_items_are_drawn_from_the_defined_ranges():
    # A mixed exam's items: addends 2..49, a minuend 10..60 with a subtrahend below it, factors 2..12,
    # every type present, and the odd word's place spread over all four letters.
    sample = make_task("instruction_exam").build(tiny_backend(), 8192, None, seed=7)
    lines = [line.split(". ", 1)[1] for line in sample.context.split("\n")[1:]]
    kinds = set()
    letters = set()
    for text in lines:
        if found := re.fullmatch(r"What is (\d+) ([-+*]) (\d+)\?", text):
            a, op, b = int(found.group(1)), found.group(2), int(found.group(3))
            kinds.add(op)
            if op == "+":
                assert 2 <= a <= 49 and 2 <= b <= 49
            elif op == "-":
                assert 10 <= a <= 60 and 1 <= b < a
            else:
                assert 2 <= a <= 12 and 2 <= b <= 12
        elif "odd one out" in text:
            kinds.add("odd")
            letters.add(answer(text, None))
        else:
            kinds.add("backwards" if text.endswith("backwards.") else "count")
    assert kinds == {"+", "-", "*", "odd", "backwards", "count"} and letters == set("ABCD")


@pytest.mark.parametrize("single", [None, "add", "reverse", "odd_one_out"])
def test_inputs_formatted_a_type_at_a_time_are_those_of_each_item(single):
    from longscope.tasks.instruction_exam import _exercise, _ItemDraws

    draws = _ItemDraws(99, single)
    kinds, rows = draws.block(0)
    for local in (False, True):
        assert draws.bodies(0, local) == [
            _exercise(kind, row)[1 if local else 0] for kind, row in zip(kinds, rows, strict=True)
        ]
    assert draws.item(7) == Item(kinds[7], *_exercise(kinds[7], rows[7]))
