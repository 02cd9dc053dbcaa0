"""The difficulty ladder: solvers per task that read the gold from the context, what each level changes, the QA
tables (at least 500 question-document pairs), and the refusal of a level that does not exist."""

from __future__ import annotations

import functools
import random
import re

import pytest
from conftest import tiny_tokenizer

from longscope.backends.hf import HFTokenizer
from longscope.core import UsageError
from longscope.scoring import score_turn
from longscope.tasks import _ladder_data as data
from longscope.tasks import make_task
from longscope.tasks.ladder import ASKED_FRUITS, LEVELS

RECORD = re.compile(r"The special code for ([a-z]+-[a-z]+) is (\d{7})\.")
CRATE = re.compile(r"Crate \d+ holds (\d+) kilograms of (\w+) in the (\w+) warehouse\.")


@functools.cache
def backend(style: str = "bytelevel") -> HFTokenizer:
    return HFTokenizer(tiny_tokenizer("chatml", style), name=f"tiny-{style}")


def solve_codes(context: str, question: str) -> tuple[str, ...]:
    key = re.search(r"codes? for ([a-z]+-[a-z]+)\?", question).group(1)
    return tuple(code for k, code in RECORD.findall(context) if k == key)


def documents(context: str) -> dict[str, str]:
    """Each document's text by its title (the first line after a blank line)."""
    found = {}
    for block in context.split("\n\n"):
        title, _, text = block.partition("\n")
        if text:
            found[title] = text
    return found


PERSON_FACTS = {
    "town": r"was born in (\w+)\.",
    "profession": r"By trade .+? is an? (.+?)\.",
    "employer": r"took a position at (.+?) and",
    "joined": r"In (\d{4}), ",
    "hobby": r"spends most weekends on (.+?)\.",
}
COMPANY_FACTS = {
    "town": r"head office stands in (\w+),",
    "founded": r"founded in (\d{4})\.",
    "product": r"known for its (.+?)\.$",
}
QUESTION_ASKS = [
    ("town", r"In which town was (.+) born\?|What is the home town (.+) comes from\?"),
    ("profession", r"What is (.+)'s trade\?|What kind of work does (.+) do for a living\?"),
    ("employer", r"Which company did (.+) take a position at\?|Who is (.+)'s employer\?"),
    ("joined", r"In which year did (.+) take a position at|Since when has (.+) been with"),
    ("hobby", r"What does (.+) spend most weekends|What is (.+)'s favourite pastime\?"),
]
TWO_HOPS = [
    ("town", r"In which town is the head office of the company (.+) works for\?"),
    ("founded", r"In which year was the company (.+) works for founded\?"),
    ("product", r"What is the company (.+) works for known for\?"),
]


def solve_qa(context: str, question: str) -> str:
    docs = documents(context)
    for attribute, pattern in TWO_HOPS:
        match = re.match(pattern, question)
        if match:
            employer = re.search(PERSON_FACTS["employer"], docs[match.group(1)]).group(1)
            return re.search(COMPANY_FACTS[attribute], docs[employer]).group(1)
    for attribute, pattern in QUESTION_ASKS:
        match = re.match(pattern, question)
        if match:
            name = next(g for g in match.groups() if g)
            return re.search(PERSON_FACTS[attribute], docs[name]).group(1)
    raise AssertionError(f"unparsed question {question!r}")


def solve_crates(context: str, question: str) -> str:
    fruit, wing = re.search(r"kilograms of (\w+) are kept in the (\w+) warehouse", question).groups()
    return str(sum(int(k) for k, f, w in CRATE.findall(context) if (f, w) == (fruit, wing)))


