"""The judge: a backend asked to grade one response against checklist items, cached, retried once on a reply it
cannot read, and counted apart from the evaluated model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from longscope.core import Backend, GenerationRequest, UsageError
from longscope.judging.cache import JudgementCache
from longscope.judging.cost import Prices, Usage
from longscope.judging.parse import MalformedReply, parse_reply
from longscope.judging.prompts import JudgePrompt

# Output tokens the judge may use per item (a grade and a short reason), plus a margin for the whole reply.
TOKENS_PER_ITEM = 48
REPLY_MARGIN = 64


def reply_budget(items: int) -> int:
    return TOKENS_PER_ITEM * items + REPLY_MARGIN


@dataclass(frozen=True)
class GradingRequest:
    """What one judgement needs: the instruction the model had, its response, the items to grade and, for a
    prompt that compares with one, the reference answer."""

    prompt: JudgePrompt
    instruction: str
    response: str
    items: tuple[str, ...]
    reference: str | None = None

    def messages(self) -> list[dict[str, str]]:
        return self.prompt.messages(self.instruction, self.response, self.items, self.reference)


@dataclass
class Judgement:
    """A graded response (``ok``: the item grades and their mean) or a failed judgement with its reason; the raw
    replies are kept either way."""

    ok: bool
    grades: tuple[float, ...] = ()
    replies: list[str] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    error: str | None = None
    cached: bool = False
    usage: Usage = field(default_factory=Usage)

    @property
    def score(self) -> float | None:
        return sum(self.grades) / len(self.grades) if self.ok and self.grades else None

    def details(self, judge: str, prompt: JudgePrompt, items: tuple[str, ...]) -> dict[str, Any]:
        """What the row's details keep: who graded with which prompt, each item's grade, the raw replies."""
        return {
            "judge": judge,
            "judge_prompt": prompt.label,
            "items": list(items),
            "item_grades": list(self.grades),
            "judge_replies": self.replies,
            "judge_notes": list(self.notes),
            "judge_cached": self.cached,
            **({"judge_error": self.error} if self.error else {}),
        }


class JudgeWindowError(ValueError):
    """The judge's window cannot hold what it is asked to grade."""


class Judge:
    """Grades responses with ``backend``. ``uri`` is how the user named it, ``prices`` what its tokens cost."""

    def __init__(
        self,
        backend: Backend,
        *,
        uri: str = "",
        prices: Prices | None = None,
        cache: JudgementCache | None = None,
    ) -> None:
        self.backend = backend
        self.uri = uri
        self.prices = prices or Prices()
        self.cache = cache or JudgementCache()

    @property
    def identity(self) -> str:
        b = self.backend
        return f"{b.kind}:{b.model_name}@{b.model_revision}"

    @property
    def name(self) -> str:
        """A short name for labels: the judge model's name."""
        return self.backend.model_name

    def describe(self) -> dict[str, Any]:
        """What a run stores about its judge."""
        return {
            "uri": self.uri,
            "identity": self.identity,
            "context_window": self.backend.context_window,
            "price_in": self.prices.per_million_in,
            "price_out": self.prices.per_million_out,
        }

    def check(self) -> None:
        """One tiny call, so that a judge that does not answer fails the run before any sample runs."""
        try:
            self.backend.generate(
                GenerationRequest(messages=[{"role": "user", "content": "Reply with OK."}], max_new_tokens=2)
            )
        except Exception as exc:  # noqa: BLE001 - whatever the backend raises, the judge is unusable
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"the judge {self.uri or self.identity} does not answer: {first}") from None

    def prompt_tokens(self, request: GradingRequest) -> int:
        return self.backend.count_tokens(self.backend.render(request.messages()))

    def check_window(self, request: GradingRequest, response_tokens: int = 0) -> None:
        """Raise JudgeWindowError when the judge prompt, a response of ``response_tokens`` more tokens than the
        request holds, and the reply budget do not fit the judge's window."""
        need = self.prompt_tokens(request) + response_tokens + reply_budget(len(request.items))
        if need > self.backend.context_window:
            raise JudgeWindowError(
                f"the judge {self.name} has a {self.backend.context_window}-token window and grading needs "
                f"{need} tokens; use a judge with a longer window"
            )

    def grade(self, request: GradingRequest) -> Judgement:
        """Grade one response: from the cache when this judge graded the same messages with the same prompt
        version before (no call), else by asking, once more on an unreadable reply. Never raises for a failing
        judge: the failure is the judgement, with its reason."""
        messages = request.messages()
        budget = reply_budget(len(request.items))
        key = JudgementCache.key(self.identity, request.prompt.label, messages, budget)
        hit = self.cache.get(key)
        if hit is not None:
            return Judgement(
                ok=True,
                grades=tuple(hit["grades"]),
                replies=list(hit["replies"]),
                notes=tuple(hit.get("notes", ())),
                cached=True,
            )
        judgement = self._ask(request, messages, budget)
        if judgement.ok:
            self.cache.put(
                key,
                {
                    "grades": list(judgement.grades),
                    "replies": judgement.replies,
                    "notes": list(judgement.notes),
                },
            )
        return judgement

    def _ask(self, request: GradingRequest, messages: list[dict[str, str]], budget: int) -> Judgement:
        usage = Usage()
        replies: list[str] = []
        problem = ""
        conversation = list(messages)
        for attempt in range(2):
            try:
                self.check_window_of(conversation, budget)
                started = time.perf_counter()
                answer = self.backend.generate(
                    GenerationRequest(messages=conversation, max_new_tokens=budget)
                )
            except Exception as exc:  # noqa: BLE001 - a judge failing mid-run is a failed judgement, not a crash
                return Judgement(
                    ok=False,
                    replies=replies,
                    error=f"judge failed: {type(exc).__name__}: {exc}".strip()[:500],
                    usage=usage,
                )
            usage.add(self._usage(answer.input_tokens, answer.output_tokens, time.perf_counter() - started))
            replies.append(answer.text)
            try:
                parsed = parse_reply(answer.text, len(request.items))
            except MalformedReply as exc:
                problem = str(exc)
                if attempt == 0:
                    # Greedy decoding would repeat the same reply: say what was wrong and ask again.
                    conversation = [
                        *messages,
                        {"role": "assistant", "content": answer.text},
                        {
                            "role": "user",
                            "content": f"Your reply could not be read: {problem}. Reply again with exactly "
                            f"{len(request.items)} lines written as '<item number>: <grade> - <reason>'.",
                        },
                    ]
                continue
            return Judgement(ok=True, grades=parsed.grades, replies=replies, notes=parsed.notes, usage=usage)
        return Judgement(
            ok=False, replies=replies, error=f"unreadable judge reply, twice: {problem}", usage=usage
        )

    def check_window_of(self, messages: list[dict[str, str]], budget: int) -> None:
        need = self.backend.count_tokens(self.backend.render(messages)) + budget
        if need > self.backend.context_window:
            raise JudgeWindowError(
                f"grading needs {need} tokens, above the judge's {self.backend.context_window}-token window"
            )

    def _usage(self, input_tokens: int, output_tokens: int, seconds: float) -> Usage:
        return Usage(
            calls=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            seconds=seconds,
            cost=self.prices.cost(input_tokens, output_tokens),
        )
