"""Checklist-graded long writing (after HelloBench): 20 prompts written for longscope across open-ended QA,
summarisation, chat, text completion and heuristic text generation, each graded by the run's judge."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

from longscope.cache import stable_hash
from longscope.core import Backend, Sample, Turn
from longscope.tasks.benchmarks.base import Benchmark, Record

CATEGORIES = ("open_ended_qa", "summarization", "chat", "text_completion", "heuristic_text_generation")
MAX_NEW_TOKENS = 1024

# Items every long answer is held to, after HelloBench's general ones (on topic, correct, readable, whole).
_ON_TOPIC = "Is every part of the response about what was asked, with no padding or digression?"
_READABLE = "Is the response well organised and easy to follow from start to end?"
_LONG_ENOUGH = (
    "Is the response at least as long as asked, with the length spent on substance rather than repetition?"
)

# (id, category, instruction, essays its source text is made of (titles of longscope/corpora/essays.txt), items)
PROMPTS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "qa_tides",
        "open_ended_qa",
        "Explain to a curious teenager why there are two high tides a day in most places. Write at least 400 "
        "words.",
        (),
        (
            _ON_TOPIC,
            "Does it explain the Moon's pull and the bulge on the far side of the Earth correctly?",
            "Does it mention the Sun's part (spring and neap tides)?",
            "Does it avoid jargon or explain each term it uses?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "qa_rent_or_buy",
        "open_ended_qa",
        "Is it better to rent or to buy a home? Give a balanced answer of at least 500 words that a reader could "
        "act on.",
        (),
        (
            _ON_TOPIC,
            "Does it weigh costs on both sides (interest, maintenance, rent rises, deposit)?",
            "Does it say which circumstances favour each choice rather than giving one verdict for everyone?",
            "Does it end with concrete steps the reader can take?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "qa_sleep",
        "open_ended_qa",
        "Why do people need sleep, and what happens to the body and mind after several nights without enough of "
        "it? Answer in at least 400 words.",
        (),
        (
            _ON_TOPIC,
            "Does it describe effects on both body and mind?",
            "Does it avoid claims stated with more certainty than science supports?",
            _READABLE,
            _LONG_ENOUGH,
        ),
    ),
    (
        "qa_language_learning",
        "open_ended_qa",
        "What is the most effective way for a busy adult to learn a new language in a year? Write a detailed "
        "answer of at least 500 words.",
        (),
        (
            _ON_TOPIC,
            "Does it give a plan that fits a busy schedule (minutes a day, when, how)?",
            "Does it cover listening, speaking, reading and vocabulary rather than one skill?",
            "Does it say how to keep going when motivation drops?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "sum_rivers_bread",
        "summarization",
        "Summarise the following essays in about 250 words, one paragraph per essay, keeping each essay's main "
        "argument.",
        ("How Towns Grow Around Rivers", "The Craft of Baking Bread"),
        (
            "Does the summary give one paragraph to each essay, in order?",
            "Does it keep each essay's main argument rather than a list of details?",
            "Does it state nothing the essays do not say?",
            "Is it close to 250 words (between 180 and 350)?",
        ),
    ),
    (
        "sum_maps",
        "summarization",
        "Write an abstract of about 150 words for the essay below, for a reader deciding whether to read it.",
        ("The Long History of Maps",),
        (
            "Does the abstract say what the essay argues, not only its topic?",
            "Does it state nothing the essay does not say?",
            "Is it close to 150 words (between 100 and 220)?",
            _READABLE,
        ),
    ),
    (
        "sum_bees_gardens",
        "summarization",
        "Summarise what the two essays below have in common and where they differ, in at least 300 words.",
        ("The Habits of Bees", "Why People Keep Gardens"),
        (
            "Does it name real points the two essays share?",
            "Does it name real differences between them?",
            "Does it state nothing the essays do not say?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "sum_libraries_bullets",
        "summarization",
        "Summarise the essay below as 8 to 12 bullet points, each one full sentence, in the essay's order.",
        ("How Libraries Work",),
        (
            "Are there 8 to 12 bullet points, each one full sentence?",
            "Do the points follow the essay's order?",
            "Does each point state something the essay says?",
            "Do the points together cover the whole essay, not only its start?",
        ),
    ),
    (
        "chat_interview",
        "chat",
        "I have a job interview for a junior accountant position on Monday and I get very nervous. Can you help me "
        "prepare? Please be thorough.",
        (),
        (
            _ON_TOPIC,
            "Does it give likely interview questions with how to answer them?",
            "Does it address the nervousness with practical advice?",
            "Is the tone warm and personal, as in a conversation?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "chat_trip",
        "chat",
        "My partner and I have five days and a modest budget for a first trip to a city we have never seen. How "
        "should we plan it? Talk me through it in detail.",
        (),
        (
            _ON_TOPIC,
            "Does it cover budget, where to stay, and how to plan the days?",
            "Does it ask or allow for what the couple likes rather than one fixed plan?",
            "Is the tone conversational?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "chat_old_friend",
        "chat",
        "I haven't spoken to my best friend from school in ten years. I want to reach out but I'm worried it "
        "will be awkward. What should I do? Please give a long, thoughtful reply.",
        (),
        (
            _ON_TOPIC,
            "Does it acknowledge the worry before giving advice?",
            "Does it suggest concrete ways to reach out, with an example message?",
            "Does it prepare the writer for a reply that does not come?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "chat_plants",
        "chat",
        "Every houseplant I buy dies within two months. What am I doing wrong? Please go through it with me in "
        "detail.",
        (),
        (
            _ON_TOPIC,
            "Does it cover watering, light, drainage and choice of plant?",
            "Does it help the reader find which mistake is theirs (signs to look for)?",
            "Is the tone conversational and encouraging?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "cont_boat",
        "text_completion",
        "Continue the essay below with at least 400 more words in the same voice, adding a section on what the "
        "builder learns in the first season on the water.",
        ("Building a Wooden Boat",),
        (
            "Does the continuation keep the essay's voice and tense?",
            "Does it add the section asked for rather than repeating the essay?",
            "Does it stay consistent with what the essay already says?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "cont_letters",
        "text_completion",
        "Continue the essay below with a closing section of at least 300 words that brings its argument to an "
        "end.",
        ("The Joy of Writing Letters",),
        (
            "Does the continuation follow on from where the essay stops?",
            "Does it bring the argument to a clear close?",
            "Does it keep the essay's voice?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "cont_mountains",
        "text_completion",
        "Continue the essay below as a personal story of one winter day in the mountains, at least 400 words, "
        "in the first person.",
        ("Winter in the Mountains",),
        (
            "Is the continuation a first-person story of one day?",
            "Does it use details the essay mentions?",
            "Is it consistent with the essay's descriptions?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "cont_bicycle",
        "text_completion",
        "Continue the essay below with a section of at least 300 words on what a parent learns while teaching.",
        ("Teaching a Child to Ride a Bicycle",),
        (
            "Is the new section about what the parent learns?",
            "Does it keep the essay's voice?",
            "Does it avoid repeating points already made?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "gen_story_lighthouse",
        "heuristic_text_generation",
        "Write a short story of at least 800 words about a lighthouse keeper who receives a letter meant for "
        "someone else. Give it a clear beginning, middle and end.",
        (),
        (
            "Is it a story about a lighthouse keeper and a misdelivered letter?",
            "Does it have a clear beginning, middle and end?",
            "Do the characters stay consistent (names, traits) throughout?",
            "Is the writing vivid rather than summarised?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "gen_plan_bakery",
        "heuristic_text_generation",
        "Write a one-year business plan of at least 800 words for a small neighbourhood bakery, with sections "
        "for the market, products, costs, staffing and risks.",
        (),
        (
            "Does it have all five sections asked for?",
            "Are the costs and numbers plausible and consistent with each other?",
            "Does it name real risks with a response to each?",
            _READABLE,
            _LONG_ENOUGH,
        ),
    ),
    (
        "gen_speech_graduation",
        "heuristic_text_generation",
        "Write a graduation speech of at least 600 words for a small rural school, by a teacher retiring after "
        "thirty years.",
        (),
        (
            "Does it read as a speech by a retiring teacher to graduates?",
            "Does it include specific, personal memories rather than generic advice only?",
            "Does it end with a clear message to the graduates?",
            _LONG_ENOUGH,
        ),
    ),
    (
        "gen_guide_camping",
        "heuristic_text_generation",
        "Write a beginner's guide of at least 700 words to a first night of camping, organised with headings.",
        (),
        (
            "Is it organised with headings?",
            "Does it cover gear, choosing a site, food, and safety?",
            "Is its advice correct and safe?",
            _READABLE,
            _LONG_ENOUGH,
        ),
    ),
)


def essay(title: str) -> str:
    """One essay of longscope's corpus (its title and paragraphs) by its title."""
    return _essays()[title]


