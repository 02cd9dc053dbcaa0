"""A difficulty ladder (after RULERv2): multi-key retrieval, multi-value retrieval, multi-document QA and
retrieve-then-solve, each at basic / easy / medium / hard; each task's docstring says what its levels change.

Values that belong to look-alikes are forbidden answers: naming one beside the gold earns nothing.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, UnitSource, corpus
from longscope.tasks import _ladder_data as data
from longscope.tasks._memo_units import MemoUnits
from longscope.tasks._pieces import split_at_spaces
from longscope.tasks._room import require_room
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

LEVELS = ("basic", "easy", "medium", "hard")
Level = Literal["basic", "easy", "medium", "hard"]
# Filler streams repeat after this many units; every sample reads the same units from its own start, so
# their token counts are reused from sample to sample.
CYCLE = 8192

# Keys of asked records (and their look-alikes) use the even-placed nouns, filler records the odd-placed, so
# the filler never holds an asked key or one a word away from it.
ASKED_NOUNS, FILLER_NOUNS = NOUNS[0::2], NOUNS[1::2]
ASKED_FRUITS = ("plums", "apricots", "pears", "quinces", "cherries", "figs")
FILLER_FRUITS = ("apples", "lemons", "melons", "peaches", "oranges", "grapes", "limes", "mangoes")
WINGS = ("north", "south", "east", "west")


@dataclass
class Plan:
    """Everything a sample needs that the seed decides, the length aside."""

    template: str
    question: str
    prefix: str
    answers: tuple[str, ...]
    needles: list[Needle]
    evidence: list[str]
    source: UnitSource
    start: int
    forbidden: tuple[str, ...] = ()
    facts: dict = field(default_factory=dict)


def _code(rng: random.Random) -> str:
    return str(rng.randint(1_000_000, 9_999_999))


def _key(rng: random.Random, nouns: tuple[str, ...]) -> str:
    return f"{rng.choice(ADJECTIVES)}-{rng.choice(nouns)}"


def _record(key: str, code: str) -> str:
    return f"The special code for {key} is {code}."


def _key_record(index: int) -> str:
    return _key_record_at(index % CYCLE)


@functools.cache  # drawing a unit costs more than looking it up, and there are only CYCLE of them
def _key_record_at(index: int) -> str:
    rng = random.Random(f"ladder-key-record-{index}")
    return " " + _record(_key(rng, FILLER_NOUNS), _code(rng))


def _crate(crate: int, kilograms: int, fruit: str, wing: str) -> str:
    return f"Crate {crate} holds {kilograms} kilograms of {fruit} in the {wing} warehouse."


def _crate_record(index: int) -> str:
    return _crate_record_at(index % CYCLE)


@functools.cache
def _crate_record_at(index: int) -> str:
    rng = random.Random(f"ladder-crate-record-{index}")
    return " " + _crate(
        rng.randint(1000, 9999), rng.randint(5, 60), rng.choice(FILLER_FRUITS), rng.choice(WINGS)
    )


@functools.cache
def _document_at(index: int) -> str:
    return "\n\n" + data.filler_document(index)


def _document(index: int) -> str:
    return _document_at(index % CYCLE)


@functools.cache  # cut once per document: every sample reading that stretch of the cycle cuts it again
def _document_pieces_at(index: int) -> list[str]:
    return split_at_spaces(_document_at(index))


def _document_pieces(index: int) -> list[str]:
    return _document_pieces_at(index % CYCLE)


def _distinct(draw, count: int, taken: set[str]) -> list[str]:
    items: list[str] = []
    while len(items) < count:
        item = draw()
        if item not in taken:
            taken.add(item)
            items.append(item)
    return items


@dataclass(frozen=True)
class _Ladder(Task):
    """A rung of the ladder: ``level`` is basic, easy, medium or hard."""

    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("level",)
    # Per level: how hard the needed facts are to find.
    _DIFFUSION: ClassVar[dict[str, float]] = {}
    _SCOPE: ClassVar[dict[str, float]] = {}

    level: Level = "basic"
    max_new_tokens: int = 64

    @property
    def diffusion(self) -> float:
        return self._DIFFUSION.get(self.level, 1.0)

    @property
    def scope(self) -> float:
        return self._SCOPE.get(self.level, 1.0)

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if self.level not in LEVELS:
            raise UsageError(
                f"{self.label()}: level={self.level} does not exist; levels: {', '.join(LEVELS)}"
            )
        plan = self._plan(0)
        require_room(
            backend,
            label=self.label(),
            length=length,
            max_new_tokens=self.max_new_tokens,
            template=plan.template,
            question=plan.question,
            prefix=plan.prefix,
            texts=[n.text if n.text[:1].isspace() else " " + n.text for n in plan.needles],
            what=f"the {len(plan.needles)} records level={self.level} places",
            fix="choose a lower level",
        )

    def _plan(self, seed: int) -> Plan:
        raise NotImplementedError

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        plan = self._plan(seed)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=plan.template,
            turns=[
                Turn(
                    question=plan.question,
                    answers=plan.answers,
                    answer_prefix=plan.prefix,
                    forbidden=plan.forbidden,
                )
            ],
            source=plan.source,
            start=plan.start,
            needles=plan.needles,
            metadata={"level": self.level, **plan.facts},
            evidence=plan.evidence,
        )


CODE_TEMPLATE = (
    "Hidden in the text below are some special codes, each written next to a key. Read the text closely; "
    "afterwards you will be asked about them.\n\n{context}\n\n{question}"
)


@dataclass(frozen=True)
class _KeyRetrieval(_Ladder):
    metric: ClassVar[str] = "contains_only"
    _DIFFUSION: ClassVar[dict[str, float]] = {"basic": 0.1, "easy": 0.3, "medium": 0.6, "hard": 0.8}

    def _values(self) -> int:
        raise NotImplementedError

    def _plan(self, seed: int) -> Plan:
        rng = self.rng(seed)
        taken: set[str] = set()
        asked = _distinct(lambda: _key(rng, ASKED_NOUNS), 1, taken)[0]
        codes = _distinct(lambda: _code(rng), self._values(), set())
        adjective, noun = asked.split("-")
        others: list[str] = []
        if self.level == "easy":
            others = _distinct(lambda: _key(rng, ASKED_NOUNS), 4, taken)
        elif self.level == "hard":  # one word away: the same adjective or the same noun
            others = _distinct(lambda: f"{adjective}-{rng.choice(ASKED_NOUNS)}", 4, taken)
            others += _distinct(lambda: f"{rng.choice(ADJECTIVES)}-{noun}", 4, taken)
        other_codes = _distinct(lambda: _code(rng), len(others), set(codes))
        needles = [Needle(_record(asked, code), round(rng.random(), 4)) for code in codes]
        needles += [
            Needle(_record(k, c), round(rng.random(), 4)) for k, c in zip(others, other_codes, strict=True)
        ]
        if self.level in ("medium", "hard"):
            source: UnitSource = MemoUnits(_key_record, "ladder-keys")
            start = rng.randrange(CYCLE)
        else:
            source = corpus("essay")
            start = rng.randrange(len(corpus("essay").sentences))
        if len(codes) == 1:
            question, prefix = f"What is the special code for {asked}?", f"The special code for {asked} is"
        else:
            question, prefix = (
                f"What are all the special codes for {asked}?",
                f"The special codes for {asked} are:",
            )
        return Plan(
            template=CODE_TEMPLATE,
            question=question,
            prefix=prefix,
            answers=tuple(codes),
            forbidden=tuple(other_codes),
            needles=needles,
            evidence=[n.text for n in needles[: len(codes)]],
            source=source,
            start=start,
            facts={"lookalikes": len(others)},
        )


@dataclass(frozen=True)
class LadderMultiKey(_KeyRetrieval):
    """Return the one special code written next to the asked key.

    basic: one record in essay prose. easy: four look-alike records with other keys beside it. medium: a
    haystack made only of such records. hard: that haystack plus eight records whose keys differ from the
    asked one by one word (the same adjective or the same noun).
    """

    name: ClassVar[str] = "ladder_multikey"
    description: ClassVar[str] = "one key's code among look-alike keys, basic to hard"
    _SCOPE: ClassVar[dict[str, float]] = dict.fromkeys(LEVELS, 0.05)

    def _values(self) -> int:
        return 1


@dataclass(frozen=True)
class LadderMultiValue(_KeyRetrieval):
    """Return every special code written next to the asked key: two at basic, four above it.

    The levels change the rest as in ladder_multikey: basic, prose only; easy, four look-alike records;
    medium, a haystack of records; hard, that haystack plus eight keys one word away from the asked one.
    """

    name: ClassVar[str] = "ladder_multivalue"
    description: ClassVar[str] = "every code of one key, among look-alike keys, basic to hard"
    _SCOPE: ClassVar[dict[str, float]] = {"basic": 0.1, "easy": 0.2, "medium": 0.2, "hard": 0.2}
    max_new_tokens: int = 96

    def _values(self) -> int:
        return 2 if self.level == "basic" else 4


QA_TEMPLATE = (
    "Below are many short documents about people and companies. Read them closely; afterwards you will be "
    "asked a question that they answer.\n\n{context}\n\n{question} Answer briefly."
)


@dataclass(frozen=True)
class LadderQA(_Ladder):
    """Answer a question over many short documents about made-up people and companies.

    basic: the question repeats the gold document's words. easy: it is paraphrased. medium: paraphrased,
    among four more documents about people who share the asked one's first name or surname. hard: two hops,
    the person's document naming the employer and the employer's document holding the answer, among such
    look-alikes, each with its own employer's document. The filler documents are about other people and
    companies drawn from tables the asked ones never use.
    """

    name: ClassVar[str] = "ladder_qa"
    description: ClassVar[str] = "questions over many short documents about made-up people, basic to hard"
    metric: ClassVar[str] = "contains_only"
    _DIFFUSION: ClassVar[dict[str, float]] = {"basic": 0.2, "easy": 0.4, "medium": 0.6, "hard": 0.7}
    _SCOPE: ClassVar[dict[str, float]] = {"basic": 0.05, "easy": 0.05, "medium": 0.05, "hard": 0.1}

    def _plan(self, seed: int) -> Plan:
        rng = self.rng(seed)
        attribute, question, answer, who = data.qa_pair(rng, paraphrase=self.level != "basic")
        first, last = who.name.split(" ")
        evidence = [who.document()]
        extra: list[str] = []
        lookalikes: list[data.Person] = []
        if self.level in ("medium", "hard"):
            names = _distinct(
                lambda: (
                    f"{first} {rng.choice(data.ASKED_SURNAMES)}"
                    if rng.random() < 0.5
                    else f"{rng.choice(data.FIRST_NAMES)} {last}"
                ),
                4,
                {who.name},
            )
            lookalikes = [data.person(rng, name, data.ASKED_COMPANIES) for name in names]
            extra = [p.document() for p in lookalikes]
        forbidden: set[str] = set()
        if self.level == "hard":
            attribute, question = rng.choice(data.COMPANY_QUESTIONS)
            question = question.format(name=who.name)
            # Every employer named gets its document, so the look-alikes' employers are look-alikes too.
            employers = {who.employer: data.company(rng, who.employer)}
            for p in lookalikes:
                if p.employer not in employers:
                    employers[p.employer] = data.company(rng, p.employer)
            answer = str(getattr(employers[who.employer], attribute))
            evidence.append(employers[who.employer].document())
            extra += [c.document() for name, c in employers.items() if name != who.employer]
            forbidden = {str(getattr(c, attribute)) for name, c in employers.items() if name != who.employer}
        else:
            forbidden = {str(getattr(p, attribute)) for p in lookalikes}
        forbidden.discard(answer)  # a look-alike may share the gold value (the same town, the same employer)
        needles = [Needle("\n\n" + text, round(rng.random(), 4)) for text in evidence + extra]
        return Plan(
            template=QA_TEMPLATE,
            question=question,
            prefix="Answer:",
            answers=(answer,),
            forbidden=tuple(sorted(forbidden)),
            needles=needles,
            evidence=evidence,
            source=MemoUnits(_document, "ladder-documents", pieces=_document_pieces),
            start=rng.randrange(CYCLE),
            facts={"hops": 2 if self.level == "hard" else 1, "lookalikes": len(lookalikes)},
        )


SOLVE_TEMPLATE = (
    "The text below mentions crates of fruit kept in several warehouses. Read it closely; afterwards you will "
    "be asked to find some of the crates and add them up.\n\n{context}\n\n{question}"
)
# level -> (crates to add up, other-fruit crates, near misses (right fruit or right warehouse), record haystack)
SOLVE_LEVELS = {
    "basic": (2, 0, 0, False),
    "easy": (3, 4, 0, False),
    "medium": (4, 6, 0, True),
    "hard": (5, 0, 6, True),
}


@dataclass(frozen=True)
class LadderSolve(_Ladder):
    """Retrieve then solve: find every crate of one fruit in one warehouse, then add up their kilograms.

    basic: two crates in essay prose. easy: three crates beside four crates of other fruit. medium: four
    crates among six of other fruit, in a haystack made only of crate records. hard: five crates in that
    haystack, plus six that match the fruit or the warehouse but not both.
    """

    name: ClassVar[str] = "ladder_solve"
    description: ClassVar[str] = "find the matching crates, then add them up, basic to hard"
    metric: ClassVar[str] = "exact_number"
    _DIFFUSION: ClassVar[dict[str, float]] = {"basic": 0.2, "easy": 0.4, "medium": 0.6, "hard": 0.8}
    _SCOPE: ClassVar[dict[str, float]] = {"basic": 0.1, "easy": 0.15, "medium": 0.2, "hard": 0.25}
    max_new_tokens: int = 32

    def _plan(self, seed: int) -> Plan:
        rng = self.rng(seed)
        relevant, others, near, records = SOLVE_LEVELS[self.level]
        fruit, wing = rng.choice(ASKED_FRUITS), rng.choice(WINGS)
        crates = [
            int(c) for c in _distinct(lambda: str(rng.randint(1000, 9999)), relevant + others + near, set())
        ]
        kilograms = [rng.randint(5, 60) for _ in crates]
        kinds = [(fruit, wing)] * relevant
        kinds += [
            (rng.choice([f for f in ASKED_FRUITS if f != fruit]), rng.choice(WINGS)) for _ in range(others)
        ]
        for i in range(near):  # half the right fruit elsewhere, half another fruit in the right warehouse
            if i % 2 == 0:
                kinds.append((fruit, rng.choice([w for w in WINGS if w != wing])))
            else:
                kinds.append((rng.choice([f for f in ASKED_FRUITS if f != fruit]), wing))
        texts = [_crate(c, k, f, w) for c, k, (f, w) in zip(crates, kilograms, kinds, strict=True)]
        needles = [Needle(text, round(rng.random(), 4)) for text in texts]
        total = sum(kilograms[:relevant])
        if records:
            source: UnitSource = MemoUnits(_crate_record, "ladder-crates")
            start = rng.randrange(CYCLE)
        else:
            source = corpus("essay")
            start = rng.randrange(len(corpus("essay").sentences))
        return Plan(
            template=SOLVE_TEMPLATE,
            question=(
                f"How many kilograms of {fruit} are kept in the {wing} warehouse in all? Add up every crate of "
                f"{fruit} there and answer with the number only."
            ),
            prefix="In all, the kilograms come to",
            answers=(str(total),),
            needles=needles,
            evidence=texts[:relevant],
            source=source,
            start=start,
            facts={"crates": relevant, "near_misses": near},
        )
