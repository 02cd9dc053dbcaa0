"""Latent needles: the association data, a solver that knows the landmarks, the overlap record, scoring."""

from __future__ import annotations

import functools
import re

import pytest
from conftest import tiny_tokenizer

from longscope.backends.hf import HFTokenizer
from longscope.haystack import corpus
from longscope.scoring import score_turn
from longscope.tasks import make_task
from longscope.tasks._associations import CHARACTERS, LANDMARKS
from longscope.tasks.latent_needles import overlap, words


@functools.cache
def backend(style: str = "bytelevel") -> HFTokenizer:
    return HFTokenizer(tiny_tokenizer("chatml", style), name=f"tiny-{style}")


CITY_OF = dict(LANDMARKS)


def solve(context: str, question: str, characters: tuple[str, ...]) -> str:
    """Name the character the question implies: the landmark (or city) it names, the city (or landmarks)
    that go with it, and the one sentence placing a character there."""
    asked_landmark = next((m for m in sorted(CITY_OF, key=len, reverse=True) if m in question), None)
    if asked_landmark is not None:
        places = [CITY_OF[asked_landmark]]
    else:
        city = re.search(r"(?:been to|lives in|streets of) (.+?)(?: well)?\?", question).group(1)
        places = [m for m, c in LANDMARKS if c == city]
    for sentence in re.split(r"(?<=[.!?])\s+", context):
        for place in places:
            if re.search(rf"\b{re.escape(place)}\b", sentence):
                named = [c for c in characters if re.search(rf"\b{c}\b", sentence)]
                if named:
                    return named[0]
    raise AssertionError("no needle places a character there")


def test_the_association_data_holds_at_least_200_distinct_pairs_none_naming_its_city():
    assert len(LANDMARKS) >= 200
    assert len({landmark for landmark, _ in LANDMARKS}) == len(LANDMARKS)
    assert len({city for _, city in LANDMARKS}) >= 100
    for landmark, city in LANDMARKS:
        assert landmark.isascii() and city.isascii()
        assert not words(city) & words(landmark), (landmark, city)
    assert len(set(CHARACTERS)) == len(CHARACTERS) >= 21  # enough for 20 distractors
    # The essays name no character, city or landmark, so the needles are the only places and people.
    essays = "".join(corpus("essay").sentences)
    for name in CHARACTERS + tuple({city for _, city in LANDMARKS}):
        assert not re.search(rf"\b{re.escape(name)}\b", essays), name
    assert not [m for m, _ in LANDMARKS if m.removeprefix("the ").lower() in essays.lower()]


@pytest.mark.parametrize("spec", ["latent_needles", "latent_needles(ask=city,distractors=8,haystack=noise)"])
def test_a_solver_that_knows_the_landmarks_recovers_the_gold_from_the_context(spec):
    task = make_task(spec)
    for seed in range(4):
        sample = task.build(backend(), 1536, 0.4, seed)
        turn = sample.turns[0]
        assert (solve(sample.context, sample.question, CHARACTERS),) == turn.answers
        # Every distractor is placed too, and a different character.
        assert len(turn.forbidden) == task.distractors and turn.answers[0] not in turn.forbidden
        assert all(name in sample.context for name in turn.forbidden)


@pytest.mark.parametrize("ask", ["landmark", "city"])
def test_the_question_never_names_what_the_needle_names(ask):
    task = make_task(f"latent_needles(ask={ask})")
    for seed in range(6):
        sample = task.build(backend(), 1024, 0.5, seed)
        meta = sample.metadata
        hidden = meta["city"] if ask == "landmark" else meta["landmark"]
        assert hidden not in sample.question and hidden in sample.evidence[0]
        # The answer's name is in the needle only.
        assert sample.answers[0] not in sample.question
        assert meta["overlap"] == overlap(sample.question, sample.evidence[0]) <= 2


def test_overlap_counts_shared_words_apart_from_function_words_by_hand():
    needle = "Actually, Yuki has lived in Dresden for many years."
    # Nothing shared but "has" (a function word).
    assert (
        overlap(
            "Which character has been to Dresden?", "Actually, Yuki lives next to the Semper Opera House."
        )
        == 0
    )
    # "lives" is shared; "in", "the" are function words.
    assert overlap("Which character lives near Big Ben?", "These days Yuki lives in London.") == 1
    # "many" and "years" are shared; "has" is a function word.
    assert overlap("Which character has spent many years close to the Zwinger palace?", needle) == 2
    assert words("It's the Eiffel Tower!") == {"it's", "eiffel", "tower"}


def test_overlap_varies_across_seeds_so_the_report_can_break_scores_down_by_it():
    task = make_task("latent_needles")
    seen = {task.build(backend(), 1024, 0.5, seed).metadata["overlap"] for seed in range(12)}
    assert 0 in seen and len(seen) >= 2  # mostly none; some forms share a word or two on purpose
    assert task.breakdowns[0] == "overlap"


def test_the_asked_needle_sits_at_the_depth_and_exact_lengths_hold_on_metaspace():
    sample = make_task("latent_needles").build(backend("metaspace"), 3000, 0.25, seed=2)
    at = sample.context.index(sample.evidence[0])
    assert abs(at / len(sample.context) - 0.25) < 0.05
    assert sample.metadata["realised_tokens"] == 3000


def test_scoring_by_hand_the_name_alone_counts_and_naming_a_distractor_too_earns_nothing():
    sample = make_task("latent_needles").build(backend(), 1024, 0.5, seed=1)
    turn, meta = sample.turns[0], sample.metadata
    gold, wrong = turn.answers[0], turn.forbidden[0]
    assert score_turn("contains_only", f" {gold}.", turn, meta)[0] == 1.0
    assert score_turn("contains_only", f" {gold.lower()}, who lives there", turn, meta)[0] == 1.0
    assert score_turn("contains_only", f" {wrong}", turn, meta)[0] == 0.0
    assert score_turn("contains_only", f" {gold} or {wrong}", turn, meta) == (
        0.0,
        {"found": 1.0, "forbidden": 1.0},
    )


def test_the_plane():
    assert (make_task("latent_needles").diffusion, make_task("latent_needles").scope) == (0.85, 0.05)
    assert make_task("latent_needles(distractors=0)").diffusion == 0.7
