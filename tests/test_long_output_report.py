"""Long outputs in the rows and the report: the output measures worked by hand, and the report's long-output
section (length points, position bins, the packing drop, methods side by side) on hand-made rows."""

from __future__ import annotations

import json
from html import unescape

import pytest

from longscope.analysis.long_output import long_output, unpacked_label
from longscope.core import Result, Sample, Turn
from longscope.report.commands import build_report
from longscope.scoring.output_measures import mostly_cjk, output_words, repetition
from longscope.store import RunStore

# -- the measures --------------------------------------------------------------------------------------------


def test_output_words_count_whitespace_words_and_cjk_characters():
    assert output_words("The cat sat on the mat.") == 6
    assert output_words("  one\ttwo\n\nthree  ") == 3
    assert output_words("") == 0
    # Mostly CJK: each character a word, punctuation left out; a Latin run between them is one word.
    assert output_words("我们今天去公园。") == 7
    assert mostly_cjk("我们用Python写代码") and output_words("我们用Python写代码") == 7
    # One Chinese word in English text does not make it CJK text.
    assert not mostly_cjk("The word 你好 means hello") and output_words("The word 你好 means hello") == 5


def test_repetition_is_the_share_of_repeated_word_four_grams():
    # Three 4-grams, all different.
    assert repetition("the cat sat on the mat") == 0.0
    # a b c d a b c d: five 4-grams (abcd, bcda, cdab, dabc, abcd), four distinct: 1 - 4/5.
    assert repetition("a b c d a b c d") == pytest.approx(0.2)
    assert repetition("A b c D a B c d") == pytest.approx(0.2)  # case does not make a repeat new
    # go x6: three 4-grams, one distinct: 1 - 1/3.
    assert repetition("go go go go go go") == pytest.approx(2 / 3)
    assert repetition("only three words") == 0.0 and repetition("") == 0.0
    # CJK text repeats by characters: 好 x5 has two 4-grams, one distinct.
    assert repetition("好好好好好") == pytest.approx(0.5)


# -- hand-made long-output rows ------------------------------------------------------------------------------


def _row(sample_id, task, score, details, *, method="full", seed=0, calls=1, tokens=(100, 50), words=None,
         repetition_share=0.0):  # fmt: skip
    return Result(key=f"{sample_id}/{method}", sample_id=sample_id, task=task, length=2048, depth=None, seed=seed,
                  turn=0, status="ok", score=score, method=method, truncation="none", model="hand-made",
                  details=json.dumps(details), calls=calls, input_tokens=tokens[0], output_tokens=tokens[1],
                  output_words=words, repetition=repetition_share)  # fmt: skip


def _positions(entries):
    return json.dumps(entries)  # as scorers store it: the JSON text of the list, inside the details JSON


PACKED = "packed_questions(questions=3)"
SEPARATE = "packed_questions(one_at_a_time=True,questions=3)"


def hand_made() -> tuple[list[Result], dict[str, dict]]:
    rows, meta = [], {}
    family = {"family": "long_output"}
    # A packed answer of three questions: right, right, wrong, from the start, middle and end of the output.
    rows.append(_row("p/s0", PACKED, 2 / 3, {"item_ids": "[1, 2, 3]",
                                            "item_positions": _positions([[0.05, 1.0], [0.5, 1.0], [0.95, 0.0]])},
                     tokens=(300, 90), words=60))  # fmt: skip
    meta["p/s0"] = {**family, "packed": True, "questions": 3}
    # The same three questions one at a time: all right.
    for number in (1, 2, 3):
        sample = f"one/s0/q{number}"
        rows.append(_row(sample, SEPARATE, 1.0, {"item_ids": json.dumps([number]),
                                                 "item_positions": _positions([[0.0, 1.0]])}, tokens=(120, 10),
                         words=3))  # fmt: skip
        meta[sample] = {**family, "packed": False, "questions": 1}
    # Length following: asked for 100 words, wrote 80; asked for 1000, wrote 1500.
    rows.append(_row("len/a", "length_following", 0.9, {"required_words": 100.0, "produced_words": 80.0},
                     words=80, tokens=(50, 110)))  # fmt: skip
    rows.append(_row("len/b", "length_following", 0.83, {"required_words": 1000.0, "produced_words": 1500.0},
                     words=1500, tokens=(50, 2000), repetition_share=0.4))  # fmt: skip
    meta["len/a"] = meta["len/b"] = family
    # An item whose answer was not found, and an item right at the very end, under plan-write.
    rows.append(_row("c/s0", "constrained_writing", 0.5, {"item_positions": _positions([[None, 0.0], [1.0, 1.0],
                                                                                        [0.02, 1.0]])},
                     method="plan-write", calls=5, tokens=(900, 400), words=300))  # fmt: skip
    meta["c/s0"] = family
    return rows, meta


