"""Procedural generation (after LongProc): long structured outputs from a long input, checked by rules."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import Needle, corpus
from longscope.scoring.schedule import checks
from longscope.tasks._long_output import FAMILY, check_budget_fits, label_with_sized_budget, seeded
from longscope.tasks.base import Task
from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

Kind = Literal["html_to_tsv", "procedure", "schedule"]

TEMPLATE = "Below is a document.\n\n{context}\n\n{question}"
QUESTIONS = {
    "html_to_tsv": (
        "Extract every row of the HTML table in the document above as TSV: the header line first, then one line "
        "per table row in the table's order, cells separated by single tab characters. Write only the TSV."
    ),
    "procedure": (
        "Carry out the procedure in the document above, starting from its initial values. After each step write "
        "the state of every variable on one line, in the form 'State k: A=1, B=2, C=3, D=4' where k is the "
        "step's number. Write one line for every step, in order, and nothing else."
    ),
    "schedule": (
        "Make a timetable that follows every scheduling rule in the document above. Write one line per meeting "
        "in the form 'NAME: Day d, slot s', and nothing else."
    ),
}
# The share of the output budget the expected output is sized to fill: the rest is slack for a model's own
# spacing and for tokenizers that split the output differently than the gold text.
FILL = 0.75
MIN_BUDGET = 64
MAX_ITEMS = 2000

CITIES = (
    "Lisbon Oslo Tallinn Porto Lyon Ghent Bergen Krakow Seville Turin Dublin Vienna Zurich Geneva".split()
)
VARIABLES = ("A", "B", "C", "D")
SLOTS_PER_DAY = 4


def _item_rng(base: int, index: int) -> random.Random:
    # One stream per item: the first items are the same whatever the instance's size.
    return random.Random(f"{base}-{index}")


@dataclass(frozen=True)
class Instance:
    block: str  # what the document holds: the table, the procedure or the rules
    gold: str  # the expected output
    meta: dict
    start: int  # the haystack's first unit
    depth: float  # where the block sits in the document


@dataclass(frozen=True)
class Procedural(Task):
    """One instance sized so that its expected output fills about 3/4 of ``budget`` output tokens in the
    evaluated model's tokenizer: ``html_to_tsv`` (a table in an HTML page, every row extracted as TSV, row
    F1), ``procedure`` (register operations, every intermediate state written out, state accuracy) or
    ``schedule`` (meetings placed in day slots under stated rules, checked by a validator). The block sits in
    filler prose at a seeded depth. ``max_new_tokens`` 0 means the budget."""

    name: ClassVar[str] = "procedural"
    description: ClassVar[str] = "HTML table to TSV, a procedure's every state, or a schedule under rules"
    metric: ClassVar[str] = "table_rows_f1"
    breakdowns: ClassVar[tuple[str, ...]] = ("kind", "budget")
    subset_metrics: ClassVar[dict[str, str]] = {
        "html_to_tsv": "table_rows_f1",
        "procedure": "procedure_states",
        "schedule": "schedule_constraints",
    }

    kind: Kind = "html_to_tsv"
    budget: int = 512
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens == 0:
            object.__setattr__(self, "max_new_tokens", self.budget)
        object.__setattr__(self, "metric", self.subset_metrics[self.kind])

    def label(self) -> str:
        return label_with_sized_budget(self, self.budget)

    @property
    def diffusion(self) -> float:
        return 0.2  # one marked block

    @property
    def scope(self) -> float:
        return 0.6  # every row, step or rule of the block is needed

    # -- instances ----------------------------------------------------------------------------------------

    def items_for(self, backend: Backend, one_line: str) -> int:
        """How many output lines like ``one_line`` fill the sized share of the budget."""
        per = max(1, backend.count_tokens("\n" + one_line))
        return max(2, min(MAX_ITEMS, int(FILL * self.budget) // per))

    def instance(self, backend: Backend, seed: int) -> Instance:
        rng = seeded(self, seed, leave_out=("max_new_tokens",))
        base, start, depth = rng.getrandbits(48), rng.randrange(len(corpus(self.haystack).sentences)), 0.0
        depth = round(rng.uniform(0.2, 0.8), 4)
        make = {"html_to_tsv": self._table, "procedure": self._procedure, "schedule": self._schedule}[
            self.kind
        ]
        block, gold, meta = make(backend, base)
        return Instance(block, gold, meta, start, depth)

    def _table(self, backend: Backend, base: int) -> tuple[str, str, dict]:
        header = ("Name", "City", "Product", "Quantity", "Year")

        def row(i: int) -> tuple[str, ...]:
            r = _item_rng(base, i)
            return (
                f"{r.choice(ADJECTIVES).title()} {r.choice(NOUNS).title()}",
                r.choice(CITIES),
                r.choice(NOUNS),
                str(r.randint(1, 999)),
                str(r.randint(1950, 2024)),
            )

        rows = [row(i) for i in range(self.items_for(backend, "\t".join(row(0))))]
        cells = lambda tag, values: "<tr>" + "".join(f"<{tag}>{v}</{tag}>" for v in values) + "</tr>"  # noqa: E731
        html = "\n".join(["<table>", cells("th", header), *(cells("td", r) for r in rows), "</table>"])
        gold = "\n".join("\t".join(r) for r in [header, *rows])
        return "\n" + html + "\n", gold, {"rows": len(rows)}

    def _procedure(self, backend: Backend, base: int) -> tuple[str, str, dict]:
        r = _item_rng(base, -1)
        state = {v: r.randint(0, 20) for v in VARIABLES}
        initial = ", ".join(f"{v}={value}" for v, value in state.items())
        steps = self.items_for(backend, "State 10: A=-12, B=31, C=7, D=105")
        lines, states = [], []
        for k in range(1, steps + 1):
            s = _item_rng(base, k)
            x, y = s.sample(VARIABLES, 2)
            amount = s.randint(1, 9)
            op = s.randrange(5)
            if op == 0:
                state[x] += amount
                lines.append(f"Step {k}: add {amount} to {x}.")
            elif op == 1:
                state[x] -= amount
                lines.append(f"Step {k}: subtract {amount} from {x}.")
            elif op == 2:
                state[x] = state[y]
                lines.append(f"Step {k}: set {x} to the value of {y}.")
            elif op == 3:
                state[x], state[y] = state[y], state[x]
                lines.append(f"Step {k}: swap the values of {x} and {y}.")
            else:
                state[x] = state[x] + state[y]
                lines.append(f"Step {k}: add the value of {y} to {x}.")
            states.append(f"State {k}: " + ", ".join(f"{v}={state[v]}" for v in VARIABLES))
        block = (
            "\nProcedure.\nInitial values: " + initial + ".\n" + "\n".join(lines) + "\nEnd of procedure.\n"
        )
        return block, "\n".join(states), {"steps": steps}

    def _schedule(self, backend: Backend, base: int) -> tuple[str, str, dict]:
        count = self.items_for(backend, "Amber Falcon: Day 12, slot 3")
        r = _item_rng(base, -1)
        days = max(1, math.ceil(count * 1.25 / SLOTS_PER_DAY))
        names = r.sample([f"{a.title()} {n.title()}" for a in ADJECTIVES for n in NOUNS], count)
        where = r.sample([(d, s) for d in range(1, days + 1) for s in range(1, SLOTS_PER_DAY + 1)], count)
        placed = dict(zip(names, where, strict=True))
        constraints: list[list] = []
        for i, name in enumerate(names):
            s = _item_rng(base, i)
            other = names[(i + 1 + s.randrange(count - 1)) % count]
            day, slot = placed[name]
            pick = s.randrange(4)
            if pick == 0:
                constraints.append(["on_day", name, day])
            elif pick == 1:
                constraints.append(
                    ["not_slot", name, s.choice([x for x in range(1, SLOTS_PER_DAY + 1) if x != slot])]
                )
            elif pick == 2:
                first, second = sorted([name, other], key=placed.get)
                constraints.append(["before", first, second])
            else:
                constraints.append(["same_day" if day == placed[other][0] else "apart", name, other])
        schedule = {"days": days, "slots": SLOTS_PER_DAY, "meetings": names, "constraints": constraints}
        assert all(ok for _, ok in checks(schedule, placed))  # the generator's own timetable keeps every rule
        rules = [_rule(c) for c in constraints]
        block = (
            f"\nScheduling rules. There are {days} days, each with {SLOTS_PER_DAY} slots (slot 1 is the first "
            "of the day). Every meeting below takes exactly one slot, and no two meetings share a slot.\n"
            f"Meetings: {', '.join(names)}.\n"
            + "\n".join(f"Rule {i}: {t}" for i, t in enumerate(rules, 1))
            + "\n"
        )
        gold = "\n".join(f"{n}: Day {placed[n][0]}, slot {placed[n][1]}" for n in names)
        return block, gold, {"schedule": schedule}

    # -- the task -----------------------------------------------------------------------------------------

    def check(self, backend: Backend, length: int) -> None:
        if not MIN_BUDGET <= self.budget <= 65_536:
            raise UsageError(
                f"{self.label()}: budget={self.budget} must be between {MIN_BUDGET} and 65536 tokens"
            )
        super().check(backend, length)
        if self.max_new_tokens < self.budget:
            raise UsageError(
                f"{self.label()}: max_new_tokens={self.max_new_tokens} is below budget={self.budget}, which the "
                "instance is sized to; leave max_new_tokens out or raise it"
            )
        self.check_haystack()
        block = self.instance(backend, 0).block
        check_budget_fits(self, backend, length, TEMPLATE, QUESTIONS[self.kind], "", block)

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        found = self.instance(backend, seed)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATE,
            turns=[Turn(question=QUESTIONS[self.kind], answers=(found.gold,))],
            source=corpus(self.haystack),
            start=found.start,
            needles=[Needle(found.block, found.depth)],
            metadata={"family": FAMILY, "kind": self.kind, "budget": self.budget, **found.meta},
        )


def _rule(constraint: list) -> str:
    kind, first, second = constraint
    return {
        "on_day": f"{first} takes place on day {second}.",
        "not_slot": f"{first} must not be in slot {second} of any day.",
        "before": f"{first} takes place before {second} (an earlier day, or an earlier slot on the same day).",
        "same_day": f"{first} and {second} take place on the same day.",
        "apart": f"{first} and {second} take place on different days.",
    }[kind]
