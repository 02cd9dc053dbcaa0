"""The loss-by-position probe: token negative log-likelihood by position over the built-in essays, at given
lengths, under in-model methods, to set beside task scores (where perplexity and accuracy disagree)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from longscope.core import InProcessModel, UsageError
from longscope.haystack import corpus
from longscope.methods.base import KVMethod, Method

# The file the probe writes into a run directory, where the report finds it and draws it beside the scores.
PROBE_FILE = "probe-ppl.json"
# Essay sentences between two samples' starting points: different samples read different text.
_SAMPLE_STRIDE = 97


@dataclass(frozen=True)
class Curve:
    """Mean NLL (nats) of the tokens whose positions fall in each bin: bin k covers positions
    [k·bin_tokens, (k+1)·bin_tokens) of the sequence read. Position 0 has no prediction, so the first bin
    starts at position 1. When the tokenizer has a BOS token (``bos``) it is prepended at position 0 and the
    essay starts at position 1, so every essay token is predicted; without one the essay's first token sits
    at position 0 and goes unpredicted."""

    method: str
    length: int
    bin_tokens: int
    nll: list[float]
    tokens: list[int]  # predictions averaged in each bin (over samples)
    samples: int
    past_window: bool
    bos: bool = False  # whether a BOS token was prepended at position 0

    @property
    def mean(self) -> float:
        total = sum(self.tokens)
        return sum(n * t for n, t in zip(self.nll, self.tokens, strict=True)) / total if total else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "mean_nll": self.mean, "perplexity": math.exp(self.mean)}


def essay_ids(backend: InProcessModel, length: int, sample: int) -> list[int]:
    """``length`` tokens of the built-in essays, starting at a sentence that depends on the sample; the
    essays wrap around when one pass is shorter than the length."""
    essays = corpus("essay")
    start, count = sample * _SAMPLE_STRIDE, 64
    while True:
        ids = backend.encode("".join(essays.units(start, count)))
        if len(ids) >= length:
            return ids[:length]
        count *= 2


def reading_ids(backend: InProcessModel, length: int, sample: int) -> tuple[list[int], bool]:
    """The ``length`` tokens the probe reads: the tokenizer's BOS then ``length − 1`` essay tokens when it has
    a BOS (so the essay's first token is predicted from it), else ``length`` essay tokens; and whether a BOS
    was prepended."""
    bos = getattr(getattr(backend, "tokenizer", None), "bos_token_id", None)
    if bos is None:
        return essay_ids(backend, length, sample), False
    return [int(bos), *essay_ids(backend, length - 1, sample)], True


def token_nll(backend: InProcessModel, ids: list[int], method: KVMethod, chunk: int = 1024) -> Any:
    """NLL of ids[1:] each given the tokens before it, read through the method's hooks as a session would:
    the first token goes through its prefill, whose own logits predict the second (read from the model's
    final hidden state as the prefill computed it), and the rest go through ``attending`` in chunks at their
    true positions (so a compressing method compresses only that first token; position methods act
    throughout)."""
    import torch

    model, device = backend.model, backend.device
    if len(ids) < 2:
        raise UsageError(f"the probe needs at least 2 tokens (got {len(ids)})")
    out = []
    with torch.inference_mode():
        cache = method.new_cache(model)
        with _last_hidden_state(model) as hidden:
            state = method.prefill(model, torch.tensor([ids[:1]], device=device), cache)
        out.append(_nll(_logits(model, hidden[-1][0, -1:]), ids[1:2]))
        with method.attending(model, state):
            for start in range(1, len(ids) - 1, chunk):
                end = min(len(ids) - 1, start + chunk)
                logits = model(
                    input_ids=torch.tensor([ids[start:end]], device=device),
                    past_key_values=state.cache,
                    position_ids=torch.arange(start, end, device=device).unsqueeze(0),
                    use_cache=True,
                ).logits[0]
                out.append(_nll(logits, ids[start + 1 : end + 1]))
    return torch.cat(out)


def _nll(logits: Any, targets: list[int]) -> Any:
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)
    return -logprobs.gather(-1, torch.tensor(targets, device=logits.device)[:, None])[:, 0].cpu()


@contextlib.contextmanager
def _last_hidden_state(model: Any) -> Iterator[list[Any]]:
    """Collects the base model's final hidden states while active: a method's prefill runs ``model.model``
    and keeps only the cache, but its last position's state is what predicts the next token."""
    seen: list[Any] = []

    def keep(module: Any, args: Any, output: Any) -> None:
        seen.append(output[0] if isinstance(output, tuple) else output.last_hidden_state)

    handle = model.model.register_forward_hook(keep)
    try:
        yield seen
    finally:
        handle.remove()


def _logits(model: Any, hidden: Any) -> Any:
    """The language-model head over final hidden states, with the output soft-capping some models apply."""
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return logits if not cap else cap * (logits / cap).tanh()


def probe(
    backend: Any,
    lengths: list[int],
    methods: list[Method],
    samples: int = 2,
    bin_tokens: int = 512,
    on_curve: Callable[[Curve], None] | None = None,
) -> list[Curve]:
    """One curve per method and length, averaged over ``samples`` essay windows; ``on_curve`` is given each
    as it finishes (long readings take minutes each on a CPU). Lengths are capped like a run's: none above the
    longest window a method claims (the trained window when none claims more)."""
    import torch

    if samples < 1:
        raise UsageError(f"the probe needs at least 1 sample (got {samples})")
    if bin_tokens < 1:
        raise UsageError(f"the probe's bin must be at least 1 token (got {bin_tokens})")
    if not backend.capabilities.in_process_model:
        raise UsageError(
            "the probe reads the model's logits and needs an in-process model (smollm2 or hf:PATH)"
        )
    trained = int(backend.context_window)
    for method in methods:
        if not isinstance(method, KVMethod):
            raise UsageError(f"the probe runs in-model methods only; {method.label()} changes the prompt")
        method.check_backend(backend)
    reach = max([trained] + [m.extended_window(trained) or trained for m in methods if m.extends_window])
    for length in lengths:
        if length > reach:
            raise UsageError(
                f"length {length} is above the longest window of these methods ({reach} tokens, trained "
                f"window {trained}); use lengths up to {reach}"
            )
    curves = []
    for length in lengths:
        readings = [reading_ids(backend, length, sample) for sample in range(samples)]
        bins = math.ceil(length / bin_tokens)
        for method in methods:
            sums, counts = torch.zeros(bins, dtype=torch.float64), torch.zeros(bins, dtype=torch.long)
            for ids, _ in readings:
                nll = token_nll(backend, ids, method).double()
                where = torch.arange(1, len(ids)) // bin_tokens
                sums.index_add_(0, where, nll)
                counts.index_add_(0, where, torch.ones_like(where))
            means = (sums / counts.clamp(min=1)).tolist()
            curve = Curve(
                method=method.label(),
                length=length,
                bin_tokens=bin_tokens,
                nll=[m if c else math.nan for m, c in zip(means, counts.tolist(), strict=True)],
                tokens=counts.tolist(),
                samples=samples,
                past_window=length > trained,
                bos=readings[0][1],
            )
            curves.append(curve)
            if on_curve is not None:
                on_curve(curve)
    return curves
