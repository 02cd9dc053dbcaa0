"""kvpress's leaderboard names: each builds the press kvpress's evaluation registry holds under that name (type
and every parameter, nested presses included), keeps the promised entries at the ratio, and bad names are one
line."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import run_cli

from longscope.core import UsageError
from longscope.methods import make_method
from longscope.methods.kv import leaderboard


def registry() -> dict:
    """The compositions of kvpress's evaluation/evaluate_registry.py, written out here with kvpress's classes (its
    evaluation folder is not part of the installed package)."""
    import kvpress as k

    return {
        "adakv_snapkv": k.AdaKVPress(k.SnapKVPress()),
        "adakv_compactor": k.AdaKVPress(k.CompactorPress()),
        "block_keydiff": k.BlockPress(press=k.KeyDiffPress(), block_size=128),
        "chunkkv": k.ChunkKVPress(press=k.SnapKVPress(), chunk_length=20),
        "compactor": k.CompactorPress(),
        "critical_adakv_expected_attention": k.CriticalAdaKVPress(k.ExpectedAttentionPress(use_vnorm=False)),
        "critical_adakv_snapkv": k.CriticalAdaKVPress(k.SnapKVPress()),
        "critical_expected_attention": k.CriticalKVPress(k.ExpectedAttentionPress(use_vnorm=False)),
        "critical_snapkv": k.CriticalKVPress(k.SnapKVPress()),
        "cur": k.CURPress(),
        "expected_attention": k.AdaKVPress(k.ExpectedAttentionPress(epsilon=1e-2)),
        "fastkvzip": k.FastKVzipPress(),
        "finch": k.FinchPress(),
        "keydiff": k.KeyDiffPress(),
        "knorm": k.KnormPress(),
        "kvcompose": k.KVComposePress(),
        "kvcompose_unstructured": k.KVComposePress(structured=False),
        "kvzap_mlp_head": k.KVzapPress(model_type="mlp"),
        "kvzap_mlp_layer": k.AdaKVPress(k.KVzapPress(model_type="mlp")),
        "kvzip": k.KVzipPress(),
        "kvzip_plus": k.KVzipPress(kvzip_plus_normalization=True),
        "lagkv": k.LagKVPress(),
        "lukv": k.LUKVPress(k.ExpectedAttentionPress(epsilon=2e-2), sink=4, window=1),
        "merging_expected_attention": k.MergingPress(k.ExpectedAttentionPress(epsilon=1e-2)),
        "merging_knorm": k.MergingPress(k.KnormPress()),
        "merging_kvzap_mlp": k.MergingPress(k.KVzapPress(model_type="mlp")),
        "merging_snapkv": k.MergingPress(k.SnapKVPress()),
        "observed_attention": k.ObservedAttentionPress(),
        "pyramidkv": k.PyramidKVPress(),
        "qfilter": k.QFilterPress(),
        "random": k.RandomPress(),
        "RestoreKV": k.RestoreKVPress(),
        "RestoreKV_plus": k.RestoreKVPress(kvzip_plus_normalization=True),
        "snapkv": k.SnapKVPress(),
        "streaming_llm": k.StreamingLLMPress(),
        "tova": k.TOVAPress(),
    }


def described(press) -> tuple:
    """A press as its type and its init fields, nested presses described the same way."""
    fields = []
    for field in dataclasses.fields(press):
        if not field.init or field.name.startswith("_"):
            continue
        value = getattr(press, field.name)
        fields.append((field.name, described(value) if dataclasses.is_dataclass(value) else value))
    return (type(press).__name__, tuple(fields))


def test_every_alias_is_a_row_of_kvpress_registry():
    assert set(leaderboard.ALIASES) == set(registry())


@pytest.mark.parametrize("alias", sorted(leaderboard.ALIASES))
def test_each_alias_builds_the_press_kvpress_registry_holds(alias):
    spec = f"leaderboard:{alias}" + ("(query_aware=true)" if alias == "finch" else "")
    ours = make_method(spec).make_press()
    assert described(ours) == described(registry()[alias])


def test_the_alias_the_issue_names_is_adakv_around_expected_attention_with_epsilon_1e_2():
    press = make_method("leaderboard:expected_attention:0.5").make_press(1000)
    assert type(press).__name__ == "AdaKVPress"
    assert type(press.press).__name__ == "ExpectedAttentionPress" and press.press.epsilon == 0.01
    assert int(1000 * (1 - press.compression_ratio)) == 500  # the ratio reaches the scorer inside
    chunkkv = make_method("leaderboard:chunkkv:0.25").make_press(1000)
    assert (type(chunkkv.press).__name__, chunkkv.chunk_length) == ("SnapKVPress", 20)


def test_labels_round_trip():
    for spec in ("leaderboard:expected_attention:0.5", "leaderboard:chunkkv(query_aware=true):0.875"):
        method = make_method(spec)
        assert method.label() == spec.replace("true", "True")
        assert make_method(method.label()) == method


def test_the_leaderboard_lists_name_only_known_aliases():
    assert set(leaderboard.QUERY_AGNOSTIC) <= set(leaderboard.ALIASES)
    assert set(leaderboard.QUERY_AWARE) <= set(leaderboard.ALIASES)
    assert leaderboard.RATIOS == (0.25, 0.5, 0.75, 0.875)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("leaderboard:nosuch:0.5", "unknown kvpress leaderboard name 'nosuch'; names: RestoreKV"),
        ("leaderboard:no_press", "use the method full"),
        ("leaderboard:duo_attention:0.5", "head_compression_ratio"),
        ("leaderboard:decoding_knorm:0.5", "target_size"),
        ("leaderboard:snapkv(window=3):0.5", "takes only query_aware"),
        ("leaderboard:finch:0.5", "add query_aware=true"),
        ("leaderboard", "write leaderboard:NAME:RATIO"),
    ],
)
def test_bad_names_are_one_line(spec, fragment):
    with pytest.raises(UsageError) as caught:
        make_method(spec)
    assert "\n" not in str(caught.value) and fragment in str(caught.value)


@pytest.mark.slow
def test_the_cli_refuses_an_unknown_alias_with_exit_2(tmp_path):
    result = run_cli("run", "--methods", "leaderboard:nosuch:0.5", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nosuch" in result.stderr
