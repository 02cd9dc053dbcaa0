"""``squeezed``: Squeezed Attention (Hooper et al., 2024): query-time selection of context key clusters;
nothing is evicted.

Offline, once per context (``prefill``):

- the context runs through the model as usual, and every context key stays in the cache;
- per layer and KV head, the context's post-RoPE keys are clustered with a small deterministic k-means (the
  official code clusters L2-normalised keys, i.e. spherical k-means, and represents a cluster by the mean of
  its raw keys: so do we). Initial centres are ``clusters`` distinct keys drawn by a generator seeded with
  ``seed``; then exactly ``iterations`` assignment/update rounds; an empty cluster keeps its previous centre
  (and has size 0, so it is never kept and never weighs in the softmax);
- a threshold is calibrated on the queries of the context's own last ``calibration_tokens`` tokens (the paper
  calibrates on sample queries from an observation window at the end of the fixed context; its code also
  leaves that window's keys out of the clusters and always attends to them: here every context key is
  clustered, so the kept fraction is the clusters' alone).

At query time (every question token and every generated token, each on its own), per layer and KV head:

- each cluster i gets the estimate the paper uses of the attention weight one of its keys receives,
  ``S_i = exp(q·C_i·s) / Σ_j N_j exp(q·C_j·s)`` (``s`` the layer's softmax scale, ``N_j`` the cluster sizes);
- GQA (our choice; the paper describes one query head per key head): a KV head's keys serve its whole group of
  query heads, so the group decides together: the cluster's score is the mean of ``S_i`` over the group's
  query heads (the group's average estimated attention weight per key), and the selection is the group's;
- every key of each cluster with ``S_i ≥ T`` is attended to, exactly (dense attention under a mask), along
  with every non-context token (question, earlier turns, generated tokens) under the usual causal rule.

The threshold ``T`` is one number for all layers and heads, as in the paper (heads whose attention is
spread get more keys than peaked ones). It is calibrated so that the *expected* kept fraction of the context,
averaged over the calibration queries, layers and KV heads, is ``kept(n) / n`` = 1 − ratio (or budget /
context): the (query, cluster) scores are sorted and ``T`` is the score at which the keys of the clusters
above it first reach that fraction (the paper takes a quantile of per-key window-averaged scores instead; ours
targets the per-query kept fraction directly). On the calibration queries the kept fraction therefore reaches
the target and exceeds it only by the keys of the last cluster admitted (and exact ties), out of the keys of
every (query, layer, head): practically exact (``state.extra["squeezed_calibrated_keep"]``). On the real
question tokens it is an estimate, not a promise: it varies per token, layer and head — read ``kv_masked``
(last step, summed over layers × KV heads) and ``state.extra["squeezed_masked_mean"]`` (mean over all query
tokens) for what really happened.

``levels=2`` adds the paper's hierarchical lookup: coarse centroids are a size-weighted k-means over the
fine centroids (a coarse centroid is then the mean of every key under it). A coarse cluster is scored like a
fine one, ``S¹_j = exp(q·C¹_j·s) / D¹``, ``D¹ = Σ_j N¹_j exp(q·C¹_j·s)``; fine clusters are looked at only
under coarse clusters with ``S¹ ≥ T¹``, and scored with the coarse denominator ``D¹`` (our choice: the point
of the hierarchy is that fine centroids outside the kept coarse clusters need no look-up, so the softmax
denominator comes from the coarse level). ``T¹`` is calibrated for an expected kept fraction of ``√keep``
(halfway, geometrically, between everything and the target); ``T²`` then for ``keep`` among the fine clusters
under kept coarse ones. Here every centroid is still scored (this simulates the selection's accuracy; the
paper's speed comes from its kernels, which longscope does not reproduce).

``ratio 0``, a budget of the whole context, or no ratio and no budget keep everything: no clustering, plain
attention. ``select_all`` runs the whole machinery with ``T = -inf`` (every cluster kept): it must give full
attention, and the tests check it does. Attention is switched to a registered function (transformers'
AttentionInterface) only inside ``attending``; the previous implementation is restored on exit. Batch size 1
(one context per session)."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from longscope.core import UsageError
from longscope.methods.base import ContextState, KVMethod, layer_lengths

ATTENTION_NAME = "longscope_squeezed"
MAX_DEFAULT_CLUSTERS = 1024
_CHUNK_ELEMENTS = 1 << 24  # one-hot / similarity blocks of at most 16M floats (64 MiB) during k-means


# -- k-means ------------------------------------------------------------------------------------------------


def _assign(unit: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the most similar centre for every point: (H, n, D) × (H, k, D) → (H, n), in blocks."""
    heads, n, _ = unit.shape
    step = max(1, _CHUNK_ELEMENTS // max(1, heads * centres.shape[1]))
    parts = [
        torch.matmul(unit[:, start : start + step], centres.transpose(1, 2)).argmax(-1)
        for start in range(0, n, step)
    ]
    return torch.cat(parts, dim=1)


def _cluster_sums(
    points: torch.Tensor, labels: torch.Tensor, k: int, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted sums of points and of weights per cluster, the same on every run: scatter_add_ is
    deterministic on the CPU; on a GPU, where its atomic adds are not, one-hot matmuls are summed in a fixed
    order."""
    if points.device.type != "cpu":
        return _blocked_sums(points, labels, k, weights)
    dim = points.shape[-1]
    sums = points.new_zeros(points.shape[0], k, dim).scatter_add_(
        1, labels[..., None].expand(-1, -1, dim), points * weights[..., None]
    )
    return sums, points.new_zeros(points.shape[0], k).scatter_add_(1, labels, weights)


def _blocked_sums(
    points: torch.Tensor, labels: torch.Tensor, k: int, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    heads, n, dim = points.shape
    sums = points.new_zeros(heads, k, dim)
    counts = points.new_zeros(heads, k)
    step = max(1, _CHUNK_ELEMENTS // max(1, heads * k))
    ids = torch.arange(k, device=points.device)
    for start in range(0, n, step):
        onehot = (labels[:, start : start + step, None] == ids).to(points.dtype)
        onehot = onehot * weights[:, start : start + step, None]
        sums += torch.matmul(onehot.transpose(1, 2), points[:, start : start + step])
        counts += onehot.sum(1)
    return sums, counts


def kmeans(
    points: torch.Tensor,
    k: int,
    iterations: int,
    generator: torch.Generator,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spherical k-means per head, deterministic: (H, n, D) float32 points → centroids (H, k, D) (weighted
    mean of the raw points in each cluster), labels (H, n) and cluster weights (H, k). ``k`` is capped at
    ``n``."""
    heads, n, dim = points.shape
    k = min(k, n)
    if weights is None:
        weights = points.new_ones(heads, n)
    unit = F.normalize(points, dim=-1)
    starts = torch.stack([torch.randperm(n, generator=generator)[:k] for _ in range(heads)]).to(points.device)
    centres = unit.gather(1, starts[..., None].expand(-1, -1, dim))
    for _ in range(iterations):
        labels = _assign(unit, centres)
        sums, counts = _cluster_sums(unit, labels, k, weights)
        centres = torch.where(counts[..., None] > 0, F.normalize(sums, dim=-1), centres)
    labels = _assign(unit, centres)
    sums, counts = _cluster_sums(points, labels, k, weights)
    centroids = sums / counts.clamp(min=torch.finfo(points.dtype).tiny)[..., None]
    return centroids, labels, counts


# -- the index ----------------------------------------------------------------------------------------------


@dataclass
class LayerIndex:
    """One layer's clusters, per KV head: fine centroids (H, C, D), each context key's cluster (H, n), cluster
    sizes (H, C); with levels=2 the coarse centroids (H, C¹, D), sizes (H, C¹) and each fine cluster's
    parent."""

    centroids: torch.Tensor
    labels: torch.Tensor
    sizes: torch.Tensor
    coarse_centroids: torch.Tensor | None = None
    coarse_sizes: torch.Tensor | None = None
    parents: torch.Tensor | None = None

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in vars(self).values() if isinstance(t, torch.Tensor)]


@dataclass
class SqueezedIndex:
    """Everything the query-time lookup needs: the per-layer clusters, the softmax scale of each layer and the
    calibrated thresholds (probabilities; ``-inf`` keeps every cluster)."""

    context_tokens: int
    layers: list[LayerIndex]
    scaling: list[float]
    threshold: float
    coarse_threshold: float = float("-inf")
    calibrated_keep: float = 1.0  # expected kept fraction on the calibration queries
    target_keep: float = 1.0

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for layer in self.layers for t in layer.tensors())


