"""The in-process Hugging Face transformers backend: exact tokenisation, greedy decoding, measured timings."""

from __future__ import annotations

import functools
import hashlib
import re
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from longscope.backends.decoding import decode_tokens
from longscope.backends.fast_decode import DecodeStep, TokenFeeder
from longscope.backends.memory import PeakMemory
from longscope.backends.reasoning import strip_reasoning
from longscope.backends.uri import ModelURI
from longscope.core import Capabilities, Generation, GenerationRequest, UsageError
from longscope.methods.base import cache_bytes

# Places where a tokenizer may start a new pre-token, so that counts on either side add up. Each set is
# tried on real text once per tokenizer, richest first. Before " Capital" after sentence punctuation holds for
# byte-level BPE (GPT-2, Llama-3, Qwen) and metaspace (SentencePiece-style) tokenizers alike. Newline seams
# hold for byte-level ones too, but cutting records into many tiny pieces made counting slower, not faster.
_SEAM_SETS = (re.compile(r"(?<=[.!?])(?= [A-Z])"),)
_CHUNKED_ABOVE_CHARS = 20_000
_MEMO_LIMIT = 400_000
_PROBE_PROSE_CHARS = 40_000


@functools.cache
def _seam_probe() -> str:
    """Varied text to try seam sets on: the package's essays (prose with paragraph breaks), a stretch of
    repeated plain sentences (noise-like haystack), and record-like rows of ids and numbers."""
    text = resources.files("longscope.corpora").joinpath("essays.txt").read_text(encoding="utf-8")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    prose, length = [], 0
    for paragraph in paragraphs:
        if length >= _PROBE_PROSE_CHARS:
            break
        prose.append("\n\n" + paragraph)
        length += len(paragraph) + 2
    plain = (
        "The river runs wide.",
        "The hills stay quiet.",
        "The lamps are lit at dusk.",
        "Rain falls on the road.",
    )
    noise = "".join(" " + plain[i % len(plain)] for i in range(50))
    records = "".join(f"\nrow {i} of 7b{i}e -> Ab{i * 37} said: item {i}." for i in range(200))
    return "".join(prose) + noise + records


def load_uri(uri: ModelURI) -> HFBackend:
    """The ``hf:`` scheme's loader: a hub id or a local directory (``?precision=fp32|bf16`` optional)."""
    return HFBackend.load(uri.location, precision=uri.option("precision"))


# Weight precisions an in-process model can be loaded in, by the name a model URI gives them.
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


class _ReservedLayer(DynamicLayer):
    """A DynamicLayer whose keys and values live at the front of a buffer sized for the whole answer, so a
    decode step writes one position in place instead of concatenating (copying) the whole cache per layer.
    ``keys``/``values`` stay views of exactly the held length, so counts and byte totals read as before; a
    layer someone replaced or that outgrows the buffer falls back to concatenation."""

    def reserve(self, extra: int) -> None:
        held = self.keys.shape[-2]
        shape = (*self.keys.shape[:-2], held + extra, self.keys.shape[-1])
        self._key_buffer = self.keys.new_empty(shape)
        self._value_buffer = self.values.new_empty(shape)
        self._key_buffer[..., :held, :].copy_(self.keys)
        self._value_buffer[..., :held, :].copy_(self.values)
        self.keys = self._key_buffer[..., :held, :]
        self.values = self._value_buffer[..., :held, :]

    def has_room(self, positions: int = 1) -> bool:
        """Whether ``positions`` more fit in place (the views still at the buffer's front)."""
        buffer = self._key_buffer
        fits = self.keys.shape[-2] + positions <= buffer.shape[-2]
        return fits and self.keys.data_ptr() == buffer.data_ptr()

    def advance(self) -> int:
        """Take one more position into the views, for a step that writes it in place: its index."""
        held = self.keys.shape[-2]
        self.keys = self._key_buffer[..., : held + 1, :]
        self.values = self._value_buffer[..., : held + 1, :]
        return held

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, cache_kwargs: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        held = self.keys.shape[-2]
        end = held + key_states.shape[-2]
        buffer = self._key_buffer
        if end > buffer.shape[-2] or self.keys.data_ptr() != buffer.data_ptr():
            return super().update(key_states, value_states, cache_kwargs)
        buffer[..., held:end, :].copy_(key_states)
        self._value_buffer[..., held:end, :].copy_(value_states)
        self.keys = buffer[..., :end, :]
        self.values = self._value_buffer[..., :end, :]
        return self.keys, self.values


def reserve_cache(cache: Any, extra: int) -> None:
    """Give every plain (full-attention, dynamic) layer of ``cache`` room for ``extra`` more positions; a layer
    reserved before (a session's context, answered again) gets a larger buffer only where it lacks the room."""
    for layer in getattr(cache, "layers", ()):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys.numel():
            layer.__class__ = _ReservedLayer
            layer.reserve(extra)
        elif type(layer) is _ReservedLayer and not layer.has_room(extra):
            layer.reserve(extra)


