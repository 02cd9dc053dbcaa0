"""The in-process decode loop: the reserved KV cache and the one-token decode step give the same greedy tokens
as a plain loop written here, and the precision option is recorded where it is honoured and refused where not."""

from __future__ import annotations

import pytest
import torch

from longscope.backends import decode_kernel, fast_decode, parse_uri
from longscope.backends.decode_kernel import library
from longscope.backends.fast_decode import DecodeStep
from longscope.backends.hf import HFBackend, _ReservedLayer, reserve_cache
from longscope.core import GenerationRequest, UsageError
from tests.conftest import run_cli, tiny_backend


@pytest.fixture(autouse=True, params=["c-step", "torch-step"])
def step_kind(request, monkeypatch):
    """Every test here runs against both fp32 steps: the C one (built here: CI has a compiler) and torch's,
    which runs where no compiler is found."""
    if request.param == "torch-step":
        monkeypatch.setattr(fast_decode, "library", lambda: None)
    return request.param


@torch.inference_mode()
def reference_greedy(backend: HFBackend, request: GenerationRequest) -> list[int]:
    """Today's loop, written out plainly: a DynamicCache grown by concatenation, the full logits, argmax."""
    _, ids, _ = backend.prepare(request)
    out = backend.model(input_ids=torch.tensor([ids]), use_cache=True)
    cache, generated = out.past_key_values, []
    token = int(out.logits[0, -1].argmax())
    while token not in backend.eos_ids and len(generated) < request.max_new_tokens:
        generated.append(token)
        if len(generated) == request.max_new_tokens:
            break
        out = backend.model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
        cache, token = out.past_key_values, int(out.logits[0, -1].argmax())
    return generated


def test_generate_gives_the_reference_loops_greedy_tokens():
    backend = tiny_backend()
    for seed, words in enumerate((40, 300)):
        text = " ".join(f"word{(i * 7 + seed) % 53}" for i in range(words))
        request = GenerationRequest(messages=[{"role": "user", "content": text}], max_new_tokens=48)
        expected = reference_greedy(backend, request)
        got = backend.generate(request)
        assert got.output_tokens == len(expected) > 10
        assert got.text == backend.decode(expected)


@torch.inference_mode()
def test_reserved_cache_gives_bitwise_the_same_logits_as_a_growing_one():
    """Greedy tokens of a random tiny model barely depend on the cache, so the logits are compared too."""
    backend = tiny_backend()
    prompt = torch.tensor([list(range(5, 60))])
    plain = backend.model(input_ids=prompt, use_cache=True).past_key_values
    reserved = backend.model(input_ids=prompt, use_cache=True).past_key_values
    reserve_cache(reserved, 8)
    for token in (11, 12, 13, 14, 15):
        fed = torch.tensor([[token]])
        want = backend.model(input_ids=fed, past_key_values=plain, use_cache=True).logits
        got = backend.model(input_ids=fed, past_key_values=reserved, use_cache=True).logits
        assert torch.equal(got, want)


def test_reserved_layer_keeps_views_of_the_held_length_and_falls_back_past_its_room():
    backend = tiny_backend()
    with torch.inference_mode():
        out = backend.model(input_ids=torch.tensor([[5, 6, 7, 8]]), use_cache=True)
        cache = out.past_key_values
        before = [layer.keys.clone() for layer in cache.layers]
        reserve_cache(cache, 2)
        assert all(type(layer) is _ReservedLayer for layer in cache.layers)
        assert all(torch.equal(layer.keys, b) for layer, b in zip(cache.layers, before, strict=True))
        for step in range(4):  # two steps fit the room, two more must still grow the cache
            backend.model(input_ids=torch.tensor([[9]]), past_key_values=cache, use_cache=True)
            assert cache.get_seq_length() == 5 + step
            assert cache.layers[0].keys.shape[-2] == 5 + step


