"""Configuration of the OpenAI Realtime provider: defaults, validation, resolution.

Pure functions over plain dicts. Every resolved value is a fresh copy, so callers can
mutate what they get without touching the module-level defaults.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ...errors import BidiConfigurationError
from ...types import AudioConfig
from .._untrusted import DEFAULT_MAX_DEPTH

__all__ = [
    "DEFAULT_MODEL_ID",
    "DEFAULT_URL",
    "MAX_TIMEOUT_S",
    "ClientSettings",
    "resolve_client_config",
    "resolve_provider_config",
]

DEFAULT_MODEL_ID: Final = "gpt-realtime"
DEFAULT_URL: Final = "wss://api.openai.com/v1/realtime"
MAX_TIMEOUT_S: Final = 3000.0
"""OpenAI ends a session after 60 minutes without warning; restart well before."""

_PCM_RATE: Final = 24000
_DEFAULT_AUDIO: Final[dict[str, Any]] = {
    "input_rate": _PCM_RATE,
    "output_rate": _PCM_RATE,
    "channels": 1,
    "format": "pcm",
    "voice": "alloy",
}
_DEFAULT_TURN_DETECTION: Final[dict[str, Any]] = {"type": "server_vad"}
_DEFAULT_TRANSCRIPTION: Final[dict[str, Any]] = {"model": "gpt-4o-transcribe"}

_PROVIDER_KEYS: Final = frozenset(
    {"audio", "inference", "turn_detection", "transcription", "noise_reduction"}
)
_AUDIO_KEYS: Final = frozenset(
    {"input_rate", "output_rate", "channels", "format", "voice", "speed"}
)
_INFERENCE_KEYS: Final = frozenset(
    {
        "max_output_tokens",
        "output_modalities",
        "tool_choice",
        "truncation",
        "tracing",
        "include",
        "reasoning",
        "parallel_tool_calls",
    }
)
_TURN_DETECTION_KEYS: Final = {
    "server_vad": frozenset(
        {
            "type",
            "create_response",
            "idle_timeout_ms",
            "interrupt_response",
            "prefix_padding_ms",
            "silence_duration_ms",
            "threshold",
        }
    ),
    "semantic_vad": frozenset({"type", "create_response", "eagerness", "interrupt_response"}),
}
_TRANSCRIPTION_KEYS: Final = frozenset(
    {"model", "language", "languages", "prompt", "keywords", "delay"}
)
_NOISE_REDUCTION_TYPES: Final = frozenset({"near_field", "far_field"})
_CLIENT_KEYS: Final = frozenset(
    {
        "api_key",
        "organization",
        "project",
        "url",
        "timeout_s",
        "connect_timeout_s",
        "max_json_depth",
    }
)
DEFAULT_CONNECT_TIMEOUT_S: Final = 15.0
"""Limit for the WebSocket handshake and for ``session.created``."""
DEFAULT_MAX_JSON_DEPTH: Final = DEFAULT_MAX_DEPTH
"""How deeply server JSON (messages, function arguments) may nest."""


def _unknown(keys: Any, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in keys if k not in allowed)
    if unknown:
        raise BidiConfigurationError(
            f"{where}: unknown key {unknown[0]!r}"
            + (f" (and {unknown[1:]})" if unknown[1:] else "")
            + f"; allowed keys: {', '.join(sorted(allowed))}"
        )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BidiConfigurationError(f"{where} must be a dict, not {type(value).__name__}")
    return value


def _resolve_audio(value: Any) -> AudioConfig:
    given = _mapping(value, "provider_config['audio']")
    _unknown(given, _AUDIO_KEYS, "provider_config['audio']")
    audio: dict[str, Any] = {**_DEFAULT_AUDIO, **copy.deepcopy(dict(given))}
    for key in ("input_rate", "output_rate"):
        if audio[key] != _PCM_RATE or isinstance(audio[key], bool):
            raise BidiConfigurationError(
                f"provider_config['audio'][{key!r}]={audio[key]!r}: the OpenAI Realtime API "
                f"(GA) speaks PCM at {_PCM_RATE} Hz only; resample to {_PCM_RATE} Hz"
            )
    if audio["channels"] != 1 or isinstance(audio["channels"], bool):
        raise BidiConfigurationError(
            f"provider_config['audio']['channels']={audio['channels']!r}: the OpenAI Realtime "
            "API takes mono audio only (channels=1)"
        )
    if audio["format"] != "pcm":
        raise BidiConfigurationError(
            f"provider_config['audio']['format']={audio['format']!r}: only 'pcm' (16-bit "
            "little-endian) is supported"
        )
    voice = audio["voice"]
    if not isinstance(voice, str) and not (
        isinstance(voice, Mapping) and set(voice) == {"id"} and isinstance(voice["id"], str)
    ):
        raise BidiConfigurationError(
            f"provider_config['audio']['voice']={voice!r}: a voice name such as 'alloy' "
            "or {'id': '<custom voice id>'}"
        )
    speed = audio.get("speed")
    if speed is not None and (
        isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 1.5
    ):
        raise BidiConfigurationError(
            f"provider_config['audio']['speed']={speed!r}: a number from 0.25 to 1.5"
        )
    return audio  # type: ignore[return-value]


def _resolve_inference(value: Any) -> dict[str, Any]:
    given = _mapping(value, "provider_config['inference']")
    _unknown(given, _INFERENCE_KEYS, "provider_config['inference']")
    inference = copy.deepcopy(dict(given))
    modalities = inference.get("output_modalities")
    if modalities is not None and modalities not in (["audio"], ["text"]):
        raise BidiConfigurationError(
            f"provider_config['inference']['output_modalities']={modalities!r}: "
            "['audio'] (speech plus its transcript) or ['text']"
        )
    tokens = inference.get("max_output_tokens")
    if (
        tokens is not None
        and tokens != "inf"
        and (isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= 4096)
    ):
        raise BidiConfigurationError(
            f"provider_config['inference']['max_output_tokens']={tokens!r}: "
            "an integer from 1 to 4096, or 'inf'"
        )
    return inference


def _resolve_turn_detection(value: Any) -> dict[str, Any] | None:
    if value is None or value == "manual":
        return None
    if isinstance(value, str):
        value = {"type": value}
    given = _mapping(value, "provider_config['turn_detection']")
    kind = given.get("type")
    allowed = _TURN_DETECTION_KEYS.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise BidiConfigurationError(
            f"provider_config['turn_detection']['type']={kind!r}: 'server_vad', "
            "'semantic_vad', or turn_detection=None / 'manual' for manual turns"
        )
    _unknown(given, allowed, f"provider_config['turn_detection'] ({kind})")
    return copy.deepcopy(dict(given))


def _resolve_transcription(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"model": value}
    given = _mapping(value, "provider_config['transcription']")
    _unknown(given, _TRANSCRIPTION_KEYS, "provider_config['transcription']")
    return copy.deepcopy(dict(given))


def _resolve_noise_reduction(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"type": value}
    given = _mapping(value, "provider_config['noise_reduction']")
    _unknown(given, frozenset({"type", "strength"}), "provider_config['noise_reduction']")
    if given.get("type") not in _NOISE_REDUCTION_TYPES:
        raise BidiConfigurationError(
            f"provider_config['noise_reduction']['type']={given.get('type')!r}: "
            "'near_field' or 'far_field' (None turns noise reduction off)"
        )
    return copy.deepcopy(dict(given))


def resolve_provider_config(provider_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``provider_config`` and fill in defaults.

    Args:
        provider_config: ``audio``, ``inference``, ``turn_detection`` (a dict, a type name,
            or None / ``"manual"``), ``transcription`` (a dict, a model name, or None) and
            ``noise_reduction`` (a dict, ``"near_field"`` / ``"far_field"``, or None).

    Returns:
        A new dict with every key resolved; ``["audio"]`` is an `AudioConfig`.

    Raises:
        BidiConfigurationError: A key is unknown or a value is not accepted by the API.
    """
    given = _mapping(provider_config or {}, "provider_config")
    _unknown(given, _PROVIDER_KEYS, "provider_config")
    return {
        "audio": _resolve_audio(given.get("audio", {})),
        "inference": _resolve_inference(given.get("inference", {})),
        "turn_detection": _resolve_turn_detection(
            given.get("turn_detection", _DEFAULT_TURN_DETECTION)
        ),
        "transcription": _resolve_transcription(given.get("transcription", _DEFAULT_TRANSCRIPTION)),
        "noise_reduction": _resolve_noise_reduction(given.get("noise_reduction")),
    }


