"""GSM-like graphs: a solver that resolves the statements, the operation count, noise of the same form."""

from __future__ import annotations

import functools
import random
import re

import pytest
from conftest import run_cli, tiny_tokenizer

from longscope.backends.hf import HFTokenizer
from longscope.scoring import score
from longscope.tasks import make_task
from longscope.tasks.gsm_graph import HIGH, LOW, _chain

NAME = r"([a-z]+ in [A-Z][a-z]+ [A-Z][a-z]+)"
GIVEN = re.compile(rf"The number of {NAME} is (\d+)\.")
MORE = re.compile(rf"The number of {NAME} is (\d+) (more than|fewer than|times) the number of {NAME}\.")
COMBINED = re.compile(
    rf"The number of {NAME} equals the number of {NAME} (plus|minus) the number of {NAME}\."
)


@functools.cache
def backend(style: str = "bytelevel") -> HFTokenizer:
    return HFTokenizer(tiny_tokenizer("chatml", style), name=f"tiny-{style}")


def statements(context: str) -> dict[str, tuple]:
    """Every statement in the context, by the quantity it defines."""
    found: dict[str, tuple] = {}
    for name, value in GIVEN.findall(context):
        found[name] = ("given", int(value))
    for name, k, how, other in MORE.findall(context):
        found[name] = (how, int(k), other)
    for name, left, how, right in COMBINED.findall(context):
        found[name] = (how, left, right)
    return found


def solve(context: str, question: str) -> tuple[int, int]:
    """The asked quantity's value, and how many operations it took, by resolving the statements."""
    defined = statements(context)
    asked = re.search(r"What is the number of (.+?)\?", question).group(1)

    def value(name: str) -> tuple[int, int]:
        kind, *rest = defined[name]
        if kind == "given":
            return rest[0], 0
        if kind in ("plus", "minus"):
            (left, ops_left), (right, ops_right) = value(rest[0]), value(rest[1])
            return (left + right if kind == "plus" else left - right), ops_left + ops_right + 1
        base, ops = value(rest[1])
        k = rest[0]
        return {"more than": base + k, "fewer than": base - k, "times": base * k}[kind], ops + 1

    return value(asked)


@pytest.mark.parametrize("ops,noise", [(1, 0), (3, 2), (8, 3), (20, 1)])
def test_the_solver_recovers_the_gold_and_the_operation_count_from_the_context(ops, noise):
    task = make_task(f"gsm_graph(ops={ops},noise={noise})")
    for seed in range(3):
        sample = task.build(backend(), 3072, None, seed)
        answer, operations = solve(sample.context, sample.question)
        assert (str(answer),) == sample.answers and operations == ops
        meta = sample.metadata
        assert meta["operations"] == ops and meta["noise"] == noise
        # Every graph is in the context, each with as many operations as the asked one: noise of the same form.
        operations_written = len(MORE.findall(sample.context)) + len(COMBINED.findall(sample.context))
        assert operations_written == (noise + 1) * ops
        assert len(sample.evidence) == meta["statements"] and all(
            e in sample.context for e in sample.evidence
        )


def test_a_chain_has_exactly_ops_operations_and_stays_in_range():
    names = iter(f"q{i}" for i in range(10_000))
    for seed in range(50):
        steps = _chain(random.Random(seed), 12, lambda: next(names))
        operations = [s for s in steps if not re.fullmatch(r"The number of \S+ is \d+\.", s.text)]
        assert len(operations) == 12 and operations[-1] is steps[-1]
        assert all(LOW <= s.value <= HIGH for s in steps)


def test_a_hand_worked_graph_resolves_as_written():
    context = (
        "The number of kites in Misty Harbor is 7. Some prose. The number of bells in Amber Chimney is 3 times "
        "the number of kites in Misty Harbor. The number of sacks in Sweet Oatmeal is 4. The number of drums in "
        "Tidy Valley equals the number of bells in Amber Chimney minus the number of sacks in Sweet Oatmeal. "
        "The number of ropes in Lucky Comet is 2 fewer than the number of drums in Tidy Valley."
    )
    # 7 * 3 = 21; 21 - 4 = 17; 17 - 2 = 15: three operations.
    assert solve(context, "What is the number of ropes in Lucky Comet?") == (15, 3)


def test_the_statements_are_not_in_reading_order_at_every_seed():
    """Random depths: reading top to bottom does not hand the model each value before it is used."""
    out_of_order = 0
    for seed in range(6):
        sample = make_task("gsm_graph(ops=6,noise=0)").build(backend(), 2048, None, seed)
        positions = [sample.context.index(e) for e in sample.evidence]
        out_of_order += positions != sorted(positions)
    assert out_of_order >= 4


def test_exact_lengths_on_metaspace_and_scoring_by_hand():
    sample = make_task("gsm_graph(ops=5)").build(backend("metaspace"), 2500, None, seed=4)
    assert sample.metadata["realised_tokens"] == 2500
    gold = sample.answers[0]
    assert score("exact_number", f" {gold}.", sample.answers) == 1.0
    assert score("exact_number", f" {int(gold) + 1}", sample.answers) == 0.0


def test_the_plane_grows_with_operations_and_noise():
    assert (make_task("gsm_graph").diffusion, make_task("gsm_graph").scope) == (0.7, 0.25)
    assert make_task("gsm_graph(ops=10,noise=0)").scope == 0.6
    assert make_task("gsm_graph(ops=10,noise=0)").diffusion == 0.5
    assert make_task("gsm_graph").breakdowns[0] == "operations"


@pytest.mark.slow  # a real CLI process: imports torch and loads a tiny model (~40 s on two busy cores)
def test_an_operation_count_the_generator_cannot_build_is_one_line_and_exit_code_2(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    done = run_cli(
        "run",
        "--model",
        f"hf:{tiny_model_dir}",
        "--tasks",
        "gsm_graph(ops=41)",
        "--lengths",
        "4k",
        "--out",
        str(out),
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == "error: gsm_graph(ops=41): ops=41 cannot be built; use 1 to 40 operations"
    )
    assert "Traceback" not in done.stderr
    assert not list(out.glob("*.sqlite")) if out.exists() else True