def test_precision_option_is_parsed_for_in_process_models_and_refused_elsewhere():
    assert parse_uri("smollm2?precision=bf16").option("precision") == "bf16"
    parsed = parse_uri("hf:org/model?precision=fp32")
    assert (parsed.location, parsed.option("precision"), parsed.text) == (
        "org/model",
        "fp32",
        "hf:org/model?precision=fp32",
    )
    assert parse_uri("hf:org/model").option("precision") is None
    for uri in ("gguf:/tmp/m.gguf?precision=bf16", "openai:http://127.0.0.1:1/v1#m?precision=bf16"):
        with pytest.raises(UsageError, match="cannot honour precision=bf16"):
            parse_uri(uri)
    with pytest.raises(UsageError, match="unknown precision 'int3'"):
        parse_uri("smollm2?precision=int3")


def test_refused_precision_is_one_line_and_exit_code_2():
    result = run_cli("run", "--model", "gguf:/nonexistent.gguf?precision=bf16")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot honour precision=bf16" in lines[0], result.stderr


def test_precision_is_recorded_in_the_revision(tiny_model_dir):
    default = HFBackend.load(str(tiny_model_dir))
    bf16 = HFBackend.load(str(tiny_model_dir), precision="bf16")
    assert default.precision == "fp32" and bf16.precision == "bf16"
    assert bf16.model_revision == default.model_revision + "+bf16"
    assert next(bf16.model.parameters()).dtype == torch.bfloat16


@pytest.mark.slow
def test_bundled_model_gives_the_reference_loops_greedy_answers():
    from longscope.backends import smollm2
    from longscope.tasks import make_task

    backend = smollm2.load()
    task = make_task("niah")
    for seed in range(3):
        request = task.build(backend, 1024, 0.5, seed).request(max_new_tokens=40)
        expected = reference_greedy(backend, request)
        assert backend.generate(request).text == backend.decode(expected)


@torch.inference_mode()
def _step_against_forward(
    model, steps: int = 6, attention_threads: int = 1, flash: bool = True
) -> list[float]:
    """Feed the same tokens through the model's forward and through DecodeStep, each on its own cache after
    one shared prompt; returns the largest logit difference per step and checks the argmax agrees."""
    step = DecodeStep.build(model)
    assert step is not None and step.usable()
    step.attention_threads = attention_threads
    step.flash = flash
    prompt = torch.tensor([list(range(5, 45))])
    plain = model(input_ids=prompt, use_cache=True).past_key_values
    fast = model(input_ids=prompt, use_cache=True).past_key_values
    reserve_cache(fast, steps)
    cos, sin = step.positions(prompt.shape[1], steps)
    gaps = []
    for i, token in enumerate(range(11, 11 + steps)):
        want = model(input_ids=torch.tensor([[token]]), past_key_values=plain, use_cache=True).logits[:, -1]
        got = step.step(token, fast, cos[i], sin[i])
        assert got.shape == want.shape and int(got.argmax()) == int(want.argmax())
        gaps.append(float((got - want).abs().max()))
    assert fast.get_seq_length() == plain.get_seq_length() == prompt.shape[1] + steps
    # The cache holds what the model wrote, to rounding: bf16 keys summed in another order differ by an ulp.
    atol = 1e-5 if next(model.parameters()).dtype == torch.float32 else 2e-2
    for mine, theirs in zip(fast.layers, plain.layers, strict=True):
        assert torch.allclose(mine.keys, theirs.keys, atol=atol)
        assert torch.allclose(mine.values, theirs.values, atol=atol)
    return gaps


@pytest.mark.parametrize("flash", [True, False], ids=["flash-attention", "two-products"])
def test_decode_step_matches_the_models_forward_with_grouped_heads(flash):
    backend = tiny_backend()  # 4 query heads sharing 2 key heads
    assert backend.decode_step is not None and backend.decode_step.flash  # the op is in every CPU build here
    assert max(_step_against_forward(backend.model, flash=flash)) < 1e-4


def test_decode_step_with_attention_on_every_thread_matches_the_forward():
    """attention_threads=0 (the bench's other variant) leaves the thread setting alone and computes the same."""
    backend = tiny_backend()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert max(_step_against_forward(backend.model, attention_threads=0)) < 1e-4
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_norm_computes_what_the_models_norm_does(dtype):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    step = tiny_backend().decode_step
    torch.manual_seed(5)
    norm = LlamaRMSNorm(48, eps=1e-5).to(dtype)
    with torch.no_grad():
        norm.weight.normal_()
    x = (torch.randn(1, 1, 48) * 3).to(dtype)
    with torch.inference_mode():
        want, got = norm(x), step._norm(norm, x)
    assert got.dtype == want.dtype == dtype
    # fp32: the same products summed in another order; bf16: the same rounding before the weight is applied.
    assert torch.allclose(got.float(), want.float(), rtol=1e-6, atol=1e-6)

    class ScaledNorm(LlamaRMSNorm):  # a norm that computes something else is run as the model's own module
        def forward(self, hidden_states):
            return 2 * super().forward(hidden_states)

    scaled = ScaledNorm(48, eps=1e-5).to(dtype)
    with torch.inference_mode():
        assert torch.equal(step._norm(scaled, x), scaled(x))