def _blocks(pieces: list[str], every: int = 16) -> list[str]:
    """Join seam-split pieces into blocks that end where a piece's hash says so: the boundaries depend on
    content only, so text added at the front or changed in one place leaves the other blocks (and their
    memoised counts) as they were, while each block is long enough to tokenise efficiently."""
    blocks, current = [], []
    for piece in pieces:
        current.append(piece)
        if hash(piece) % every == 0:
            blocks.append("".join(current))
            current = []
    if current:
        blocks.append("".join(current))
    return blocks


def quiet_transformers() -> None:
    """Loading prints progress bars and advice per tensor; a run's own progress bar is what users read."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _adds_bos(tokenizer: Any) -> bool:
    """Whether encoding plain text puts the BOS token first, as a raw-prompt benchmark's tokenizer call would."""
    if tokenizer.bos_token_id is None:
        return False
    try:
        return tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
    except Exception:  # noqa: BLE001 - a tokenizer that cannot say adds nothing
        return False


class HFTokenizer:
    """A transformers tokenizer and chat template: everything exact-length fitting needs, and no model.

    Samples can be built with this alone, for any model whose tokenizer is at hand, without loading weights.
    """

    kind = "hf"
    capabilities = Capabilities(tokenization="model")

    def __init__(
        self, tokenizer: Any, *, name: str = "", revision: str = "", context_window: int = 0
    ) -> None:
        self.tokenizer = tokenizer
        self.model_name = name
        self.model_revision = revision
        self.context_window = context_window
        self._fingerprint: str | None = None
        self._seams: re.Pattern | None | bool = False  # False: not yet probed; None: no seam set adds up
        self._chunk_memo: dict[str, int] = {}

    def render(self, messages: list[dict[str, str]], answer_prefix: str = "", chat: bool = True) -> str:
        if not chat:
            bos = self.tokenizer.bos_token if _adds_bos(self.tokenizer) else ""
            return (bos or "") + "\n\n".join(m["content"] for m in messages) + answer_prefix
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            # A base model without a chat template reads the turns as plain paragraphs.
            bos = self.tokenizer.bos_token or ""
            text = bos + "\n\n".join(m["content"] for m in messages) + "\n\n"
        return text + answer_prefix

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        """Exact token count. Long texts are counted sentence by sentence with a memo when this tokenizer is
        shown to split at sentence seams (". The"), so refitting a 128k haystack re-tokenises only what changed."""
        seams = self._seams_that_add_up() if len(text) >= _CHUNKED_ABOVE_CHARS else None
        if seams is None:
            return len(self.encode(text))
        chunks = _blocks(seams.split(text))
        memo = self._chunk_memo
        missing = list({chunk for chunk in chunks if chunk not in memo})
        if len(memo) + len(missing) > _MEMO_LIMIT:
            memo.clear()
        memo.update(zip(missing, self.count_tokens_batch(missing), strict=True))
        return sum(memo[chunk] for chunk in chunks)

    def _seams_that_add_up(self) -> re.Pattern | None:
        """The richest seam set whose piecewise counts equal the whole count, checked once on varied text."""
        if self._seams is False:
            probe = _seam_probe()
            whole = len(self.encode(probe))
            self._seams = next(
                (seams for seams in _SEAM_SETS if sum(self.count_tokens_batch(seams.split(probe))) == whole),
                None,
            )
        return self._seams

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        fast = getattr(self.tokenizer, "backend_tokenizer", None)
        if fast is not None:  # the Rust tokenizer directly: no Python lists of ids for thousands of units
            return [len(encoding) for encoding in fast.encode_batch(texts, add_special_tokens=False)]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def special_token_strings(self) -> list[str]:
        decoder = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        specials = {t.content for t in decoder.values() if getattr(t, "special", False)}
        specials.update(self.tokenizer.all_special_tokens)
        return sorted(specials)

    def tokenizer_fingerprint(self) -> str:
        if self._fingerprint is None:
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            if backend is not None:
                body = backend.to_str()
            else:
                body = repr(sorted(self.tokenizer.get_vocab().items()))
            body += "\x00" + str(getattr(self.tokenizer, "chat_template", "") or "")
            body += "\x00" + self.render([{"role": "user", "content": "x"}])
            self._fingerprint = hashlib.sha256(body.encode()).hexdigest()[:16]
        return self._fingerprint


