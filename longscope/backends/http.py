"""The OpenAI-compatible HTTP backend (``openai:BASE_URL#MODEL?options``): vLLM, SGLang, llama.cpp, hosted APIs.

URI syntax::

    openai:BASE_URL#MODEL[?option=value&option=value...]
    openai:http://127.0.0.1:8080/v1#smollm2?mode=completion&concurrency=4&api_key_env=MY_KEY

``BASE_URL`` is the API root that ``/models``, ``/chat/completions`` and ``/completions`` hang from (usually
ending in ``/v1``); ``MODEL`` is the model id exactly as the server's ``/v1/models`` lists it. Options:

==================  ===========  ===================================================================================
option              default      meaning
==================  ===========  ===================================================================================
mode                chat         ``chat``: /chat/completions with messages, the server applies its chat template;
                                 ``completion``: /completions with the prompt rendered here (``tokenizer``'s
                                 chat template, or plain paragraphs without one)
concurrency         1            requests in flight at once (``capabilities.max_concurrency``, read by executors);
                                 above 1, time to first token includes any queueing in the server
timeout             (sized)      the longest silence allowed, in seconds: before the first token (long prompts
                                 prefill for minutes), between streamed chunks, and, without streaming, for the
                                 whole answer; a stall past it is retried. By default it follows each request's
                                 size: 30 s + 1 s per 100 prompt tokens (+ 1 s per 5 output tokens without
                                 streaming), at most 600 s; calls that generate nothing wait at most 120 s
retries             5            retries of one request after a connection error, a timeout, a dropped stream,
                                 429, 5xx, or a 200 with an empty or invalid JSON body; waits double from ``backoff`` (up to 60 s), and a 429's or 503's
                                 Retry-After (seconds or an HTTP date, up to 300 s) is waited instead
backoff             1.0          seconds before the first retry
api_key_env         (none)       environment variable holding the API key, read at start and sent as a bearer
                                 token; the key is never written to the run config or the rows
tokenizer           (none)       a local tokenizer and chat template: ``gguf:PATH``, ``hf:PATH_OR_ID`` or
                                 ``smollm2`` (the bundled GGUF). Used to render prompts, and to count tokens when
                                 the server has no tokenize endpoint
stream              true         stream the answer (server-sent events) to time the first token; with ``false``,
                                 or a server that does not stream, ``prefill_s`` holds the whole time and
                                 ``decode_s`` is 0
context_window      (reported)   the server's context window in tokens, for servers that do not report it
prefill             auto         how an answer prefix is sent in chat mode: ``continue`` (a trailing assistant
                                 message the server continues: vLLM and SGLang with continue_final_message,
                                 llama.cpp's C++ server by itself), ``completion`` (the rendered prompt with the
                                 prefix, through /completions); ``auto`` picks by the server's kind
==================  ===========  ===================================================================================

Token counts, which exact lengths rest on, come from the first of: the server's tokenize endpoint
(llama-cpp-python: POST /extras/tokenize; llama.cpp: POST /tokenize; vLLM: POST /tokenize), the local
``tokenizer``, or an approximation of one token per four characters. ``token_count_source`` says which
(``server:...``, ``local:...``, ``approximate``); whenever counts are not exact, ``capabilities.tokenization``
is ``"estimate"`` (so ``capabilities.exact_tokens`` is False), for the runner to record with each sample.

In chat mode the server applies its own template, so the text counted for a sample's length is the prompt as
the server renders it: from llama.cpp's /apply-template where the server has it, else rendered here with the
local ``tokenizer``'s template (llama-cpp-python and vLLM apply the template stored with the model, which is
the one a ``gguf:`` or ``hf:`` tokenizer of the same model holds), and counted with the server's tokenizer. With
neither, the messages are counted as plain paragraphs without the template's tokens, and the counts are
flagged as approximate like the fallback above. A model id that is a path to a GGUF file on this machine
(llama-cpp-python's default id) is taken as ``tokenizer=gguf:`` that path. In completion mode, a server that
puts a BOS token in front of every prompt by itself gets the prompt without the BOS the template wrote, and the
count includes it once; where the BOS text is unknown (no local tokenizer) the counts are flagged inexact.

An answer longer than 32 characters per requested token (``max_tokens``) is cut there, the rest of the stream
left unread, and the row's ``finish_reason`` is ``capped``; a non-streamed body far past that bound is not read
and the request fails with the reason.

Timings: with streaming, ``prefill_s`` is the time to the first generated token and ``decode_s`` the rest.
Servers that reuse the cache of a previous prompt's prefix (llama-cpp-python always, vLLM with prefix caching)
report a shorter prefill for samples that share a beginning; llama.cpp's server is asked not to
(``cache_prompt: false``).

Bad input that can be known at start (an unreachable server, a model the server does not list, a refused API
key, a missing key variable, an unknown option, a window the server reports smaller than a requested length)
raises UsageError before any sample runs; what only shows in an answer (a prompt over a window the server did
not report, an error after all retries) is raised from ``generate`` and becomes a failed row with the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading

import httpx

from longscope.backends.http_options import Options, Target, parse_target, target_of
from longscope.backends.http_stream import Answer, EmptyStream, request_body, send
from longscope.backends.http_tokens import TokenCounter, load_local_tokenizer, local_tokenizer_uri
from longscope.backends.http_transport import ServerError, Transport, generation_timeout, make_client
from longscope.backends.http_window import check_server, discover_window, has_apply_template, window_in_error
from longscope.backends.reasoning import strip_reasoning
from longscope.backends.uri import ModelURI
from longscope.core import Capabilities, Generation, GenerationRequest

__all__ = ["OpenAIBackend", "Options", "ServerError", "Target", "load_uri", "parse_target"]

_GENERIC_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
    "<|start_header_id|>", "<|end_header_id|>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>",
    "<start_of_turn>", "<end_of_turn>", "[INST]", "[/INST]",
)  # fmt: skip


def load_uri(uri: ModelURI) -> OpenAIBackend:
    """The ``openai:`` scheme's loader: connect and check the server."""
    return OpenAIBackend(target_of(uri))