def test_decode_step_matches_a_qwen2_forward_with_projection_biases():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(1)
    config = Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=512)  # fmt: skip
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # random biases, so a step that dropped them would not agree
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    assert max(_step_against_forward(model)) < 1e-4


def test_decode_step_follows_a_rescaled_rotary():
    """Position methods swap the rotary module's frequencies while they run; the step reads them per call."""
    backend = tiny_backend()
    rotary = backend.model.model.rotary_emb
    original = rotary.inv_freq
    rotary.inv_freq = original / 4
    try:
        assert max(_step_against_forward(backend.model)) < 1e-4
    finally:
        rotary.inv_freq = original


def test_decode_step_stands_aside_for_hooks_patches_and_edited_weights():
    backend = tiny_backend()
    step = backend.decode_step
    assert step.usable()
    attention = backend.model.model.layers[0].self_attn
    handle = attention.register_forward_hook(lambda *args: None)
    assert not step.usable()
    handle.remove()
    attention.forward = attention.forward  # an instance-level patch, as a method would install
    assert not step.usable()
    del attention.forward
    assert step.usable()
    with torch.no_grad():
        backend.model.model.layers[1].mlp.up_proj.weight.mul_(2)
    assert not step.usable()
    # generate() then runs the model's own forward, which reads the edited weight.
    prompt = [{"role": "user", "content": "word1 word2 word3"}]
    request = GenerationRequest(messages=prompt, max_new_tokens=12)
    assert backend.generate(request).text == backend.decode(reference_greedy(backend, request))


def _held_bytes(tensors) -> int:
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def test_building_the_step_keeps_one_copy_of_the_weights_and_the_models_own_logits():
    """The step's layouts are the model's weights (its projections become views of them), so a CPU user's
    memory for the model does not double; and the model's forward over those views gives the same logits."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    prompt = torch.tensor([list(range(5, 37))])
    with torch.inference_mode():
        before_logits = model(input_ids=prompt).logits
    before = _held_bytes(model.parameters())
    step = DecodeStep.build(model)
    layouts = [w for layer in step.layers for w in layer.values() if isinstance(w, torch.Tensor)]
    assert _held_bytes([*model.parameters(), *layouts]) == before
    with torch.inference_mode():
        assert torch.allclose(model(input_ids=prompt).logits, before_logits, atol=1e-5)


def test_each_precision_gets_the_layout_its_one_row_product_reads_fast():
    """fp32 operands are contiguous [in, out]; bf16 ones stay views of the model's own [out, in] rows (a bf16
    row times a contiguous [in, out] matrix ran 22x slower on a CPU without bf16 instructions), and the bf16
    step still picks the forward's greedy tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(5)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)  # fmt: skip
    for dtype, operand_contiguous in ((torch.float32, True), (torch.bfloat16, False)):
        model = LlamaForCausalLM(config).eval().to(dtype)
        rows = {name: p.data_ptr() for name, p in model.named_parameters()}
        step = DecodeStep.build(model)
        if step.kernel is not None:  # the C step reads the model's own [out, in] rows: nothing is re-laid
            assert dtype == torch.float32 and not step.layers and step.lm_head_t is None
            assert rows == {name: p.data_ptr() for name, p in model.named_parameters()}
            assert all(p.is_contiguous() for p in model.parameters())
            _step_against_forward(model)
            continue
        operands = [layer[name] for layer in step.layers for name in ("qkv_t", "o_t", "gate_up_t", "down_t")]
        assert all(w.dtype == dtype and w.is_contiguous() == operand_contiguous for w in operands)
        assert all(w.t().is_contiguous() != operand_contiguous for w in [*operands, step.lm_head_t])
        projection = model.model.layers[0].mlp.down_proj.weight
        assert projection.is_contiguous() != operand_contiguous  # the model's weight is a view of the operand
        _step_against_forward(model)


