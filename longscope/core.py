"""The plain types every stage shares: samples, requests, generations, result rows, and the registries."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable


class UsageError(Exception):
    """A problem the user caused and can fix: reported as one line, exit code 2, never a traceback."""


def configure(cls: type, params: dict[str, Any], family: str) -> Any:
    """An instance of the dataclass ``cls`` from command-line parameters, type-checked by pydantic; an unknown
    or ill-typed parameter is one line naming it and what is accepted."""
    import pydantic

    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(fields), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(
            f"{family} {cls.name}: unknown parameter {unknown[0]!r}; {hint}parameters: {', '.join(sorted(fields))}"
        )
    try:
        return pydantic.TypeAdapter(cls).validate_python(params)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise UsageError(
            f"{family} {cls.name}: parameter {where}: {error['msg']} (got {error.get('input')!r})"
        ) from None


# ---------------------------------------------------------------------------------------------------------
# Samples


@dataclass(frozen=True)
class Turn:
    """One question asked of a sample's context, with the answers that count as right and the known-false
    values (a distractor's) that make a reply wrong whatever else it names."""

    question: str
    answers: tuple[str, ...]
    answer_prefix: str = ""
    forbidden: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    """One test item: a context, the turn(s) asked of it, and what we know about how it was built.

    The user message is ``template`` with ``{context}`` and ``{question}`` filled in; the assistant turn
    starts with the turn's ``answer_prefix``. Keeping the parts apart lets prompt-level methods rewrite the
    context while the rest of the request stays as the task defined it.
    """

    id: str
    task: str
    context: str
    turns: tuple[Turn, ...]
    template: str
    max_new_tokens: int
    system: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # False for a benchmark that feeds its prompt as plain text, without the model's chat template (LongBench's
    # few-shot and code-completion datasets).
    chat: bool = True
    # The context's units (sentences, records, passages: exact substrings of ``context``) that carry what the
    # answers need, as the generator placed them; empty where it is not known. Measured scope and diffusion,
    # and retrieval recall, are read from it.
    evidence: tuple[str, ...] = ()

    @property
    def question(self) -> str:
        return self.turns[0].question

    @property
    def answers(self) -> tuple[str, ...]:
        return self.turns[0].answers

    def messages(self, turn: int = 0, context: str | None = None) -> list[dict[str, str]]:
        """The chat messages for one turn, optionally over a replaced context."""
        user = self.template.format(
            context=self.context if context is None else context, question=self.turns[turn].question
        )
        msgs = [] if self.system is None else [{"role": "system", "content": self.system}]
        msgs.append({"role": "user", "content": user})
        return msgs

    def conversation(
        self, turn: int, all_answers: bool = False, replies: Sequence[str] | None = None
    ) -> list[dict[str, str]]:
        """One conversation up to ``turn``: the first question over the context, then every earlier turn's
        gold answer as the assistant's reply and the next question as the user's (the multi-turn mode).
        ``all_answers``: the reply names every gold answer (a turn that asks for all of them), else the first
        (the answers are alternatives). ``replies``: the model's own earlier answers, in place of the gold ones
        (the multi-turn-own mode)."""
        msgs = self.messages(0)
        for earlier in range(turn):
            done = self.turns[earlier]
            gold = ", ".join(done.answers) if all_answers else (done.answers[0] if done.answers else "")
            if replies is not None:
                gold = replies[earlier]
            reply = done.answer_prefix + " " + gold if done.answer_prefix else gold
            msgs.append({"role": "assistant", "content": reply.strip()})
            msgs.append({"role": "user", "content": self.turns[earlier + 1].question})
        return msgs

    def request(
        self,
        turn: int = 0,
        *,
        conversation: bool = False,
        all_answers: bool = False,
        replies: Sequence[str] | None = None,
        **overrides: Any,
    ) -> GenerationRequest:
        # A benchmark's own stop strings (LongBench stops samsum at a newline) travel in the metadata.
        stop = tuple(self.metadata.get("stop", ()))
        return GenerationRequest(
            **{
                "messages": self.conversation(turn, all_answers, replies)
                if conversation
                else self.messages(turn),
                "answer_prefix": self.turns[turn].answer_prefix,
                "max_new_tokens": self.max_new_tokens,
                "chat": self.chat,
                "context": self.context,
                **({"stop": stop} if stop else {}),
                **overrides,
            }
        )

    def to_json(self) -> str:
        """Canonical JSON: the same sample always serialises to the same bytes. A turn without forbidden
        answers is written as before they existed, so samples of other tasks keep their bytes."""
        raw = dataclasses.asdict(self)
        for turn in raw["turns"]:
            if not turn["forbidden"]:
                del turn["forbidden"]
        if not raw["evidence"]:  # samples without known evidence keep the bytes they had before it existed
            del raw["evidence"]
        return json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Sample:
        raw = json.loads(text)
        # Samples saved before turns had ``forbidden`` (sample caches, run stores) kept the false values among
        # the answers behind this marker; read back, they must not count as gold.
        marker = "!forbidden:"
        raw["turns"] = tuple(
            Turn(
                question=t["question"],
                answers=tuple(a for a in t["answers"] if not a.startswith(marker)),
                answer_prefix=t["answer_prefix"],
                forbidden=tuple(t.get("forbidden", ()))
                + tuple(a[len(marker) :] for a in t["answers"] if a.startswith(marker)),
            )
            for t in raw["turns"]
        )
        raw["evidence"] = tuple(raw.get("evidence", ()))
        return cls(**raw)


# ---------------------------------------------------------------------------------------------------------
# Requests to a backend and what comes back


@dataclass(frozen=True)
class GenerationRequest:
    """What is asked of a backend: greedy by default, the output budget counted inside the target length."""

    messages: list[dict[str, str]]
    answer_prefix: str = ""
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int = 0
    chat: bool = True  # False: the messages' text is fed as it is, without the chat template
    # The shared context inside the messages: an in-process backend prefills (and a method compresses) the
    # prompt up to its end once, and answers the rest on that cache.
    context: str | None = None

    def with_context(self, context: str) -> GenerationRequest:
        """The same request over another context (cut, retrieved, summarised): the first message holding the
        context has it replaced, everything else (instructions, question, conversation) kept as it is."""
        if self.context is None or (not self.context and context):
            raise ValueError("this request has no context to replace")
        if self.context == context:
            return self
        messages, replaced = [], False
        for message in self.messages:
            if not replaced and self.context in message["content"]:
                message = {**message, "content": message["content"].replace(self.context, context, 1)}
                replaced = True
            messages.append(message)
        if not replaced:
            raise ValueError("the request's context is not inside its messages")
        return dataclasses.replace(self, messages=messages, context=context)


@dataclass
class Generation:
    """A backend's answer with the measurements every result row carries."""

    text: str
    input_tokens: int
    output_tokens: int
    prefill_s: float
    decode_s: float
    wall_s: float
    finish_reason: str = "stop"
    kv_bytes: int | None = None
    peak_memory_bytes: int | None = None
    retries: int = 0  # requests resent after connection errors, 429s or 5xx before this answer came
    kv_removed: int | None = None  # context KV entries a method evicted (summed over layers and KV heads)
    kv_masked: int | None = None  # context KV entries kept in memory but hidden from attention
    kv_entries: int | None = None  # KV entries held (summed over layers and KV heads) when the answer ended
    # Model calls made for this answer: one for plain generation; a prompt-level method (retrieve then
    # answer, read chunks in turn) may make several, and input/output tokens are then summed over them.
    calls: int = 1
    reused_tokens: int | None = None  # prompt tokens answered from a cache another request had filled
    # The share of the gold evidence inside what a retrieval method sent (None: no retrieval, or no known evidence).
    retrieval_recall: float | None = None
    # KV bytes a method that selects blocks per step read into attention, averaged over the answer's decode steps.
    kv_bytes_loaded: int | None = None
    # The share of the prefill's causal attention score work a sparse prefill did not compute.
    attention_flops_skipped: float | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared rather than probed: the runner, methods and executors read these."""

    # A model in this process whose attention and KV cache a method may change (``Backend.session`` works).
    in_process_model: bool = False
    # Where token counts come from: "model" (the model's own tokenizer), "server" (the server's tokenize
    # endpoint), "local" (a tokenizer named by the user) or "estimate" (a character heuristic).
    tokenization: str = "model"
    max_concurrency: int = 1  # requests worth having in flight at once (an HTTP server batches them)
    streaming: bool = False  # time to first token is measured apart from decode

    @property
    def exact_tokens(self) -> bool:
        return self.tokenization != "estimate"


@runtime_checkable
class Backend(Protocol):
    """A model behind one interface. ``render`` and ``count_tokens`` are what exact-length fitting relies on."""

    kind: str
    model_name: str
    model_revision: str
    context_window: int
    capabilities: Capabilities

    def render(self, messages: list[dict[str, str]], answer_prefix: str = "", chat: bool = True) -> str:
        """The full prompt text the model will read, chat template applied (unless ``chat`` is False: then
        the messages' text as it is, after the BOS the tokenizer would add), answer prefix appended."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model will see it (no special tokens added beyond those in the text)."""

    def decode(self, ids: list[int]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def count_tokens_batch(self, texts: list[str]) -> list[int]: ...

    def tokenizer_fingerprint(self) -> str:
        """A stable hash of the tokenizer and chat template; part of every sample cache key."""

    def special_token_strings(self) -> list[str]:
        """Strings that would become special tokens; a haystack must never contain them."""

    def generate(self, request: GenerationRequest) -> Generation: ...

    def session(self, method: Any) -> Session:
        """A shared-context session running an in-model method; only where ``capabilities.in_process_model``."""


@runtime_checkable
class Session(Protocol):
    """One context prefilled once (through an in-model method), many requests answered on that cache."""

    def ask(self, request: GenerationRequest, keep: str = "context") -> Generation:
        """``keep="context"``: back to the context after answering; ``"prompt"``: keep the conversation."""


# ---------------------------------------------------------------------------------------------------------
# Result rows


@dataclass
class Result:
    """One finished (or failed) sample: the row the store keeps and the analyses read."""

    key: str
    sample_id: str
    task: str
    length: int
    depth: float | None
    seed: int
    turn: int
    status: str  # "ok" or "failed"
    prediction: str = ""
    score: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    wall_s: float | None = None
    kv_bytes: int | None = None
    peak_memory_bytes: int | None = None
    finish_reason: str | None = None
    attempts: int = 1
    error: str | None = None
    backend: str = ""
    model: str = ""
    model_revision: str = ""  # commit hash, file hash or checksum: which weights produced this row
    method: str = "full"
    realised_tokens: int | None = None
    diffusion: float | None = None
    scope: float | None = None
    details: str | None = None  # JSON of the scorer's sub-scores, e.g. {"kendall_tau": 0.6}
    truncation: str | None = None  # the policy applied to an over-long sample, or "none"
    retries: int | None = None  # requests the backend resent (HTTP errors) for the answer that was kept
    mode: str = "independent"  # independent, multi-request or multi-turn (how turns share one context)
    kv_removed: int | None = None
    kv_masked: int | None = None
    kv_entries: int | None = None
    calls: int | None = None  # model calls made for the answer (a prompt-level method may make several)
    reused_tokens: int | None = None  # prompt tokens answered from a cache another request filled
    retrieval_recall: float | None = None  # share of the gold evidence in what a retrieval method sent
    past_window: bool | None = None  # the length is above the model's trained window (a method reads past it)
    # The difficulty plane measured on the sample's evidence (None where the evidence is not known): the share of
    # the context's units it needs, and 1 - the mean reciprocal rank of those units under each retriever.
    measured_scope: float | None = None
    measured_diffusion_bm25: float | None = None
    measured_diffusion_dense: float | None = None
    kv_bytes_loaded: int | None = (
        None  # KV bytes a selecting method read per decode step (mean over the answer)
    )
    attention_flops_skipped: float | None = None  # share of the prefill's causal attention work not computed
    # The output's own text (scoring/output_measures.py): its words (characters for CJK text) and the share of
    # its word 4-grams that repeat an earlier one.
    output_words: int | None = None
    repetition: float | None = None
    # The judge's share of a judged row, counted apart from the evaluated model's (None: no judge graded it).
    judge: str | None = None  # the judge's identity, kind:model@revision
    judge_input_tokens: int | None = None
    judge_output_tokens: int | None = None
    judge_calls: int | None = None  # 0 when the judgement came from the judge's cache
    judge_s: float | None = None
    judge_cost: float | None = None  # None where the judge URI gives no prices
    # The weights' number format in an in-process model ("fp32", "bf16"); None for backends that do not say.
    weight_precision: str | None = None


# ---------------------------------------------------------------------------------------------------------
# Registries


T = TypeVar("T")


class Registry(Generic[T]):
    """Names to members of one family (tasks, scorers, backends); unknown names fail with what exists."""

    def __init__(self, family: str, loader: Callable[[], None] | None = None) -> None:
        self.family = family
        self._items: dict[str, T] = {}
        # Fills the registry on first use: discovering members may import heavy modules (torch), which a
        # command that never looks them up should not pay for.
        self._loader = loader

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def add(self, name: str, item: T) -> None:
        self.register(name)(item)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise UsageError(f"unknown {self.family} {name!r}; known {self.family}s: {known}") from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())


# ---------------------------------------------------------------------------------------------------------
# In-process models


@runtime_checkable
class InProcessModel(Protocol):
    """What a KV session and in-model methods may use of a backend whose model runs in this process
    (``capabilities.in_process_model``): the model, its device, and the steps of generation around it."""

    model: Any  # a transformers causal LM
    device: Any  # the torch device the model's weights are on
    eos_ids: set[int]

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def prepare(self, request: GenerationRequest, *, past_window: bool = False) -> tuple[str, list[int], Any]:
        """The rendered prompt, its token ids and the sampler's generator (None when greedy); a request above
        the model window fails unless the method reads past it (``past_window``)."""

    def pick(self, logits: Any, temperature: float, generator: Any) -> int:
        """The next token from one position's logits: argmax when greedy, else sampled with ``generator``."""

    def sync(self) -> None:
        """Wait for the device's queued work, so that a timer read next measures it."""