class OpenAIBackend:
    """A model behind an OpenAI-compatible server. Thread-safe: up to ``capabilities.max_concurrency``
    requests at once."""

    kind = "openai"

    def __init__(self, target: Target, *, client: httpx.Client | None = None) -> None:
        self.target = target
        self.options = target.options
        self.base_url = target.base_url
        self.root_url = re.sub(r"/v\d+$", "", self.base_url)
        self.model_name = target.model
        self._lock = threading.Lock()
        self.client = client or make_client(self.options)
        self.transport = Transport(self.client, self.options, on_refusal=self._learn_window)
        self.retry_log = self.transport.retry_log

        self.server_kind, model_entry = check_server(
            self.client, self.base_url, self.model_name, self.options.api_key_env
        )
        self._local_uri = local_tokenizer_uri(self.options.tokenizer, self.model_name)
        self._local = load_local_tokenizer(self._local_uri) if self._local_uri is not None else None
        self.tokens = TokenCounter(
            self.transport,
            self.root_url,
            self.model_name,
            self._local,
            self._local_uri,
            self.options.concurrency,
        )
        self._apply_template = has_apply_template(self.client, self.root_url, self.server_kind)
        self.context_window, self.context_window_reported = discover_window(
            self.client, self.root_url, self.options, self.server_kind, model_entry, self._local
        )
        self.token_count_source = self.tokens.source
        self.template_source = self._template_source()
        # The BOS a server adds to a /completions prompt by itself: counted as text (so counts are exact) and
        # cut from the prompt before sending (so the model does not read it twice).
        self._auto_prefix = self.tokens.auto_prefix
        self._bos_text: str = getattr(self._local, "bos_token", None) or ""
        if not self._bos_text and self._local is not None and hasattr(self._local, "tokenizer"):
            self._bos_text = self._local.tokenizer.bos_token or ""
        unknown_bos = self.options.mode == "completion" and bool(self._auto_prefix) and not self._bos_text
        exact = (
            self.token_count_source != "approximate" and self.template_source != "none" and not unknown_bos
        )
        self.capabilities = Capabilities(
            in_process_model=False,
            tokenization=self.token_count_source.split(":")[0] if exact else "estimate",
            max_concurrency=self.options.concurrency,
            streaming=self.options.stream,
        )
        self.prefill_mode = self._prefill_mode()
        self._fingerprint: str | None = None
        self.model_revision = f"tok-{self.tokenizer_fingerprint()}"

    @classmethod
    def connect(cls, target: str | Target) -> OpenAIBackend:
        """Connect and check, from a Target, ``BASE_URL#MODEL?...`` or the whole ``openai:`` URI."""
        if isinstance(target, str):
            target = parse_target(target.removeprefix("openai:"))
        return cls(target)

    def close(self) -> None:
        self.client.close()

    # -- start-up choices ----------------------------------------------------------------------------

    def _template_source(self) -> str:
        if self.options.mode == "completion":
            return f"local:{self._local_uri}" if self._local is not None else "plain"
        if self._apply_template:
            return "server:apply-template"
        return f"local:{self._local_uri}" if self._local is not None else "none"

    def _prefill_mode(self) -> str:
        if self.options.mode == "completion":
            return "completion"
        if self.options.prefill != "auto":
            return self.options.prefill
        if self.server_kind in ("vllm", "sglang", "llama.cpp"):
            return "continue"
        # llama-cpp-python and unknown servers: only a prompt rendered here can end in the prefix.
        return "completion" if self.template_source != "none" else "continue"

    def _learn_window(self, text: str) -> None:
        window = window_in_error(text)
        if window is not None:
            with self._lock:
                if window < self.context_window:
                    self.context_window = window

    # -- tokens --------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        return self.tokens.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokens.decode(ids)

    def count_tokens(self, text: str) -> int:
        return self.tokens.count(text)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        return self.tokens.count_batch(texts)

    def special_token_strings(self) -> list[str]:
        if self._local is not None:
            return list(self._local.special_token_strings())
        # Unknown vocabulary: the control-token spellings in common use, which no haystack should contain.
        return sorted(_GENERIC_SPECIALS)

    def tokenizer_fingerprint(self) -> str:
        """A hash of how tokens are counted and prompts rendered here: the counting source, the template
        source, the ids of a probe text and the rendering of a probe conversation."""
        if self._fingerprint is None:
            probe = "The quick brown fox, 12345 times: naïve café — 東京!\n\tdef f(x): return x**2"
            rendered = self.render([{"role": "user", "content": probe}], "Answer:")
            body = json.dumps(
                [self.token_count_source.split(":")[0], self.options.mode, self.template_source.split(":")[0],
                 self.encode(probe), rendered, self.capabilities.exact_tokens],
                ensure_ascii=False,
            )  # fmt: skip
            self._fingerprint = hashlib.sha256(body.encode()).hexdigest()[:16]
        return self._fingerprint

    # -- prompts -------------------------------------------------------------------------------------

    def render(self, messages: list[dict[str, str]], answer_prefix: str = "", chat: bool = True) -> str:
        """The prompt as the model will read it (see the module docstring for where the template comes from).
        A raw prompt (``chat`` False) goes to /completions as it is, after the BOS the server adds."""
        if not chat:
            text = "\n\n".join(m["content"] for m in messages) + answer_prefix
            return text if not self._bos_text or text.startswith(self._bos_text) else self._bos_text + text
        if self.template_source == "server:apply-template":
            rendered = self.transport.post(
                self.root_url + "/apply-template", {"messages": messages}, "apply-template"
            )
            return str(rendered["prompt"]) + answer_prefix
        if self._local is not None:
            text = self._local.render(messages, answer_prefix)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n\n" + answer_prefix
        if self.options.mode == "completion" and self._auto_prefix and self._bos_text:
            text = text if text.startswith(self._bos_text) else self._bos_text + text
        return text

    # -- generation ----------------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> Generation:
        prompt = self.render(request.messages, request.answer_prefix, request.chat)
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens + request.max_new_tokens > self.context_window:
            raise ValueError(
                f"request of {prompt_tokens} + {request.max_new_tokens} tokens exceeds the server's context "
                f"window of {self.context_window}"
            )
        use_completion = (
            self.options.mode == "completion"
            or not request.chat
            or bool(request.answer_prefix and self.prefill_mode == "completion")
        )
        if use_completion and self._auto_prefix and self._bos_text and prompt.startswith(self._bos_text):
            prompt = prompt[len(self._bos_text) :]
        url, body = request_body(
            self.base_url, self.model_name, self.server_kind, request, prompt, use_completion
        )
        chat = url.endswith("/chat/completions")
        self.transport.start_count()
        stream = [self.options.stream]
        timeout = generation_timeout(self.options, prompt_tokens, request.max_new_tokens)

        def once() -> Answer:
            try:
                return send(self.transport, url, {**body, "stream": stream[0]}, chat, stream[0], timeout)
            except EmptyStream:
                # Ask again without streaming: the server then answers with its error status and reason.
                stream[0] = False
                return send(self.transport, url, {**body, "stream": False}, chat, False, timeout)

        answer = self.transport.with_retries(f"{'chat' if chat else 'completion'} request", once)
        raw = answer.text
        if request.stop:  # a server may stop late or not at all on strings; cut where the first one starts
            hits = [raw.find(s) for s in request.stop if s and s in raw]
            if hits:
                raw = raw[: min(hits)]
        usage = answer.usage or {}
        output_tokens = usage.get("completion_tokens")
        if not isinstance(output_tokens, int):
            output_tokens = answer.chunks if answer.chunks else self.count_tokens(answer.text)
        input_tokens = usage.get("prompt_tokens")
        return Generation(
            text=strip_reasoning(raw),
            input_tokens=int(input_tokens)
            if isinstance(input_tokens, int) and input_tokens > 0
            else prompt_tokens,
            output_tokens=int(output_tokens),
            prefill_s=answer.prefill_s,
            decode_s=answer.decode_s,
            wall_s=answer.wall_s,
            finish_reason=str(answer.finish_reason or "stop"),
            retries=self.transport.retries,
        )