def test_decode_step_is_not_built_for_other_architectures():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=2)).eval()
    assert DecodeStep.build(model) is None


def test_generate_through_the_step_keeps_the_measured_columns():
    """kv_bytes counts the same cache whichever loop filled it; the token counts are those of the reference."""
    backend = tiny_backend()
    text = " ".join(f"word{i % 31}" for i in range(120))
    request = GenerationRequest(messages=[{"role": "user", "content": text}], max_new_tokens=20)
    expected = reference_greedy(backend, request)
    got = backend.generate(request)
    layers = backend.model.config.num_hidden_layers
    kv_heads, dim = backend.model.config.num_key_value_heads, backend.model.config.head_dim
    held = got.input_tokens + len(expected) - 1  # the last generated token is never fed back
    assert got.kv_bytes == 2 * layers * kv_heads * dim * held * 4
    assert got.output_tokens == len(expected) and got.decode_s > 0


def test_every_row_records_the_weights_precision(tmp_path):
    from longscope.config import RunConfig
    from longscope.runner import run
    from longscope.store import RunStore

    backend = tiny_backend()
    backend.precision = "bf16"  # as HFBackend.load sets it for ?precision=bf16 (the weights stay as they are)
    config = RunConfig.from_options(tasks="niah(max_new_tokens=4)", lengths="512", samples="2")
    run(config, tmp_path / "run", backend=backend, show_progress=False, plane_retrievers=())
    store = RunStore.open(tmp_path / "run", create=False)
    try:
        rows = list(store.results())
    finally:
        store.close()
    assert len(rows) == 2 and {row.weight_precision for row in rows} == {"bf16"}


