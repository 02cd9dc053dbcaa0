"""ROUGE as the PyPI package ``rouge`` (pltrdy) computes it, which LooGLE and LV-Eval score with.

It differs from Google's rouge-score in ways that move the numbers: the text is cut into sentences at every
".", words are split at single spaces with no lower-casing and no punctuation removal, n-grams are counted as
sets (a repeated n-gram counts once), and ROUGE-L is the summary-level union LCS over sentence pairs, counted
in distinct words. F is ``2PR / (P + R + 1e-8)``.

Where the package raises, ``checked_scores`` raises ``PackageError`` with the package's reason: a side with
no sentence at all, or (when ``deepest`` is given) an LCS trace deeper than the caller's recursion allows, since
the package traces each sentence pair's LCS back recursively, one call per step. Each benchmark decides what a
raise scores; ``scores`` gives None.
"""

from __future__ import annotations

from itertools import chain

_EPSILON = 1e-8


def sentences(text: str) -> list[str]:
    """The text cut at every ".", each piece's whitespace collapsed; pieces that are empty before collapsing
    are dropped (a piece of spaces stays, as an empty sentence)."""
    return [" ".join(piece.split()) for piece in text.split(".") if piece]


def _words(parts: list[str]) -> list[str]:
    return list(chain.from_iterable(part.split(" ") for part in parts))


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class PackageError(ValueError):
    """The ``rouge`` package would raise on these inputs; the message says why."""


def _prf(overlap: int, evaluated: int, reference: int) -> dict[str, float]:
    precision = overlap / evaluated if evaluated else 0.0
    recall = overlap / reference if reference else 0.0
    # The package's order of operations, so that the floats agree to the last bit.
    return {"p": precision, "r": recall, "f": 2.0 * ((precision * recall) / (precision + recall + _EPSILON))}


def rouge_n(hypothesis: list[str], reference: list[str], n: int) -> dict[str, float]:
    """ROUGE-N over sentence lists: distinct n-grams shared / distinct n-grams of each side."""
    evaluated, wanted = _ngrams(_words(hypothesis), n), _ngrams(_words(reference), n)
    return _prf(len(evaluated & wanted), len(evaluated), len(wanted))


def lcs_words(reference: list[str], evaluated: list[str]) -> set[str]:
    """The words of one longest common subsequence, traced back the way the package does (on a tie it steps
    along the evaluated side), as a set."""
    return lcs_trace(reference, evaluated)[0]


def lcs_trace(reference: list[str], evaluated: list[str]) -> tuple[set[str], int]:
    """``lcs_words`` and the number of nested calls the package's recursive trace-back makes for it: one per
    step back, plus the last call that finds an empty side."""
    rows, cols = len(reference), len(evaluated)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            if reference[i - 1] == evaluated[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    found: set[str] = set()
    i, j = rows, cols
    calls = 1
    while i > 0 and j > 0:
        calls += 1
        if reference[i - 1] == evaluated[j - 1]:
            found.add(reference[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return found, calls


def rouge_l(hypothesis: list[str], reference: list[str], deepest: int | None = None) -> dict[str, float]:
    """Summary-level ROUGE-L: the distinct words in the union of the LCS of every (reference sentence,
    hypothesis sentence) pair, over the distinct words of the reference (R) and of the hypothesis (P).
    ``deepest``: the most nested trace-back calls the package survives; a pair that needs more raises
    ``PackageError``, as the package's RecursionError would."""
    union: set[str] = set()
    for ref_sentence in reference:
        ref_words = ref_sentence.split(" ")
        for hyp_sentence in hypothesis:
            found, calls = lcs_trace(ref_words, hyp_sentence.split(" "))
            if deepest is not None and calls > deepest:
                raise PackageError(
                    f"RecursionError: the LCS trace-back of a sentence pair needs {calls} nested calls, "
                    f"more than the {deepest} Python's recursion limit leaves"
                )
            union |= found
    return _prf(len(union), len(set(_words(hypothesis))), len(set(_words(reference))))


def checked_scores(
    hypothesis: str, reference: str, deepest: int | None = None
) -> dict[str, dict[str, float]]:
    """rouge-1, rouge-2 and rouge-l (each p, r, f) of one hypothesis against one reference, as
    ``Rouge().get_scores(hypothesis, reference)`` gives them; ``PackageError`` where the package raises: a side
    with no sentence at all (such as "" or "..."), or with ``deepest`` a trace-back too deep (see ``rouge_l``)."""
    hyp, ref = sentences(hypothesis), sentences(reference)
    if not hyp:
        raise PackageError("ValueError: Hypothesis is empty (no sentence once cut at '.')")
    if not ref:
        raise PackageError("ValueError: Reference is empty (no sentence once cut at '.')")
    return {
        "rouge-1": rouge_n(hyp, ref, 1),
        "rouge-2": rouge_n(hyp, ref, 2),
        "rouge-l": rouge_l(hyp, ref, deepest),
    }


def scores(hypothesis: str, reference: str) -> dict[str, dict[str, float]] | None:
    """``checked_scores`` with no depth limit, or None where the package raises (a side with no sentence)."""
    try:
        return checked_scores(hypothesis, reference)
    except PackageError:
        return None
