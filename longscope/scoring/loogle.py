"""LooGLE's automatic scores: ROUGE-L for its QA and summaries, exact and partial match for its clozes.

LooGLE reports BLEU-1/4, ROUGE-1/2/L, METEOR, BERTScore and a GPT-4 judge for QA and summarisation. Its ROUGE
is the `rouge` package's, and the value its evaluation keeps is the RECALL ("r"); ROUGE-L recall is the score
here. ROUGE-1/2 recall, ROUGE-L precision and F, and nltk's BLEU-1/BLEU-4 go into the details; METEOR (it
needs WordNet data), BERTScore (a model) and the judge are not computed.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Sequence

from longscope.scoring import SCORERS
from longscope.scoring import rouge_summary_level as pltrdy


def _bleu(prediction: str, gold: str) -> dict[str, float]:
    """nltk's sentence BLEU-1 and BLEU-4 (only 4-gram precision, with the brevity penalty), whitespace words."""
    from nltk.translate.bleu_score import sentence_bleu  # imported on first use

    hypothesis, reference = prediction.replace("\n", " ").split(), gold.replace("\n", " ").split()
    if not hypothesis or not reference:
        return {"bleu1": 0.0, "bleu4": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns whenever an n-gram order has no overlap
        return {
            "bleu1": float(sentence_bleu([reference], hypothesis, weights=(1, 0, 0, 0))),
            "bleu4": float(sentence_bleu([reference], hypothesis, weights=(0, 0, 0, 1))),
        }


def _rouge(prediction: str, gold: str) -> tuple[float, dict[str, float]]:
    # LooGLE scores an empty reply as the text "None".
    got = pltrdy.scores(prediction or "None", gold)
    if got is None:  # the package raises on a side with no sentence (a reply of only dots)
        return 0.0, {}
    details = {
        "rouge1_r": got["rouge-1"]["r"],
        "rouge2_r": got["rouge-2"]["r"],
        "rougeL_p": got["rouge-l"]["p"],
        "rougeL_f": got["rouge-l"]["f"],
    }
    return got["rouge-l"]["r"], details


@SCORERS.register("loogle_rouge_l")
def loogle_rouge_l(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """ROUGE-L recall (sentences cut at ".", distinct words, no lower-casing), best over the golds; the
    details hold the other automatic scores against the best gold."""
    best: tuple[float, dict[str, float]] = (0.0, {})
    for gold in answers:
        value, details = _rouge(prediction, gold)
        if not best[1] or value > best[0]:
            best = (value, {**details, **_bleu(prediction or "None", gold)})
    return best


def parse_cloze(text: str) -> dict | None:
    """A reply read as LooGLE reads it: the whole text (spaces aside) must be a dict literal, such as
    ``{'<mask-0>': 'Bob'}`` or JSON; anything else is None. Parsed as a literal, never evaluated."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def cloze_gold(answer: str) -> dict[str, str]:
    """A cloze's gold as the loader writes it: a JSON object from mask to entity."""
    return json.loads(answer)


@SCORERS.register("loogle_cloze")
def loogle_cloze(prediction: str, answers: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Share of the masks whose entity the reply gives exactly (LooGLE's exact match); the detail
    ``partial_match`` is the share whose given entity shares at least one word with the gold. A reply that is
    not a dict literal scores 0 on both. LooGLE pools masks over all questions; this is per question."""
    if not answers:
        return 0.0, {"partial_match": 0.0}
    gold = cloze_gold(answers[0])
    if not gold:
        return 0.0, {"partial_match": 0.0}
    given = parse_cloze(prediction) or {}
    exact = sum(mask in given and given[mask] == entity for mask, entity in gold.items())
    partial = sum(
        mask in given
        and isinstance(given[mask], str)
        and bool(set(entity.split()) & set(given[mask].split()))
        for mask, entity in gold.items()
    )
    return exact / len(gold), {"partial_match": partial / len(gold)}