def _essays() -> dict[str, str]:
    text = resources.files("longscope.corpora").joinpath("essays.txt").read_text(encoding="utf-8")
    essays: dict[str, list[str]] = {}
    current = None
    for block in text.split("\n\n"):
        block = block.strip()
        if not block:
            continue
        if "\n" not in block and len(block) < 70 and not block.endswith((".", "?", "!", '"')):
            current = block
            essays[current] = [block]
        elif current is not None:
            essays[current].append(block)
    return {title: "\n\n".join(parts) for title, parts in essays.items()}


def _records() -> list[dict[str, Any]]:
    return [
        {"id": ident, "category": category, "instruction": instruction, "essays": list(titles),
         "checklist": list(items)}
        for ident, category, instruction, titles, items in PROMPTS
    ]  # fmt: skip


@dataclass(frozen=True)
class ChecklistWriting(Benchmark):
    """``checklist_writing:summarization`` keeps one category. The prompts are built in; --data is not read."""

    name: ClassVar[str] = "checklist_writing"
    description: ClassVar[str] = (
        "20 long-writing prompts (QA, summarisation, chat, text completion, heuristic generation) written for "
        "longscope, each graded by the judge (--judge) against its own checklist"
    )
    needs_judge: ClassVar[bool] = True
    subsets: ClassVar[tuple[str, ...]] = CATEGORIES
    breakdowns: ClassVar[tuple[str, ...]] = ("category",)
    id_field: ClassVar[str | None] = "id"
    truncation: ClassVar[str] = "middle"
    built_in_records: ClassVar[bool] = True

    @property
    def metric(self) -> str:  # every category is judged
        return "judge"

    def plane(self) -> tuple[float, float]:
        # Writing from scratch needs nothing found; a summary or continuation needs the whole source.
        return {"summarization": (0.2, 0.9), "text_completion": (0.2, 0.6)}.get(self.subset, (0.1, 0.3))

    def with_data(self, data: str | None) -> ChecklistWriting:
        return self

    def _sources(self):
        for subset in self.read_subsets():
            rows = [r for r in _records() if not subset or r["category"] == subset]
            yield subset, ((f"checklist_writing#{r['id']}", r) for r in rows)

    def cache_token(self) -> str:
        return stable_hash(_records())

    def to_sample(self, record: Record, index: int, backend: Backend) -> Sample:
        data = record.data
        source = "\n\n".join(essay(title) for title in data["essays"])
        template = "{question}\n\n{context}" if source else "{context}{question}"
        return Sample(
            id=self.record_id(record, index),
            task=self.label(),
            context=source,
            turns=(Turn(question=data["instruction"], answers=()),),
            template=template,
            max_new_tokens=MAX_NEW_TOKENS,
            metadata={
                "category": data["category"],
                "subset": data["category"],
                "judge_prompt": "checklist",
                "checklist": data["checklist"],
                "judge_sees": "message",
            },
        )