def test_the_c_step_is_built_here_for_fp32_only(step_kind):
    """A test run without the C step would pass every check above on torch's twice: this one says which ran."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)  # fmt: skip
    fp32 = DecodeStep.build(LlamaForCausalLM(config).eval())
    bf16 = DecodeStep.build(LlamaForCausalLM(config).eval().to(torch.bfloat16))
    assert (fp32.kernel is not None) == (step_kind == "c-step")
    assert bf16.kernel is None


@pytest.mark.parametrize("prompt_tokens", [1, 3, 700])
@pytest.mark.parametrize(
    ("heads", "kv_heads", "head_dim"),
    [(6, 2, 10), (6, 2, 64), (5, 1, 64), (4, 2, 128), (6, 1, 128)],
    ids=["width-10", "width-64-group-3", "width-64-group-5", "width-128-group-2", "width-128-group-6"],
)
@pytest.mark.parametrize("build", ["native", "portable"])
def test_decode_step_attends_over_short_and_long_caches(
    prompt_tokens, heads, kv_heads, head_dim, build, step_kind, monkeypatch, request
):
    """One position (fewer than the C step's chunks of the cache) to several of its 64-position blocks, a tail
    of a 16-key group, at the widths the C step has vector code for (64, 128: query heads taken in passes of up
    to four or two) and one it has not. ``portable``: the C step built without -march=native, as on a CPU the
    compiler cannot target, so every width takes the scalar parts of the same attention loop."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if build == "portable":
        if step_kind != "c-step":
            pytest.skip("the portable build is the C step's")
        native = decode_kernel.library()._name
        monkeypatch.setattr(decode_kernel, "FLAGS", decode_kernel.PORTABLE_FLAGS)
        decode_kernel.library.cache_clear()
        request.addfinalizer(decode_kernel.library.cache_clear)  # later tests get the native build again
        assert decode_kernel.library()._name != native
    torch.manual_seed(prompt_tokens)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
                         max_position_embeddings=1024)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    step = DecodeStep.build(model)
    prompt = torch.randint(5, 300, (1, prompt_tokens), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        plain = model(input_ids=prompt, use_cache=True).past_key_values
        fast = model(input_ids=prompt, use_cache=True).past_key_values
        reserve_cache(fast, 5)
        cos, sin = step.positions(prompt_tokens, 5)
        for i, token in enumerate((7, 8, 9, 10, 11)):
            want = model(input_ids=torch.tensor([[token]]), past_key_values=plain, use_cache=True).logits[
                :, -1
            ]
            got = step.step(token, fast, cos[i], sin[i])
            assert torch.allclose(got, want, atol=1e-4), float((got - want).abs().max())
    for mine, theirs in zip(fast.layers, plain.layers, strict=True):
        assert torch.allclose(mine.keys, theirs.keys, atol=1e-5)
        assert torch.allclose(mine.values, theirs.values, atol=1e-5)


@torch.inference_mode()
def test_the_c_step_leaves_a_cache_it_cannot_write_in_place_to_the_forward(step_kind):
    """No reserved room (or a layer another method replaced): the step says None and touches nothing, and
    generate() runs the model's forward for that token."""
    backend = tiny_backend()
    step = backend.decode_step
    prompt = torch.tensor([list(range(5, 30))])
    cache = backend.model(input_ids=prompt, use_cache=True).past_key_values
    cos, sin = step.positions(prompt.shape[1], 1)
    before = [layer.keys.clone() for layer in cache.layers]
    got = step.step(11, cache, cos[0], sin[0])
    if step_kind == "c-step":
        assert got is None
        assert all(torch.equal(a, layer.keys) for a, layer in zip(before, cache.layers, strict=True))
    else:  # torch's step writes through the cache's own update
        assert got is not None and cache.get_seq_length() == prompt.shape[1] + 1


@torch.inference_mode()
def test_a_cache_without_buffers_after_a_finished_one_goes_to_the_forward(step_kind):
    """A reserved cache decoded and let go leaves dead references behind; a cache of another kind next (a
    quantised one has no buffers at all) must not match them: the step says None and touches nothing."""
    import gc

    from transformers import DynamicCache

    if step_kind != "c-step":
        pytest.skip("only the C step keeps pointers between steps")
    backend = tiny_backend()
    step = backend.decode_step
    prompt = torch.tensor([list(range(5, 30))])
    finished = backend.model(input_ids=prompt, use_cache=True).past_key_values
    reserve_cache(finished, 2)
    cos, sin = step.positions(prompt.shape[1], 1)
    assert step.step(11, finished, cos[0], sin[0]) is not None
    del finished
    gc.collect()

    class Bufferless:  # the shape of a quantised layer: keys to read, no reserved buffers
        def __init__(self, layer):
            self.keys, self.values = layer.keys, layer.values

    plain = backend.model(input_ids=prompt, use_cache=True).past_key_values
    bufferless = DynamicCache()
    bufferless.layers = [Bufferless(layer) for layer in plain.layers]
    for cache in (plain, bufferless):
        before = [layer.keys.clone() for layer in cache.layers]
        assert step.step(11, cache, cos[0], sin[0]) is None
        assert all(torch.equal(a, layer.keys) for a, layer in zip(before, cache.layers, strict=True))


@torch.inference_mode()
def test_the_step_follows_caches_that_alternate_or_get_new_buffers():
    """The C step keeps the pointers of the buffers it last checked: two answers decoded in turns, each
    re-reserved (new, larger buffers) when its room runs out, must still get their own forward's logits."""
    backend = tiny_backend()
    model, step = backend.model, backend.decode_step
    prompts = [torch.tensor([list(range(5, 45))]), torch.tensor([list(range(60, 77))])]
    plains = [model(input_ids=p, use_cache=True).past_key_values for p in prompts]
    fasts = [model(input_ids=p, use_cache=True).past_key_values for p in prompts]
    for cache in fasts:
        reserve_cache(cache, 2)
    for i in range(7):
        for prompt, plain, fast in zip(prompts, plains, fasts, strict=True):
            if not fast.layers[0].has_room():
                reserve_cache(fast, 3)
            token = 11 + 3 * i
            cos, sin = step.positions(fast.get_seq_length(), 1)
            want = model(input_ids=torch.tensor([[token]]), past_key_values=plain, use_cache=True).logits[
                :, -1
            ]
            got = step.step(token, fast, cos[0], sin[0])
            assert got is not None
            assert torch.allclose(got, want, atol=1e-4), float((got - want).abs().max())
            assert fast.get_seq_length() == plain.get_seq_length() == prompt.shape[1] + i + 1


def test_a_failed_build_says_so_in_one_line_and_decodes_with_torch(monkeypatch, tmp_path, capsys):
    from longscope.backends import decode_kernel

    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    (tmp_path / "no-such-compiler").write_text("#!/bin/sh\necho 'cc: fatal error: no input' >&2\nexit 1\n")
    (tmp_path / "no-such-compiler").chmod(0o755)
    library.cache_clear()
    try:
        assert decode_kernel.library() is None
        assert "the C decode step did not build (cc: fatal error: no input); decoding with torch" in (
            capsys.readouterr().err
        )
        monkeypatch.setenv("CC", "")
        monkeypatch.setenv("LONGSCOPE_DECODE_KERNEL", "0")
        library.cache_clear()
        assert decode_kernel.library() is None
    finally:
        library.cache_clear()


@torch.inference_mode()
def test_the_c_step_holds_the_memory_it_reads_when_parameters_get_new_data(step_kind):
    """Torch's step re-lays weights by giving parameters new data; a C step built before must not be left
    reading freed memory (the bench builds both on one model)."""
    import gc

    backend = tiny_backend()
    step = backend.decode_step
    prompt = torch.tensor([list(range(5, 30))])
    plain = backend.model(input_ids=prompt, use_cache=True).past_key_values
    fast = backend.model(input_ids=prompt, use_cache=True).past_key_values
    reserve_cache(fast, 1)
    for parameter in backend.model.parameters():
        parameter.data = parameter.data.clone()
    gc.collect()
    junk = [torch.full((4096,), float("nan")) for _ in range(64)]  # reuse whatever was freed
    cos, sin = step.positions(prompt.shape[1], 1)
    want = backend.model(input_ids=torch.tensor([[11]]), past_key_values=plain, use_cache=True).logits[:, -1]
    got = step.step(11, fast, cos[0], sin[0])
    assert junk and torch.allclose(got, want, atol=1e-4)


def test_the_step_stands_aside_for_masked_entries_and_a_replaced_attention_function(monkeypatch):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    backend = tiny_backend()
    step = backend.decode_step
    attention = backend.model.model.layers[1].self_attn
    attention.masked_key_indices = (torch.tensor([0]),) * 4  # kvpress's head-wise press hides entries so
    assert not step.usable()
    attention.masked_key_indices = None
    assert step.usable()
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS, "sdpa", lambda *args, **kwargs: None)
    assert not step.usable()