def test_unpacked_label_takes_one_at_a_time_out_of_the_task_label():
    assert unpacked_label(SEPARATE) == PACKED
    assert unpacked_label("packed_questions(questions=3,one_at_a_time=True)") == PACKED
    assert unpacked_label("packed_questions(a=1,one_at_a_time=True,b=2)") == "packed_questions(a=1,b=2)"
    assert unpacked_label("packed_questions(one_at_a_time=True)") == "packed_questions"


def test_positions_bin_items_by_tenth_with_n_and_wilson_intervals():
    rows, meta = hand_made()
    analysis = long_output(rows, meta)
    by_method = {p.method: p for p in analysis.positions}
    first, middle, last = by_method["full"].named
    # full: the packed answer's three items and the three single answers (each at 0.0, right).
    assert (first.name, first.n, first.mean) == ("first tenth", 4, 100.0)
    assert (middle.n, middle.mean) == (1, 100.0) and (last.n, last.mean) == (1, 0.0)
    # Wilson at 95% for 0 of 1: [0, z²/(1+z²)] = [0, 3.8415/4.8415] = [0, 79.3].
    assert last.low == 0.0 and last.high == pytest.approx(79.35, abs=0.01)
    plan = by_method["plan-write"]
    # 1.0 sits in the last tenth; the unfound item has no place and is counted apart.
    assert plan.named[2].n == 1 and plan.named[2].mean == 100.0 and plan.unplaced == 1
    assert plan.named[0].n == 1 and sum(b.n for b in plan.tenths) == 2
    # Wilson for 1 of 2 at 95%: centre 0.5, half-width 1.96/2.9207·sqrt(0.125 + 0.2401) = 0.4055.
    [half] = [b for b in long_output([_row("x", "t", 0.5, {"item_positions": _positions([[0.5, 1.0], [0.5, 0.0]])})],
                                     {"x": {"family": "long_output"}}).positions[0].named if b.n]  # fmt: skip
    assert half.low == pytest.approx(9.45, abs=0.01) and half.high == pytest.approx(90.55, abs=0.01)


def test_the_packing_drop_pairs_each_question_with_itself_asked_alone():
    rows, meta = hand_made()
    [drop] = long_output(rows, meta).packing
    # Packed: 100, 100, 0; alone: 100, 100, 100. The drop is (0 + 0 - 100) / 3 points.
    assert drop.method == "full" and drop.difference.n == 3 and drop.questions == [3]
    assert drop.packed_mean == pytest.approx(200 / 3) and drop.separate_mean == 100.0
    assert drop.difference.difference == pytest.approx(-100 / 3)
    # The three pairs share one packed response: one context, so no interval, and the reason is given.
    assert drop.difference.low is None and "1 contexts" in drop.difference.reason
    # A packed answer whose one-at-a-time twin ran under another seed has nothing to pair with.
    other_seed = [r if r.sample_id == "p/s0" else Result(**{**r.__dict__, "seed": 1}) for r in rows]
    assert long_output(other_seed, meta).packing == []


