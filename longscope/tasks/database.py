"""Database queries over text: an order table written one sentence per row, asked one question in words."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import FittedContext, GeneratedUnits, Needle, corpus, counts_by_text, indexed_counts
from longscope.tasks.base import Task

Query = Literal["lookup", "filter_count", "max", "min", "sum", "group_by"]
Layout = Literal["spread", "clustered"]
Answer = Literal["value", "id"]

QUERIES = ("lookup", "filter_count", "max", "min", "sum", "group_by")
LAYOUTS = ("spread", "clustered")

# Relevant rows that must be among the fitted rows for the question to mean something: a count needs one
# match, an aggregate two; a lookup's row is a needle, always present.
REQUIRED = {"lookup": 0, "filter_count": 1, "max": 2, "min": 2, "sum": 2, "group_by": 2}

FIRST_NAMES = (
    "Mara Ivo Tessa Bruno Lina Otto Nadia Felix Greta Hugo Ilse Jonas Kira Leon Mira Nils Oona Pavel Rosa "
    "Sven Talia Umar Vera Wim"
).split()
LAST_NAMES = (
    "Quell Brandt Okafor Lindqvist Marek Fenwick Castell Dorran Eskola Varga Holm Ibarra Jansen Kovac "
    "Laine Moreau Novak Orsini Pelt Rask Sauer Toivo Ulver Wald"
).split()
NAMES = tuple(f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES)
CITIES = (
    "Lisbon Oslo Tallinn Porto Lyon Ghent Bergen Krakow Seville Turin Dublin Vienna Zurich Geneva Malmo Leeds"
).split()
# Singular names with a plain "s" plural, so a row reads "3 lanterns" and "1 lantern".
PRODUCTS = (
    "lantern kettle blanket candle basket teapot mirror lamp rug clock jar bowl vase stool cushion ladle"
).split()

TEMPLATE = (
    "Below is an order log. Each line records one order: its order number, the customer, the city, the "
    "product, the quantity and the unit price. Read it carefully; afterwards you will answer a question "
    "about these orders.\n\n{context}\n\n{question}"
)

_WINDOW = 20  # spread layout: every window of this many rows holds its share of relevant rows
_ID_SPACE = 9_000_000  # order numbers are 7 digits: 1000000 + a keyed permutation of the row index
_ROW_BLOCK = 1000  # rows drawn together from one generator: whole windows, so a block's shares are its own
_SUFFIXES = 10_000  # a lookup's look-alike ids share the asked id's first three digits, then 4 more
_REGULARS = 4  # group_by: relevant orders come from this many customers, so groups hold several rows


class Row(NamedTuple):
    id: int
    customer: str
    city: str
    product: str
    quantity: int
    price: int

    def sentence(self) -> str:
        # Each row starts with its newline: it counts the same alone as in place and sits on its own line.
        item = self.product if self.quantity == 1 else self.product + "s"
        return (
            f"\nOrder {self.id} was placed by {self.customer} in {self.city} for {self.quantity} {item} "
            f"at {self.price} euros each."
        )

    def pieces(self) -> list[str]:
        """The sentence cut where every tokenizer we know cuts it anyway, into pieces that recur across rows:
        the order number into groups of at most three digits (single-digit and three-digit number splitting
        both keep such cuts), the rest into its fixed phrases and values."""
        digits = str(self.id)
        item = self.product if self.quantity == 1 else self.product + "s"
        return [
            "\nOrder", " ", digits[:3], digits[3:6], digits[6:], " was placed by", " " + self.customer,
            " in", " " + self.city, " for", " " + str(self.quantity), " " + item, " at", " " + str(self.price),
            " euros each.",
        ]  # fmt: skip


def _mix(x: int, key: int) -> int:
    x = ((x ^ key) * 0x45D9F3B) & 0xFFFFFFFF
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _permute(x: int, size: int, key: int) -> int:
    """A keyed bijection of range(size): a Feistel network on enough bits, cycle-walked back into range.

    Row i gets id permute(i), so ids are unique without remembering them, and look random rather than
    stepping by a constant as an affine map's would.
    """
    half = max(1, ((size - 1).bit_length() + 1) // 2)
    mask = (1 << half) - 1
    while True:
        left, right = x >> half, x & mask
        for round_key in range(4):
            left, right = right, left ^ (_mix(right, key + round_key) & mask)
        x = (left << half) | right
        if x < size:
            return x


def _permute_block(first: int, count: int, size: int, key: int) -> list[int]:
    """``_permute(x, size, key)`` for ``x`` in ``first .. first + count - 1``, computed together with numpy (the
    same integers: every step stays well inside 64 bits)."""
    half = max(1, ((size - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    shift, low = np.uint64(16), np.uint64(0xFFFFFFFF)
    multiplier = np.uint64(0x45D9F3B)

    def mix(x: np.ndarray, round_key: int) -> np.ndarray:
        x = ((x ^ np.uint64(round_key)) * multiplier) & low
        x = ((x ^ (x >> shift)) * multiplier) & low
        return x ^ (x >> shift)

    values = np.arange(first, first + count, dtype=np.uint64)
    walking = np.ones(count, dtype=bool)  # every value takes at least one pass, as _permute's loop does
    while walking.any():
        x = values[walking]
        left, right = x >> np.uint64(half), x & mask
        for round_key in range(4):
            left, right = right, left ^ (mix(right, key + round_key) & mask)
        values[walking] = (left << np.uint64(half)) | right
        walking = values >= np.uint64(size)
    return values.tolist()


def _plural(product: str) -> str:
    return product + "s"


class _Plan(NamedTuple):
    """Everything a sample asks, drawn from the seed alone so every length asks the same questions."""

    questions: tuple[str, ...]  # one per turn
    sqls: tuple[str, ...]
    base: int  # seeds the per-row randomness
    id_key: int
    suffix_key: int
    phase: float  # spread layout: where in the first windows the relevant rows start
    position: float  # clustered layout without a depth: where the cluster sits
    column: str  # quantity or price: what lookup, max, min read
    conditions: tuple[tuple[str, str], ...]  # (column, value) pairs joined by AND
    regulars: tuple[str, ...]
    targets: tuple[Row, ...]  # the lookup's rows, one per turn, placed as needles
    prefix: int  # the lookup's id prefix (complexity 1)
    offsets: tuple[float, ...]  # where the later turns' rows sit: in the context, or in the clustered block

    @property
    def target(self) -> Row | None:
        return self.targets[0] if self.targets else None


class _Table:
    """The row stream: which rows are relevant (by index, so density holds from the first row) and the rows,
    drawn a block of rows at a time from one numpy generator seeded by the sample's base and the block."""

    def __init__(self, task: Database, plan: _Plan, cluster: tuple[int, int] | None) -> None:
        self.task = task
        self.plan = plan
        self.cluster = cluster  # (first row, count) of the relevant block, clustered layout only
        self._blocks: dict[int, _Block] = {}

    def _cumulative(self, window: int) -> int:
        """Relevant rows in the windows before ``window``: Bresenham-style, exactly density on average."""
        return int(window * _WINDOW * self.task.density + self.plan.phase)

    def _block(self, block: int) -> _Block:
        if block not in self._blocks:
            self._blocks[block] = self._draw_block(block)
        return self._blocks[block]

    def relevant(self, i: int) -> bool:
        return self._block(i // _ROW_BLOCK).relevant[i % _ROW_BLOCK]

    def row(self, i: int) -> Row:
        found = self._block(i // _ROW_BLOCK).rows[i % _ROW_BLOCK]
        if found is None:
            task = self.task
            raise UsageError(
                f"{task.label()}: density={task.density} asks for more than {_SUFFIXES - 1} look-alike order "
                "numbers at this length; lower density"
            )
        return found

    def _relevance(self, first: int, keys: np.ndarray) -> np.ndarray:
        """Which rows of the block starting at ``first`` the query selects: in the spread layout each window
        holds its Bresenham share, at positions ranked by ``keys`` (a uniform subset of each window)."""
        index = np.arange(first, first + _ROW_BLOCK)
        if self.cluster is not None:
            start, count = self.cluster
            return (index >= start) & (index < start + count)
        window = first // _WINDOW
        bounds = [self._cumulative(w) for w in range(window, window + _ROW_BLOCK // _WINDOW + 1)]
        shares = np.diff(np.array(bounds, dtype=np.int64))
        ranks = keys.argsort(axis=1).argsort(axis=1)
        return (ranks < shares[:, None]).reshape(-1)

    def _relevant_before(self, first: int) -> int:
        if self.cluster is not None:
            start, count = self.cluster
            return min(max(first - start, 0), count)
        return self._cumulative(first // _WINDOW)

    def _draw_block(self, block: int) -> _Block:
        task, plan, n = self.task, self.plan, _ROW_BLOCK
        first = block * n
        rng = np.random.default_rng([plan.base, block])
        # Always the same draws in the same order, whatever the query uses of them.
        keys = rng.random((n // _WINDOW, _WINDOW))
        customer = rng.integers(len(NAMES), size=n)
        city = rng.integers(len(CITIES), size=n)
        product = rng.integers(len(PRODUCTS), size=n)
        quantity = rng.integers(1, 25, size=n)
        price = rng.integers(3, 241, size=n)
        uniform = rng.random((4, n))
        relevant = self._relevance(first, keys)
        columns = {"customer": customer, "city": city, "product": product}
        if task.query == "lookup" and task.complexity == 1:
            ids, missing = self._look_alike_ids(first, relevant)
        else:
            # The last ids are kept for the needles (complexity 2 lookups).
            ids = 1_000_000 + np.array(_permute_block(first, n, _ID_SPACE - task.questions, plan.id_key))
            missing = np.zeros(n, dtype=bool)
            if task.query == "lookup":
                self._lookup_values(columns, relevant, uniform)
            else:
                self._condition_values(columns, relevant, uniform)
        rows: list[Row | None] = [
            None if gone else Row(row_id, NAMES[c], CITIES[t], PRODUCTS[p], q, v)
            for row_id, c, t, p, q, v, gone in zip(
                ids.tolist(), customer.tolist(), city.tolist(), product.tolist(), quantity.tolist(),
                price.tolist(), missing.tolist(), strict=True,
            )
        ]  # fmt: skip
        table = np.stack([ids, customer, city, product, quantity, price])
        return _Block(rows, relevant.tolist(), table, missing)

    def _look_alike_ids(self, first: int, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Complexity 1 lookups: relevant rows share the asked ids' first three digits, the others have any
        other first three digits. Also which look-alikes would need a suffix past the last one."""
        task, plan = self.task, self.plan
        v = np.array(_permute_block(first, _ROW_BLOCK, 899 * _SUFFIXES, plan.id_key), dtype=np.int64)
        head = 100 + v // _SUFFIXES
        ids = (head + (head >= plan.prefix)) * _SUFFIXES + v % _SUFFIXES
        # A look-alike's rank among them picks its suffix; the first suffixes are the asked rows'.
        ranks = self._relevant_before(first) + task.questions + np.cumsum(relevant) - 1
        missing = relevant & (ranks >= _SUFFIXES)
        usable = relevant & ~missing
        if usable.any():
            low = int(ranks[usable][0])
            suffixes = _permute_block(low, int(usable.sum()), _SUFFIXES, plan.suffix_key)
            ids[usable] = plan.prefix * _SUFFIXES + np.array(suffixes, dtype=np.int64)
        return ids, missing

    def _lookup_values(
        self, columns: dict[str, np.ndarray], relevant: np.ndarray, uniform: np.ndarray
    ) -> None:
        """Complexity 2 lookups: an asked row is the only one with both its customer and its product; a
        look-alike shares one of them. Several asked rows share their customer and differ in product, so each
        is the others' look-alike."""
        plan = self.plan
        assert plan.target is not None
        want = NAMES.index(plan.target.customer)
        products = np.array([PRODUCTS.index(target.product) for target in plan.targets])
        same_customer = relevant & (uniform[0] < 0.5)
        same_product = relevant & ~same_customer
        customer, product = columns["customer"], columns["product"]
        customer[same_customer] = want
        product[same_product] = products[(uniform[1][same_product] * len(products)).astype(np.int64)]
        clash = (customer == want) & ~same_customer
        customer[clash] = _pick_other(len(NAMES), [want], uniform[2][clash])
        clash = np.isin(product, products) & ~same_product
        product[clash] = _pick_other(len(PRODUCTS), products.tolist(), uniform[3][clash])

    def _condition_values(
        self, columns: dict[str, np.ndarray], relevant: np.ndarray, uniform: np.ndarray
    ) -> None:
        """Aggregates: relevant rows meet every condition; at complexity 2 a third of the others meet the
        first condition alone and a third the second, so the AND matters; group_by's relevant orders come from
        the regulars, who also place 30% of the other orders."""
        task, plan = self.task, self.plan
        conditions = plan.conditions
        kind = uniform[0]
        for c, (column, value) in enumerate(conditions):
            options = CITIES if column == "city" else PRODUCTS
            wanted = options.index(value)
            matched = relevant.copy()
            if len(conditions) == 2:
                matched |= ~relevant & ((kind < 1 / 3) if c == 0 else ((kind >= 1 / 3) & (kind < 2 / 3)))
            values = columns[column]
            clash = ~matched & (values == wanted)
            values[clash] = _pick_other(len(options), [wanted], uniform[1 + c][clash])
            values[matched] = wanted
        if task.query == "group_by":
            regulars = np.array([NAMES.index(name) for name in plan.regulars])
            regular = relevant | (~relevant & (uniform[3] < 0.3))
            # uniform[3] decided whether a row is a regular's (below 0.3): rescaled, it picks which regular.
            which = np.where(relevant, uniform[3], uniform[3] / 0.3)
            columns["customer"][regular] = regulars[(which[regular] * len(regulars)).astype(np.int64)]

    def unit(self, i: int) -> str:
        # Before the stream: neutral filler, never a partial row a solver could mistake for data.
        return corpus("noise").unit(i) if i < 0 else self.row(i).sentence()

    def pieces(self, i: int) -> list[str]:
        return [corpus("noise").unit(i)] if i < 0 else self.row(i).pieces()

    def unit_counts(self, backend: Backend, start: int, count: int) -> np.ndarray:
        """The sums of ``pieces``' counts for rows ``start ..``, worked out from the drawn columns: each value,
        digit group and fixed phrase is counted once per tokenizer, and no row's text is made."""
        blocks = [self._block(b) for b in range(start // _ROW_BLOCK, (start + count - 1) // _ROW_BLOCK + 1)]
        offset = start - (start // _ROW_BLOCK) * _ROW_BLOCK
        table = np.concatenate([block.table for block in blocks], axis=1)[:, offset : offset + count]
        missing = np.concatenate([block.missing for block in blocks])[offset : offset + count]
        if missing.any():
            self.row(start + int(missing.argmax()))  # raises what building that row would
        ids, customer, city, product, quantity, price = table
        item = product * 2 + (quantity != 1)
        counts = sum(counts_by_text(backend, list(_ROW_PHRASES)))
        counts = counts + indexed_counts(backend, "order-number heads", ids // 10_000, str)
        counts += indexed_counts(backend, "order-number middles", ids // 10 % 1000, lambda v: f"{v:03d}")
        counts += indexed_counts(backend, "order-number last digits", ids % 10, str)
        counts += indexed_counts(backend, "spaced customer names", customer, lambda c: " " + NAMES[c])
        counts += indexed_counts(backend, "spaced order cities", city, lambda c: " " + CITIES[c])
        counts += indexed_counts(backend, "spaced order items", item, _spaced_item)
        counts += indexed_counts(backend, "spaced quantities and prices", quantity, lambda v: f" {v}")
        counts += indexed_counts(backend, "spaced quantities and prices", price, lambda v: f" {v}")
        return counts


class _Block(NamedTuple):
    """A block of drawn rows."""

    rows: list[Row | None]  # None: a look-alike past the last order number it could have
    relevant: list[bool]
    table: np.ndarray  # (6, rows): id, customer, city, product indices, quantity, price
    missing: np.ndarray  # where rows holds None


# Row.pieces' fixed phrases, in a row's order.
_ROW_PHRASES = ("\nOrder", " ", " was placed by", " in", " for", " at", " euros each.")


def _spaced_item(index: int) -> str:
    """The item of ``index`` = 2 * product + plural, as a row writes it after its quantity."""
    product = PRODUCTS[index // 2]
    return " " + (product + "s" if index % 2 else product)


def _pick_other(size: int, avoid: list[int], uniform: np.ndarray) -> np.ndarray:
    """Indices into ``range(size)`` uniformly among those not in ``avoid``, one per uniform draw."""
    allowed = np.setdiff1d(np.arange(size), np.array(avoid, dtype=np.int64))
    return allowed[(uniform * len(allowed)).astype(np.int64)]


def _where(conditions: tuple[tuple[str, str], ...]) -> str:
    return " AND ".join(f"{column} = '{value}'" for column, value in conditions)


def _phrase(conditions: tuple[tuple[str, str], ...]) -> str:
    """The condition in words: "placed in Lisbon", "for lanterns", "placed in Lisbon for lanterns"."""
    where = dict(conditions)
    words = []
    if "city" in where:
        words.append(f"placed in {where['city']}")
    if "product" in where:
        words.append(f"for {_plural(where['product'])}")
    return " ".join(words)


_COLUMN_WORDS = {"quantity": "quantity", "price": "unit price in euros"}
_EXTREME_WORDS = {("max", "quantity"): "largest", ("max", "price"): "highest"}
_EXTREME_WORDS |= {("min", "quantity"): "smallest", ("min", "price"): "lowest"}


@dataclass(frozen=True)
class Database(Task):
    """One natural-language query over an order table written as sentences, answered with a number.

    ``density`` is the share of rows the query's condition selects (for ``lookup``, the share of look-alike
    rows: ids with the asked id's first digits, or, at complexity 2, the asked customer or product).
    ``layout`` spreads those rows evenly through the context or keeps them in one block. ``complexity`` 2
    joins two conditions by AND, and makes a third of the other rows meet each condition alone. ``answer``
    asks max/min for the extreme value or the order number of its row. The gold answer is the result of the
    same query in SQL over the rows that fitted, loaded into SQLite.

    ``questions`` > 1 (lookups only) asks several turns of one table, each about an order of its own: at
    complexity 1 the asked order numbers share their first digits with each other and the look-alikes; at
    complexity 2 the asked orders share their customer and differ in product. The first asked row sits at
    the requested depth, the others at depths drawn from the seed (inside the block, clustered). The first
    turn's request is exactly the target length; a later turn's differs by the few tokens its question does.
    """

    metric: ClassVar[str] = "exact_number"
    breakdowns: ClassVar[tuple[str, ...]] = ("query", "density", "layout", "complexity")

    query: Query = "lookup"
    density: float = 0.1
    layout: Layout = "spread"
    complexity: int = 1
    answer: Answer = "value"
    max_new_tokens: int = 32
    questions: int = 1

    @property
    def diffusion(self) -> float:
        # Finding one row among look-alikes gets harder with more of them; an aggregate must find every match,
        # and grouping adds bookkeeping. A block of relevant rows is easier to find than scattered ones;
        # a second condition must be checked on every row.
        if self.query == "lookup":
            base = 0.25 + 0.5 * min(max(self.density, 0.0), 1.0) - 0.05 * (self.layout == "clustered")
        else:
            base = (0.5 if self.query == "group_by" else 0.4) - 0.1 * (self.layout == "clustered")
        return round(min(1.0, max(0.0, base + 0.1 * (self.complexity - 1))), 2)

    @property
    def scope(self) -> float:
        # A lookup needs one row; an aggregate needs every row checked and every match used.
        density = min(max(self.density, 0.0), 1.0)
        if self.query == "lookup":
            return 0.05
        if self.query == "group_by":
            return round(min(1.0, 0.9 + 0.5 * density), 2)
        return round(min(0.9, 0.6 + 0.6 * density), 2)

    def cache_token(self) -> str:
        # Rows are drawn by numpy blocks now, not a generator per row: other bytes than samples cached before.
        return "row-blocks-v2"

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if self.query not in QUERIES:
            raise UsageError(f"{self.label()}: query must be one of {', '.join(QUERIES)}")
        if self.layout not in LAYOUTS:
            raise UsageError(f"{self.label()}: layout must be one of {', '.join(LAYOUTS)}")
        if not 0.0 < self.density <= 1.0:
            raise UsageError(f"{self.label()}: density={self.density} must be above 0 and at most 1")
        if self.complexity not in (1, 2):
            raise UsageError(f"{self.label()}: complexity={self.complexity} must be 1 or 2")
        if self.answer == "id" and self.query not in ("max", "min"):
            raise UsageError(
                f"{self.label()}: answer=id needs query=max or query=min, not query={self.query}"
            )
        self._check_questions()
        plan = self._plan(0)
        rows = self._estimate_rows(backend, length, plan)
        if self.questions > 1:
            base = self._overhead(backend, plan, with_targets=False)
            per_target = backend.count_tokens(plan.targets[0].sentence())
            room = length - self.max_new_tokens - base
            if per_target * self.questions > room:
                raise UsageError(
                    f"{self.label()}: questions={self.questions} asked orders of about {per_target} tokens each "
                    f"do not fit at length {length}; at most {max(0, room // per_target)} fit (lower questions "
                    "or raise the length)"
                )
        need = REQUIRED[self.query]
        if rows * self.density < need:
            raise UsageError(
                f"{self.label()}: density={self.density} gives about {rows * self.density:.1f} relevant rows "
                f"among the ~{rows} rows that fit in {length} tokens; query={self.query} needs at least {need}; "
                "raise density or length"
            )
        look_alikes = rows * self.density + self.questions - 1
        if self.query == "lookup" and self.complexity == 1 and look_alikes >= _SUFFIXES - 1:
            raise UsageError(
                f"{self.label()}: density={self.density} asks for about {rows * self.density:.0f} look-alike "
                f"order numbers at length {length}, more than {_SUFFIXES - 1}; lower density"
            )

    def _check_questions(self) -> None:
        if self.questions < 1:
            raise UsageError(f"{self.label()}: questions={self.questions} must be at least 1")
        if self.questions > 1 and self.query != "lookup":
            raise UsageError(
                f"{self.label()}: questions={self.questions} needs query=lookup (several lookups of one "
                f"table), not query={self.query}"
            )
        if self.complexity == 2 and self.questions > len(PRODUCTS) - 1:
            raise UsageError(
                f"{self.label()}: questions={self.questions} is more than {len(PRODUCTS) - 1}, the most "
                "complexity=2 lookups one table can ask (the asked orders share a customer and each needs a "
                "product of its own)"
            )

    def _plan(self, seed: int) -> _Plan:
        rng = self.rng(seed)
        base, id_key, suffix_key = rng.getrandbits(64), rng.getrandbits(32), rng.getrandbits(32)
        phase, position = 0.5 + 0.5 * rng.random(), rng.random()
        column = rng.choice(("quantity", "price"))
        order = rng.sample(("city", "product"), 2)
        values = {"city": rng.choice(CITIES), "product": rng.choice(PRODUCTS)}
        conditions = tuple((c, values[c]) for c in order[: self.complexity])
        regulars = tuple(rng.sample(NAMES, _REGULARS))
        prefix = rng.randrange(100, 1000)
        target_id = (
            prefix * _SUFFIXES + _permute(0, _SUFFIXES, suffix_key)
            if self.complexity == 1
            else 1_000_000 + _ID_SPACE - 1
        )
        target = Row(
            target_id, rng.choice(NAMES), rng.choice(CITIES), rng.choice(PRODUCTS), rng.randint(2, 24),
            rng.randint(3, 240),
        )  # fmt: skip
        if self.query == "lookup":
            # Later turns' rows, columns and depths are drawn after everything a single question draws.
            targets, columns = [target], [column]
            for t in range(1, self.questions):
                if self.complexity == 1:
                    target_id = prefix * _SUFFIXES + _permute(t, _SUFFIXES, suffix_key)
                    customer, product = rng.choice(NAMES), rng.choice(PRODUCTS)
                else:
                    target_id = 1_000_000 + _ID_SPACE - 1 - t
                    taken = {row.product for row in targets}
                    customer, product = target.customer, rng.choice([p for p in PRODUCTS if p not in taken])
                targets.append(
                    Row(
                        target_id,
                        customer,
                        rng.choice(CITIES),
                        product,
                        rng.randint(2, 24),
                        rng.randint(3, 240),
                    )
                )
                columns.append(rng.choice(("quantity", "price")))
            offsets = tuple(rng.random() for _ in range(1, self.questions))
            asked = [self._lookup(row, col) for row, col in zip(targets, columns, strict=True)]
            return _Plan(
                tuple(q + " Answer with a single number." for q, _ in asked), tuple(sql for _, sql in asked),
                base, id_key, suffix_key, phase, position, column, conditions, regulars, tuple(targets), prefix,
                offsets,
            )  # fmt: skip
        where, said = _where(conditions), _phrase(conditions)
        words = _COLUMN_WORDS[column]
        if self.query == "filter_count":
            question = f"How many orders were {said}?"
            sql = f"SELECT COUNT(*) FROM orders WHERE {where}"
        elif self.query == "sum":
            question = f"What is the total quantity of items ordered across all orders {said}?"
            sql = f"SELECT SUM(quantity) FROM orders WHERE {where}"
        elif self.query in ("max", "min"):
            extreme = _EXTREME_WORDS[(self.query, column)]
            if self.answer == "value":
                question = f"What is the {extreme} {words} of any order {said}?"
                sql = f"SELECT {self.query.upper()}({column}) FROM orders WHERE {where}"
            else:
                question = (
                    f"Which order {said} has the {extreme} {_COLUMN_WORDS[column].split(' in ')[0]}? "
                    "Give its order number."
                )
                sql = (
                    f"SELECT id FROM orders WHERE {where} AND {column} = "
                    f"(SELECT {self.query.upper()}({column}) FROM orders WHERE {where}) ORDER BY id"
                )
        else:
            question = (
                f"Consider the orders {said} and add up their quantities for each customer. What is the "
                "largest total quantity ordered by a single customer?"
            )
            sql = (
                "SELECT MAX(total) FROM (SELECT customer, SUM(quantity) AS total FROM orders "
                f"WHERE {where} GROUP BY customer)"
            )
        question += " Answer with a single number."
        return _Plan(
            (question,), (sql,), base, id_key, suffix_key, phase, position, column, conditions, regulars, (),
            prefix, (),
        )  # fmt: skip

    def _lookup(self, target: Row, column: str) -> tuple[str, str]:
        """The question (without its closing instruction) and the SQL of one lookup."""
        words = _COLUMN_WORDS[column]
        if self.complexity == 1:
            return (
                f"What was the {words} of order {target.id}?",
                f"SELECT {column} FROM orders WHERE id = {target.id}",
            )
        return (
            f"What was the {words} of the order that {target.customer} placed for {_plural(target.product)}?",
            f"SELECT {column} FROM orders WHERE customer = '{target.customer}' AND product = '{target.product}'",
        )

    def _overhead(self, backend: Backend, plan: _Plan, with_targets: bool = True) -> int:
        """Tokens of the first turn's request with an empty table, plus (by default) the asked rows."""
        user = TEMPLATE.format(context="", question=plan.questions[0])
        overhead = backend.count_tokens(backend.render([{"role": "user", "content": user}], "Answer:"))
        if with_targets:
            overhead += sum(backend.count_tokens(row.sentence()) for row in plan.targets)
        return overhead

    def _estimate_rows(self, backend: Backend, length: int, plan: _Plan) -> int:
        """About how many rows fit: the budget left by template, question and needles over a row's tokens."""
        probe = _Table(self, plan, cluster=(0, 0) if self.layout == "clustered" else None)
        sample = "".join(probe.row(i).sentence() for i in range(48))
        per_row = max(1.0, backend.count_tokens(sample) / 48)
        overhead = self._overhead(backend, plan)
        return max(0, int((length - self.max_new_tokens - overhead) / per_row))

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        if self.questions != 1:  # a single question builds exactly as it did before the parameter existed
            self.check(backend, length)
        plan = self._plan(seed)
        where = plan.position if depth is None else depth
        cluster = None
        if self.layout == "clustered":
            # One block of relevant rows near ``where``, sized from an estimate of the rows that will fit and
            # kept clear of the end so a slightly smaller fit still holds all of it.
            rows = self._estimate_rows(backend, length, plan)
            count = min(max(REQUIRED[self.query], round(self.density * rows)), rows)
            room = max(count, int(rows * 0.9))
            first = (
                round(where * rows - count / 2) if plan.target is not None else round(where * (room - count))
            )
            cluster = (min(max(0, first), room - count), count)
        table = _Table(self, plan, cluster)
        # Later turns' rows: anywhere when the look-alikes are spread, inside their block when clustered.
        later = list(plan.offsets)
        if cluster is not None:
            later = [(cluster[0] + offset * cluster[1]) / max(1, rows) for offset in later]
        depths = [where][: len(plan.targets)] + [round(depth, 4) for depth in later]
        needles = [Needle(row.sentence(), d) for row, d in zip(plan.targets, depths, strict=True)]
        metadata: dict[str, Any] = {
            "query": self.query,
            "density": self.density,
            "layout": self.layout,
            "complexity": self.complexity,
            "answer": self.answer,
            "column": plan.column,
            "sql": plan.sqls[0],
        }
        if self.questions > 1:
            metadata["turn_sql"] = list(plan.sqls)

        def gold(fitted: FittedContext) -> list[tuple[str, ...]]:
            n = fitted.haystack_units
            rows = [table.row(i) for i in range(n)] + list(plan.targets)
            relevant = sum(table.relevant(i) for i in range(n))
            need = REQUIRED[self.query]
            if relevant < need:
                raise UsageError(
                    f"{self.label()}: density={self.density} leaves {relevant} relevant rows among the {n} "
                    f"rows that fit in {length} tokens; query={self.query} needs at least {need}; "
                    "raise density or length"
                )
            with sqlite3.connect(":memory:") as db:
                db.execute(
                    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, city TEXT, product TEXT, "
                    "quantity INTEGER, price INTEGER)"
                )
                db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", rows)
                results = [[str(value) for (value,) in db.execute(sql).fetchall()] for sql in plan.sqls]
            db.close()
            for sql, result in zip(plan.sqls, results, strict=True):
                if self.query == "lookup" and len(result) != 1:
                    raise AssertionError(f"lookup must select one row, got {len(result)}: {sql}")
            # Called before the sample's metadata is assembled, so these land in it.
            metadata.update(
                rows=len(rows), relevant_rows=relevant, relevant_share=round(relevant / max(1, n), 4)
            )
            if self.questions > 1:
                metadata["turn_depths"] = list(fitted.needle_depths)
            return [tuple(result) for result in results]

        return self.make_sample(
            backend,
            length=length,
            depth=where if plan.target is not None else depth,
            seed=seed,
            template=TEMPLATE,
            turns=[
                Turn(question=question, answers=(), answer_prefix="Answer:") for question in plan.questions
            ],
            source=GeneratedUnits(
                table.unit, name="orders", pieces=table.pieces, unit_counts=table.unit_counts
            ),
            needles=needles,
            answers_after_fit=gold,
            metadata=metadata,
            # The rows the query selects: the relevant rows of the table that fitted, and the planted ones.
            evidence=lambda fitted: [
                *(table.unit(i) for i in range(fitted.haystack_units) if table.relevant(i)),
                *(needle.text for needle in needles),
            ],
        )


@dataclass(frozen=True)
class DbLookup(Database):
    name: ClassVar[str] = "db_lookup"
    description: ClassVar[str] = "one order's quantity or price, by order number, among look-alike rows"
    uses_depth: ClassVar[bool] = True
    query: Query = "lookup"


@dataclass(frozen=True)
class DbCount(Database):
    name: ClassVar[str] = "db_count"
    description: ClassVar[str] = "how many orders meet a condition (SQL COUNT over the order log)"
    query: Query = "filter_count"


@dataclass(frozen=True)
class DbMax(Database):
    name: ClassVar[str] = "db_max"
    description: ClassVar[str] = "the largest quantity or price among matching orders, or its order number"
    query: Query = "max"


@dataclass(frozen=True)
class DbMin(Database):
    name: ClassVar[str] = "db_min"
    description: ClassVar[str] = "the smallest quantity or price among matching orders, or its order number"
    query: Query = "min"


@dataclass(frozen=True)
class DbSum(Database):
    name: ClassVar[str] = "db_sum"
    description: ClassVar[str] = "the total quantity over matching orders (SQL SUM)"
    query: Query = "sum"


@dataclass(frozen=True)
class DbGroup(Database):
    name: ClassVar[str] = "db_group"
    description: ClassVar[str] = "the largest per-customer total quantity among matching orders (GROUP BY)"
    query: Query = "group_by"
