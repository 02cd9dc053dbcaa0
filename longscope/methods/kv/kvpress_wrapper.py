"""kvpress's presses as KV methods: the method around a press, and ``kvpress:PressName(arg=value):RATIO``.

The presses are kvpress's own objects, run the way kvpress's pipeline runs them: ``with press(model):`` around
the context's prefill through ``model.model``, the question and answer at their true positions afterwards. This
module adds only what the session needs around them: the press's ratio set per sample so that a ratio or a
budget keeps exactly the promised entries, eager attention for presses that read attention weights, the masks
of head-wise presses (AdaKV) installed only while this method attends, and decoding presses kept active while
the answer is generated.

kvpress is imported lazily (its import takes seconds and patches every attention function of transformers), so
listing the methods or starting the CLI never pays for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from longscope.core import Backend, Generation, GenerationRequest, Sample, UsageError
from longscope.methods.base import ContextState, KVMethod, SessionSolver, Solver, layer_lengths
from longscope.methods.kv._press_lookup import (
    DECODING_ONLY,
    NEEDS_QUESTION,
    NO_RATIO,
    check_arguments,
    check_tree,
    instantiate,
    kvpress,
    press_class_name,
    press_classes,
    split_press,
    takes_ratio,
    walk,
)

SPEC_PREFIX = "kvpress"


@dataclass(frozen=True)
class PressMethod(KVMethod):
    """A KV method that runs one kvpress press (see the module docstring); subclasses say which press.

    ``query_aware``: the question is prefilled and compressed together with the context, as kvpress's
    evaluation does with ``--query_aware`` (its context becomes context + question, its question empty); only
    the chat template's turn end and the answer prefix run over the compressed cache. Each question then
    prefills its own context: nothing is shared between the questions of a sample."""

    query_aware: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        name = self.press_spec()[0]
        if self.query_aware and name in DECODING_ONLY:
            raise UsageError(
                f"method {self.label()}: kvpress:{name} compresses while the answer is decoded, not the "
                "prefill, so query_aware=true cannot change what it keeps; drop query_aware"
            )
        if not self.query_aware and name in NEEDS_QUESTION:
            raise UsageError(
                f"method {self.label()}: kvpress:{name} cannot run here without the question: "
                f"{NEEDS_QUESTION[name]}; add query_aware=true"
            )

    def press_spec(self) -> tuple[str, dict[str, Any]]:
        """The kvpress class name and its arguments (the ratio apart)."""
        raise NotImplementedError

    def solver(self, backend: Backend, mode: str) -> Solver:
        if self.query_aware:
            return QuestionInPrefill(backend, self, mode)
        return super().solver(backend, mode)

    def make_press(self, context_tokens: int | None = None) -> Any:
        """A fresh press; for ``context_tokens`` its ratio keeps exactly ``kept(context_tokens)`` entries."""
        name, args = self.press_spec()
        press = instantiate(name, args)
        if context_tokens is not None and takes_ratio(name):
            press.compression_ratio = self.effective_ratio(context_tokens)
        return press

    def _check_amount(self, name: str) -> None:
        if not self.removes_nothing and not takes_ratio(name):
            amount = f"budget={self.budget}" if self.budget is not None else f"{self.ratio:g}"
            raise UsageError(
                f"method {self.label()}: kvpress:{name} takes no ratio or budget (:{amount}); {NO_RATIO[name]}"
            )

    def check_backend(self, backend: Backend) -> None:
        """Build the press once, so kvpress's own objections come before any sample runs."""
        super().check_backend(backend)
        name, _ = self.press_spec()
        self._check_amount(name)
        check_tree(self.make_press())

    # -- the session's hooks ---------------------------------------------------------------------------

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        package = kvpress()
        n = int(input_ids.shape[1])
        press = self.make_press(n)
        if isinstance(press, package.FinchPress):
            _size_finch_window(press, n, self.label())
        ratio = getattr(press, "compression_ratio", None) if takes_ratio(self.press_spec()[0]) else None
        eager = ratio != 0 and any(isinstance(p, package.ObservedAttentionPress) for p in walk(press))
        # As kvpress's pipeline: decoding presses compress only while the answer is generated.
        at_prefill = not isinstance(press, package.DecodingPress)
        try:
            with (
                _attention(model, "eager" if eager else None),
                press(model) if at_prefill else contextlib.nullcontext(),
            ):
                model.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        except AssertionError as exc:
            raise RuntimeError(f"{self.label()}: kvpress refused a context of {n} tokens: {exc}") from exc
        finally:
            masks = _take_masks(model)
        state = ContextState(cache=cache, context_tokens=n, layer_lengths=layer_lengths(cache))
        state.extra["press"] = press
        if any(m is not None for m in masks):
            state.extra["masks"] = masks
        if _decodes(press):
            state.extra["snapshot"] = [(layer.keys, layer.values) for layer in cache.layers]
        rerotated = isinstance(press, package.FinchPress) and press.rerotate_keys
        if rerotated or isinstance(press, (package.KeyRerotationPress, package.RestoreKVPress)):
            # These presses re-rotate the kept keys to positions 0..kept-1; kvpress's pipeline then places the
            # question right after the compressed cache instead of after the original context.
            state.extra["position_shift"] = n - cache.get_seq_length()
        return state

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        masks = state.extra.get("masks")
        shift = state.extra.get("position_shift", 0)
        press = state.extra.get("press")
        with contextlib.ExitStack() as stack:
            if masks:
                _require_patched_attention(model, self.label())
                for module, mask in zip(_attention_modules(model), masks, strict=True):
                    module.masked_key_indices = mask
                stack.callback(_take_masks, model)
            if shift:
                hook = _language_model(model).register_forward_pre_hook(
                    functools.partial(_shift_positions, shift), with_kwargs=True
                )
                stack.callback(hook.remove)
            if press is not None and _decodes(press):
                stack.enter_context(press(model))
            yield

    def restore(self, state: ContextState) -> None:
        snapshot = state.extra.get("snapshot")
        if snapshot is None:
            super().restore(state)
            return
        # A decoding press rewrote the cache while answering: go back to the tensors the prefill left.
        for layer, (keys, values) in zip(state.cache.layers, snapshot, strict=True):
            layer.keys, layer.values = keys, values

    def drop_last(self, state: ContextState, tokens: int) -> None:
        if "snapshot" in state.extra:
            raise RuntimeError(
                f"{self.label()}: a decoding press rewrites the cache while answering, so a conversation "
                "cannot continue on it; as in kvpress's pipeline, it answers one question per context"
            )
        super().drop_last(state, tokens)

    def masked_entries(self, state: ContextState) -> int:
        """Entries head-wise presses (AdaKV) keep in memory but hide from attention."""
        return sum(int(mask[0].numel()) for mask in state.extra.get("masks") or () if mask is not None)


