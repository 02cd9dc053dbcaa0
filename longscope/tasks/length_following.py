"""Length following (after LongBench-Write): write N words, or N Chinese characters, about a topic."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from longscope.core import Backend, Sample, Turn, UsageError
from longscope.haystack import corpus
from longscope.scoring.length_score import count_words
from longscope.tasks._long_output import (
    FAMILY,
    TOKENS_PER_WORD,
    check_budget_fits,
    label_with_sized_budget,
    seeded,
)
from longscope.tasks.base import EVERY_UNIT, Task

TEMPLATES = {
    "en": "Below is some background material.\n\n{context}\n\n{question}",
    "zh": "以下是一些背景材料（英文）。\n\n{context}\n\n{question}",
}
TOPICS = {
    "en": (
        "the history of a small harbour town",
        "how cities could plan for hotter summers",
        "the craft of keeping a garden through the year",
        "why people keep diaries",
        "the life of a long-distance train driver",
        "what makes a good public library",
        "learning a musical instrument as an adult",
        "the economics of a village bakery",
        "how rivers shape the land around them",
        "a week spent walking along a coast",
    ),
    "zh": (
        "一座海港小镇的历史",
        "城市如何应对更炎热的夏天",
        "一年四季照料花园的学问",
        "人们为什么写日记",
        "长途列车司机的一天",
        "一座好的公共图书馆是什么样子",
        "成年后学习一种乐器",
        "乡村面包店的经营之道",
        "河流如何塑造周围的土地",
        "沿着海岸步行的一周",
    ),
}
QUESTIONS = {
    "en": (
        "Write an article of {words} words on {topic}, drawing on the material above where it helps. Aim for "
        "{words} words: neither much shorter nor much longer."
    ),
    "zh": "请参考上面的材料，以“{topic}”为题写一篇{words}字的中文文章。字数应尽量接近{words}字，不要太短也不要太长。",
}
# Sentences the Chinese reference text is made of (written for longscope): any text of the asked length is
# a right answer, and the reference only shows that one exists and scores 1.
_CHINESE_SENTENCES = (
    "清晨的小镇总是很安静，街道上只有几位散步的老人。",
    "河水缓缓流过石桥，岸边的柳树随风摆动。",
    "人们在市场里挑选新鲜的蔬菜和水果。",
    "孩子们放学后常常在公园里玩耍。",
    "傍晚时分，灯光一盏盏亮起，家家户户开始准备晚饭。",
    "图书馆里坐满了安静读书的学生。",
)
MAX_WORDS = 100_000


def _exactly(pieces: list[str], target: int, joiner: str) -> str:
    """Pieces (words or characters) joined in turn, skipping any that would overshoot, until LongWriter's
    counter reads exactly ``target``."""
    kept, total = [], 0
    for piece in pieces:
        if total == target:
            break
        counted = count_words(piece)
        if total + counted <= target:
            kept.append(piece)
            total += counted
    return joiner.join(kept)


@dataclass(frozen=True)
class LengthFollowing(Task):
    """ "Write ``words`` words about …" over a context of background material; ``language=zh`` asks for
    Chinese characters instead. Scored with LongWriter's length score alone (content is not judged here).

    ``max_new_tokens`` 0 sizes the budget to 1.5 times the target's tokens (1.3 per English word, 1 per
    Chinese character) plus 32; a budget set below the target's tokens is refused.
    """

    name: ClassVar[str] = "length_following"
    description: ClassVar[str] = (
        "write N words (or Chinese characters) about a topic; LongWriter's length score"
    )
    metric: ClassVar[str] = "length_following"
    breakdowns: ClassVar[tuple[str, ...]] = ("required_words", "language")

    words: int = 300
    language: Literal["en", "zh"] = "en"
    haystack: Literal["essay", "noise"] = "essay"
    max_new_tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens == 0:
            object.__setattr__(self, "max_new_tokens", self.sized_budget())

    def needed_tokens(self) -> int:
        return math.ceil(TOKENS_PER_WORD[self.language] * self.words)

    def sized_budget(self) -> int:
        return math.ceil(1.5 * self.needed_tokens()) + 32

    def label(self) -> str:
        return label_with_sized_budget(self, self.sized_budget())

    @property
    def diffusion(self) -> float:
        return 0.1  # nothing to find: the task is to write

    @property
    def scope(self) -> float:
        return 0.1  # the material is optional background

    def _plan(self, seed: int) -> tuple[str, str, int]:
        rng = seeded(self, seed, leave_out=("max_new_tokens",))
        topic = rng.choice(TOPICS[self.language])
        question = QUESTIONS[self.language].format(words=self.words, topic=topic)
        return question, self.reference(rng), rng.randrange(len(corpus(self.haystack).sentences))

    def reference(self, rng) -> str:
        """A text of exactly the asked length: the essay corpus's words from a seeded start, cycling (or the
        Chinese sentences' characters)."""
        if self.language == "zh":
            sentences = _CHINESE_SENTENCES
            first = rng.randrange(len(sentences))
            chars: list[str] = []
            i = first
            while len(chars) < self.words * 2:
                chars += list(sentences[i % len(sentences)])
                i += 1
            return _exactly(chars, self.words, "")
        body = corpus("essay").sentences
        first = rng.randrange(len(body))
        words: list[str] = []
        i = first
        while len(words) < self.words * 2 + 50:
            words += body[i % len(body)].split()
            i += 1
        return _exactly(words, self.words, " ")

    def check(self, backend: Backend, length: int) -> None:
        super().check(backend, length)
        if not 1 <= self.words <= MAX_WORDS:
            raise UsageError(f"{self.label()}: words={self.words} must be between 1 and {MAX_WORDS}")
        self.check_haystack()
        unit = "Chinese characters" if self.language == "zh" else "English words"
        if self.max_new_tokens < self.needed_tokens():
            raise UsageError(
                f"{self.label()}: max_new_tokens={self.max_new_tokens} cannot hold {self.words} {unit} "
                f"(about {TOKENS_PER_WORD[self.language]} tokens each: at least {self.needed_tokens()}); raise "
                "it or leave it out to size it"
            )
        question, _, _ = self._plan(0)
        check_budget_fits(self, backend, length, TEMPLATES[self.language], question, "", "")

    def build(self, backend: Backend, length: int, depth: float | None, seed: int) -> Sample:
        question, reference, start = self._plan(seed)
        return self.make_sample(
            backend,
            length=length,
            depth=depth,
            seed=seed,
            template=TEMPLATES[self.language],
            turns=[Turn(question=question, answers=(reference,))],
            source=corpus(self.haystack),
            start=start,
            metadata={
                "family": FAMILY,
                "required_words": self.words,
                "length_unit": "chars" if self.language == "zh" else "words",
                "language": self.language,
            },
            evidence=EVERY_UNIT,
        )