def test_method_costs_sum_tokens_and_calls_per_method():
    rows, meta = hand_made()
    costs = {m.method: m for m in long_output(rows, meta).methods}
    full, plan = costs["full"], costs["plan-write"]
    assert full.n == 6 and plan.n == 1
    assert full.input_tokens == 300 + 3 * 120 + 50 + 50 and full.output_tokens == 90 + 30 + 110 + 2000
    assert full.calls == 6 and plan.calls == 5 and plan.input_tokens == 900
    assert full.mean == pytest.approx(100 * (2 / 3 + 3 + 0.9 + 0.83) / 6)
    assert full.mean_repetition == pytest.approx(0.4 / 6)
    assert full.mean_output_words == pytest.approx((60 + 9 + 80 + 1500) / 6)


def test_no_long_output_rows_means_no_analysis():
    rows, _ = hand_made()
    assert long_output(rows, {}) is None


def write_run(folder, rows, meta):
    store = RunStore.open(folder, create=True)
    try:
        for result in rows:
            metadata = {"truncation": "none", **meta.get(result.sample_id, {})}
            sample = Sample(id=result.sample_id, task=result.task, context="x", turns=(Turn("q?", ("a",)),),
                            template="{context} {question}", max_new_tokens=4, metadata=metadata)  # fmt: skip
            store.write(result, sample)
        store.set_meta("state", "done")
    finally:
        store.close()
    return folder


def test_the_report_shows_the_long_output_section_only_for_runs_with_long_output_rows(tmp_path):
    rows, meta = hand_made()
    folder = write_run(tmp_path / "long", rows, meta)
    written = build_report(folder)
    html = unescape(written.path.read_text(encoding="utf-8"))
    summary = json.loads((folder / "summary.json").read_text())
    assert '<section id="long-output">' in html and 'href="#long-output"' in html
    assert "Produced against required length" in html and "Accuracy by position in the answer" in html
    assert "packed is 33.3 points below one at a time" in html
    section = summary["long_output"]
    assert [(p["required"], p["produced"]) for p in section["lengths"]] == [(100.0, 80.0), (1000.0, 1500.0)]
    first = section["positions"]["full"]["named"][0]
    assert (first["bin"], first["n"], first["mean"], first["kind"]) == ("first tenth", 4, 100.0, "wilson")
    [drop] = section["packing"]
    assert drop["difference"] == pytest.approx(-33.3333) and drop["n"] == 3
    assert {m["method"]: m["calls"] for m in section["methods"]} == {"full": 6, "plan-write": 5}

    plain = [Result(**{**r.__dict__, "details": None}) for r in rows]
    folder = write_run(tmp_path / "plain", plain, {})
    html = unescape(build_report(folder).path.read_text(encoding="utf-8"))
    assert 'id="long-output"' not in html
    assert json.loads((folder / "summary.json").read_text())["long_output"] is None


# -- a small longgen run on the bundled model ----------------------------------------------------------------


@pytest.mark.slow
def test_a_small_longgen_run_on_the_bundled_model_reports_long_outputs(tmp_path, monkeypatch):
    from conftest import run_cli

    monkeypatch.delenv("LONGSCOPE_CACHE")  # the user cache: the model's conversion is shared, not repeated

    tasks = "packed_questions(questions=3),packed_questions(questions=3,one_at_a_time=True),length_following(words=40)"
    out = tmp_path / "longgen"
    result = run_cli("run", "--suite", "longgen", "--tasks", tasks, "--lengths", "1k", "--samples", "1",
                     "--measure-plane", "none", "--no-progress", "--out", str(out), timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Long outputs:" in result.stdout and "packing, full: packed is" in result.stdout
    store = RunStore.open(out, create=False)
    try:
        rows = store.results()
    finally:
        store.close()
    # One packed answer, three single questions, one length-following answer: every row measured.
    assert len(rows) == 5 and all(r.status == "ok" for r in rows)
    for row in rows:
        assert row.output_words == output_words(row.prediction) and row.repetition == repetition(
            row.prediction
        )
    section = json.loads((out / "summary.json").read_text())["long_output"]
    assert section["packing"][0]["n"] == 3 and section["packing"][0]["questions"] == [3]
    assert len(section["lengths"]) == 1 and section["lengths"][0]["required"] == 40.0
    assert 'id="long-output"' in (out / "report.html").read_text(encoding="utf-8")
