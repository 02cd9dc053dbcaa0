"""Best of N: pick the one true statement about a person among near-misses that the records support."""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import GeneratedUnits, Needle, blocked_counts, corpus, slot_counts
from longscope.tasks.base import Task, prompt_tokens


def _noise(i: int) -> str:
    # Text before the stream pads the first few tokens: plain filler, never a record.
    return corpus("noise").unit(i)


_FIRST_NAMES = tuple(
    """
Alma Bruno Cora Dario Edda Felix Greta Hugo Ilse Jonas Kira Lars Mina Nils Odile Pavel Rosa Soren Tilda
Umar Vera Wim Xenia Yusuf Zora Anton Berit Cyril Dagny Emil Frida Gustav Hedda Ivo Juno Kasper Lena Milo
Nora Otto
""".split()
)
_SURNAMES = tuple(
    """
Ashdown Bramley Calloway Dunmore Elsworth Fairley Garrow Halloran Inchley Jessop Kettering Lowther Marlow
Netherby Oakridge Pendry Quenby Rathbone Selwood Thackery Underhill Varley Wexford Yardley Ainsley
Blackwood Carrick Dalby Eastwood Fenwick Gilmore Hartley Ireton Jardine Kilbride Lockhart Merrick Norwood
Orrell Pembury Redfern Stanhope Trelawny Upton Vickery Whitlock Ashby Brampton Coverdale Dorsey Ellery
Fothergill Greaves Holloway Ingram Jolliffe Kendrick Langley Maitland Northcott
""".split()
)
_CITIES = tuple(
    """
Lisbon Porto Ghent Bergen Tampere Graz Lyon Turin Seville Krakow Riga Tallinn Utrecht Aarhus Bruges
Dresden Leipzig Bilbao Naples Split Zagreb Vilnius Malmo Basel Geneva Lille Nantes Cork Galway Bristol
""".split()
)
_COLOURS = tuple(
    """
amber azure crimson teal olive ochre indigo scarlet ivory violet maroon cobalt coral jade lilac saffron
silver copper mauve navy plum rust sage turquoise
""".split()
)
_YEARS = tuple(range(1940, 2010))
# Filler records drawn together (one generator per block).
_BLOCK = 4096
_MAX_CANDIDATES = 99  # two-digit labels; a look-alike for every third candidate stays within the surnames

_BON_TEMPLATE = (
    "Below are records about many people, one sentence each. Read them closely; afterwards you will be asked "
    "about one person.\n\n{context}\n\n{question}"
)

Person = tuple[str, int, str, str]  # name, year of birth, city, favourite colour


def _facts(person: Person) -> str:
    _, year, city, colour = person
    return f"born in {year}, lives in {city} and likes the colour {colour}"


def _record(person: Person) -> str:
    return f"{person[0]} was {_facts(person)}."


class _Choice(NamedTuple):
    question: str
    answer: str
    needles: list[Needle]
    first_name: str
    base: int


