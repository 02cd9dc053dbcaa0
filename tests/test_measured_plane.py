"""The difficulty plane measured on samples: units, evidence, scope and per-turn diffusion, and the rows that
carry them."""

from __future__ import annotations

import pytest
from conftest import tiny_backend

from longscope.core import Sample, Turn, UsageError
from longscope.measured_plane import context_units, evidence_units, measure_sample
from longscope.retrieval import parse_retrievers

HAY = [
    "The orchard was planted by the river in spring.",
    "Clouds gathered over the hills by evening.",
    "The miller counted the sacks of flour twice.",
    "A heron stood still in the shallow water.",
]
NEEDLE = "The secret number for brave-otter is 1234567."


def sample(context: str, turns: list[Turn], evidence=(), metadata=None) -> Sample:
    return Sample(
        id="s",
        task="t",
        context=context,
        turns=tuple(turns),
        template="{context}\n{question}",
        max_new_tokens=8,
        metadata=metadata or {},
        evidence=tuple(evidence),
    )


def test_units_are_lines_cut_into_sentences_and_evidence_marks_the_units_it_holds():
    context = " ".join(HAY[:2]) + "\n" + NEEDLE + " " + HAY[2] + "\nRow 7: Dublin, 3 units"
    units = context_units(context)
    assert units == [HAY[0], HAY[1], NEEDLE, HAY[2], "Row 7: Dublin, 3 units"]
    assert evidence_units(units, [NEEDLE]) == [2]
    # A passage of several sentences marks each of its sentences; a short unit inside it does not count.
    assert evidence_units(units, [HAY[1] + " " + NEEDLE]) == [1, 2]
    assert evidence_units(["Yes.", "Yes. It rained."], ["Yes. It rained."]) == [1]


def test_one_needle_has_a_scope_of_one_unit_and_no_diffusion_when_it_is_marked():
    context = " ".join([HAY[0], HAY[1], NEEDLE, HAY[2], HAY[3]])
    turn = Turn("What is the secret number for brave-otter?", ("1234567",))
    plane = measure_sample(sample(context, [turn], [NEEDLE]), retrievers=("bm25",))
    assert plane.scope == pytest.approx(1 / 5)
    assert plane.diffusion == {"bm25": (0.0,)}
    assert plane.turn(0) == {"measured_scope": 0.2, "measured_diffusion_bm25": 0.0}


def test_evidence_no_retriever_can_find_is_buried_by_its_rank():
    context = " ".join([NEEDLE, HAY[0], HAY[1], HAY[2]])
    turn = Turn("What is the secret number for brave-otter?", ("the miller",))
    plane = measure_sample(sample(context, [turn], [HAY[2]]), retrievers=("bm25",))
    # BM25 puts the needle first and scores the rest zero, which keep their order: the miller is 4th.
    assert plane.diffusion["bm25"] == (pytest.approx(1 - 1 / 4),)


def test_an_aggregation_over_every_unit_has_full_scope():
    context = " ".join(HAY)
    turn = Turn("How many sentences mention water?", ("1",))
    plane = measure_sample(sample(context, [turn], metadata={"evidence": "every unit"}), retrievers=("bm25",))
    assert plane.scope == 1.0
    # Every unit is evidence: mean reciprocal rank over ranks 1..4.
    assert plane.diffusion["bm25"] == (pytest.approx(1 - (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, abs=1e-4),)


def test_questions_that_carry_their_own_answer_have_zero_scope_and_no_diffusion():
    context = " ".join(HAY)
    turn = Turn("What is 17 + 25?", ("42",))
    plane = measure_sample(sample(context, [turn], metadata={"evidence": "no unit"}), retrievers=("bm25",))
    assert plane.scope == 0.0
    assert plane.turn(0) == {"measured_scope": 0.0}


def test_each_turn_is_measured_on_its_own_evidence():
    other = "The secret number for calm-fox is 7654321."
    context = " ".join([NEEDLE, HAY[0], other, HAY[1]])
    turns = [
        Turn("What is the secret number for brave-otter?", ("1234567",)),
        Turn("What is the secret number for calm-fox?", ("7654321",)),
    ]
    made = sample(context, turns, [NEEDLE, other], {"turn_evidence": [[NEEDLE], [other]]})
    plane = measure_sample(made, retrievers=("bm25",))
    assert plane.scope == pytest.approx(2 / 4)
    assert plane.diffusion["bm25"] == (0.0, 0.0)
    # Without per-turn evidence both needles count for each question: the other one ranks second.
    both = measure_sample(sample(context, turns, [NEEDLE, other]), retrievers=("bm25",))
    assert both.diffusion["bm25"] == (pytest.approx(0.25), pytest.approx(0.25))


def test_no_known_evidence_or_evidence_truncated_away_is_not_measured():
    turn = Turn("What is the secret number for brave-otter?", ("1234567",))
    assert measure_sample(sample(" ".join(HAY), [turn]), retrievers=("bm25",)) is None
    assert measure_sample(sample(" ".join(HAY), [turn], [NEEDLE]), retrievers=("bm25",)) is None
    assert measure_sample(sample("", [turn], [NEEDLE]), retrievers=("bm25",)) is None


def test_the_retrievers_option_is_checked_up_front():
    assert parse_retrievers("bm25,dense") == ("bm25", "dense")
    assert parse_retrievers("none") == ()
    for bad in ("bm26", "", "bm25,colbert"):
        with pytest.raises(UsageError, match="unknown retriever"):
            parse_retrievers(bad)


def test_rows_carry_the_measured_plane_of_their_sample(tmp_path):
    from longscope import runner
    from longscope.config import RunConfig
    from longscope.store import RunStore

    config = RunConfig(
        model="hf:tiny",
        tasks=["niah", "common_words(top=2,common_count=6,rare_count=2)"],
        lengths=[640],
        samples=1,
    )
    runner.run(
        config, tmp_path / "run", backend=tiny_backend(), show_progress=False, plane_retrievers=("bm25",)
    )
    rows = {row.task.split("(")[0]: row for row in RunStore.open(tmp_path / "run", create=False).results()}
    needle = rows["niah"]
    assert 0 < needle.measured_scope < 0.2 and needle.measured_diffusion_bm25 is not None
    assert needle.measured_diffusion_dense is None  # not asked for
    assert rows["common_words"].measured_scope == 1.0


def test_the_report_sets_measured_beside_declared_coordinates(tmp_path):
    import json

    from longscope import runner
    from longscope.config import RunConfig
    from longscope.report.commands import write_report

    config = RunConfig(model="hf:tiny", tasks=["niah"], lengths=[640], samples=2)
    runner.run(
        config, tmp_path / "run", backend=tiny_backend(), show_progress=False, plane_retrievers=("bm25",)
    )
    write_report(tmp_path / "run")
    [point] = json.loads((tmp_path / "run" / "summary.json").read_text())["plane"]
    assert point["declared"]["scope"] > 0 and point["measured"]["diffusion_dense"] is None
    assert point["n"] == 2  # the means carry the rows they average
    assert 0 < point["measured"]["scope"] < 0.2
    assert point["measured"]["diffusion"] == point["measured"]["diffusion_bm25"]
    page = (tmp_path / "run" / "report.html").read_text()
    assert "measured scope" in page and '<td class="num">declared only</td>' not in page
