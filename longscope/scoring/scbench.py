"""SCBench's per-task scores where they differ from InfiniteBench's (its compute_scores.py, get_score_one).

SCBench maps most tasks onto InfiniteBench's getters, with two of its own changes: a key-value retrieval is right
when the gold value is a substring of the reply (its word split is commented out), and variable tracking takes
the share of gold names found in the reply, rounded to two decimals. Its dialogue/many-shot rule is right when
any gold, upper-cased, is a substring of the reply upper-cased. Math find, RepoQA's code match and the mixed
sets' per-request scorers follow below.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from longscope.scoring import SCORERS, Details, score_with_details


@SCORERS.register("scbench_kv")
def scbench_kv(prediction: str, answers: Sequence[str]) -> float:
    """KV retrieval (kv, kv_hard, hashhop, prefix_suffix): the gold value appears in the reply as written."""
    return float(any(gold in prediction for gold in answers))


@SCORERS.register("scbench_contains_any_upper")
def scbench_contains_any_upper(prediction: str, answers: Sequence[str]) -> float:
    """En.Dia-style QA and many-shot: any gold, upper-cased, inside the stripped reply upper-cased."""
    reply = prediction.strip().upper()
    return float(any(gold.upper() in reply for gold in answers))


@SCORERS.register("scbench_match_all")
def scbench_match_all(prediction: str, answers: Sequence[str]) -> float:
    """Variable tracking: the share of golds inside the reply, case-insensitive, rounded to two decimals."""
    if not answers:
        return 0.0
    reply = prediction.lower()
    return round(sum(1.0 for gold in answers if gold.lower() in reply) / len(answers), 2)


# SCBench's math-find reads the first number of the reply (integer or decimal, no sign).
_FIRST_NUMBER = re.compile(r"\d+\.\d+|\d+")


@SCORERS.register("scbench_math_find")
def scbench_math_find(prediction: str, answers: Sequence[str]) -> float:
    """Math find (InfiniteBench's getter, as SCBench runs it): the reply's first number against the one gold. An
    integer gold is met by the number's integer part (3.7 counts for 3); a decimal gold by the number exactly."""
    if not answers:
        return 0.0
    found = _FIRST_NUMBER.search(prediction)
    if found is None:
        return 0.0
    gold = answers[0].strip()
    try:
        return float(int(float(found.group(0))) == int(gold))
    except ValueError:
        return float(float(found.group(0)) == float(gold))


# SCBench's RepoQA verdict: the reply's code is matched by BLEU against every candidate function; it passes
# when the best match is the asked function with a similarity of at least 0.8 (the pass@1 it reports).
REPOQA_THRESHOLD = 0.8
_CODE_BLOCK = re.compile(r"^```(?:\w+)?\s*\n(.*?)(?=^```)```", re.DOTALL | re.MULTILINE)


def repoqa_code(reply: str) -> str:
    """The code a RepoQA reply gives: its first fenced block, or the whole reply when it has none."""
    reply = reply.strip()
    blocks = _CODE_BLOCK.findall(reply)
    return blocks[0] if blocks else reply


def code_similarity(candidate: str, reference: str) -> float:
    """Sentence BLEU over whitespace-split tokens, smoothed as SCBench does (NLTK's method 4)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    return float(
        sentence_bleu(
            [re.split(r"\s+", reference.strip())],
            re.split(r"\s+", candidate.strip()),
            smoothing_function=SmoothingFunction().method4,
        )
    )


@SCORERS.register("scbench_repoqa")
def scbench_repoqa(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, Details]:
    """RepoQA: 1 when, among the record's functions (``meta["needles"]``: name, code), the reply's code is most
    similar to the asked one (the gold code) and that similarity is at least 0.8."""
    needles = [(str(name), str(code)) for name, code in meta.get("needles") or ()]
    gold = answers[0] if answers else ""
    asked = next((name for name, code in needles if code == gold), None)
    if asked is None:
        return 0.0, {"reason": "the gold function is not among the record's functions"}
    code = repoqa_code(prediction)
    best, best_similarity = None, 0.0
    for name, needle in needles:
        similarity = code_similarity(code, needle)
        if similarity > best_similarity:  # strictly greater, as SCBench: the first of equals wins
            best, best_similarity = name, similarity
    passed = best == asked and best_similarity >= REPOQA_THRESHOLD
    return float(passed), {"similarity": round(best_similarity, 4)}


# A mixed set's sub-tasks and the scorers SCBench gives them.
_SUBTASK_SCORERS = {
    "scbench_summary": "infinitebench_rouge_lsum",
    "scbench_passkey": "infinitebench_first_int",
    "scbench_kv": "scbench_kv",
    "scbench_repoqa": "scbench_repoqa",
}


@SCORERS.register("scbench_mixed")
def scbench_mixed(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, Details]:
    """A request of a mixed set (summary_with_needles, repoqa_and_kv), scored by its own sub-task's scorer; the
    sample's ``turn_tasks`` maps each request's gold answer to its sub-task."""
    task = (meta.get("turn_tasks") or {}).get(answers[0] if answers else "")
    if task not in _SUBTASK_SCORERS:
        raise ValueError("scorer scbench_mixed needs the sample's turn_tasks to name each request's sub-task")
    value, details = score_with_details(_SUBTASK_SCORERS[task], prediction, answers, meta)
    return value, {**details, "subtask": task}
