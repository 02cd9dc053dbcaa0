"""Several serving endpoints for one ``openai:`` model: the URI each endpoint's worker connects with, and the
check, before any sample, that every endpoint answers and serves the model the URI names."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from longscope.backends import parse_uri
from longscope.backends.http_options import target_of
from longscope.backends.http_transport import make_client
from longscope.backends.http_window import check_server
from longscope.backends.uri import ModelURI, parse_model_uri
from longscope.core import UsageError


def endpoint_uris(model: str, endpoints: list[str]) -> list[str]:
    """The model URI once per endpoint: the same model id and options, the endpoint's base URL in place of the
    URI's. Every mistake (a model that is not ``openai:``, an endpoint that is not an http URL, one given
    twice) is a one-line UsageError."""
    parsed = parse_uri(model)
    if parsed.scheme != "openai":
        raise UsageError(
            f"--endpoint spreads an openai: model over several servers; {model!r} is not an openai: URI"
        )
    uris, seen = [], set()
    for endpoint in endpoints:
        base = endpoint.strip().rstrip("/")
        if not base:
            raise UsageError(
                "an --endpoint is empty; give the base URL of a server, e.g. http://10.0.0.2:8080/v1"
            )
        if base in seen:
            raise UsageError(f"the endpoint {base} is given twice")
        seen.add(base)
        uri = f"openai:{base}#{parsed.model}" + (f"?{urlencode(parsed.options)}" if parsed.options else "")
        uris.append(_with_endpoint(uri, base).text)
    return uris


def _with_endpoint(uri: str, base: str) -> ModelURI:
    parsed = parse_model_uri(uri)
    if parsed.location != base:  # the endpoint itself held a '#' or '?'
        raise UsageError(f"the endpoint {base!r} is not a plain base URL, e.g. http://10.0.0.2:8080/v1")
    return parsed


def check_endpoints(uris: list[str]) -> None:
    """Reach every endpoint once (GET /models): each must answer and list the model; the first that does not
    is a UsageError naming it."""
    for uri in uris:
        target = target_of(parse_model_uri(uri))
        client = make_client(target.options)
        try:
            check_server(client, target.base_url, target.model, target.options.api_key_env)
        except httpx.HTTPError as exc:  # anything check_server does not already turn into a UsageError
            raise UsageError(f"the endpoint {target.base_url} did not answer: {exc}") from None
        finally:
            client.close()


def concurrency_of(uri: str) -> int:
    """Requests worth having in flight at one endpoint: the URI's ``concurrency`` option."""
    return target_of(parse_model_uri(uri)).options.concurrency
