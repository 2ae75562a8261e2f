"""Credentials never reach a log line or an exception message; server text is tamed.

The opening request carries the API key (``Authorization: Bearer ...``,
``x-goog-api-key: ...``). ``websockets`` logs every request and response header at DEBUG
level, and a server that refuses the key may echo it in its answer. This module finds the
secret values among the headers (and URL query) we send, and scrubs them from anything
that is logged or put into an exception.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "REDACTED",
    "RedactingLogger",
    "is_sensitive_name",
    "printable",
    "redact_query",
    "scrub",
    "secret_values",
]

REDACTED = "[redacted]"
#: Server-chosen text (a close reason, an HTTP body) is cut to this many characters.
MAX_SERVER_TEXT = 200

_SENSITIVE_NAMES = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-goog-api-key"}
)
_SENSITIVE_PARTS = ("token", "key", "secret", "password", "auth", "signature", "credential")
_MIN_SECRET_LEN = 4  # shorter values would scrub ordinary words


def is_sensitive_name(name: str) -> bool:
    """Whether a header or query parameter of this name carries a credential."""
    lowered = name.lower()
    if lowered.startswith("sec-websocket-"):
        return False  # the handshake's nonce and its answer are no secrets
    return lowered in _SENSITIVE_NAMES or any(part in lowered for part in _SENSITIVE_PARTS)


_QUERY_PAIR = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")


def redact_query(text: str) -> str:
    """Replace the values of sensitive query parameters (``?key=...``) in ``text``."""
    if "=" not in text:
        return text
    return _QUERY_PAIR.sub(
        lambda m: f"{m[1]}{m[2]}={REDACTED}" if is_sensitive_name(m[2]) and m[3] else m[0],
        text,
    )


def secret_values(headers: Mapping[str, str] | None = None, url: str = "") -> frozenset[str]:
    """Return the credential values among request headers and the URL's query.

    For ``Authorization: Bearer abc`` both the whole value and ``abc`` are secrets.

    Args:
        headers: The request headers we send.
        url: The URL we connect to.

    Returns:
        The values to scrub (none shorter than four characters).
    """
    found: set[str] = set()
    pairs: list[tuple[str, str]] = list((headers or {}).items())
    query = urlsplit(url).query if url else ""
    pairs.extend(parse_qsl(query, keep_blank_values=False))
    for name, value in pairs:
        if not is_sensitive_name(name):
            continue
        found.add(value)
        found.update(value.split())  # "Bearer sk-..." -> also the bare key
    return frozenset(value for value in found if len(value) >= _MIN_SECRET_LEN)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` with ``[redacted]``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def printable(text: str, secrets: Iterable[str] = (), limit: int = MAX_SERVER_TEXT) -> str:
    r"""Make server-chosen text safe to show: no secrets, no control characters, short.

    Control and other unprintable characters are written as escapes (``\n``,
    ``\x1b``); text longer than ``limit`` is cut and says how much was left out.

    Args:
        text: The text the server chose.
        secrets: Values to scrub first.
        limit: The most characters kept.

    Returns:
        The text, fit for a log line or an exception message.
    """
    text = redact_query(scrub(text, secrets))
    extra = len(text) - limit
    if extra > 0:
        text = text[:limit]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return f"{text}... ({extra} more characters)" if extra > 0 else text


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for ``websockets``' protocol objects that never writes a credential.

    ``websockets`` logs each header as ``"> %s: %s"`` (sent) or ``"< %s: %s"``
    (received) and the request line with its path. Header values of sensitive names are
    replaced, and every known secret value is scrubbed from every argument.

    Args:
        logger: The logger to write to.
        secrets: The credential values of this connection.
    """

    def __init__(self, logger: logging.Logger, secrets: Iterable[str] = ()) -> None:
        super().__init__(logger, {})
        self._secrets = frozenset(secrets)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """Leave message and keyword arguments as they are (``log`` does the work)."""
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log with sensitive header values and known secrets scrubbed from the arguments."""
        if not self.isEnabledFor(level):
            return
        if (
            isinstance(msg, str)
            and msg.endswith("%s: %s")
            and len(args) == 2
            and is_sensitive_name(str(args[0]))
        ):
            args = (args[0], REDACTED)
        secrets = self._secrets
        args = tuple(
            redact_query(scrub(arg, secrets))
            if isinstance(arg, str)
            else _scrub_other(arg, secrets)
            for arg in args
        )
        if isinstance(msg, str):
            msg = scrub(msg, secrets)
        self.logger.log(level, msg, *args, **kwargs)


def _scrub_other(arg: Any, secrets: frozenset[str]) -> Any:
    # Non-string arguments (an exception, headers, bytes) are logged by their text.
    if isinstance(arg, (int, float)) or arg is None:
        return arg
    text = arg.decode(errors="replace") if isinstance(arg, (bytes, bytearray)) else str(arg)
    scrubbed = redact_query(scrub(text, secrets))
    return scrubbed if scrubbed != text else arg