# The question's tokens at the end of the prefill a query-aware answer is running (set around one answer).
_QUESTION_TOKENS: contextvars.ContextVar[int | None] = contextvars.ContextVar("question_tokens", default=None)


class QuestionInPrefill(SessionSolver):
    """The session's solver for a query-aware method: the prefill it compresses ends after the question, not
    after the context (the request's shared ``context`` is widened to the whole last user message)."""

    def answer(self, sample: Sample, turn: int, request: GenerationRequest) -> Generation:
        user = [m["content"] for m in request.messages if m["role"] == "user"]
        if not user:
            raise RuntimeError(f"{self.method.label()}: a query-aware request needs a user message")
        widened = dataclasses.replace(request, context=user[-1])
        if self.session is None or not self.shared:
            self.session = self.backend.session(self.method)
        token = _QUESTION_TOKENS.set(self._question_tokens(request, widened))
        try:
            return self.session.ask(widened, keep=self.keep)
        finally:
            _QUESTION_TOKENS.reset(token)

    def _question_tokens(self, request: GenerationRequest, widened: GenerationRequest) -> int | None:
        """Tokens between the end of the sample's context and the end of the question (FinchPress's window)."""
        if not request.context:
            return None
        prompt, ids, _ = self.backend.prepare(request, past_window=self.method.extends_window)
        session = self.session
        return session.split(prompt, ids, widened.context) - session.split(prompt, ids, request.context)


def _size_finch_window(press: Any, prefill_tokens: int, label: str) -> None:
    """FinchPress finds its window (the question) from a delimiter token that kvpress's evaluation adds to the
    tokenizer and embeds, then cuts out of the embeddings again. The model sees the same embeddings without it,
    so the window is set from the question's token count instead and the delimiter search is given an id no
    tokenizer yields: the model and the tokenizer stay as they are."""
    window = _QUESTION_TOKENS.get()
    if not window or window >= prefill_tokens:
        raise RuntimeError(
            f"{label}: FinchPress needs the question inside the prefill after the context; run it query-aware "
            "on a sample whose prompt holds its context"
        )
    press.delimiter_token_id = -1
    press.window_size = window