@dataclass(frozen=True)
class BestOfN(Task):
    """Pick the one true statement about a person among ``candidates`` near-misses.

    The statements are cells of a small grid of years x cities x colours (about the cube root of
    ``candidates`` values each), so most wrong statements differ from the true one in only one or two
    details. The true one is drawn uniformly among them *after* they are chosen: nothing in the list itself
    (such as which values recur most) tells it apart, which a list of single-detail variations of the truth
    would. The asked person's record is one sentence among many records about other people; look-alikes with
    the same first name carry every other value of the grid, and some carry exactly a wrong statement, so
    each wrong statement is true of somebody in the context, bound to another name.
    """

    name: ClassVar[str] = "best_of_n"
    description: ClassVar[str] = (
        "pick the one statement about a person that the records support among near-misses"
    )
    metric: ClassVar[str] = "choice"
    uses_depth: ClassVar[bool] = False
    breakdowns: ClassVar[tuple[str, ...]] = ("candidates",)

    candidates: int = 20
    max_new_tokens: int = 24

    def cache_token(self) -> str:
        # The filler records are drawn by numpy blocks now, not a generator per record: other bytes.
        return "block-draws-v2"

    @property
    def diffusion(self) -> float:
        # Look-alike names and near-miss values: each wrong statement is true of somebody in the context.
        return round(min(0.9, 0.45 + 0.0075 * self.candidates), 2)

    @property
    def scope(self) -> float:
        # One record settles it, but the look-alikes must be read to rule the near-misses out.
        return round(min(0.6, 0.1 + 0.01 * self.candidates), 2)

    def _plan(self, seed: int) -> _Choice:
        rng = self.rng(seed)
        sizes = [1, 1, 1]
        while math.prod(sizes) < self.candidates:
            sizes[sizes.index(min(sizes))] += 1
        rng.shuffle(sizes)
        values = (rng.sample(_YEARS, sizes[0]), rng.sample(_CITIES, sizes[1]), rng.sample(_COLOURS, sizes[2]))
        grid = list(itertools.product(*values))
        cells = rng.sample(grid, self.candidates)
        truth = rng.randrange(self.candidates)
        wrong = [cell for i, cell in enumerate(cells) if i != truth]
        # Look-alikes: first those that bring a value no record shows yet, then more up to a third of the
        # candidates, each exactly one wrong statement.
        rng.shuffle(wrong)
        shown = [{value} for value in cells[truth]]
        lookalikes: list[tuple] = []
        for cell in wrong:
            if any(value not in seen for value, seen in zip(cell, shown, strict=True)):
                lookalikes.append(cell)
                for value, seen in zip(cell, shown, strict=True):
                    seen.add(value)
        want = max(len(lookalikes), math.ceil((self.candidates - 1) / 3))
        lookalikes += [cell for cell in wrong if cell not in lookalikes][: want - len(lookalikes)]
        first = rng.choice(_FIRST_NAMES)
        surnames = rng.sample(_SURNAMES, len(lookalikes) + 1)
        people: list[Person] = [
            (f"{first} {surname}", *cell)  # type: ignore[misc]
            for surname, cell in zip(surnames, [cells[truth], *lookalikes], strict=True)
        ]
        width = max(2, len(str(self.candidates)))
        labels = [f"C{i + 1:0{width}d}" for i in range(self.candidates)]
        statements = [_facts(("", *cell)) for cell in cells]  # type: ignore[arg-type]
        listing = "\n".join(f"[{label}] {text}." for label, text in zip(labels, statements, strict=True))
        name = people[0][0]
        question = (
            f'Here are {self.candidates} ways to complete the sentence "{name} was ...". Exactly one of them '
            "agrees with the records above.\n\n"
            f"{listing}\n\nWhich one is true? Answer with its label only."
        )
        rng.shuffle(people)  # the asked person is not always the first needle drawn
        needles = [Needle(_record(person), round(rng.random(), 4)) for person in people]
        return _Choice(question, labels[truth], needles, first, rng.getrandbits(64))

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if not 2 <= self.candidates <= _MAX_CANDIDATES:
            raise UsageError(
                f"{self.label()}: candidates={self.candidates} must be between 2 and {_MAX_CANDIDATES}"
            )
        plan = self._plan(0)
        context = "".join("\n" + needle.text for needle in plan.needles).lstrip()
        floor = prompt_tokens(backend, _BON_TEMPLATE, plan.question, "The true statement is", context)
        if floor > length - self.max_new_tokens:
            raise UsageError(
                f"{self.label()}: candidates={self.candidates} statements and the look-alike records take "
                f"about {floor} tokens, more than length {length} allows after max_new_tokens="
                f"{self.max_new_tokens}; lower candidates or raise the length"
            )

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        self.check(backend, length)
        plan = self._plan(seed)
        # Only the asked person and the look-alikes carry this first name, so no filler record can be
        # mistaken for (or contradict) theirs.
        others = [f for f in _FIRST_NAMES if f != plan.first_name]

        # Seeding a generator per record cost most of a 128k build: a whole block of records is drawn at
        # once, each detail uniform over its list, from a generator seeded by the sample and the block.
        slots = (others, _SURNAMES, _YEARS, _CITIES, _COLOURS)

        @functools.cache
        def block(b: int) -> tuple[np.ndarray, list[str]]:
            """The block's drawn places (one row per slot) and its records' texts."""
            g = np.random.Generator(np.random.PCG64([plan.base, b]))
            places = np.stack([g.integers(len(options), size=_BLOCK) for options in slots])
            columns = [[options[j] for j in at] for options, at in zip(slots, places.tolist(), strict=True)]
            texts = [
                "\n" + _record((f"{first} {surname}", year, city, colour))
                for first, surname, year, city, colour in zip(*columns, strict=True)
            ]
            return places, texts

        def person(i: int) -> Person:
            first, surname, year, city, colour = (
                options[j]
                for options, j in zip(slots, block(i // _BLOCK)[0][:, i % _BLOCK].tolist(), strict=True)
            )
            return f"{first} {surname}", year, city, colour

        def make(i: int) -> str:
            if i < 0:
                return _noise(i)
            return block(i // _BLOCK)[1][i % _BLOCK]

        def pieces(i: int) -> list[str]:
            # _record's wording cut where names, years, cities and colours recur, so each is counted once
            # where this tokenizer adds them up (the haystack checks that the pieces join into make's text).
            if i < 0:
                return [_noise(i)]
            name, year, city, colour = person(i)
            first, surname = name.split(" ", 1)
            return [
                "\n", first, " " + surname, " was born in", f" {year}", ",", " lives in", " " + city,
                " and likes the colour", " " + colour, ".",
            ]  # fmt: skip

        fixed = ("\n", " was born in", ",", " lives in", " and likes the colour", ".")
        spaced = (others, *([f" {value}" for value in options] for options in slots[1:]))

        def unit_counts(backend: Backend, start: int, count: int) -> np.ndarray:
            """The sums of ``pieces``' counts for records ``start`` on, from the drawn places."""
            return blocked_counts(
                start, count, _BLOCK, lambda b: slot_counts(backend, fixed, spaced, block(b)[0])
            )

        needles = [Needle("\n" + needle.text, needle.depth) for needle in plan.needles]
        return self.make_sample(
            backend,
            length=length,
            depth=None,
            seed=seed,
            template=_BON_TEMPLATE,
            turns=[
                Turn(question=plan.question, answers=(plan.answer,), answer_prefix="The true statement is")
            ],
            source=GeneratedUnits(make, name="best_of_n", pieces=pieces, unit_counts=unit_counts),
            needles=needles,
            metadata={"candidates": self.candidates},
        )
