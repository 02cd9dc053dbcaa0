"""The analytic cost model and the hardware profiles, against numbers worked by hand."""

from __future__ import annotations

import json
import math

import pytest

from longscope.analysis import hardware as hw_module
from longscope.analysis.cost_model import (
    PRESETS,
    ModelShape,
    model_shape,
    percent_error,
    predict,
    shape_from_config,
)
from longscope.analysis.hardware import Hardware, hardware, measure_cpu
from longscope.analysis.overlay import held_tokens, overlay
from longscope.core import Result, UsageError

TINY = ModelShape("tiny", layers=2, hidden=4, heads=2, kv_heads=1, head_dim=2, intermediate=8, vocab=10)


def test_llama3_8b_kv_cache_at_128k_in_bf16():
    # 2 (K and V) · 32 layers · 8 KV heads · 128 head dim · 131072 tokens · 2 bytes
    assert model_shape("llama-3-8b").kv_bytes(131072) == 17_179_869_184
    assert model_shape("llama-3-8b", "fp8").kv_bytes(131072) == 17_179_869_184 / 2
    assert model_shape("llama-3-70b").kv_bytes(131072) == 2 * 80 * 8 * 128 * 131072 * 2


def test_preset_parameter_counts_match_the_published_sizes():
    assert PRESETS["llama-3-8b"].params == pytest.approx(8.03e9, rel=2e-3)
    assert PRESETS["llama-3-70b"].params == pytest.approx(70.6e9, rel=2e-3)
    assert PRESETS["qwen2.5-7b"].params == pytest.approx(7.62e9, rel=2e-3)
    assert PRESETS["mistral-7b"].params == pytest.approx(7.24e9, rel=2e-3)


def test_counts_and_flops_of_a_tiny_shape_by_hand():
    # per layer: attention 4·2·(2·2 + 2·1) = 48, MLP 3·4·8 = 96, two norms 8 → 152; 2 layers + final norm 4
    assert TINY.layer_params == 2 * 152 + 4 == 308
    assert TINY.params == 308 + 2 * 10 * 4  # untied input and output embeddings
    assert TINY.kv_bytes(10) == 2 * 2 * 1 * 2 * 10 * 2
    # 2·308·10 weights, 2·2 layers·10²·(2 heads·2) attention, 2·10·4 for one position's logits
    assert TINY.prefill_flops(10) == 6160 + 1600 + 80
    assert TINY.decode_bytes(10) == (308 + 40) * 2 + TINY.kv_bytes(10)


def test_prediction_for_llama3_8b_on_h100_at_128k():
    shape, hw = model_shape("llama-3-8b"), hardware("h100")
    p = predict(shape, hw, 131072)
    flops = 2 * shape.layer_params * 131072 + 2 * 32 * 131072**2 * 4096 + 2 * 128256 * 4096
    assert p.prefill_flops == flops
    assert p.prefill_s == pytest.approx(flops / (989e12 * 0.5)) and p.prefill_bound == "compute"
    assert p.prefill_s == pytest.approx(12.8, abs=0.05)
    assert (
        p.decode_s == pytest.approx(shape.decode_bytes(131072) / (3.35e12 * 0.8))
        and p.decode_bound == "memory"
    )
    # (80 GB · 0.9 − 16.06 GB of weights) / 17.18 GB per request = 3.26 → 3 requests
    assert p.concurrent == math.floor((80e9 * 0.9 - shape.params * 2) / 17_179_869_184) == 3
    assert p.swap_s == pytest.approx(17_179_869_184 / 64e9)


def test_weights_that_do_not_fit_leave_room_for_no_request():
    p = predict(model_shape("llama-3-70b"), hardware("l4"), 8192)
    assert p.concurrent == 0


def test_shapes_from_config_files(tmp_path):
    config = {"num_hidden_layers": 30, "hidden_size": 576, "num_attention_heads": 9, "num_key_value_heads": 3,
              "intermediate_size": 1536, "vocab_size": 49152, "tie_word_embeddings": True, "torch_dtype": "float32"}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    shape = model_shape(f"hf:{tmp_path}")
    assert (shape.layers, shape.kv_heads, shape.head_dim, shape.dtype) == (30, 3, 64, "float32")
    assert shape.params == pytest.approx(134.5e6, rel=1e-3)  # SmolLM2-135M
    assert model_shape(str(tmp_path / "config.json"), "bf16").bytes_per_value == 2
    bundled = model_shape("smollm2")  # converted weights' config when present, else the published shape
    assert (bundled.layers, bundled.heads, bundled.kv_heads, bundled.head_dim) == (30, 9, 3, 64)
    nested = shape_from_config({"text_config": {**config, "head_dim": 128}}, "vlm")
    assert nested.head_dim == 128


def test_bad_models_hardware_and_dtypes_are_one_line_usage_errors(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (tmp_path / "empty").mkdir()
    for call, words in [
        (lambda: model_shape("gpt-17"), "unknown model"),
        (lambda: model_shape(str(tmp_path)), "lacks num_hidden_layers"),
        (lambda: model_shape(str(tmp_path / "empty")), "no config.json"),
        (lambda: model_shape("llama-3-8b", "fp7"), "unknown dtype"),
        (lambda: hardware("tpu"), "unknown hardware"),
        (lambda: predict(TINY, hardware("h100"), 0), "at least one token"),
    ]:
        with pytest.raises(UsageError, match=words) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_cpu_profile_is_measured_once_and_cached(monkeypatch):
    calls = []
    fake = Hardware("cpu", "test cpu", 8e9, 10e9, 50e9, "fp32", None, 0.625, 1.0, source="measured")
    monkeypatch.setattr(hw_module, "measure_cpu", lambda: calls.append(1) or fake)
    assert hardware("cpu") == fake and hardware("CPU") == fake
    assert len(calls) == 1
    assert hardware("cpu").flops == 50e9 * 0.625


def test_cpu_probe_measures_positive_rates():
    probe = measure_cpu(matmul_size=128, copy_mib=4, repeats=1)
    assert probe.peak_flops > 1e6 and probe.bandwidth_bytes_s > 1e6 and probe.memory_bytes > 0
    assert probe.host_link_bytes_s is None and predict(TINY, probe, 16).swap_s is None


def test_overlay_against_measured_rows():
    hw = Hardware("test", "flat", 1e12, 1e9, 1e9, "fp32", None, 1.0, 1.0)
    shape = TINY

    def row(tokens, out, finish, prefill, kv):  # noqa: E306
        return Result(key=str(tokens), sample_id="s", task="t", length=tokens + out, depth=None, seed=0, turn=0,
                      status="ok", score=1.0, input_tokens=tokens, output_tokens=out, finish_reason=finish,
                      prefill_s=prefill, kv_bytes=kv)  # fmt: skip

    exact = row(10, 4, "stop", predict(shape, hw, 10).prefill_s, shape.kv_bytes(14))
    budget = row(20, 4, "length", 2 * predict(shape, hw, 20).prefill_s, shape.kv_bytes(23))
    assert held_tokens(exact) == 14 and held_tokens(budget) == 23  # the last budgeted token is never fed back
    check = overlay([exact, budget], shape, hw)
    assert check.mean_abs_error("kv") == 0.0
    # prefill: exact (0%) and measured twice the prediction (−50%)
    assert check.mean_abs_error("prefill") == pytest.approx(25.0)
    assert check.median_error("prefill") == pytest.approx(-25.0)
    assert [c.length for c in check.per_length] == [14, 24]
    assert percent_error(120.0, 100.0) == pytest.approx(20.0)
