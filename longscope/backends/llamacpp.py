"""The llama.cpp backend (``gguf:PATH``): the GGUF's own tokenizer and chat template, timed prefill and decode.

llama-cpp-python is an optional dependency that compiles llama.cpp when it is installed (several minutes;
``pip install 'llama-cpp-python[server]'``). Exact lengths come from llama.cpp's own tokenizer: the prompt is
the GGUF's chat template (``tokenizer.chat_template`` in its metadata) rendered with jinja2 as llama.cpp's
servers render it, tokenized with special tokens parsed and nothing added, so the count of the rendered text
is exactly what the model reads. Where the vocabulary asks for a BOS token and the template does not write
one, the BOS is put in front of the rendered text, as llama.cpp's server does: the model sees exactly one.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from longscope.backends.decoding import decode_tokens
from longscope.backends.reasoning import strip_reasoning
from longscope.backends.uri import ModelURI
from longscope.core import Capabilities, Generation, GenerationRequest, UsageError

GGUF_MAGIC = b"GGUF"
_BLOCK = 1 << 20
_PARTIAL_ABOVE = 1 << 30  # files over 1 GB are identified by their first and last 64 MB plus their size
_PARTIAL_SPAN = 64 << 20


def check_gguf(path: str | Path) -> Path:
    """The file as a Path, or a UsageError saying why it cannot be a GGUF model; reads four bytes only."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"no GGUF file at {file}; give gguf:PATH to a .gguf model file")
    try:
        with file.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    if magic != GGUF_MAGIC:
        raise UsageError(f"{file} is not a GGUF file (it does not start with the GGUF magic bytes)")
    return file


def check_uri(uri: ModelURI) -> None:
    """The ``gguf:`` scheme's cheap check: the file is there and starts with the GGUF magic bytes."""
    check_gguf(uri.location)


def load_uri(uri: ModelURI) -> LlamaCppBackend:
    """The ``gguf:`` scheme's loader."""
    return LlamaCppBackend.load(uri.location)


def file_identity(path: Path) -> str:
    """The file's sha256, read in blocks; over 1 GB, of the first and last 64 MB and the size (and the
    revision string says so), since hashing tens of gigabytes would take minutes at every start."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if size <= _PARTIAL_ABOVE:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
            return f"sha256:{digest.hexdigest()}"
        for start in (0, size - _PARTIAL_SPAN):
            handle.seek(start)
            left = _PARTIAL_SPAN
            while left:
                block = handle.read(min(_BLOCK, left))
                if not block:
                    break
                digest.update(block)
                left -= len(block)
    digest.update(str(size).encode())
    return f"sha256-first-last-64MiB+size:{digest.hexdigest()}"


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise UsageError(
            "gguf: models need llama-cpp-python, which compiles llama.cpp on install (several minutes): "
            "pip install 'llama-cpp-python[server]'"
        ) from None
    return llama_cpp


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no affinity masks
        return max(1, os.cpu_count() or 1)


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _template_environment() -> Any:
    """A jinja2 environment configured as llama.cpp's servers and transformers configure theirs: sandboxed,
    trim_blocks and lstrip_blocks, loop controls, ``tojson`` without ASCII escapes, ``{% generation %}``
    passed through. A different whitespace setting would change the prompt and so its length."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(jinja2.ext.Extension):
        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            parser.stream.skip(1)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[GenerationTag, jinja2.ext.loopcontrols],
    )
    environment.filters["tojson"] = (
        lambda value, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )
    )
    return environment


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _raise_exception(message: str) -> None:
    raise ValueError(message)