def test_a_session_decodes_through_the_step_with_the_forwards_answers(monkeypatch):
    """Multi-request questions decode through the step where the method leaves the model as it is; the answers
    are those of the model's forward (the session with the step taken away)."""
    from longscope.methods import make_method

    backend = tiny_backend()
    context = " ".join(f"word{(i * 5) % 41}" for i in range(200))
    requests = [
        GenerationRequest(messages=[{"role": "user", "content": f"{context}\n{q}"}], max_new_tokens=24,
                          context=context)
        for q in ("first question", "a second one")
    ]  # fmt: skip
    calls = []
    original = backend.decode_step.step
    monkeypatch.setattr(backend.decode_step, "step", lambda *a: calls.append(1) or original(*a))
    session = backend.session(make_method("full"))
    with_step = [session.ask(request).text for request in requests * 2]
    assert len(calls) >= 3 * 23  # every question's tokens after the first, through the step
    backend.decode_step = None
    session = backend.session(make_method("full"))
    assert [session.ask(request).text for request in requests * 2] == with_step


def test_a_cache_folder_that_cannot_be_written_leaves_the_torch_step(monkeypatch, tmp_path, capsys):
    from longscope.backends import decode_kernel

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(decode_kernel, "cache_dir", lambda: blocker / "cache")
    library.cache_clear()
    try:
        assert decode_kernel.library() is None
        assert "the C decode step is unavailable" in capsys.readouterr().err
    finally:
        library.cache_clear()


def test_heads_past_the_c_steps_limits_get_the_torch_step(step_kind):
    """Heads wider than the C step's fixed 256 are left to torch's step at build time, so no cache is advanced
    and then refused."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(2)
    config = LlamaConfig(vocab_size=300, hidden_size=1024, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    assert DecodeStep.build(model).kernel is None
    assert max(_step_against_forward(model)) < 1e-4
