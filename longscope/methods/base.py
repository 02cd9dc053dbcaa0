"""What every long-context method is: a ratio or a budget, a label, checks, the solver it answers with, and
the two kinds' hooks: in-model methods change the KV cache of an in-process session; prompt-level methods turn
one request into the calls they choose, on any backend."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError


class Solver(Protocol):
    """How a method answers the turns of one sample on one backend; the executor starts one per sample (and
    again after a failure, so a retry never sees a half-updated state)."""

    def answer(self, sample: Sample, turn: int, request: GenerationRequest) -> Generation: ...


@dataclass(frozen=True)
class Method:
    """A long-context strategy, configured by how much of the context's KV cache it drops (or hides).

    ``ratio`` is the fraction of the context's entries removed or masked, in [0, 1); ``budget`` the number of
    context entries kept instead. One of the two, or neither (the method's own default). Subclasses are
    dataclasses whose extra fields are the method's own parameters.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    in_model: ClassVar[bool] = True  # changes attention or the KV cache: needs an in-process backend
    # True when the method lets the model read past its trained window (attention sinks + local window).
    extends_window: ClassVar[bool] = False
    ratio: float | None = None
    budget: int | None = None

    def __post_init__(self) -> None:
        if self.ratio is not None and self.budget is not None:
            raise UsageError(f"method {self.name}: give a ratio or a budget, not both")
        if self.ratio is not None and not 0.0 <= self.ratio < 1.0:
            raise UsageError(
                f"method {self.name}: ratio {self.ratio:g} is outside [0, 1); it is the fraction of the "
                "context's KV entries dropped, e.g. snapkv:0.5"
            )
        if self.budget is not None and self.budget < 1:
            raise UsageError(f"method {self.name}: budget must be at least 1 token (got {self.budget})")

    # -- naming ----------------------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The method's own parameters that differ from their defaults (ratio and budget apart)."""
        defaults = {
            f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING
        }
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("ratio", "budget") and getattr(self, f.name) != defaults.get(f.name)
        }

    def label(self) -> str:
        """The name a row is stored under: ``snapkv:0.5``, ``snapkv:budget=1024``, ``squeezed(levels=2):0.25``."""
        opts = self.options()
        text = self.name + (f"({','.join(f'{k}={v}' for k, v in opts.items())})" if opts else "")
        if self.budget is not None:
            return f"{text}:budget={self.budget}"
        if self.ratio is not None:
            return f"{text}:{self.ratio:g}"
        return text

    # -- how much of the context is kept ---------------------------------------------------------------

    @property
    def removes_nothing(self) -> bool:
        return self.budget is None and not self.ratio

    def kept(self, context_tokens: int) -> int:
        """Context entries kept (per layer and KV head): the budget, or ``int(n × (1 − ratio))`` as kvpress."""
        if self.budget is not None:
            return min(self.budget, context_tokens)
        return int(context_tokens * (1.0 - (self.ratio or 0.0)))

    def effective_ratio(self, context_tokens: int) -> float:
        """The ratio that keeps exactly ``kept(context_tokens)`` entries under kvpress's ``int(n × (1 − r))``:
        half an entry of slack keeps float error from rounding the count down."""
        keep = self.kept(context_tokens)
        if keep >= context_tokens:
            return 0.0
        return (context_tokens - keep - 0.5) / context_tokens

    # -- checks before any sample runs -----------------------------------------------------------------

    def check_backend(self, backend: Backend) -> None:
        if self.in_model and not backend.capabilities.in_process_model:
            raise UsageError(
                f"method {self.label()} changes the model's attention or KV cache and needs an in-process "
                f"model (smollm2 or hf:PATH); {backend.kind} backends accept only prompt-level methods and full"
            )

    def extended_window(self, trained: int) -> int | None:
        """The longest input (tokens) this method claims to read on a model trained to ``trained`` tokens; None
        when it does not read past the trained window. The plan refuses lengths above the largest claim."""
        return None

    def check_context(self, context_tokens: int, sample_id: str) -> None:
        if self.budget is not None and self.budget > context_tokens:
            raise UsageError(
                f"method {self.label()}: budget {self.budget} is larger than the context of {sample_id} "
                f"({context_tokens} tokens); give a budget below {context_tokens} or a ratio"
            )

    def check_mode(self, mode: str) -> None:
        """Raise a UsageError when this method cannot run in a session mode (one that keeps a cache across
        turns, run on independent turns), before any sample is built. The default runs in every mode."""

    def check_sample(self, sample: Sample, backend: Backend) -> None:
        """Raise a UsageError for a built sample this method cannot run (a budget above its context; a
        retrieval method's k above its chunks), before the store is touched. The default checks the budget."""
        if self.budget is not None:
            self.check_context(len(backend.encode(sample.context)), sample.id)

    # -- answering -------------------------------------------------------------------------------------

    def solver(self, backend: Backend, mode: str) -> Solver:
        """What answers a sample's turns in a session mode: ``independent`` (each turn re-reads the context),
        ``multi-request`` (the context state is shared) or ``multi-turn`` (one conversation)."""
        raise NotImplementedError


