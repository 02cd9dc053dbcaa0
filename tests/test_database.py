"""Database tasks: a regex-and-Python reference solver, density and layout, scoring, refusals."""

from __future__ import annotations

import functools
import re
from collections import defaultdict

import pytest
from conftest import tiny_backend

from longscope.core import Sample, UsageError
from longscope.scoring import score
from longscope.tasks import TASKS, make_task

PRESETS = ["db_lookup", "db_count", "db_max", "db_min", "db_sum", "db_group"]

ROW = re.compile(r"Order (\d+) was placed by (\w+ \w+) in (\w+) for (\d+) (\w+) at (\d+) euros each\.")
COLUMNS = {"quantity": "quantity", "unit price in euros": "price", "unit price": "price"}


@functools.cache
def backend(style: str = "bytelevel"):
    return tiny_backend("chatml", "bytelevel") if style == "bytelevel" else tiny_backend("inst", "metaspace")


def build(spec: str, length: int = 2048, seed: int = 0, style: str = "bytelevel") -> Sample:
    task = make_task(spec)
    return task.build(backend(style), length, 0.5 if task.uses_depth else None, seed)


# ---------------------------------------------------------------------------------------------------------
# The reference solver: rows back from the sentences, the question back from its words, the answer in Python.


def rows_of(context: str) -> list[dict]:
    rows = []
    for order, customer, city, quantity, item, price in ROW.findall(context):
        product = item if quantity == "1" else item.removesuffix("s")
        rows.append(dict(id=int(order), customer=customer, city=city, product=product,
                         quantity=int(quantity), price=int(price)))  # fmt: skip
    return rows


def condition(words: str):
    match = re.fullmatch(r"(?:placed in (\w+))? ?(?:for (\w+)s)?", words)
    assert match and (match.group(1) or match.group(2)), words
    city, product = match.groups()
    return lambda r: (city is None or r["city"] == city) and (product is None or r["product"] == product)


def solve(sample: Sample) -> list[str]:
    rows, q = rows_of(sample.context), sample.question
    if m := re.match(r"What was the (quantity|unit price in euros) of order (\d+)\?", q):
        hits = [r for r in rows if r["id"] == int(m.group(2))]
    elif m := re.match(
        r"What was the (quantity|unit price in euros) of the order that (\w+ \w+) placed for (\w+)s\?", q
    ):
        hits = [r for r in rows if r["customer"] == m.group(2) and r["product"] == m.group(3)]
    else:
        hits = None
    if hits is not None:
        assert len(hits) == 1
        return [str(hits[0][COLUMNS[m.group(1)]])]
    if m := re.match(r"How many orders were (.+?)\?", q):
        return [str(sum(map(condition(m.group(1)), rows)))]
    if m := re.match(r"What is the total quantity of items ordered across all orders (.+?)\?", q):
        return [str(sum(r["quantity"] for r in rows if condition(m.group(1))(r)))]
    if m := re.match(
        r"What is the (largest|highest|smallest|lowest) (quantity|unit price in euros) of any order (.+?)\?",
        q,
    ):
        pick = max if m.group(1) in ("largest", "highest") else min
        return [str(pick(r[COLUMNS[m.group(2)]] for r in rows if condition(m.group(3))(r)))]
    if m := re.match(
        r"Which order (.+?) has the (largest|highest|smallest|lowest) (quantity|unit price)\?", q
    ):
        pick = max if m.group(2) in ("largest", "highest") else min
        column = COLUMNS[m.group(3)]
        matching = [r for r in rows if condition(m.group(1))(r)]
        best = pick(r[column] for r in matching)
        return [str(r["id"]) for r in sorted(matching, key=lambda r: r["id"]) if r[column] == best]
    if m := re.match(r"Consider the orders (.+?) and add up their quantities for each customer\.", q):
        totals: dict[str, int] = defaultdict(int)
        for r in rows:
            if condition(m.group(1))(r):
                totals[r["customer"]] += r["quantity"]
        return [str(max(totals.values()))]
    raise AssertionError(f"unknown question {q!r}")


