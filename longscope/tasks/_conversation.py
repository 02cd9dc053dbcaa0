"""Requests and made-up replies for the multi-round co-reference task: forms, topics and the reply generator."""

from __future__ import annotations

import random
import re

from longscope.tasks.vocabulary import ADJECTIVES, NOUNS

# Topics the long conversation's other requests are about, and the ones kept for the asked request, so a
# filler exchange never repeats the asked request word for word.
FILLER_TOPICS = tuple(
    """
otters lighthouses glaciers kettles bicycles lanterns orchards harbors beetles windmills comets meadows
violins pebbles sparrows teapots canyons ferries mushrooms libraries volcanoes umbrellas foxes islands
""".split()
)
ASKED_TOPICS = tuple(
    """
tapirs walruses pelicans hedgehogs tortoises badgers herons puffins squirrels dolphins camels owls
""".split()
)

VERBS = tuple(
    "wander linger gather shimmer drift settle whisper tumble sparkle rest wait sing dream glow hum".split()
)
PLACES = tuple(
    "the river, the hill, the old road, the quiet bay, the harbor wall, the frosty field, the pine wood, "
    "the market square, the long beach, the garden gate".split(", ")
)

_LINES = {
    "poem": (
        "{Adj} {topic} {verb} by {place},",
        "where {adj} {noun} and {noun2} stay;",
        "the {noun} keeps watch as {topic} {verb},",
        "and {adj} evenings fade to grey.",
        "O {topic}, so {adj} and {adj2},",
        "you {verb} where the {noun} {verb2}s.",
    ),
    "riddle": (
        "We {verb} near {place} when the light is {adj}.",
        "A {noun} is our neighbour and a {noun2} our friend.",
        "Some call us {adj}, others call us {adj2}.",
        "We {verb} in spring and {verb2} in autumn.",
        "What are we? We are {topic}.",
    ),
    "short story": (
        "Once, a family of {topic} lived beside {place}.",
        "Every morning they would {verb} past a {adj} {noun}.",
        "One day a {adj2} {noun2} arrived and asked to stay.",
        "The {topic} agreed, and they learned to {verb2} together.",
        "By winter, nobody at {place} remembered a time before them.",
    ),
    "song": (
        "Sing of the {topic}, {adj} and free,",
        "they {verb} down by {place} with me,",
        "the {noun} in the morning, the {noun2} at night,",
        "the {topic} {verb2} till the sky turns {adj2}.",
    ),
    "letter": (
        "Dear friend, the {topic} here are {adj} this week.",
        "They {verb} by {place} and eat from a {noun}.",
        "Yesterday one of them stole my {adj2} {noun2}.",
        "I will write again when the {topic} {verb2}.",
        "Yours, from {place}.",
    ),
}
FORMS = tuple(_LINES)
_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=[aeiou])")


def request(form: str, topic: str) -> str:
    """The user's request as MRCR writes its needles: "write a poem about tapirs"."""
    return f"write a {form} about {topic}"


def reply(rng: random.Random, form: str, topic: str) -> str:
    """A made-up reply of three or four lines of ``form`` about ``topic``, each line drawn and filled from
    ``rng``: two replies to the same request read alike but differ word for word."""
    lines = _LINES[form]
    count = min(len(lines), rng.randint(3, 4))
    chosen = sorted(rng.sample(range(len(lines)), count))
    adjective = [rng.choice(ADJECTIVES) for _ in range(2)]
    fills = {
        "topic": topic,
        "adj": adjective[0],
        "Adj": adjective[0].capitalize(),
        "adj2": adjective[1],
        "noun": rng.choice(NOUNS),
        "noun2": rng.choice(NOUNS),
        "verb": rng.choice(VERBS),
        "verb2": rng.choice(VERBS),
        "place": rng.choice(PLACES),
    }
    text = "\n".join(lines[i].format(**fills) for i in chosen)
    return _A_BEFORE_VOWEL.sub(r"\1n ", text)  # "a amber kettle" -> "an amber kettle"
