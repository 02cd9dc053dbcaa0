"""kvpress's presses as KV methods: short names for the common ones, ``kvpress:PressName(arg=value):RATIO`` for all.

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
import functools
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from longscope.core import Backend, UsageError
from longscope.methods.base import ContextState, KVMethod, layer_lengths

SPEC_PREFIX = "kvpress"

# Names a user may write for a press besides its class name (lower case, no dashes, no "press" suffix).
ALIASES = {"chunked": "ChunkPress", "h2o": "ObservedAttentionPress"}

# Presses that cannot run in a shared-context session, and why.
REFUSED = {
    "FinchPress": "it compresses with the question inside the prefill, after a delimiter token added to the "
    "tokenizer; longscope prefills the context alone",
}

# Presses whose compression is set by their own arguments, not by one fraction of the context's entries.
NO_RATIO = {
    "ThinKPress": "it zeroes key channels, not entries: set key_channel_compression_ratio=...",
    "SimLayerKVPress": "it compresses the layers it finds lazy: set lazy_threshold=... and n_recent=...",
    "DuoAttentionPress": "it turns whole heads into streaming heads: set head_compression_ratio=...",
    "PerLayerCompressionPress": "it takes one ratio per layer: set compression_ratios=0.2+0.5+...",
    "DMSPress": "it evicts entries whose score falls below threshold=...",
    "ComposedPress": "its presses carry their own ratios: presses=SnapKVPress(compression_ratio=0.3)+...",
    "DecodingPress": "it compresses while the answer is decoded, down to target_size=...",
    "CAMPress": "it compresses while the answer is decoded, down to target_size=...",
    "CompressionRatioDecodingPress": "it compresses while decoding, to target_compression_ratio=...",
    "PrefillDecodingPress": "its prefilling_press and decoding_press carry their own settings",
}

# Arguments that hold another press, written as a press spec: press=SnapKVPress(window_size=32).
PRESS_ARGS = ("press", "base_press", "prefilling_press", "decoding_press")
# Wrappers whose kvpress code cannot use attention weights (they assert so, or mask through the attention patch
# that eager attention bypasses): ObservedAttentionPress inside them would fail mid-run.
NO_ATTENTION_WEIGHTS = ("AdaKVPress", "CriticalAdaKVPress", "ChunkPress", "BlockPress", "ChunkKVPress")

_PRESS_SPEC = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*(?:\((.*)\))?\s*(?::\s*(.*?))?\s*$")


# ---------------------------------------------------------------------------------------------------------
# kvpress, imported on first use


@functools.cache
def kvpress() -> Any:
    """The kvpress package. Importing it wraps every attention function registered in transformers so that
    head-wise masks (``module.masked_key_indices``) take effect; the wrapper changes nothing for a module
    without masks, and this module installs masks only while a press method attends."""
    import kvpress as package

    return package


@functools.cache
def press_classes() -> dict[str, type]:
    """Every press kvpress exports, by class name (its two abstract bases left out)."""
    package = kvpress()
    base = package.BasePress
    found = {}
    for name in package.__all__:
        value = getattr(package, name)
        if isinstance(value, type) and issubclass(value, base) and name not in ("BasePress", "ScorerPress"):
            found[name] = value
    return found


def _normal(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    return key[: -len("press")] if key.endswith("press") and len(key) > len("press") else key


def press_class_name(text: str) -> str:
    """The kvpress class a name stands for: ``SnapKVPress``, ``snapkv``, ``streaming-llm``, ``chunked``."""
    classes = press_classes()
    if text in classes:
        name = text
    else:
        wanted = ALIASES.get(_normal(text), text)
        matches = [n for n in classes if n == wanted or _normal(n) == _normal(wanted)]
        if not matches:
            raise UsageError(f"unknown kvpress press {text!r}; presses: {', '.join(sorted(classes))}")
        name = matches[0]
    if name in REFUSED:
        raise UsageError(f"kvpress:{name} cannot run here: {REFUSED[name]}")
    return name


def press_arguments(name: str) -> list[str]:
    """The arguments a press takes (its constructor's, i.e. its dataclass fields), private ones left out."""
    signature = inspect.signature(press_classes()[name])
    return [p for p in signature.parameters if not p.startswith("_")]


def takes_ratio(name: str) -> bool:
    """True for presses that remove a fraction of the context's entries set by ``compression_ratio`` (their
    own field, or a wrapped press's through a property)."""
    if name in NO_RATIO:
        return False
    params = inspect.signature(press_classes()[name]).parameters
    return "compression_ratio" in params or "press" in params


def split_top(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside parentheses."""
    items, depth, current = [], 0, ""
    for char in text:
        if char == separator and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def split_press(text: str, where: str) -> tuple[str, dict[str, Any], str | None]:
    """``SnapKVPress(window_size=32):0.5`` → (class name, arguments unchecked, the text after the colon)."""
    from longscope.methods import parse_args

    match = _PRESS_SPEC.match(text)
    if not match:
        raise UsageError(
            f"{where}: cannot read press {text!r}; write PressName, PressName(arg=value,...) "
            "and for the method itself :RATIO or :budget=N after it"
        )
    name = press_class_name(match.group(1))
    return name, parse_args(match.group(2) or "", f"{where}:{name}"), match.group(3)


def parse_press(text: str, where: str = "kvpress") -> tuple[str, dict[str, Any]]:
    """A press spec with arguments the press takes (an inner press, or a wrapper's ``press=``)."""
    name, args, after = split_press(text, where)
    if after:
        raise UsageError(f"{where}: an inner press takes no :{after}; set its compression_ratio=... inside")
    check_arguments(name, args, f"{where}:{name}")
    return name, args


def check_arguments(name: str, args: dict[str, Any], where: str) -> None:
    accepted = press_arguments(name)
    for arg in args:
        if arg not in accepted:
            listed = ", ".join(sorted(accepted)) or "none"
            raise UsageError(f"{where}: unknown argument {arg!r}; {name} takes: {listed}")


def instantiate(name: str, args: dict[str, Any]) -> Any:
    """Build the kvpress press, nested presses included; its own checks become a UsageError."""
    kwargs = {}
    for arg, value in args.items():
        if arg in PRESS_ARGS and isinstance(value, str):
            value = instantiate(*parse_press(value, f"kvpress:{name}({arg})"))
        elif arg == "presses":
            value = [
                instantiate(*parse_press(item, "kvpress:ComposedPress"))
                for item in split_top(str(value), "+")
            ]
        elif arg == "compression_ratios":
            value = [float(item) for item in split_top(str(value), "+")]
        kwargs[arg] = value
    try:
        return press_classes()[name](**kwargs)
    except (AssertionError, TypeError, ValueError) as exc:
        raise UsageError(f"kvpress:{name} refused its arguments: {exc or type(exc).__name__}") from None


def _walk(press: Any) -> Iterator[Any]:
    """The press and every press inside it."""
    yield press
    for arg in PRESS_ARGS:
        inner = getattr(press, arg, None)
        if inner is not None and hasattr(inner, "forward_hook"):
            yield from _walk(inner)
    for inner in getattr(press, "presses", None) or ():
        yield from _walk(inner)


def _check_tree(press: Any) -> None:
    observed = press_classes()["ObservedAttentionPress"]
    for outer in _walk(press):
        if type(outer).__name__ in NO_ATTENTION_WEIGHTS and any(
            isinstance(inner, observed) for inner in _walk(outer)
        ):
            raise UsageError(
                f"kvpress:{type(outer).__name__} cannot wrap ObservedAttentionPress: it needs eager attention "
                "weights, which this wrapper cannot use; wrap a press that scores without them (snapkv)"
            )


# ---------------------------------------------------------------------------------------------------------
# The method around a press


@dataclass(frozen=True)
class PressMethod(KVMethod):
    """A KV method that runs one kvpress press (see the module docstring); subclasses say which press."""

    def press_spec(self) -> tuple[str, dict[str, Any]]:
        """The kvpress class name and its arguments (the ratio apart)."""
        raise NotImplementedError

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
        _check_tree(self.make_press())

    # -- the session's hooks ---------------------------------------------------------------------------

    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        package = kvpress()
        n = int(input_ids.shape[1])
        press = self.make_press(n)
        ratio = getattr(press, "compression_ratio", None) if takes_ratio(self.press_spec()[0]) else None
        eager = ratio != 0 and any(isinstance(p, package.ObservedAttentionPress) for p in _walk(press))
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
        if isinstance(press, (package.KeyRerotationPress, package.RestoreKVPress)):
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
        _check_tree(self.make_press())

    def press_spec(self) -> tuple[str, dict[str, Any]]:
        return self.press, dict(self.args)

    def label(self) -> str:
        text = f"kvpress:{self.press}"
        if self.args:
            text += f"({','.join(f'{k}={v}' for k, v in self.args)})"
        if self.budget is not None:
            return f"{text}:budget={self.budget}"
        if self.ratio is not None:
            return f"{text}:{self.ratio:g}"
        return text


def parse_spec(rest: str, spec: str) -> KVPress:
    """``kvpress:PressName(arg=value,...)`` with ``:0.5`` / ``:budget=N`` after it, or ``ratio=``/``budget=``
    (or kvpress's own ``compression_ratio=``) inside the parentheses."""
    from longscope.methods import build, parse_amount

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
    check_arguments(name, args, where)
    return build(KVPress, {"press": name, "args": tuple(args.items()), **amount})


# ---------------------------------------------------------------------------------------------------------
# Short names for the common presses. Their parameters are the press's own; None leaves kvpress's default.


@dataclass(frozen=True)
class NamedPress(PressMethod):
    """A press under a short registry name; its dataclass fields other than ratio/budget are press arguments."""

    press_class: ClassVar[str] = ""

    def press_spec(self) -> tuple[str, dict[str, Any]]:
        args = {
            key: value
            for key, value in vars(self).items()
            if key not in ("ratio", "budget") and value is not None
        }
        return self.press_class, args


@dataclass(frozen=True)
class SnapKV(NamedPress):
    name = "snapkv"
    description = "SnapKV (kvpress): keeps the entries the last window of the context attends to most"
    press_class = "SnapKVPress"
    window_size: int | None = None
    kernel_size: int | None = None


@dataclass(frozen=True)
class StreamingLLM(NamedPress):
    name = "streaming-llm"
    description = (
        "StreamingLLM (kvpress): the first n_sink entries (attention sinks) and the most recent ones"
    )
    press_class = "StreamingLLMPress"
    n_sink: int | None = None


@dataclass(frozen=True)
class ExpectedAttention(NamedPress):
    name = "expected-attention"
    description = (
        "Expected Attention (kvpress): scores entries by the attention future queries are expected to give"
    )
    press_class = "ExpectedAttentionPress"
    n_future_positions: int | None = None
    n_sink: int | None = None
    use_covariance: bool | None = None
    use_vnorm: bool | None = None
    epsilon: float | None = None


@dataclass(frozen=True)
class Knorm(NamedPress):
    name = "knorm"
    description = "Knorm (kvpress): keeps the entries whose keys have the smallest norm"
    press_class = "KnormPress"


@dataclass(frozen=True)
class TOVA(NamedPress):
    name = "tova"
    description = "TOVA (kvpress): keeps the entries the last context token attends to most"
    press_class = "TOVAPress"


@dataclass(frozen=True)
class PyramidKV(NamedPress):
    name = "pyramidkv"
    description = (
        "PyramidKV (kvpress): SnapKV with more entries in lower layers; the total over layers is kept"
    )
    press_class = "PyramidKVPress"
    window_size: int | None = None
    kernel_size: int | None = None
    beta: int | None = None

    def effective_ratio(self, context_tokens: int) -> float:
        """PyramidKV splits ``n × (1 − r)`` over the layers and rounds each share; an exact ``1 − kept/n`` makes
        the shares add up to exactly ``kept`` per layer on average (its fallback, too, rounds rather than
        truncates)."""
        keep = self.kept(context_tokens)
        return 0.0 if keep >= context_tokens else 1.0 - keep / context_tokens


@dataclass(frozen=True)
class ObservedAttention(NamedPress):
    name = "observed-attention"
    description = (
        "observed attention / H2O (kvpress): the entries the context attended to most; eager prefill"
    )
    press_class = "ObservedAttentionPress"


@dataclass(frozen=True)
class WrapperPress(NamedPress):
    """A press that wraps another: ``press`` is the inner press's short name or kvpress name with arguments,
    e.g. ``adakv(press=snapkv(window_size=32)):0.5``."""

    press: str = "snapkv"

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_press(self.press, f"method {self.name}")  # an unknown inner press fails here, with the list
        _check_tree(self.make_press())


@dataclass(frozen=True)
class AdaKV(WrapperPress):
    name = "adakv"
    description = (
        "AdaKV (kvpress) around a scorer press (default snapkv): a budget shared across heads; "
        "dropped entries are masked, not removed"
    )
    press_class = "AdaKVPress"
    alpha_safeguard: float | None = None


@dataclass(frozen=True)
class Chunked(WrapperPress):
    name = "chunked"
    description = "ChunkPress (kvpress): a scorer press (default snapkv) applied to each chunk of the context"
    press_class = "ChunkPress"
    chunk_length: int | None = None
