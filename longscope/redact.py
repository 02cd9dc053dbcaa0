"""Credentials taken out of text before it is stored, written or printed: the one redaction every boundary uses.

Three kinds are masked: the password of a URL (``http://user:KEY@host`` keeps the user and loses the key), the
value of a query parameter whose name says it is a secret (``?api_key=KEY``, ``&token=KEY``), and any secret
this process was handed and registered (the API key read from ``api_key_env``), wherever it shows up, for
instance echoed back in a server's error message.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from typing import Any

MASK = "***"

# user:password@ inside a URL (any scheme); the user name stays, as it identifies without granting access.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:?#]*):(?P<secret>[^\s/@?#]+)@")
# A query or fragment option whose name marks a credential: api_key, apikey, key, token, access_token, secret,
# password, sig, signature, auth, x-api-key, client_secret, ...
_SECRET_PARAM = re.compile(
    r"(?P<head>[?&#;](?:[A-Za-z0-9_.-]*[_.-])?(?:api[_-]?key|key|token|secret|password|passwd|pwd|sig|signature|"
    r"auth|authorization|credential|credentials)=)(?P<secret>[^\s&#;\"']+)",
    re.IGNORECASE,
)
# The variable that merely names where the key is (api_key_env=NAME) is not a secret: keep it readable.
_NAMES_ONLY = ("api_key_env",)

_registered: set[str] = set()
_lock = threading.Lock()


def register(secret: str) -> None:
    """Mask ``secret`` wherever it appears from now on (short strings are ignored: they would mask words)."""
    if secret and len(secret) >= 6:
        with _lock:
            _registered.add(secret)


def register_found(text: str) -> None:
    """Register every credential written in ``text`` (a URL's password, a secret query value), so that it is
    masked later even where it shows up alone, as a server echoing ``user:KEY`` back would print it."""
    for match in (*_USERINFO.finditer(text), *_SECRET_PARAM.finditer(text)):
        if _mask_param(match) != match[0] or match.re is _USERINFO:
            register(match["secret"])


def redact(text: str) -> str:
    """``text`` with every credential it carries replaced by ``***``."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _SECRET_PARAM.sub(_mask_param, text)
    with _lock:
        secrets = sorted(_registered, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string in it redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value


def _mask_param(match: re.Match[str]) -> str:
    name = match["head"][1:-1].lower()
    if name in _NAMES_ONLY:
        return match[0]
    return f"{match['head']}{MASK}"


def install() -> None:
    """Redact every log record this process makes, whichever logger and handler, and every warning shown.

    Records are redacted where they are made (the record factory), so loggers that do not propagate and
    handlers added later are covered too; a warning's text is redacted before it is shown or handed to
    logging. Idempotent."""
    with _lock:
        if not isinstance(logging.getLogRecordFactory(), _RedactingRecordFactory):
            logging.setLogRecordFactory(_RedactingRecordFactory(logging.getLogRecordFactory()))
        if not getattr(warnings.showwarning, "redacts", False):
            warnings.showwarning = _redacting_showwarning(warnings.showwarning)


class _RedactingRecordFactory:
    """Wraps the record factory in force: the message is formatted with its arguments, then redacted, and so
    is the text of an exception the record carries."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        message = record.getMessage()
        record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record


def _redacting_showwarning(inner: Any) -> Any:
    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' own
        inner(redact(str(message)), category, filename, lineno, file, None if line is None else redact(line))

    showwarning.redacts = True  # type: ignore[attr-defined]
    return showwarning