VARIANTS = [
    "db_lookup", "db_lookup(complexity=2)", "db_lookup(layout=clustered,density=0.3)",
    "db_lookup(complexity=2,layout=clustered)",
    "db_count", "db_count(complexity=2,density=0.3)", "db_count(layout=clustered)",
    "db_max", "db_max(answer=id)", "db_max(complexity=2,layout=clustered,density=0.3)",
    "db_min", "db_min(answer=id,density=0.3)",
    "db_sum", "db_sum(layout=clustered,density=0.5)", "db_sum(complexity=2,density=0.3)",
    "db_group", "db_group(complexity=2,density=0.4)", "db_group(layout=clustered,density=0.3)",
    "db_count(query=group_by)",
]  # fmt: skip


@pytest.mark.parametrize("spec", VARIANTS)
def test_reference_solver_recovers_the_gold_answer_from_the_context(spec):
    for seed in (0, 1):
        sample = build(spec, 4096, seed)
        assert sample.answers and solve(sample) == list(sample.answers), (spec, seed)
    meta = sample.metadata
    assert meta["rows"] == len(rows_of(sample.context))
    assert meta["sql"].startswith("SELECT") and "FROM orders" in meta["sql"]
    for key in ("query", "density", "layout", "complexity"):
        assert key in meta and key in TASKS.get(spec.split("(")[0]).breakdowns


def test_every_row_is_a_whole_sentence_and_nothing_else_reads_as_one():
    sample = build("db_sum", 4096)
    lines = sample.context.split("\n")
    assert all(ROW.fullmatch(line) for line in lines[1:])
    assert len(ROW.findall(lines[0])) <= 1  # the first line may start with neutral filler text
    ids = [r["id"] for r in rows_of(sample.context)]
    assert len(set(ids)) == len(ids) and all(1_000_000 <= i <= 9_999_999 for i in ids)


# ---------------------------------------------------------------------------------------------------------
# Exact length, determinism


def _whole_length(sample: Sample) -> int:
    request = backend().render(sample.messages(), sample.turns[0].answer_prefix)
    return len(backend().encode(request)) + sample.max_new_tokens


@pytest.mark.parametrize(
    "spec", ["db_sum", "db_lookup(complexity=2)", "db_group(complexity=2,layout=clustered)"]
)
def test_seeds_give_distinct_deterministic_samples_of_exact_length(spec):
    samples = [build(spec, 3000, seed) for seed in (0, 1, 2)]
    assert len({s.context for s in samples}) == 3
    assert build(spec, 3000, 0).to_json() == samples[0].to_json()  # after other seeds, built again the same
    assert all(_whole_length(s) == 3000 for s in samples)
    # Samples cached before rows were drawn in blocks have other bytes: a new token keeps them from being served.
    assert make_task(spec).cache_token() == "row-blocks-v2"


def _table(spec: str, seed: int = 3, blocks: int = 12):
    """Rows of many blocks drawn straight from the table (no tokenizer): enough rows to check the shares."""
    from longscope.tasks.database import _ROW_BLOCK, _Table

    task = make_task(spec)
    plan = task._plan(seed)
    table = _Table(task, plan, None)
    indices = range(blocks * _ROW_BLOCK)
    return plan, [table.row(i) for i in indices], [table.relevant(i) for i in indices]


def test_row_values_are_drawn_uniformly_over_their_ranges():
    from longscope.tasks.database import CITIES, NAMES, PRODUCTS

    _, rows, _ = _table("db_lookup")
    n = len(rows)
    quantities, prices = [r.quantity for r in rows], [r.price for r in rows]
    assert (min(quantities), max(quantities), min(prices), max(prices)) == (1, 24, 3, 240)
    assert abs(sum(quantities) / n - 12.5) < 0.3 and abs(sum(prices) / n - 121.5) < 3
    for column, options in (("city", CITIES), ("product", PRODUCTS), ("customer", NAMES)):
        seen = [getattr(r, column) for r in rows]
        assert set(seen) == set(options)
        if len(options) < 20:  # each of 16 a sixteenth, within a fifth of it
            assert all(abs(seen.count(o) / n - 1 / len(options)) < 0.2 / len(options) for o in options)