@attrs.frozen(repr=False)
class ClientSettings:
    """Resolved connection settings (the API key is kept out of ``repr``).

    Attributes:
        api_key: The secret key.
        organization: ``OpenAI-Organization`` header value, if any.
        project: ``OpenAI-Project`` header value, if any.
        url: The WebSocket endpoint, without the ``model`` query parameter.
        timeout_s: The connection's time limit.
        connect_timeout_s: Limit for the WebSocket handshake and for ``session.created``.
        max_json_depth: How deeply server JSON (messages, function arguments) may nest.
    """

    api_key: str
    organization: str | None
    project: str | None
    url: str
    timeout_s: float
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH

    def __repr__(self) -> str:
        return (
            f"ClientSettings(url={self.url!r}, timeout_s={self.timeout_s!r}, "
            f"connect_timeout_s={self.connect_timeout_s!r}, api_key=<hidden>)"
        )

    def headers(self) -> dict[str, str]:
        """Return the opening request's headers (auth, organization, project)."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def url_for(self, model_id: str) -> str:
        """Return the endpoint with ``model=<model_id>`` appended to its query."""
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}model={model_id}"


def resolve_client_config(
    client_config: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> ClientSettings:
    """Validate ``client_config``, falling back to the ``OPENAI_*`` environment variables.

    Args:
        client_config: ``api_key``, ``organization``, ``project``, ``url``, ``timeout_s``,
            ``connect_timeout_s`` (default 15) and ``max_json_depth`` (default 64).
        environ: The environment to read (default ``os.environ``).

    Returns:
        The resolved settings.

    Raises:
        BidiConfigurationError: No API key, an unknown key, or a timeout out of range.
    """
    env = os.environ if environ is None else environ
    given = _mapping(client_config or {}, "client_config")
    _unknown(given, _CLIENT_KEYS, "client_config")
    api_key = given.get("api_key") or env.get("OPENAI_API_KEY")
    if not api_key or not isinstance(api_key, str):
        raise BidiConfigurationError(
            "no OpenAI API key: pass client_config={'api_key': ...} or set OPENAI_API_KEY"
        )
    url = given.get("url", DEFAULT_URL)
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise BidiConfigurationError(
            f"client_config['url']={url!r}: a ws:// or wss:// URL such as {DEFAULT_URL!r}"
        )
    timeout = given.get("timeout_s", MAX_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise BidiConfigurationError(f"client_config['timeout_s']={timeout!r}: a positive number")
    if timeout > MAX_TIMEOUT_S:
        raise BidiConfigurationError(
            f"client_config['timeout_s']={timeout!r} is above the maximum {MAX_TIMEOUT_S:g} s "
            "(OpenAI ends sessions after 60 minutes without warning)"
        )
    connect_timeout = given.get("connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S)
    if (
        isinstance(connect_timeout, bool)
        or not isinstance(connect_timeout, int | float)
        or not connect_timeout > 0
    ):
        raise BidiConfigurationError(
            f"client_config['connect_timeout_s']={connect_timeout!r}: a positive number"
        )
    depth = given.get("max_json_depth", DEFAULT_MAX_JSON_DEPTH)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 2 <= depth <= 500:
        raise BidiConfigurationError(
            f"client_config['max_json_depth']={depth!r}: an integer from 2 to 500"
        )
    organization = given.get("organization") or env.get("OPENAI_ORGANIZATION") or None
    project = given.get("project") or env.get("OPENAI_PROJECT") or None
    return ClientSettings(
        api_key=api_key,
        organization=organization,
        project=project,
        url=url,
        timeout_s=float(timeout),
        connect_timeout_s=float(connect_timeout),
        max_json_depth=depth,
    )