SOLVERS = {
    "ladder_multikey": solve_codes,
    "ladder_multivalue": solve_codes,
    "ladder_qa": lambda c, q: (solve_qa(c, q),),
    "ladder_solve": lambda c, q: (solve_crates(c, q),),
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_a_solver_recovers_the_gold_from_the_context_at_every_level(name, level):
    task = make_task(f"{name}(level={level})")
    for seed in range(2):
        sample = task.build(backend(), 2048, None, seed)
        got = SOLVERS[name](sample.context, sample.question)
        assert tuple(sorted(got)) == tuple(sorted(sample.answers)), (name, level, seed)
        assert sample.metadata["level"] == level
        assert all(piece in sample.context for piece in sample.evidence)
        # The gold passes the scorer; a look-alike's value beside it fails.
        turn = sample.turns[0]
        assert score_turn(task.metric, " " + ", ".join(turn.answers), turn, sample.metadata)[0] == 1.0
        if turn.forbidden:
            wrong = f" {', '.join(turn.answers)} or {turn.forbidden[0]}"
            assert score_turn(task.metric, wrong, turn, sample.metadata)[0] == 0.0


def test_the_key_levels_change_what_the_module_says():
    def records(level: str, seed: int = 3) -> tuple[str, list[tuple[str, str]]]:
        sample = make_task(f"ladder_multikey(level={level})").build(backend(), 2048, None, seed)
        return re.search(r"for ([a-z]+-[a-z]+)\?", sample.question).group(1), RECORD.findall(sample.context)

    asked, found = records("basic")
    assert [k for k, _ in found] == [asked]
    asked, found = records("easy")
    assert len(found) == 5 and len({k for k, _ in found}) == 5
    asked, found = records("medium")
    assert len(found) > 30  # a haystack of records, one of them asked
    assert [k for k, _ in found].count(asked) == 1
    asked, found = records("hard")
    adjective, noun = asked.split("-")
    one_word_away = [
        k for k, _ in found if k != asked and (k.startswith(adjective + "-") or k.endswith("-" + noun))
    ]
    assert len(one_word_away) >= 8
    values = [
        len(make_task(f"ladder_multivalue(level={lv})").build(backend(), 2048, None, 1).answers)
        for lv in LEVELS
    ]
    assert values == [2, 4, 4, 4]


def test_the_qa_levels_paraphrase_then_add_lookalikes_then_a_second_hop():
    def sample(level: str, seed: int = 2):
        return make_task(f"ladder_qa(level={level})").build(backend(), 2048, None, seed)

    basic = sample("basic")
    assert any(
        re.match(d.replace("{name}", ".+").replace("{employer}", ".+").replace("?", r"\?"), basic.question)
        for _, d, _ in data.PERSON_QUESTIONS
    )
    easy = sample("easy")
    assert any(
        re.match(p.replace("{name}", ".+").replace("{employer}", ".+").replace("?", r"\?"), easy.question)
        for _, _, p in data.PERSON_QUESTIONS
    )
    medium = sample("medium")
    name = next(title for title in documents(medium.context) if title in medium.question)
    first, last = name.split(" ")
    # Filler documents may share a first name too (their surnames come from the other half of the table).
    lookalikes = [
        t
        for t in documents(medium.context)
        if t != name
        and t.split(" ")[-1] in data.ASKED_SURNAMES
        and (t.startswith(first + " ") or t.endswith(" " + last))
    ]
    assert len(lookalikes) == medium.metadata["lookalikes"] == 4
    hard = sample("hard")
    assert hard.metadata["hops"] == 2 and len(hard.evidence) == 2  # the person's and the employer's documents


def test_the_solve_levels_add_crates_then_near_misses():
    def crates(level: str):
        sample = make_task(f"ladder_solve(level={level})").build(backend(), 2048, None, 4)
        fruit, wing = re.search(
            r"kilograms of (\w+) are kept in the (\w+) warehouse", sample.question
        ).groups()
        found = CRATE.findall(sample.context)
        return sample, fruit, wing, found

    expected = {"basic": 2, "easy": 3, "medium": 4, "hard": 5}
    for level, count in expected.items():
        sample, fruit, wing, found = crates(level)
        assert sum((f, w) == (fruit, wing) for _, f, w in found) == count == len(sample.evidence)
    sample, fruit, wing, found = crates("hard")
    # The right fruit elsewhere, or another asked-for fruit in the right warehouse (the filler's fruits are
    # never asked for, so they are no near misses).
    near = [(f, w) for _, f, w in found if f in ASKED_FRUITS and (f == fruit) != (w == wing)]
    assert len(near) == 6


def test_at_least_500_distinct_question_document_pairs_each_answered_by_its_document():
    rng = random.Random(0)
    pairs = set()
    for i in range(600):
        attribute, question, answer, who = data.qa_pair(rng, paraphrase=i % 2 == 1)
        assert answer in who.document() and who.name in question
        pairs.add((question, who.document()))
    assert len(pairs) >= 500
    # Names never nest, so a look-alike's value can be forbidden without forbidding the gold.
    for table in (
        data.TOWNS,
        data.ASKED_SURNAMES + data.FILLER_SURNAMES,
        data.ASKED_COMPANIES + data.FILLER_COMPANIES,
    ):
        assert not [(a, b) for a in table for b in table if a != b and a in b]
    assert not set(data.ASKED_SURNAMES) & set(data.FILLER_SURNAMES)
    assert not set(data.ASKED_COMPANIES) & set(data.FILLER_COMPANIES)


def test_the_plane_climbs_with_the_level_and_a_missing_level_is_refused():
    for name in SOLVERS:
        diffusion = [make_task(f"{name}(level={level})").diffusion for level in LEVELS]
        assert diffusion == sorted(diffusion) and diffusion[0] < diffusion[-1]
    with pytest.raises(UsageError, match="parameter level") as refused:
        make_task("ladder_qa(level=impossible)")
    assert "\n" not in str(refused.value)


def test_exact_lengths_on_metaspace():
    for name in SOLVERS:
        sample = make_task(f"{name}(level=hard)").build(backend("metaspace"), 2600, None, seed=1)
        assert sample.metadata["realised_tokens"] == 2600