@dataclass
class ContextState:
    """What a KV method left after the context's prefill: the cache, how many context tokens went in, and
    whatever the method keeps for the question (cluster centroids, per-layer lengths)."""

    cache: Any
    context_tokens: int
    layer_lengths: list[int] = dataclasses.field(default_factory=list)  # physical entries per layer after it
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class KVMethod(Method):
    """An in-model method: hooks the in-process backend's prefill, attention and cache (see kv_session).

    The session calls ``new_cache`` → ``prefill`` once per context, then runs every question and answer token
    inside ``attending``; ``restore`` brings the cache back to the context state between questions.
    """

    # True when the method masks attention itself from its own bookkeeping of what each layer holds, so the
    # session may feed a multi-token chunk in one forward even when layers hold different lengths (transformers'
    # one causal mask, built from the first layer's length, is then never used).
    attends_uneven_layers: ClassVar[bool] = False

    def solver(self, backend: Backend, mode: str) -> Solver:
        return SessionSolver(backend, self, mode)

    def new_cache(self, model: Any) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=model.config)

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        """Run the context through the model into ``cache``; the default keeps every entry (``full``)."""
        model.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        return ContextState(
            cache=cache, context_tokens=int(input_ids.shape[1]), layer_lengths=layer_lengths(cache)
        )

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        """Active while question and answer tokens run over the cache; the default changes nothing."""
        yield

    def restore(self, state: ContextState) -> None:
        """Cut the cache back to the context state, as the prefill left it."""
        for layer, length in zip(state.cache.layers, state.layer_lengths, strict=True):
            layer.crop(length)

    def drop_last(self, state: ContextState, tokens: int) -> None:
        """Remove the last ``tokens`` appended after the context (the generated ones, or a stale turn)."""
        for layer in state.cache.layers:
            layer.crop(layer.get_seq_length() - tokens)

    def masked_entries(self, state: ContextState) -> int:
        """Context entries held but hidden from attention in the last step (summed over layers and heads)."""
        return 0

    def measurements(self, state: ContextState) -> dict[str, Any]:
        """Generation fields this method measures itself, set on the answer after it (``kv_bytes_loaded``,
        ``attention_flops_skipped``); the default measures nothing beyond what every session records."""
        return {}


def layer_lengths(cache: Any) -> list[int]:
    return [layer.get_seq_length() for layer in cache.layers]


def cache_bytes(cache: Any) -> int:
    """Bytes held by the key and value tensors of a transformers cache object (either cache layout)."""
    import torch  # here, not at the top: naming methods must not load torch

    if cache is None:
        return 0
    tensors: list[torch.Tensor] = []
    layers = getattr(cache, "layers", None)
    if layers is not None:
        for layer in layers:
            tensors += [
                t for t in (getattr(layer, "keys", None), getattr(layer, "values", None)) if t is not None
            ]
    else:
        tensors += list(getattr(cache, "key_cache", [])) + list(getattr(cache, "value_cache", []))
    return int(sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor)))


def kv_heads(model: Any) -> int:
    config = model.config
    return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)


class SessionSolver:
    """Answers through the backend's in-process session: one session for a sample's turns when they share the
    context (multi-request restores it after each answer, multi-turn keeps the conversation), a fresh one per
    turn otherwise."""

    def __init__(self, backend: Backend, method: KVMethod, mode: str) -> None:
        self.backend, self.method = backend, method
        self.shared = mode != "independent"
        self.keep = "prompt" if mode in ("multi-turn", "multi-turn-own") else "context"
        self.session: Any = None

    def answer(self, sample: Sample, turn: int, request: GenerationRequest) -> Generation:
        if self.session is None or not self.shared:
            self.session = self.backend.session(self.method)
        generation = self.session.ask(request, keep=self.keep)
        measured = self.method.measurements(self.session.state)
        return dataclasses.replace(generation, **measured) if measured else generation


class PlainSolver:
    """One plain generation per turn: the whole prompt prefilled each time, as every backend can."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def answer(self, sample: Sample, turn: int, request: GenerationRequest) -> Generation:
        return self.backend.generate(request)


@dataclass(frozen=True)
class PromptMethod(Method):
    """A prompt-level method: it changes what is sent (a cut context, retrieved chunks, notes passed between
    calls), never the model, so it runs on every backend. ``answer`` receives the prepared sample, the turn's
    request and the backend, may make as many calls as it likes, and returns one Generation whose tokens,
    calls and time cover all of them (``combined``)."""

    in_model: ClassVar[bool] = False

    def answer(self, sample: Sample, turn: int, request: GenerationRequest, backend: Backend) -> Generation:
        raise NotImplementedError

    def solver(self, backend: Backend, mode: str) -> Solver:
        return PromptSolver(self, backend)


class PromptSolver:
    def __init__(self, method: PromptMethod, backend: Backend) -> None:
        self.method, self.backend = method, backend

    def answer(self, sample: Sample, turn: int, request: GenerationRequest) -> Generation:
        return self.method.answer(sample, turn, request, self.backend)


def combined(calls: list[Generation], text: str | None = None) -> Generation:
    """One answer's accounting over several model calls: tokens, time and retries summed, the peak memory the
    largest, the text the last call's unless given. KV figures are per call and are not summed."""
    if not calls:
        raise ValueError("a method answered without calling the model")
    last = calls[-1]
    peaks = [c.peak_memory_bytes for c in calls if c.peak_memory_bytes is not None]
    return Generation(
        text=last.text if text is None else text,
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        prefill_s=sum(c.prefill_s for c in calls),
        decode_s=sum(c.decode_s for c in calls),
        wall_s=sum(c.wall_s for c in calls),
        finish_reason=last.finish_reason,
        peak_memory_bytes=max(peaks) if peaks else None,
        retries=sum(c.retries for c in calls),
        calls=sum(c.calls for c in calls),
    )


def growing_cache(method: Any, model: Any) -> Any:
    """A cache of plain growing layers whatever the model's config says, for methods that hold their own token
    sets per layer (a config's sliding-window layers would evict what the method keeps); use it as
    ``new_cache = growing_cache`` in the method's class."""
    from transformers import DynamicCache

    return DynamicCache()
