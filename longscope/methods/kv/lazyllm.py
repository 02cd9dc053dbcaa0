"""``lazyllm``: LazyLLM's dynamic token pruning: at a few layers of every forward, the tokens the last token
attends least stop being computed for the layers after; a pruned token's hidden state waits in an auxiliary
cache and is revived from there when a later step selects it again."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface

from longscope.core import Backend, UsageError
from longscope.methods.base import ContextState, KVMethod, cache_bytes, growing_cache, layer_lengths
from longscope.methods.kv._attention_switch import attention_function
from longscope.methods.kv._sparse_prefill import check_replaceable

ATTENTION_NAME = "longscope_lazyllm"


@dataclass(frozen=True)
class LazyLLM(KVMethod):
    """LazyLLM (Fu et al., 2024, "LazyLLM: Dynamic Token Pruning for Efficient Long Context LLM Inference").

    Importance of token i at layer l is the attention the step's last token gives it, averaged over heads,
    s_i = (1/H) Σ_h A_h[last, i]. Pruning happens at ``stages`` layers spread evenly over the depth (layer
    ⌊k·L/(stages+1)⌋ for stage k): at stage k the tokens still active keep the best-scoring ones, scored at
    the layer before, up to a share f_k = 1 − (1 − f)·k/stages of the step's earlier tokens, f = kept(n)/n for
    the context of n tokens, so pruning grows sparser with depth and the last stage keeps ``kept(n)``. The step's
    last token is never pruned. A pruned token is neither computed nor attended in the layers after, in this
    step only: its hidden state (the input of the layer it was pruned at) goes to the Aux Cache, and when a
    later step (a question token, a generated one) selects it again at that layer, its hidden state comes back
    from there and it is computed from that layer on. Every token is so computed at most once per layer, and
    one never computed past a layer holds no KV entry there (``kv_removed`` counts the context's); cached
    entries the step did not select are left out of its attention (``kv_masked``). Ratio 0 prunes nothing: the
    logits of full. The attention masks itself from the tracked positions, so a question or a later turn goes
    in one forward whatever lengths the layers hold (``attends_uneven_layers``): that chunk is one step, pruned
    by its own last token, as the paper prunes a prompt; answer tokens are steps of one.

    Departures: the session prefills the shared context first, so the context's pruning follows its own last
    token rather than the question's; the question's step then revives what its last token selects (the paper
    prunes the whole prompt at once, by its last token). The paper leaves the pruning layers and shares as settings;
    this spacing and the linear schedule are longscope's. ``kv_bytes`` counts the Aux Cache's hidden states too.
    """

    name = "lazyllm"
    attends_uneven_layers = True
    description = (
        "LazyLLM: progressive pruning by the last token's attention, pruned tokens revived from an aux cache"
    )
    stages: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stages < 1:
            raise UsageError(f"method lazyllm: stages must be at least 1 (got {self.stages})")

    # -- the schedule ----------------------------------------------------------------------------------

    def pruning_layers(self, layers: int) -> dict[int, int]:
        """Layer → stage (1 … stages); layers too few for every stage keep the later (sparser) one."""
        plan: dict[int, int] = {}
        for stage in range(1, self.stages + 1):
            layer = stage * layers // (self.stages + 1)
            if 1 <= layer < layers:  # layer 0 has no layer before it to score with
                plan[layer] = stage
        return plan

    def keep_share(self, stage: int, context_tokens: int) -> float:
        final = self.kept(context_tokens) / context_tokens if context_tokens else 1.0
        return 1.0 - (1.0 - final) * stage / self.stages

    def check_backend(self, backend: Backend) -> None:
        super().check_backend(backend)
        if not backend.capabilities.in_process_model:
            return
        model = backend.model
        check_replaceable(self.label(), model, "prunes tokens between layers and attends")
        base = getattr(model, "model", None)
        if not hasattr(base, "layers") or not hasattr(base, "rotary_emb"):
            raise UsageError(
                f"method {self.label()} runs its own token sets through a decoder's layers and needs a "
                "Llama-style model (model.layers and a rotary embedding); use full or another KV method"
            )

    # -- the KV hooks ----------------------------------------------------------------------------------

    # Plain growing layers: each layer holds its own tokens, in the order they were computed.
    new_cache = growing_cache

    @torch.no_grad()
    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        context = int(input_ids.shape[1])
        self.check_context(context, "this request")
        layers = len(model.model.layers)
        state = ContextState(
            cache=cache,
            context_tokens=context,
            extra={"positions": [torch.empty(0, dtype=torch.long) for _ in range(layers)], "parked": {}},
        )
        positions = torch.arange(context, device=input_ids.device)[None]
        with self.attending(model, state):
            model.model(input_ids=input_ids, past_key_values=cache, position_ids=positions, use_cache=True)
        state.layer_lengths = layer_lengths(cache)
        state.extra["parked_lengths"] = {layer: len(p) for layer, (p, _) in state.extra["parked"].items()}
        return state

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        base = model.model
        run = _Run(self, state, base, self.pruning_layers(len(base.layers)))
        handles = [base.register_forward_pre_hook(run.start, with_kwargs=True)]
        handles += [
            layer.register_forward_pre_hook(run.before_layer(index), with_kwargs=True)
            for index, layer in enumerate(base.layers)
        ]
        try:
            with attention_function(model, ATTENTION_NAME, _ACTIVE, run):
                yield
        finally:
            for handle in handles:
                handle.remove()
            state.extra["masked_last"] = sum(run.masked.values())

    def measurements(self, state: ContextState) -> dict[str, Any]:
        """``attention_flops_skipped``: the share of the context prefill's query×key score work not done, against
        dense causal attention. In the prefill a layer computing r rows attends them causally: r(r+1)/2 pairs
        (the rows skipped save their MLP work too, as ``kv_removed`` counts)."""
        n = state.context_tokens
        if not n or not state.layer_lengths:
            return {}
        done = sum(rows * (rows + 1) // 2 for rows in state.layer_lengths)
        return {"attention_flops_skipped": 1.0 - done / (len(state.layer_lengths) * n * (n + 1) // 2)}

    def masked_entries(self, state: ContextState) -> int:
        return int(state.extra.get("masked_last", 0))

    def held_bytes(self, state: ContextState) -> int:
        """The KV entries held plus the Aux Cache's hidden states (the price of reviving without recomputing)."""
        parked = state.extra["parked"].values()
        return cache_bytes(state.cache) + sum(h.numel() * h.element_size() for _, h in parked)

    def restore(self, state: ContextState) -> None:
        """Entries computed after the prefill (questions, answers, revived tokens) were appended: crop them."""
        super().restore(state)
        positions = state.extra["positions"]
        for layer, length in enumerate(state.layer_lengths):
            positions[layer] = positions[layer][:length]
        lengths = state.extra["parked_lengths"]
        state.extra["parked"] = {
            layer: (p[: lengths.get(layer, 0)], h[: lengths.get(layer, 0)])
            for layer, (p, h) in state.extra["parked"].items()
        }

    def drop_last(self, state: ContextState, tokens: int) -> None:
        """Forget the newest ``tokens`` positions wherever they are held: revived entries sit after them."""
        positions = state.extra["positions"]
        if tokens <= 0 or positions[0].numel() == 0:
            return
        cut = int(positions[0].max()) + 1 - tokens
        for index, layer in enumerate(state.cache.layers):
            stay = positions[index] < cut
            if not bool(stay.all()):
                where = torch.nonzero(stay).flatten().to(layer.keys.device)
                layer.keys, layer.values = layer.keys[:, :, where], layer.values[:, :, where]
                positions[index] = positions[index][stay]
        state.extra["parked"] = {
            layer: (p[p < cut], h[(p < cut).to(h.device)]) for layer, (p, h) in state.extra["parked"].items()
        }


_ACTIVE: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("longscope_lazyllm", default=None)


class _Run:
    """The token sets of the forwards under one ``attending``: which positions are computed as rows and which
    are attended at each layer, the last token's attention to score with, and the Aux Cache.

    Positions are bookkept on the CPU. Invariant: a token is computed at layers 0 … s − 1 for some s (held in
    those layers' caches); if s < L, s is a pruning layer and its hidden state there is parked at s.
    """

    def __init__(self, method: LazyLLM, state: ContextState, base: Any, plan: dict[int, int]) -> None:
        self.method, self.state, self.base, self.plan = method, state, base, plan
        self.masked: dict[int, int] = {}
        self.rows = torch.empty(0, dtype=torch.long)  # positions computed at the current layer
        self.active = torch.empty(0, dtype=torch.bool)  # by position: attended at the current layer
        self.scores: torch.Tensor | None = None  # by position: the last row's attention at the layer before
        self.candidates = 0  # the step's tokens before its last one
        self.rotary: Any = None

    # -- hooks -----------------------------------------------------------------------------------------

    def start(self, _module: Any, args: tuple, kwargs: dict) -> None:
        """A forward begins: its rows are the fed tokens, and every token held at layer 0 is attended."""
        ids = kwargs.get("input_ids", args[0] if args else None)
        held = self.state.extra["positions"][0]
        position_ids = kwargs.get("position_ids")
        if position_ids is not None:
            self.rows = position_ids[0].to(device="cpu", dtype=torch.long)
        else:
            first = int(held.max()) + 1 if held.numel() else 0
            self.rows = torch.arange(first, first + ids.shape[1])
        length = int(max(self.rows.max(), held.max() if held.numel() else -1)) + 1
        self.active = torch.zeros(length, dtype=torch.bool)
        self.active[held] = True
        self.active[self.rows] = True
        self.candidates = int(self.active.sum()) - 1
        self.scores, self.rotary = None, None

    def before_layer(self, index: int):
        def hook(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            hidden = args[0] if args else kwargs.pop("hidden_states")
            if index in self.plan:
                hidden = self.prune(index, hidden)
            if self.rotary is None:
                self.rotary = self.base.rotary_emb(hidden, position_ids=self.rows.to(hidden.device)[None])
            kwargs["position_embeddings"] = self.rotary
            kwargs["position_ids"] = self.rows.to(hidden.device)[None]
            return (hidden, *args[1:]), kwargs

        return hook

    # -- pruning and revival ---------------------------------------------------------------------------

    def prune(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """Keep the step's best-scoring tokens for this layer on: rows not kept are parked here, parked
        tokens kept are revived as rows (placed before the others, so the last row stays the step's last)."""
        last = int(self.rows[-1])
        share = self.method.keep_share(self.plan[layer], self.state.context_tokens)
        target = int(self.candidates * share)
        eligible = self.active.clone()
        eligible[last] = False
        if self.scores is None or target >= int(eligible.sum()):
            return hidden
        keep = chosen(self.scores, eligible, target)
        keep[last] = True
        self.active = keep

        parked = self.state.extra["parked"]
        row_kept = keep[self.rows]
        if not bool(row_kept.all()):
            stored, states = parked.get(
                layer, (torch.empty(0, dtype=torch.long), hidden.new_empty(0, hidden.shape[-1]))
            )
            gone = torch.nonzero(~row_kept).flatten().to(hidden.device)
            parked[layer] = (torch.cat([stored, self.rows[~row_kept]]), torch.cat([states, hidden[0, gone]]))
        held = torch.zeros_like(keep)
        held[self.state.extra["positions"][layer]] = True
        revive = keep & ~held
        revive[self.rows] = False
        hidden = hidden[:, torch.nonzero(row_kept).flatten().to(hidden.device)]
        rows = self.rows[row_kept]
        if bool(revive.any()):
            stored, states = parked[layer]
            slot = torch.full((keep.numel(),), -1, dtype=torch.long)
            slot[stored] = torch.arange(stored.numel())
            wanted = torch.nonzero(revive).flatten()
            if bool((slot[wanted] < 0).any()):
                raise RuntimeError(f"lazyllm: layer {layer} needs a token that is neither held nor parked")
            hidden = torch.cat([states[slot[wanted].to(states.device)][None], hidden], dim=1)
            rows = torch.cat([wanted, rows])
        self.rows, self.rotary = rows, None
        return hidden

    # -- attention -------------------------------------------------------------------------------------

    def attend(
        self, module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float
    ):
        layer = int(module.layer_idx)
        positions = self.state.extra["positions"]
        held = positions[layer]
        key_positions = torch.cat([held, self.rows])
        if key_positions.numel() != key.shape[2]:
            raise RuntimeError(
                f"lazyllm: layer {layer} holds {key.shape[2]} entries but tracks {key_positions.numel()} positions"
            )
        positions[layer] = key_positions
        attended = torch.cat([self.active[held], torch.ones(self.rows.numel(), dtype=torch.bool)])
        context = self.state.context_tokens
        self.masked[layer] = int((~attended[: held.numel()] & (held < context)).sum()) * key.shape[1]
        if held.numel() == 0 and bool((self.rows[1:] > self.rows[:-1]).all()):
            # Nothing cached before and rows in order (a prefill): plain causal attention over the rows.
            keys, values, at = key, value, self.rows
            output = F.scaled_dot_product_attention(
                query, key, value, is_causal=True, scale=scaling, enable_gqa=True
            )
            mask = None
        else:
            where = torch.nonzero(attended).flatten()
            at = key_positions[where]
            device_where = where.to(key.device)
            keys, values = key[:, :, device_where], value[:, :, device_where]
            mask = (at[None, :] <= self.rows[:, None]).to(query.device)
            output = F.scaled_dot_product_attention(
                query, keys, values, attn_mask=mask, scale=scaling, enable_gqa=True
            )
        if layer + 1 in self.plan:
            self.scores = self.last_row_attention(query, keys, at, mask, scaling)
        return output.transpose(1, 2).contiguous(), None

    def last_row_attention(
        self, query: torch.Tensor, keys: torch.Tensor, at: torch.Tensor, mask: Any, scaling: float
    ) -> torch.Tensor:
        """By position: the step's last token's attention to each key it read, averaged over heads."""
        heads, kv_heads = query.shape[1], keys.shape[1]
        last = query[0, :, -1].float().reshape(kv_heads, heads // kv_heads, -1)  # (Hkv, G, D)
        logits = torch.einsum("hgd,hkd->hgk", last, keys[0].float()) * scaling
        if mask is not None:
            logits = logits.masked_fill(~mask[-1], float("-inf"))
        weights = logits.softmax(-1).mean((0, 1)).cpu()
        scores = torch.full((self.active.numel(),), float("-inf"))
        scores[at] = weights
        return scores


def chosen(scores: torch.Tensor, eligible: torch.Tensor, count: int) -> torch.Tensor:
    """By position: the ``count`` eligible tokens of highest score (earlier first among equals)."""
    ranked = torch.where(eligible, scores, float("-inf"))
    order = torch.argsort(-ranked, stable=True)[:count]
    keep = torch.zeros_like(eligible)
    keep[order] = True
    return keep


def _lazyllm_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    *_: Any,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The attention function under ``_attn_implementation = "longscope_lazyllm"``: the mask comes from the
    tracked positions and the step's token set, never from transformers' causal mask."""
    run = _ACTIVE.get()
    if run is None:
        raise RuntimeError("lazyllm attention is switched on outside LazyLLM.attending")
    if query.shape[0] != 1:
        raise ValueError("lazyllm runs one sequence at a time (batch size 1)")
    return run.attend(module, query, key, value, float(kwargs.get("scaling") or query.shape[-1] ** -0.5))


AttentionInterface.register(ATTENTION_NAME, _lazyllm_attention)