class GGUFTokenizer:
    """A GGUF file's vocabulary and chat template, loaded without its weights (llama.cpp's ``vocab_only``).

    Everything exact-length fitting needs; the HTTP backend uses it too (``tokenizer=gguf:PATH``) to render
    and count prompts for a server that serves the same file.
    """

    kind = "gguf"
    capabilities = Capabilities(tokenization="model")

    def __init__(self, path: str | Path) -> None:
        self.path = check_gguf(path)
        self._llama_cpp = _import_llama_cpp()
        self._vocab = self._load_vocab()
        self.metadata: dict[str, str] = self._vocab.metadata()
        self.model_name = self.path.name
        self.model_revision = ""  # the file hash; computed by the backend, which needs it for its identity
        arch = self.metadata.get("general.architecture", "")
        self.context_window = int(self.metadata.get(f"{arch}.context_length") or 0) or 2048
        vocab = self._vocab
        self._bos_id = int(vocab.token_bos())
        self._eos_id = int(vocab.token_eos())
        self.bos_token = vocab.token_get_text(self._bos_id) if self._bos_id >= 0 else ""
        self.eos_token = vocab.token_get_text(self._eos_id) if self._eos_id >= 0 else ""
        self.adds_bos = bool(vocab.add_bos_token()) and self._bos_id >= 0
        self.chat_template: str | None = self.metadata.get("tokenizer.chat_template") or None
        self._template = (
            _template_environment().from_string(self.chat_template) if self.chat_template else None
        )
        self._fingerprint: str | None = None
        self._specials: list[str] | None = None

    def _load_vocab(self) -> Any:
        """The vocabulary alone: llama.cpp's model object with ``vocab_only`` (no weights, no context)."""
        from llama_cpp._internals import LlamaModel

        params = self._llama_cpp.llama_model_default_params()
        params.vocab_only = True
        try:
            return LlamaModel(path_model=str(self.path), params=params, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise UsageError(f"llama.cpp cannot load {self.path}: {_first_line(exc)}") from None

    def _load_model(self, **kwargs: Any) -> Any:
        try:
            return self._llama_cpp.Llama(str(self.path), verbose=False, **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise UsageError(f"llama.cpp cannot load {self.path}: {_first_line(exc)}") from None

    # -- prompts and tokens --------------------------------------------------------------------------

    def render(self, messages: list[dict[str, str]], answer_prefix: str = "", chat: bool = True) -> str:
        if not chat:
            text = "\n\n".join(m["content"] for m in messages)
        elif self._template is not None:
            text = self._template.render(
                messages=messages,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                add_generation_prompt=True,
                raise_exception=_raise_exception,
                strftime_now=lambda fmt: datetime.now().strftime(fmt),
            )
        else:
            # A base model without a chat template reads the turns as plain paragraphs.
            text = "\n\n".join(m["content"] for m in messages) + "\n\n"
        if self.adds_bos and not text.startswith(self.bos_token):
            text = self.bos_token + text
        return text + answer_prefix

    def encode(self, text: str) -> list[int]:
        # special=True: control-token strings written by the template become those tokens, as in the server.
        return list(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def decode(self, ids: list[int]) -> str:
        return self._vocab.detokenize(list(ids)).decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        return [self.count_tokens(text) for text in texts]

    def special_token_strings(self) -> list[str]:
        """Control (and unknown) tokens: the strings that ``special=True`` turns into special tokens."""
        if self._specials is None:
            llama_cpp = self._llama_cpp
            vocab = self._vocab
            flags = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
            found = set()
            for token in range(vocab.n_vocab()):
                if vocab.token_get_attr(token) & flags:
                    text = vocab.token_get_text(token)
                    if text.strip():
                        found.add(text)
            self._specials = sorted(found)
        return self._specials

    def tokenizer_fingerprint(self) -> str:
        """A hash of the vocabulary (texts and attributes), its model and pre-tokenizer, the BOS rule, the chat
        template, and the ids of a probe text (which depend on the merges that llama.cpp does not expose)."""
        if self._fingerprint is None:
            vocab = self._vocab
            digest = hashlib.sha256(b"gguf-tokenizer-v1")
            for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
                digest.update(f"\x00{key}={self.metadata.get(key, '')}".encode())
            digest.update(f"\x00bos={self.adds_bos}:{self.bos_token}\x00{self.chat_template or ''}".encode())
            for token in range(vocab.n_vocab()):
                digest.update(f"\x00{vocab.token_get_text(token)}\x01{vocab.token_get_attr(token)}".encode())
            probe = self.render([{"role": "user", "content": _PROBE}])
            digest.update(f"\x00{probe}\x00{self.encode(probe)}".encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


_PROBE = (
    "The quick brown fox, 12345 times: naïve café — 東京 🦊!\n\tdef f(x): return x**2  # ok\n"
    "<|im_start|> [INST] <s> 0.5e-3 https://example.org/a?b=c"
)


class LlamaCppBackend(GGUFTokenizer):
    """A GGUF model run in process by llama.cpp, one request at a time.

    The weights are loaded at the first request, with a context sized to what requests need (a power of two
    from 512, up to the model's trained window), and reloaded larger only when a longer request comes: a
    128k-context model evaluated at 4k then holds a 4k KV cache, not a 128k one. Reloads are cheap since
    llama.cpp maps the file into memory.
    """

    # Prefill is timed apart from decode: the first token's time is measured as a stream would give it.
    capabilities = Capabilities(tokenization="model", max_concurrency=1, streaming=True)

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int | None = None,
        n_ctx: int | None = None,
        n_gpu_layers: int | None = None,
        flash_attn: bool = False,
    ) -> None:
        super().__init__(path)
        self.model_revision = file_identity(self.path)
        self.threads = threads or _cores()
        self.fixed_n_ctx = n_ctx
        llama_cpp = self._llama_cpp
        if n_gpu_layers is None:
            n_gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        self.n_gpu_layers = n_gpu_layers
        self.flash_attn = flash_attn
        self._llm: Any | None = None
        self._kv_bytes_per_token = self._kv_per_token()

    @classmethod
    def load(cls, path: str, **kwargs: Any) -> LlamaCppBackend:
        return cls(path, **kwargs)

    @property
    def n_ctx(self) -> int:
        """The context the loaded model holds now (0 before the first request)."""
        return 0 if self._llm is None else int(self._llm.n_ctx())

    def _ensure_context(self, needed: int) -> Any:
        if self._llm is not None and self.n_ctx >= needed:
            return self._llm
        size = self.fixed_n_ctx or min(self.context_window, max(512, 1 << (needed - 1).bit_length()))
        if size < needed:
            raise ValueError(f"request of {needed} tokens does not fit the llama.cpp context of {size}")
        self._llm = None  # free the old context before allocating the new one
        self._llm = self._load_model(
            n_ctx=size,
            n_batch=min(size, 512),
            n_threads=self.threads,
            n_threads_batch=self.threads,
            n_gpu_layers=self.n_gpu_layers,
            flash_attn=self.flash_attn,
        )
        return self._llm

    def _kv_per_token(self) -> int | None:
        """Bytes of f16 keys and values one token holds, from the architecture's metadata (None if unknown)."""
        meta, arch = self.metadata, self.metadata.get("general.architecture", "")
        try:
            layers = int(meta[f"{arch}.block_count"])
            heads = int(meta[f"{arch}.attention.head_count"])
            kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
            width = int(meta[f"{arch}.embedding_length"]) // heads
            key = int(meta.get(f"{arch}.attention.key_length", width))
            value = int(meta.get(f"{arch}.attention.value_length", width))
        except (KeyError, ValueError, ZeroDivisionError):
            return None
        return layers * kv_heads * (key + value) * 2

    # -- generation ----------------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> Generation:
        import numpy as np

        prompt = self.render(request.messages, request.answer_prefix, request.chat)
        ids = self.encode(prompt)
        needed = len(ids) + request.max_new_tokens
        if needed > self.context_window:
            raise ValueError(
                f"request of {len(ids)} + {request.max_new_tokens} tokens exceeds the model window of "
                f"{self.context_window}"
            )
        llm = self._ensure_context(needed)
        llama_cpp = self._llama_cpp
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        n_vocab = int(llm.n_vocab())
        rng = np.random.default_rng(request.seed) if request.temperature > 0 else None

        def pick() -> int:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
            if rng is None:
                return int(logits.argmax())
            scaled = logits.astype(np.float64) / request.temperature
            probs = np.exp(scaled - scaled.max())
            return int(rng.choice(n_vocab, p=probs / probs.sum()))

        llm.reset()
        started = time.perf_counter()
        llm.eval(ids)
        token = pick()
        prefill_s = time.perf_counter() - started

        decode_started = time.perf_counter()

        def step(fed: int) -> int:
            llm.eval([fed])
            return pick()

        generated, text, finish = decode_tokens(
            token, step, lambda t: bool(llama_cpp.llama_vocab_is_eog(vocab, t)), self.decode, request
        )
        decode_s = time.perf_counter() - decode_started
        per_token = self._kv_bytes_per_token
        return Generation(
            text=strip_reasoning(text),
            input_tokens=len(ids),
            output_tokens=len(generated),
            prefill_s=prefill_s,
            decode_s=decode_s,
            wall_s=time.perf_counter() - started,
            finish_reason=finish,
            kv_bytes=None if per_token is None else per_token * int(llm.n_tokens),
            peak_memory_bytes=_peak_rss_bytes(),
        )