class HFBackend(HFTokenizer):
    """A transformers causal LM and its tokenizer, run one request at a time; the in-process model that KV
    sessions and in-model methods work on (see ``longscope.core.InProcessModel``)."""

    # Prefill is timed apart from decode: the first token's time is measured as a stream would give it.
    capabilities = Capabilities(in_process_model=True, tokenization="model", streaming=True)

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        revision: str = "",
        context_window: int | None = None,
    ) -> None:
        window = context_window or getattr(model.config, "max_position_embeddings", None) or 2048
        super().__init__(tokenizer, name=name, revision=revision, context_window=int(window))
        self.model = model.eval()
        self.device = next(model.parameters()).device
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos_ids = eos if isinstance(eos, list) else [eos]
        if tokenizer.eos_token_id is not None:
            eos_ids.append(tokenizer.eos_token_id)
        self.eos_ids = {int(i) for i in eos_ids if i is not None}
        self.precision = {v: k for k, v in PRECISIONS.items()}.get(next(model.parameters()).dtype, "")
        # Built with the model, so the copies it holds are part of every row's resident memory alike.
        self.decode_step = DecodeStep.build(self.model)

    @classmethod
    def load(
        cls,
        path_or_id: str,
        *,
        name: str | None = None,
        revision: str | None = None,
        precision: str | None = None,
    ) -> HFBackend:
        """Load a model by hub id or local path: CUDA in bf16 when present (flash attention if installed), the
        CPU in fp32; ``precision`` ("fp32" or "bf16") overrides that and is appended to the revision, so rows
        and cached answers of another precision are told apart."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        on_gpu = torch.cuda.is_available()
        if precision is not None and precision not in PRECISIONS:
            raise UsageError(f"unknown precision {precision!r}; give one of {', '.join(PRECISIONS)}")
        default = "bf16" if on_gpu else "fp32"
        chosen = precision or default
        kwargs: dict[str, Any] = {"dtype": PRECISIONS[chosen]}
        if on_gpu:
            kwargs["device_map"] = "cuda"
            kwargs["attn_implementation"] = "flash_attention_2" if _has_flash_attention() else "sdpa"
        else:
            kwargs["attn_implementation"] = "sdpa"
        try:
            tokenizer = AutoTokenizer.from_pretrained(path_or_id)
            model = AutoModelForCausalLM.from_pretrained(path_or_id, **kwargs)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"cannot load model {path_or_id!r}: {first} "
                "(give a local directory with config.json and weights, or a hub id while online)"
            ) from None
        revision = revision or _revision_of(path_or_id, model)
        if chosen != default:  # today's rows (the default precision) keep their revision and cache keys
            revision += f"+{chosen}"
        backend = cls(model, tokenizer, name=name or path_or_id, revision=revision)
        backend.precision = chosen
        return backend

    # -- generation ----------------------------------------------------------------------------------

    def prepare(
        self, request: GenerationRequest, *, past_window: bool = False
    ) -> tuple[str, list[int], torch.Generator | None]:
        """The rendered prompt, its token ids and the sampler's generator; a request above the model window
        fails here unless the method reads past it (``past_window``)."""
        prompt = self.render(request.messages, request.answer_prefix, request.chat)
        ids = self.encode(prompt)
        if len(ids) + request.max_new_tokens > self.context_window and not past_window:
            raise ValueError(
                f"request of {len(ids)} + {request.max_new_tokens} tokens exceeds the model window of "
                f"{self.context_window}"
            )
        generator = None
        if request.temperature > 0:
            generator = torch.Generator(device=self.device).manual_seed(request.seed)
        return prompt, ids, generator

    @torch.inference_mode()
    def generate(self, request: GenerationRequest) -> Generation:
        _, ids, generator = self.prepare(request)
        input_ids = torch.tensor([ids], device=self.device)

        started = time.perf_counter()
        with PeakMemory(self.device) as peak:
            out = self.model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            token = self.pick(out.logits[:, -1, :], request.temperature, generator)
            self.sync()
        prefill_s = time.perf_counter() - started

        decode_started = time.perf_counter()
        # After the prefill's peak is read, so the memory column means what it did; its copy counts as decode.
        reserve_cache(cache, request.max_new_tokens)

        fast = self.decode_step if self.decode_step is not None and self.decode_step.usable() else None
        feed = TokenFeeder(self.model, fast, cache, len(ids), request.max_new_tokens, self.device)

        def step(fed: int) -> int:
            return self.pick(feed(fed), request.temperature, generator)

        generated, text, finish = decode_tokens(token, step, self.eos_ids.__contains__, self.decode, request)
        self.sync()
        decode_s = time.perf_counter() - decode_started
        return Generation(
            text=strip_reasoning(text),  # scored without any <think> trace; output_tokens keeps its length
            input_tokens=len(ids),
            output_tokens=len(generated),
            prefill_s=prefill_s,
            decode_s=decode_s,
            wall_s=time.perf_counter() - started,
            finish_reason=finish,
            kv_bytes=cache_bytes(cache),
            peak_memory_bytes=peak.bytes,
            reused_tokens=0,  # every plain request prefills its whole prompt
        )

    def session(self, method: Any) -> Any:
        """A shared-context session running ``method`` (a KV method) on this model: see kv_session."""
        from longscope.backends.kv_session import KVSession

        return KVSession(self, method)

    @staticmethod
    def pick(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> int:
        if temperature <= 0:
            return int(logits.argmax(-1).item())
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator).item())

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _has_flash_attention() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def _revision_of(path_or_id: str, model: Any) -> str:
    """A commit hash for hub models; for a local directory, a hash of its config and weight file sizes."""
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return str(commit)
    path = Path(path_or_id)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(path.iterdir()):
            if file.name == "config.json":
                digest.update(file.read_bytes())
            elif file.suffix in (".safetensors", ".bin"):
                digest.update(f"{file.name}:{file.stat().st_size}".encode())
        return digest.hexdigest()[:12]
    return ""
