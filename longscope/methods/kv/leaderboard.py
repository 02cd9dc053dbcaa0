"""kvpress's leaderboard names as methods: ``leaderboard:expected_attention:0.5`` builds the press its evaluation's
registry builds under that name (composite presses included), ``leaderboard:snapkv(query_aware=true):0.5`` its
query-aware rows.

The compositions follow kvpress's ``evaluation/evaluate_registry.py`` (kvpress 0.5.x), written as press specs so
that building one needs kvpress only when the press is made. Registry entries whose amount is not one
compression ratio (thresholds, head ratios, decoding targets) are named with what to write instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from longscope.core import UsageError
from longscope.methods.kv.kvpress_wrapper import PressMethod

SPEC_PREFIX = "leaderboard"

# Leaderboard name → (kvpress class, arguments; nested presses as press specs). kvpress sets the ratio on the
# outer press, which wrappers pass to the press inside.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "adakv_snapkv": ("AdaKVPress", {"press": "SnapKVPress"}),
    "adakv_compactor": ("AdaKVPress", {"press": "CompactorPress"}),
    "block_keydiff": ("BlockPress", {"press": "KeyDiffPress", "block_size": 128}),
    "chunkkv": ("ChunkKVPress", {"press": "SnapKVPress", "chunk_length": 20}),
    "compactor": ("CompactorPress", {}),
    "critical_adakv_expected_attention": (
        "CriticalAdaKVPress",
        {"press": "ExpectedAttentionPress(use_vnorm=False)"},
    ),
    "critical_adakv_snapkv": ("CriticalAdaKVPress", {"press": "SnapKVPress"}),
    "critical_expected_attention": ("CriticalKVPress", {"press": "ExpectedAttentionPress(use_vnorm=False)"}),
    "critical_snapkv": ("CriticalKVPress", {"press": "SnapKVPress"}),
    "cur": ("CURPress", {}),
    "expected_attention": ("AdaKVPress", {"press": "ExpectedAttentionPress(epsilon=0.01)"}),
    "fastkvzip": ("FastKVzipPress", {}),
    "finch": ("FinchPress", {}),
    "keydiff": ("KeyDiffPress", {}),
    "knorm": ("KnormPress", {}),
    "kvcompose": ("KVComposePress", {}),
    "kvcompose_unstructured": ("KVComposePress", {"structured": False}),
    "kvzap_mlp_head": ("KVzapPress", {"model_type": "mlp"}),
    "kvzap_mlp_layer": ("AdaKVPress", {"press": "KVzapPress(model_type=mlp)"}),
    "kvzip": ("KVzipPress", {}),
    "kvzip_plus": ("KVzipPress", {"kvzip_plus_normalization": True}),
    "lagkv": ("LagKVPress", {}),
    "lukv": ("LUKVPress", {"press": "ExpectedAttentionPress(epsilon=0.02)", "sink": 4, "window": 1}),
    "merging_expected_attention": ("MergingPress", {"press": "ExpectedAttentionPress(epsilon=0.01)"}),
    "merging_knorm": ("MergingPress", {"press": "KnormPress"}),
    "merging_kvzap_mlp": ("MergingPress", {"press": "KVzapPress(model_type=mlp)"}),
    "merging_snapkv": ("MergingPress", {"press": "SnapKVPress"}),
    "observed_attention": ("ObservedAttentionPress", {}),
    "pyramidkv": ("PyramidKVPress", {}),
    "qfilter": ("QFilterPress", {}),
    "random": ("RandomPress", {}),
    "RestoreKV": ("RestoreKVPress", {}),
    "RestoreKV_plus": ("RestoreKVPress", {"kvzip_plus_normalization": True}),
    "snapkv": ("SnapKVPress", {}),
    "streaming_llm": ("StreamingLLMPress", {}),
    "tova": ("TOVAPress", {}),
}

# Registry names that are not one press at one compression ratio, and what to write here instead.
ELSEWHERE = {
    "no_press": "it is no compression: use the method full",
    "duo_attention": "its amount is a head ratio: kvpress:DuoAttentionPress(head_compression_ratio=0.5)",
    "duo_attention_on_the_fly": "its amount is a head ratio: "
    "kvpress:DuoAttentionPress(on_the_fly_scoring=true,head_compression_ratio=0.5)",
    "kvzap_linear": "its amount is a score threshold: kvpress:DMSPress(press=KVzapPress(model_type=linear),"
    "threshold=-4)",
    "kvzap_mlp": "its amount is a score threshold: kvpress:DMSPress(press=KVzapPress(model_type=mlp),threshold=-4)",
    "think": "it prunes key channels: kvpress:ThinKPress(key_channel_compression_ratio=0.5)",
    "snap_think": "it composes two amounts: kvpress:ComposedPress(presses=SnapKVPress(compression_ratio=0.5)"
    "+ThinKPress(key_channel_compression_ratio=0.5))",
}
for _decoding in ("cam_streaming_llm", "cam_knorm", "cam_adakv_snapkv", "cam_tova", "decoding_knorm",
                  "decoding_streaming_llm", "decoding_tova", "decoding_qfilter",
                  "decoding_adakv_expected_attention_e2", "decoding_adakv_snapkv", "decoding_keydiff"):  # fmt: skip
    ELSEWHERE[_decoding] = (
        "it compresses while decoding, to a target size: kvpress:DecodingPress(base_press=...,target_size=N)"
    )

# The leaderboard's two press lists (kvpress's evaluation/leaderboard.sh): compressed without the question,
# and with it (--query_aware); and its ratios.
QUERY_AGNOSTIC = ("random", "knorm", "snapkv", "expected_attention", "streaming_llm", "tova", "observed_attention",
                  "qfilter", "pyramidkv", "lagkv", "keydiff", "adakv_compactor", "cur", "kvzip")  # fmt: skip
QUERY_AWARE = ("snapkv", "adakv_snapkv", "finch", "chunkkv")
RATIOS = (0.25, 0.5, 0.75, 0.875)


def alias_spec(alias: str) -> tuple[str, dict[str, Any]]:
    """The kvpress class and arguments a leaderboard name stands for; an unknown name is one line."""
    if alias in ALIASES:
        name, args = ALIASES[alias]
        return name, dict(args)
    if alias in ELSEWHERE:
        raise UsageError(f"leaderboard:{alias} is not one press at one ratio here: {ELSEWHERE[alias]}")
    raise UsageError(f"unknown kvpress leaderboard name {alias!r}; names: {', '.join(sorted(ALIASES))}")


@dataclass(frozen=True)
class LeaderboardPress(PressMethod):
    """A press by its name on kvpress's leaderboard; the same press object kvpress's evaluation registry holds."""

    name = "leaderboard"
    description = (
        "a kvpress leaderboard row by its name: leaderboard:expected_attention:0.5 (AdaKV around Expected "
        "Attention, epsilon 1e-2), leaderboard:chunkkv(query_aware=true):0.5, ..."
    )
    alias: str = ""

    def __post_init__(self) -> None:
        if not self.alias:
            raise UsageError("method leaderboard needs a name: write leaderboard:NAME:RATIO, e.g. "
                             "leaderboard:expected_attention:0.5")  # fmt: skip
        alias_spec(self.alias)  # an unknown name fails before anything else, with the list
        super().__post_init__()

    def press_spec(self) -> tuple[str, dict[str, Any]]:
        return alias_spec(self.alias)

    def label(self) -> str:
        text = f"leaderboard:{self.alias}" + ("(query_aware=True)" if self.query_aware else "")
        if self.budget is not None:
            return f"{text}:budget={self.budget}"
        if self.ratio is not None:
            return f"{text}:{self.ratio:g}"
        return text


def parse_spec(rest: str, spec: str) -> LeaderboardPress:
    """``leaderboard:NAME[(query_aware=true)][:RATIO | :budget=N]``."""
    import re

    from longscope.methods import build
    from longscope.spec import parse_amount, parse_params

    match = re.match(r"^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*(?::\s*(.*?))?\s*$", rest)
    if not rest.strip() or match is None:
        raise UsageError(
            f"method {spec!r}: write leaderboard:NAME:RATIO, e.g. leaderboard:expected_attention:0.5; names: "
            + ", ".join(sorted(ALIASES))
        )
    alias = match.group(1)
    where = f"method leaderboard:{alias}"
    params = parse_params(match.group(2) or "", where)
    unknown = sorted(set(params) - {"query_aware"})
    if unknown:
        raise UsageError(
            f"{where}: unknown parameter {unknown[0]!r}; a leaderboard name takes only query_aware"
        )
    return build(LeaderboardPress, {"alias": alias, **params, **parse_amount(match.group(3), where)})