def test_complexity_two_thirds_meet_one_condition_each_and_none_both():
    plan, rows, relevant = _table("db_count(complexity=2,density=0.2)")
    where = dict(plan.conditions)
    both = [r.city == where["city"] and r.product == where["product"] for r in rows]
    assert both == relevant and abs(sum(relevant) / len(rows) - 0.2) < 0.001  # Bresenham: density exactly
    others = [r for r, hit in zip(rows, relevant, strict=True) if not hit]
    city_only = sum(r.city == where["city"] for r in others) / len(others)
    product_only = sum(r.product == where["product"] for r in others) / len(others)
    assert abs(city_only - 1 / 3) < 0.03 and abs(product_only - 1 / 3) < 0.03


def test_one_condition_moves_only_the_rows_that_would_meet_it_by_chance():
    from longscope.tasks.database import CITIES

    plan, rows, relevant = _table("db_count(density=0.1)")
    [(column, value)] = plan.conditions
    assert column in ("city", "product")
    matching = [getattr(r, column) == value for r in rows]
    assert matching == relevant
    if column == "city":  # the other rows' cities: uniform over the 15 others
        others = [r.city for r, hit in zip(rows, relevant, strict=True) if not hit]
        shares = [others.count(c) / len(others) for c in CITIES if c != value]
        assert len(shares) == 15 and all(abs(share - 1 / 15) < 0.2 / 15 for share in shares)


def test_group_by_relevant_orders_come_from_the_regulars_who_place_thirty_percent_of_the_rest():
    plan, rows, relevant = _table("db_group(density=0.2)")
    assert all(r.customer in plan.regulars for r, hit in zip(rows, relevant, strict=True) if hit)
    others = [r for r, hit in zip(rows, relevant, strict=True) if not hit]
    by_regulars = sum(r.customer in plan.regulars for r in others) / len(others)
    assert abs(by_regulars - (0.3 + 0.7 * 4 / 576)) < 0.02
    chosen = [r.customer for r, hit in zip(rows, relevant, strict=True) if hit]
    for regular in plan.regulars:  # each regular a quarter of the relevant orders
        assert abs(chosen.count(regular) / len(chosen) - 0.25) < 0.05


