"""A shared-context session on an in-process model: prefill (and compress) a context once, answer turns on it."""

from __future__ import annotations

import time
from typing import Any

import torch

from longscope.backends.decoding import decode_tokens
from longscope.backends.fast_decode import TokenFeeder
from longscope.backends.hf import reserve_cache
from longscope.backends.memory import PeakMemory
from longscope.backends.reasoning import strip_reasoning
from longscope.core import Generation, GenerationRequest, InProcessModel
from longscope.methods.base import ContextState, KVMethod, cache_bytes, kv_heads


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class KVSession:
    """One context, many questions. The prompt up to the end of the request's ``context`` is prefilled through
    the method (which may compress it) once; every later request whose prompt starts with the same tokens
    appends only what follows, at its true positions, so a compressed cache keeps the original position ids
    as kvpress's pipeline does.

    ``keep="context"`` (multi-request) cuts the cache back to the context after each answer; ``keep="prompt"``
    (multi-turn) keeps the conversation and drops only the generated tokens, so the next turn appends the
    gold reply and the next question to it.
    """

    def __init__(self, backend: InProcessModel, method: KVMethod) -> None:
        self.backend = backend
        self.method = method
        self.model = backend.model
        self.state: ContextState | None = None
        self.prefix: list[int] = []  # the context prompt's tokens, as prefilled
        self.logical: list[int] = []  # the tokens the cache stands for now (prefix + appended)
        self.reused = 0  # prompt tokens the last request answered from the cache

    # -- where the shared context ends ------------------------------------------------------------------

    def split(self, prompt: str, ids: list[int], context: str | None) -> int:
        """Tokens of the prompt up to the end of the context; at least one token is always left after it."""
        end = -1
        if context:
            at = prompt.find(context)
            end = at + len(context) if at >= 0 else -1
        if end < 0:
            return max(1, len(ids) - 1)
        head = self.backend.encode(prompt[:end])
        return max(1, min(common_prefix(head, ids), len(ids) - 1))

    def _reach(self, prompt: str, ids: list[int], context: str | None) -> ContextState:
        """Bring the cache to the longest usable prefix of ``ids``: the shared context (prefilled through the
        method once) plus whatever of the conversation is already there."""
        method = self.method
        split = self.split(prompt, ids, context)
        self.reused = 0
        if self.state is not None and ids[:split] == self.prefix:
            common = max(split, min(common_prefix(self.logical, ids), len(ids) - 1))
            if common < len(self.logical):
                method.drop_last(self.state, len(self.logical) - common)
            self.logical = ids[:common]
            self.reused = common  # prompt tokens this request found in the cache, prefilled by another
        else:
            cache = method.new_cache(self.model)
            self.state = method.prefill(
                self.model, torch.tensor([ids[:split]], device=self.backend.device), cache
            )
            self.prefix = ids[:split]
            self.logical = list(self.prefix)
        return self.state

    @torch.inference_mode()
    def next_token_logits(self, request: GenerationRequest) -> torch.Tensor:
        """The model's logits for the first answer token under the method, the cache restored afterwards:
        what tests compare across methods."""
        prompt, ids, _ = self.backend.prepare(request, past_window=self.method.extends_window)
        state = self._reach(prompt, ids, request.context)
        position = len(self.logical)
        with self.method.attending(self.model, state):
            logits = self._feed(state, ids[position:], position)
        self.method.restore(state)
        self.logical = list(self.prefix)
        return logits[0].float()

    def _feed(
        self, state: ContextState, tokens: list[int], position: int, one_at_a_time: bool | None = None
    ) -> torch.Tensor:
        """Run ``tokens`` (the question, or the next turn) over the cache at their true positions; the logits
        after the last one. When the method left layers of different lengths (PyramidKV), transformers
        builds one attention mask for every layer from the first layer's length, which cannot fit them all,
        so the tokens then go one at a time: a single query attends to whatever each layer holds. A method
        that masks attention from its own bookkeeping (``attends_uneven_layers``, LazyLLM) takes the chunk whole."""
        device = self.backend.device
        uneven = one_at_a_time
        if uneven is None:
            uneven = not self.method.attends_uneven_layers and (
                len({layer.get_seq_length() for layer in state.cache.layers}) > 1
            )
        steps = [[token] for token in tokens] if uneven else [tokens]
        for offset, step in enumerate(steps):
            start = position + (offset if uneven else 0)
            out = self.model(
                input_ids=torch.tensor([step], device=device),
                past_key_values=state.cache,
                position_ids=torch.arange(start, start + len(step), device=device).unsqueeze(0),
                use_cache=True,
                logits_to_keep=1,
            )
        return out.logits[:, -1, :]

    # -- answering --------------------------------------------------------------------------------------

    @torch.inference_mode()
    def ask(self, request: GenerationRequest, keep: str = "context") -> Generation:
        backend, model, method = self.backend, self.model, self.method
        prompt, ids, generator = backend.prepare(request, past_window=method.extends_window)
        device = backend.device

        started = time.perf_counter()
        # The prefill's peak memory: the context's prefill (unless it is shared already) and the question's.
        peak = PeakMemory(device).start()
        try:
            state = self._reach(prompt, ids, request.context)
        except BaseException:
            peak.stop()
            raise
        position = len(self.logical)

        with method.attending(model, state):
            try:
                logits = self._feed(state, ids[position:], position)
                token = backend.pick(logits, request.temperature, generator)
                backend.sync()
            finally:
                peak.stop()
            prefill_s = time.perf_counter() - started
            decode_started = time.perf_counter()
            # The one-token step where the method left the model as it is (no hooks, no patched attention):
            # the answer's room is reserved after the context's entries, which the step writes past.
            fast = backend.decode_step if getattr(backend, "decode_step", None) is not None else None
            if fast is not None and fast.usable() and request.max_new_tokens > 1:
                reserve_cache(state.cache, request.max_new_tokens)
            else:
                fast = None
            feed = TokenFeeder(model, fast, state.cache, len(ids), request.max_new_tokens, device)

            def step(fed: int) -> int:
                return backend.pick(feed(fed), request.temperature, generator)

            generated, text, finish = decode_tokens(
                token, step, backend.eos_ids.__contains__, backend.decode, request
            )
            backend.sync()
        decode_s = time.perf_counter() - decode_started
        kv_bytes = method.held_bytes(state) if hasattr(method, "held_bytes") else cache_bytes(state.cache)
        entries = held_entries(state.cache, model)
        masked = method.masked_entries(state)
        removed = max(
            0,
            state.context_tokens * len(state.layer_lengths) * kv_heads(model) - context_entries(state, model),
        )

        # Back to the state the next question starts from.
        self.logical = list(ids)
        if keep == "context":
            method.restore(state)
            self.logical = list(self.prefix)
        elif feed.fed:  # the generated tokens fed back after the prompt
            method.drop_last(state, feed.fed)
        return Generation(
            text=strip_reasoning(text),
            input_tokens=len(ids),
            output_tokens=len(generated),
            prefill_s=prefill_s,
            decode_s=decode_s,
            wall_s=time.perf_counter() - started,
            finish_reason=finish,
            kv_bytes=kv_bytes,
            peak_memory_bytes=peak.bytes,
            kv_removed=removed,
            kv_masked=masked,
            kv_entries=entries,
            reused_tokens=self.reused,
        )


def held_entries(cache: Any, model: Any) -> int:
    """KV entries in the cache now, summed over layers and KV heads."""
    return sum(layer.get_seq_length() for layer in cache.layers) * kv_heads(model)


def context_entries(state: ContextState, model: Any) -> int:
    """Entries the context left in the cache after the method's prefill, summed over layers and KV heads."""
    return sum(state.layer_lengths) * kv_heads(model)