def _log_sizes(sizes: torch.Tensor) -> torch.Tensor:
    return torch.where(sizes > 0, sizes.clamp(min=1e-30).log(), torch.full_like(sizes, float("-inf")))


def _estimates(query: torch.Tensor, centroids: torch.Tensor, scaling: float) -> torch.Tensor:
    """Logits of every query head against its KV head's centroids: (B, Hq, q, D) → (B, Hkv, g, q, C)."""
    batch, q_heads, length, dim = query.shape
    kv_heads = centroids.shape[0]
    grouped = query.float().reshape(batch, kv_heads, q_heads // kv_heads, length, dim)
    return torch.einsum("bhgqd,hcd->bhgqc", grouped, centroids) * scaling


def cluster_scores(layer: LayerIndex, query: torch.Tensor, scaling: float) -> dict[str, torch.Tensor]:
    """The paper's per-key attention estimate for every cluster, averaged over each KV head's query group:
    ``fine`` (B, Hkv, q, C); with levels=2 also ``coarse`` (B, Hkv, q, C¹), whose denominator the fine
    scores then use."""
    fine_logits = _estimates(query, layer.centroids, scaling)
    if layer.coarse_centroids is None:
        denominator = torch.logsumexp(fine_logits + _log_sizes(layer.sizes)[:, None, None], -1, keepdim=True)
        return {"fine": (fine_logits - denominator).exp().mean(2)}
    assert layer.coarse_sizes is not None
    coarse_logits = _estimates(query, layer.coarse_centroids, scaling)
    denominator = torch.logsumexp(
        coarse_logits + _log_sizes(layer.coarse_sizes)[:, None, None], -1, keepdim=True
    )
    return {
        "coarse": (coarse_logits - denominator).exp().mean(2),
        "fine": (fine_logits - denominator).exp().mean(2),
    }


def kept_clusters(layer: LayerIndex, scores: dict[str, torch.Tensor], index: SqueezedIndex) -> torch.Tensor:
    """Which fine clusters each query keeps: (B, Hkv, q, C) booleans."""
    keep = scores["fine"] >= index.threshold
    if "coarse" in scores:
        assert layer.parents is not None
        coarse_keep = scores["coarse"] >= index.coarse_threshold
        parents = layer.parents[None, :, None, :].expand(*coarse_keep.shape[:3], -1)
        keep &= coarse_keep.gather(-1, parents)
    return keep


def calibrate(scores: torch.Tensor, weights: torch.Tensor, target: float) -> float:
    """The largest threshold whose kept pairs (score ≥ it) weigh at least ``target``: pairs are (query,
    cluster) scores, weights the keys each stands for."""
    if scores.numel() == 0 or target <= 0:
        return float("inf")
    order = torch.argsort(scores, descending=True, stable=True)
    cumulative = torch.cumsum(weights[order].double(), 0)
    at = int(
        torch.searchsorted(cumulative, torch.tensor([target], dtype=torch.float64, device=scores.device))
    )
    return float(scores[order][min(at, scores.numel() - 1)])


# -- attention ----------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What the registered attention function does while it is switched on: capture the calibration queries
    (prefill) or select clusters and attend under the mask (questions and answers)."""

    mode: str  # "capture" | "select"
    context_tokens: int
    calibration_tokens: int = 0
    index: SqueezedIndex | None = None
    queries: dict[int, torch.Tensor] = field(default_factory=dict)
    scaling: dict[int, float] = field(default_factory=dict)
    last_masked: dict[int, int] = field(default_factory=dict)  # per layer: last query token, over KV heads
    masked_total: int = 0
    query_tokens: int = 0


_ACTIVE: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("squeezed_run", default=None)


def _sdpa(module: Any, query, key, value, attention_mask, dropout: float, scaling, kwargs) -> Any:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )


def squeezed_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """An attention function for transformers' AttentionInterface: sdpa, with the context keys of unselected
    clusters masked out per query token while a squeezed run is active."""
    run = _ACTIVE.get()
    layer_idx = int(module.layer_idx)
    scale = float(scaling if scaling is not None else query.shape[-1] ** -0.5)
    if run is None or (run.mode == "select" and run.index is None):
        return _sdpa(module, query, key, value, attention_mask, dropout, scaling, kwargs)
    if run.mode == "capture":
        run.queries[layer_idx] = query[:, :, -run.calibration_tokens :].float().clone()
        run.scaling[layer_idx] = scale
        return _sdpa(module, query, key, value, attention_mask, dropout, scaling, kwargs)

    index = run.index
    assert index is not None
    context = run.context_tokens
    layer = index.layers[layer_idx]
    batch, q_heads, length, _ = query.shape
    kv_heads = key.shape[1]
    keep = kept_clusters(layer, cluster_scores(layer, query, scale), index)
    labels = layer.labels[None, :, None, :].expand(batch, -1, length, -1)
    keep_keys = keep.gather(-1, labels)  # (B, Hkv, q, n)

    masked = ~keep_keys
    run.last_masked[layer_idx] = int(masked[:, :, -1].sum())
    run.masked_total += int(masked.sum())
    if layer_idx == 0:
        run.query_tokens += length

    allowed = torch.ones(batch, kv_heads, length, key.shape[2], dtype=torch.bool, device=query.device)
    allowed[..., :context] = keep_keys
    if attention_mask is not None:  # sdpa_mask's causal mask, (B, 1, q, kv)
        if attention_mask.dtype != torch.bool:  # an additive mask: blocked where it is very negative
            attention_mask = attention_mask > torch.finfo(attention_mask.dtype).min / 2
        allowed = allowed & attention_mask
    # Each KV head's query group is folded into the query length: the group shares the selection, and the keys
    # and values are used as they are in the cache, never repeated per query head.
    groups = q_heads // kv_heads
    dim = query.shape[-1]
    out = F.scaled_dot_product_attention(
        query.reshape(batch, kv_heads, groups * length, dim),
        key,
        value,
        attn_mask=allowed[:, :, None]
        .expand(-1, -1, groups, -1, -1)
        .reshape(batch, kv_heads, groups * length, -1),
        dropout_p=dropout,
        scale=scaling,
    )
    return out.reshape(batch, q_heads, length, -1).transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, squeezed_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


@contextlib.contextmanager
def _switched(model: Any, run: _Run) -> Iterator[_Run]:
    """Route the model's attention through ``squeezed_attention`` for the duration; restore it even on
    error."""
    _register()
    previous = model.config._attn_implementation
    token = _ACTIVE.set(run)
    model.config._attn_implementation = ATTENTION_NAME
    try:
        yield run
    finally:
        model.config._attn_implementation = previous
        _ACTIVE.reset(token)


# -- the method ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Squeezed(KVMethod):
    """Squeezed Attention: cluster the context's keys once, then let each query token attend only to the
    keys of the clusters its centroid look-up selects. Every entry stays in the cache (kv_removed 0); the
    context entries a step does not attend to are counted as masked.

    ``clusters``: fine clusters per layer and KV head (default context/16, at most 1024; capped at the
    context); ``levels``: 1, or 2 for the hierarchical look-up, with ``coarse_clusters`` (default
    √clusters); ``iterations`` and ``seed``: the k-means; ``calibration_tokens``: how many of the context's
    last tokens calibrate the threshold (the paper's observation window, 100); ``select_all``: keep every
    cluster (a check of the machinery).
    """

    name = "squeezed"
    description = "Squeezed Attention: k-means key clusters, per-query centroid look-up, nothing evicted"

    clusters: int | None = None
    levels: int = 1
    coarse_clusters: int | None = None
    iterations: int = 10
    seed: int = 0
    calibration_tokens: int = 100
    select_all: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clusters is not None and self.clusters < 1:
            raise UsageError(f"method squeezed: clusters must be at least 1 (got {self.clusters})")
        if self.levels not in (1, 2):
            raise UsageError(
                f"method squeezed: levels is 1 (flat look-up) or 2 (hierarchical), not {self.levels}"
            )
        if self.coarse_clusters is not None:
            if self.levels != 2:
                raise UsageError("method squeezed: coarse_clusters needs levels=2 (the hierarchical look-up)")
            if self.coarse_clusters < 1:
                raise UsageError(
                    f"method squeezed: coarse_clusters must be at least 1 (got {self.coarse_clusters})"
                )
            if self.clusters is not None and self.coarse_clusters > self.clusters:
                raise UsageError(
                    f"method squeezed: coarse_clusters ({self.coarse_clusters}) must not exceed clusters "
                    f"({self.clusters})"
                )
        if self.iterations < 1:
            raise UsageError(f"method squeezed: iterations must be at least 1 (got {self.iterations})")
        if self.calibration_tokens < 1:
            raise UsageError(
                f"method squeezed: calibration_tokens must be at least 1 (got {self.calibration_tokens})"
            )

    # -- sizes ---------------------------------------------------------------------------------------------

    def fine_clusters(self, context_tokens: int) -> int:
        wanted = self.clusters or min(MAX_DEFAULT_CLUSTERS, max(1, context_tokens // 16))
        return max(1, min(wanted, context_tokens))

    def coarse_count(self, fine: int) -> int:
        wanted = self.coarse_clusters or max(1, math.isqrt(fine))
        return max(1, min(wanted, fine))

    def selects(self, context_tokens: int) -> bool:
        """Whether this run looks clusters up at all: not at ratio 0 (everything kept), unless select_all."""
        return self.select_all or self.kept(context_tokens) < context_tokens

    # -- hooks ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def prefill(self, model: Any, input_ids: Any, cache: Any) -> ContextState:
        context = int(input_ids.shape[1])
        self.check_context(context, "this request")
        if input_ids.shape[0] != 1:
            raise ValueError("squeezed attention runs one context at a time (batch size 1)")
        if not self.selects(context):
            return super().prefill(model, input_ids, cache)
        run = _Run(
            mode="capture", context_tokens=context, calibration_tokens=min(self.calibration_tokens, context)
        )
        with _switched(model, run):
            model.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        index = self.build_index(cache, run.queries, run.scaling, context)
        return ContextState(
            cache=cache,
            context_tokens=context,
            layer_lengths=layer_lengths(cache),
            extra={
                "squeezed_index": index,
                "squeezed_threshold": index.threshold,
                "squeezed_calibrated_keep": index.calibrated_keep,
            },
        )

    def build_index(
        self, cache: Any, queries: dict[int, torch.Tensor], scaling: dict[int, float], context: int
    ) -> SqueezedIndex:
        """Cluster every layer's context keys, then calibrate the threshold(s) on the captured queries."""
        generator = torch.Generator().manual_seed(self.seed)
        fine = self.fine_clusters(context)
        layers: list[LayerIndex] = []
        for layer in cache.layers:
            keys = layer.keys[0, :, :context].float()
            centroids, labels, sizes = kmeans(keys, fine, self.iterations, generator)
            entry = LayerIndex(centroids=centroids, labels=labels, sizes=sizes)
            if self.levels == 2:
                coarse, parents, coarse_sizes = kmeans(
                    centroids, self.coarse_count(fine), self.iterations, generator, weights=sizes
                )
                entry.coarse_centroids, entry.parents, entry.coarse_sizes = coarse, parents, coarse_sizes
            layers.append(entry)
        scales = [scaling[i] for i in range(len(layers))]
        index = SqueezedIndex(context_tokens=context, layers=layers, scaling=scales, threshold=float("-inf"))
        if self.select_all:
            return index
        keep = self.kept(context) / context
        index.target_keep = keep
        scores = [cluster_scores(entry, queries[i], scales[i]) for i, entry in enumerate(layers)]
        pairs = list(zip(layers, scores, strict=True))

        def pooled(values: Any) -> torch.Tensor:  # one flat tensor over layers, heads, queries, clusters
            return torch.cat([values(entry, score).flatten() for entry, score in pairs])

        # A (query, cluster) pair weighs the keys the cluster holds.
        weights = pooled(lambda e, s: e.sizes[None, :, None].expand_as(s["fine"]))
        total = float(weights.sum())
        if self.levels == 2:
            index.coarse_threshold = calibrate(
                pooled(lambda e, s: s["coarse"]),
                pooled(lambda e, s: e.coarse_sizes[None, :, None].expand_as(s["coarse"])),
                math.sqrt(keep) * total,
            )
        # With the fine threshold still at -inf this is every fine cluster a query may keep (levels=2: those
        # under kept coarse clusters); the rule of query time, so calibration and look-up cannot drift apart.
        eligible = pooled(lambda e, s: kept_clusters(e, s, index))
        fine = pooled(lambda e, s: s["fine"])
        index.threshold = calibrate(fine[eligible], weights[eligible], keep * total)
        kept = pooled(lambda e, s: kept_clusters(e, s, index))
        index.calibrated_keep = float(weights[kept].sum()) / total
        return index

    @contextlib.contextmanager
    def attending(self, model: Any, state: ContextState) -> Iterator[None]:
        index = state.extra.get("squeezed_index")
        if index is None:
            state.extra["squeezed_masked_last"] = 0
            yield
            return
        run = _Run(mode="select", context_tokens=state.context_tokens, index=index)
        try:
            with _switched(model, run):
                yield
        finally:
            state.extra["squeezed_masked_last"] = sum(run.last_masked.values())
            state.extra["squeezed_masked_mean"] = (
                run.masked_total / run.query_tokens if run.query_tokens else 0.0
            )

    def masked_entries(self, state: ContextState) -> int:
        """Context entries the last step did not attend to, summed over layers and KV heads."""
        return int(state.extra.get("squeezed_masked_last", 0))

    def held_bytes(self, state: ContextState) -> int:
        """The whole cache (nothing is evicted) plus the cluster index kept beside it."""
        from longscope.methods.base import cache_bytes

        index = state.extra.get("squeezed_index")
        return cache_bytes(state.cache) + (index.nbytes() if index is not None else 0)