def test_lookup_rows_never_repeat_the_asked_pairs_or_order_numbers():
    plan, rows, relevant = _table("db_lookup(complexity=2,questions=3,density=0.2)")
    customer, products = plan.target.customer, {t.product for t in plan.targets}
    assert not any(r.customer == customer and r.product in products for r in rows)
    shared = [(r.customer == customer) + (r.product in products) for r in rows]
    assert shared == [int(hit) for hit in relevant]  # a look-alike shares exactly one of the two
    plan, rows, relevant = _table("db_lookup(density=0.3)")
    ids = [r.id for r in rows] + [t.id for t in plan.targets]
    assert len(set(ids)) == len(ids)
    assert [r.id // 10_000 == plan.prefix for r in rows] == relevant


# ---------------------------------------------------------------------------------------------------------
# Density and layout


def _relevant_lines(sample: Sample) -> tuple[list[int], int]:
    """Line numbers of the rows the question's condition selects, and the number of rows."""
    lines = [line for line in sample.context.split("\n") if ROW.search(line)]
    words = re.match(r"How many orders were (.+?)\?", sample.question).group(1)
    match = condition(words)
    return [i for i, line in enumerate(lines) if match(rows_of(line)[0])], len(lines)


@pytest.mark.parametrize("density", [0.1, 0.25, 0.5])
def test_spread_rows_meet_the_condition_at_the_requested_density_throughout(density):
    sample = build(f"db_count(density={density})", 4096, 2)
    relevant, rows = _relevant_lines(sample)
    assert abs(len(relevant) / rows - density) <= 0.05
    assert sample.metadata["relevant_rows"] == len(relevant)
    # Every half of the context holds its share: the density holds from the start, not only on average.
    first_half = sum(i < rows // 2 for i in relevant)
    assert abs(first_half - len(relevant) / 2) <= max(2, 0.2 * len(relevant))


def test_clustered_rows_sit_in_one_block():
    sample = build("db_count(layout=clustered,density=0.2)", 4096, 4)
    relevant, rows = _relevant_lines(sample)
    assert len(relevant) >= 2 and relevant == list(range(relevant[0], relevant[-1] + 1))
    assert abs(len(relevant) / rows - 0.2) <= 0.05


def test_complexity_two_puts_rows_that_meet_one_condition_among_the_others():
    sample = build("db_count(complexity=2,density=0.2)", 4096, 1)
    where = re.match(r"How many orders were placed in (\w+) for (\w+)s\?", sample.question).groups()
    rows = rows_of(sample.context)
    city_only = sum(r["city"] == where[0] and r["product"] != where[1] for r in rows)
    product_only = sum(r["product"] == where[1] and r["city"] != where[0] for r in rows)
    assert city_only >= 0.15 * len(rows) and product_only >= 0.15 * len(rows)


def test_lookup_look_alikes_share_the_asked_order_numbers_first_digits():
    sample = build("db_lookup(density=0.3)", 4096, 2, "bytelevel")
    asked = re.search(r"order (\d+)\?", sample.question).group(1)
    ids = [str(r["id"]) for r in rows_of(sample.context)]
    alike = [i for i in ids if i[:3] == asked[:3] and i != asked]
    assert ids.count(asked) == 1
    assert abs(len(alike) / (len(ids) - 1) - 0.3) <= 0.07


def test_plane_follows_the_parameters():
    for name in PRESETS:
        task = make_task(name)
        assert 0 <= task.diffusion <= 1 and 0 <= task.scope <= 1 and task.metric == "exact_number"
        clustered = make_task(f"{name}(layout=clustered)")
        assert clustered.diffusion < task.diffusion
        assert make_task(f"{name}(complexity=2)").diffusion > task.diffusion
    assert (make_task("db_lookup").diffusion, make_task("db_lookup").scope) == (0.3, 0.05)
    assert make_task("db_lookup(density=0.5)").diffusion > make_task("db_lookup").diffusion
    assert make_task("db_sum(density=0.5)").scope > make_task("db_sum").scope >= 0.6
    assert (make_task("db_group").diffusion, make_task("db_group").scope) == (0.5, 0.95)
    assert make_task("db_count").diffusion == 0.4
    assert make_task("db_lookup").uses_depth and not make_task("db_sum").uses_depth


# ---------------------------------------------------------------------------------------------------------
# Scoring


def test_scoring_a_right_a_partly_right_and_a_wrong_answer():
    sample = build("db_sum", 2048, 0)
    gold = sample.answers
    total = int(gold[0])
    assert score("exact_number", f" {total}", gold) == 1.0
    assert score("exact_number", f" {total:,} items in all", gold) == 1.0  # thousands separator allowed
    # Partly right: the right total, but after a wrong first number, or off by one; exact means 0.
    assert score("exact_number", f" {total - 1}, or maybe {total}", gold) == 0.0
    assert score("exact_number", f" {total + 1}", gold) == 0.0
    assert score("exact_number", " I cannot tell.", gold) == 0.0
    # Tied rows: any of the order numbers with the extreme value is right.
    assert score("exact_number", " 4172630", ("1234567", "4172630")) == 1.0


# ---------------------------------------------------------------------------------------------------------
# Parameters


def test_too_few_relevant_rows_after_fitting_names_density():
    with pytest.raises(UsageError, match=r"density=0\.01 leaves \d relevant rows"):
        build("db_max(density=0.01)", 1024)


def test_too_short_a_length_is_refused():
    with pytest.raises(UsageError):
        build("db_lookup", 100)
