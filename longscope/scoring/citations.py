"""ALCE's metrics for answers with citations, as HELMET's eval_alce.py computes them: ASQA's STR-EM, QAMPARI's
recall of the top five answers, and citation recall and precision given an entailment judge.

Citation recall and precision need a judge of entailment (ALCE and HELMET use the TRUE T5-XXL NLI model):
``citation_scores`` takes it as a function and follows eval_alce.py's definitions exactly (a run's judge or a
local NLI model stands in: longscope.judging.entailment); a run without one scores the answer's correctness only
and leaves the citation metrics out, saying why."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from longscope.scoring import SCORERS
from longscope.scoring.helmet import normalize_answer

# A judge of entailment: (premise passage, claim) -> whether the passage supports the claim.
Entails = Callable[[str, str], bool]
NEEDS_JUDGE = "needs --judge or the task's nli=MODEL_DIR (an entailment judge, in place of ALCE's NLI model)"


def remove_citations(sentence: str) -> str:
    """A sentence without its "[n]" markers (eval_alce.py's ``remove_citations``, " |" and "]" dropped too)."""
    return re.sub(r"\[\d+", "", re.sub(r" \[\d+", "", sentence)).replace(" |", "").replace("]", "")


def cleaned(output: str) -> str:
    """A reply as eval_alce.py reads it first: runs of newlines become one space, "<|im_end|>" is dropped."""
    return re.sub(r"\n+", " ", output).replace("<|im_end|>", "")


def split_sentences(text: str) -> list[str]:
    """Sentences as NLTK's Punkt splits them (its untrained parameters: the pretrained English model is a data
    download, which an offline machine does not have)."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer().tokenize(text)


def claims(output: str, question: str, qampari: bool) -> list[str]:
    """What is checked: QAMPARI's comma-separated answers each prefixed with the question; otherwise the reply's
    sentences of at least 5 characters (which drops a lone "1." the splitter makes)."""
    if qampari:
        return [question + " " + part.strip() for part in output.rstrip().rstrip(".").rstrip(",").split(",")]
    return [s for s in split_sentences(output) if len(s.strip()) >= 5]


def document_text(doc: dict) -> str:
    """A passage as the entailment judge reads it: "Title: ...\\n" and its text (or its extracted sentence)."""
    return "Title: {}\n{}".format(doc["title"], doc["sent"] if "sent" in doc else doc["text"])


def citation_scores(
    output: str, docs: Sequence[dict], entails: Entails, question: str = "", qampari: bool = False
) -> tuple[float, float] | None:
    """(citation recall, citation precision) of one reply in [0, 1], by eval_alce.py's ``compute_autoais``; None
    when the reply has no claim to check (ALCE leaves such a reply out of its averages).

    Recall: the share of claims entailed by the passages they cite, joined (a claim citing nothing, or a
    document that does not exist, counts 0). Precision: over all citations made, those that are needed; a
    supported claim with one citation keeps it, and with several each citation counts unless it neither
    supports the claim alone nor is needed (the others support it without it). Claims not supported count
    their single citation as 0 and add nothing for several (ALCE's quirk: their citations are in the
    denominator only)."""
    sentences = claims(cleaned(output), question, qampari)
    if not sentences:
        return None
    supported = precise = citations = 0
    for sentence in sentences:
        claim = remove_citations(sentence).strip()
        cited = [int(marker[1:]) - 1 for marker in re.findall(r"\[\d+", sentence)]
        if not cited or any(ref >= len(docs) for ref in cited):
            entailed = False
        else:
            citations += len(cited)
            entailed = bool(entails("\n".join(document_text(docs[ref]) for ref in cited), claim))
        supported += entailed
        if entailed and len(cited) > 1:
            for ref in cited:
                if entails(document_text(docs[ref]), claim):
                    precise += 1
                    continue
                others = list(cited)
                others.remove(ref)
                if not entails("\n".join(document_text(docs[other]) for other in others), claim):
                    precise += 1
        else:
            precise += entailed
    return supported / len(sentences), (precise / citations if citations else 0.0)


def exact_presence(short_answers: Sequence[str], output: str) -> bool:
    """Whether any of a question's short answers is in the reply, both normalised."""
    text = normalize_answer(output)
    return any(normalize_answer(answer) in text for answer in short_answers)


@SCORERS.register("alce_str_em")
def alce_str_em(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float | str]]:
    """ASQA's STR-EM: the share of the question's disambiguations (``qa_pairs``) whose short answers the reply
    (newlines made spaces, citations removed) names. The citation metrics say why they are not computed yet:
    the run's entailment judge fills them in once the row reaches the driver."""
    pairs = meta.get("qa_pairs") or []
    if not pairs:
        return 0.0, {"reason": "the record has no qa_pairs to score by"}
    output = remove_citations(cleaned(prediction))
    hits = [exact_presence(pair, output) for pair in pairs]
    details: dict[str, float | str] = {
        "str_em_hit": float(all(hits)),
        "citation_rec": NEEDS_JUDGE,
        "citation_prec": NEEDS_JUDGE,
    }
    return sum(hits) / len(hits), details


@SCORERS.register("alce_qampari_rec_top5")
def alce_qampari_rec_top5(
    prediction: str, answers: Sequence[str], meta: dict
) -> tuple[float, dict[str, float | str]]:
    """QAMPARI's recall of the top five: the reply's comma-separated answers (normalised) against the groups of
    gold aliases; min(5, groups found) / min(5, groups). Precision and F1 come along in the details."""
    groups = [[normalize_answer(alias) for alias in group] for group in meta.get("answer_groups") or []]
    if not groups:
        return 0.0, {"reason": "the record has no answers to score by"}
    output = remove_citations(cleaned(prediction))
    predicted = [
        normalize_answer(part.strip()) for part in output.rstrip().rstrip(".").rstrip(",").split(",")
    ]
    predicted = [p for p in predicted if p]
    flat = {alias for group in groups for alias in group}
    found = sum(any(alias in predicted for alias in group) for group in groups)
    precision = sum(p in flat for p in predicted) / len(predicted) if predicted else 0.0
    details: dict[str, float | str] = {
        "qampari_prec": precision,
        "qampari_rec": found / len(groups),
        "num_preds": float(len(predicted)),
        "citation_rec": NEEDS_JUDGE,
        "citation_prec": NEEDS_JUDGE,
    }
    return min(5, found) / min(5, len(groups)), details
