"""The exception hierarchy of trio_bidi.

Every exception the library raises on purpose derives from
[`BidiError`][trio_bidi.errors.BidiError]. The tree keeps "the peer broke it"
([`BidiConnectionError`][trio_bidi.errors.BidiConnectionError],
[`BidiProtocolError`][trio_bidi.errors.BidiProtocolError],
[`BidiProviderError`][trio_bidi.errors.BidiProviderError]) apart from "you used it wrong"
([`BidiStateError`][trio_bidi.errors.BidiStateError],
[`BidiConfigurationError`][trio_bidi.errors.BidiConfigurationError],
[`BidiAudioFormatError`][trio_bidi.errors.BidiAudioFormatError]).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BidiAudioFormatError",
    "BidiConfigurationError",
    "BidiConnectionError",
    "BidiError",
    "BidiModelTimeoutError",
    "BidiProtocolError",
    "BidiProviderError",
    "BidiReportedError",
    "BidiStateError",
]


class BidiError(Exception):
    """Base class of every error raised by trio_bidi."""


class BidiModelTimeoutError(BidiError):
    """The provider's connection time limit was reached; the connection must be restarted.

    The keyword arguments are the provider's restart configuration (for example a Gemini
    session resumption handle). The agent passes them to ``model.connect`` on restart.

    Args:
        message: What happened.
        **restart_config: Provider-specific data needed to continue in a new connection.
    """

    def __init__(self, message: str, **restart_config: Any) -> None:
        super().__init__(message)
        self.restart_config: dict[str, Any] = restart_config

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_timeout_error, (str(self), self.restart_config))


def _rebuild_timeout_error(message: str, restart_config: dict[str, Any]) -> BidiModelTimeoutError:
    return BidiModelTimeoutError(message, **restart_config)


class BidiConnectionError(BidiError):
    """The transport to the provider broke: refused, reset, closed by the peer.

    Args:
        message: What happened.
        code: The WebSocket close code or HTTP status, when there is one.
        reason: The peer's close reason, when there is one.
    """

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class BidiProtocolError(BidiError):
    """The peer sent something that breaks its own protocol (bad JSON, a missing field).

    Args:
        message: What was wrong.
        raw: The offending message as received, kept for debugging.
    """

    def __init__(self, message: str, *, raw: object = None) -> None:
        super().__init__(message)
        self.raw = raw


class BidiProviderError(BidiError):
    """The provider reported an error of its own (an ``error`` event, an exception frame).

    Args:
        message: The provider's message.
        code: The provider's error code or type, when it gives one.
        raw: The provider's message as received.
    """

    def __init__(self, message: str, *, code: str | None = None, raw: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.raw = raw


class BidiStateError(BidiError, RuntimeError):
    """An object was used in a state that does not allow it (before start, after close)."""


class BidiConfigurationError(BidiError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class BidiAudioFormatError(BidiError, ValueError):
    """Audio does not match what the session was configured for (rate, channels, format)."""


class BidiReportedError(BidiError):
    """An error known only by its reported class name and message.

    [`trio_bidi.events.event_from_dict`][trio_bidi.events.event_from_dict] builds one when a
    ``bidi_error`` dict names an exception class this process cannot rebuild (for example one sent
    by a browser).

    Args:
        message: The reported message.
        code: The reported exception class name.
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code