def _decodes(press: Any) -> bool:
    package = kvpress()
    if isinstance(press, package.DMSPress):
        return bool(press.decoding)
    return isinstance(press, (package.DecodingPress, package.PrefillDecodingPress))


def _language_model(model: Any) -> Any:
    inner = model.model
    return inner.language_model if hasattr(inner, "language_model") else inner


def _attention_modules(model: Any) -> list[Any]:
    return [layer.self_attn for layer in _language_model(model).layers]


def _take_masks(model: Any) -> list[Any]:
    """The head-wise masks a press left on the attention modules, removed from them so that nothing else run on
    this model (another method, a plain generate) is masked by a press that is not attending."""
    masks = []
    for module in _attention_modules(model):
        masks.append(getattr(module, "masked_key_indices", None))
        module.masked_key_indices = None
    return masks


def _require_patched_attention(model: Any, label: str) -> None:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    implementation = model.config._attn_implementation
    function = ALL_ATTENTION_FUNCTIONS.get(implementation)
    if function is None or "attention_patch" not in getattr(function, "__qualname__", ""):
        raise RuntimeError(
            f"{label}: the press masks entries head by head through kvpress's attention patch, which does not "
            f"cover {implementation!r} attention; load the model with sdpa attention"
        )


def _shift_positions(shift: int, module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    positions = kwargs.get("position_ids")
    if positions is not None:
        kwargs["position_ids"] = positions - shift
    return args, kwargs


@contextlib.contextmanager
def _attention(model: Any, implementation: str | None) -> Iterator[None]:
    """Run the model with another attention implementation (eager: the one that returns attention weights),
    and put the previous one back afterwards, even on error."""
    if implementation is None:
        yield
        return
    previous = model.config._attn_implementation
    model.config._attn_implementation = implementation
    try:
        yield
    finally:
        model.config._attn_implementation = previous


# ---------------------------------------------------------------------------------------------------------
# Any press by its kvpress name


@dataclass(frozen=True)
class KVPress(PressMethod):
    """Any press kvpress ships, by class name: ``kvpress:TOVAPress:0.5``, ``kvpress:SnapKVPress(window_size=32)
    :budget=512``, ``kvpress:AdaKVPress(press=SnapKVPress,alpha_safeguard=0.1):0.5``. Nested presses are
    written as press specs; ComposedPress takes ``presses=A(...)+B(...)``."""

    name = "kvpress"
    description = "any kvpress press by class name: kvpress:PressName(arg=value,...):RATIO or :budget=N"
    press: str = ""
    args: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.press:
            raise UsageError(
                "method kvpress needs a press: write kvpress:PressName(arg=value,...):0.5; presses: "
                + ", ".join(sorted(press_classes()))
            )
        name = press_class_name(self.press)
        object.__setattr__(self, "press", name)  # the class name, however it was written
        check_arguments(name, dict(self.args), f"method kvpress:{name}")
        if "compression_ratio" in dict(self.args):
            raise UsageError(f"method {self.label()}: give the ratio after the colon (:0.5) or a budget")
        self._check_amount(name)
        check_tree(self.make_press())

    def press_spec(self) -> tuple[str, dict[str, Any]]:
        return self.press, dict(self.args)

    def label(self) -> str:
        text = f"kvpress:{self.press}"
        args = [*self.args, *((("query_aware", True),) if self.query_aware else ())]
        if args:
            text += f"({','.join(f'{k}={v}' for k, v in args)})"
        if self.budget is not None:
            return f"{text}:budget={self.budget}"
        if self.ratio is not None:
            return f"{text}:{self.ratio:g}"
        return text


def parse_spec(rest: str, spec: str) -> KVPress:
    """``kvpress:PressName(arg=value,...)`` with ``:0.5`` / ``:budget=N`` after it, or ``ratio=``/``budget=``
    (or kvpress's own ``compression_ratio=``) inside the parentheses."""
    from longscope.methods import build
    from longscope.spec import parse_amount

    if not rest.strip():
        return build(KVPress, {})  # refused, with the list of presses
    name, args, after = split_press(rest, "method kvpress")
    where = f"method kvpress:{name}"
    amount = parse_amount(after, where)
    for key in ("ratio", "compression_ratio", "budget"):
        if key in args:
            if amount:
                raise UsageError(f"{where}: give one ratio or one budget (in {spec!r})")
            amount.update(parse_amount(f"{'budget' if key == 'budget' else 'ratio'}={args.pop(key)}", where))
    query_aware = args.pop("query_aware", False)
    check_arguments(name, args, where)
    return build(KVPress, {"press": name, "args": tuple(args.items()), "query_aware": query_aware, **amount})
