"""What an OpenAI-compatible server is and how long a prompt it takes: its model list (which also checks the
address and the key), its kind, its template endpoint, and its context window, reported or learnt from errors."""

from __future__ import annotations

import re
from typing import Any

import httpx

from longscope.backends.http_options import Options
from longscope.backends.http_transport import CONNECT_TIMEOUT_S, error_text, json_or_none, transport_reason
from longscope.core import UsageError

# Error texts that state a context window: llama-cpp-python, vLLM and OpenAI ("maximum context length is N"),
# llama-cpp-python's raw error ("context window of N"), llama.cpp ("n_ctx": N in its error body).
_WINDOW_IN_ERROR = re.compile(
    r"maximum context length is (\d+)|context window of (\d+)|\"n_ctx\"\s*:\s*(\d+)", re.IGNORECASE
)
_KIND_BY_OWNER = {"me": "llama-cpp-python", "llamacpp": "llama.cpp", "vllm": "vllm", "sglang": "sglang"}
UNBOUNDED = 1 << 30


def check_server(
    client: httpx.Client, base_url: str, model: str, api_key_env: str | None
) -> tuple[str, dict[str, Any]]:
    """List the server's models: the one check that reaches it, the key and the model name at once. The
    server's kind (from who owns the model) and the model's entry, or a UsageError saying what is wrong."""
    url = f"{base_url}/models"
    try:
        response = client.get(url, timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S))
    except httpx.TransportError as exc:
        raise UsageError(f"cannot reach the server at {base_url}: {transport_reason(exc)}") from None
    if response.status_code in (401, 403):
        key = (
            f"the key in {api_key_env}"
            if api_key_env
            else "no API key (set api_key_env=VARIABLE in the model URI)"
        )
        raise UsageError(
            f"the server at {base_url} refused {key}: {response.status_code} {error_text(response)}"
        )
    if response.status_code >= 400:
        raise UsageError(
            f"the server at {base_url} answered {response.status_code} to GET /models "
            f"({error_text(response)}); is this the base URL of an OpenAI-compatible API (often ending in /v1)?"
        )
    try:
        entries = [entry for entry in response.json()["data"] if isinstance(entry, dict)]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{url} did not answer with an OpenAI model list; check the base URL") from None
    by_id = {str(entry.get("id")): entry for entry in entries}
    if model not in by_id:
        served = ", ".join(sorted(by_id)) or "none"
        raise UsageError(f"the server at {base_url} does not serve model {model!r}; it serves: {served}")
    entry = by_id[model]
    return _KIND_BY_OWNER.get(str(entry.get("owned_by", "")), "openai"), entry


def has_apply_template(client: httpx.Client, root_url: str, server_kind: str) -> bool:
    """Whether the server renders chat templates for us (llama.cpp's /apply-template)."""
    if server_kind not in ("llama.cpp", "openai"):
        return False
    try:
        response = client.post(
            root_url + "/apply-template", json={"messages": [{"role": "user", "content": "x"}]}
        )
    except httpx.TransportError:
        return False
    return (
        response.status_code == 200
        and isinstance(json_or_none(response), dict)
        and "prompt" in response.json()
    )


def discover_window(
    client: httpx.Client,
    root_url: str,
    options: Options,
    server_kind: str,
    entry: dict[str, Any],
    local: Any | None,
) -> tuple[int, bool]:
    """The server's context window and whether it is known: the URI's option, else what the server reports
    (vLLM and SGLang in the model list, llama.cpp in /props), else the local tokenizer's trained window as an
    upper bound, else unbounded (a request over the real window then fails as a row, and its error teaches
    the window)."""
    if options.context_window:
        return options.context_window, True
    for key in ("max_model_len", "context_length", "context_window", "n_ctx"):
        if isinstance(entry.get(key), int) and entry[key] > 0:
            return int(entry[key]), True
    if server_kind == "llama.cpp":
        try:
            props = client.get(root_url + "/props").json()
            settings = props.get("default_generation_settings", {})
            n_ctx = settings.get("n_ctx") or props.get("n_ctx")
            if isinstance(n_ctx, int) and n_ctx > 0:
                return n_ctx, True
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
    if local is not None and local.context_window:
        return int(local.context_window), False
    return UNBOUNDED, False


def window_in_error(text: str) -> int | None:
    """The context window an error message states, if it states one."""
    match = _WINDOW_IN_ERROR.search(text)
    return int(next(g for g in match.groups() if g)) if match else None
