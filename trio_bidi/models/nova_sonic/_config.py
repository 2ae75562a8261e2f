"""Configuration of the Nova Sonic provider: model versions, voices, defaults, validation.

Pure functions over plain dicts; every resolved value is a fresh copy, so module-level
defaults are never mutated.
"""

from __future__ import annotations

import copy
import os
import ssl
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from ...errors import BidiConfigurationError
from ...types import AudioConfig

__all__ = [
    "DEFAULT_MODEL_ID",
    "DEFAULT_REGION",
    "DEFAULT_TIME_LIMIT_S",
    "NOVA_SONIC_V1",
    "NOVA_SONIC_V2",
    "VOICES",
    "ClientSettings",
    "is_nova_2",
    "resolve_client_config",
    "resolve_provider_config",
]

NOVA_SONIC_V1: Final = "amazon.nova-sonic-v1:0"
NOVA_SONIC_V2: Final = "amazon.nova-2-sonic-v1:0"
DEFAULT_MODEL_ID: Final = NOVA_SONIC_V2
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_TIME_LIMIT_S: Final = 470.0
"""The service ends a connection after about 8 minutes; this deadline comes first, and the
agent restarts at a turn boundary shortly before it."""

_V1_VOICES: Final = frozenset(
    {
        "matthew",
        "tiffany",
        "amy",
        "ambre",
        "florian",
        "beatrice",
        "lorenzo",
        "greta",
        "lennart",
        "lupe",
        "carlos",
    }
)
VOICES: Final[Mapping[str, frozenset[str]]] = {
    NOVA_SONIC_V1: _V1_VOICES,
    NOVA_SONIC_V2: _V1_VOICES | {"olivia", "kiara", "arjun", "carolina", "leo", "tina"},
}
"""The documented voices of each model (December 2026)."""

_INPUT_RATE: Final = 16000
_OUTPUT_RATES: Final = (16000, 24000)
_DEFAULT_AUDIO: Final[dict[str, Any]] = {
    "input_rate": _INPUT_RATE,
    "output_rate": 16000,
    "channels": 1,
    "format": "pcm",
    "voice": "matthew",
}
_DEFAULT_INFERENCE: Final[dict[str, Any]] = {"maxTokens": 1024, "topP": 0.9, "temperature": 0.7}
_INFERENCE_ALIASES: Final = {
    "maxTokens": "maxTokens",
    "max_tokens": "maxTokens",
    "topP": "topP",
    "top_p": "topP",
    "temperature": "temperature",
}
_SENSITIVITIES: Final = ("HIGH", "MEDIUM", "LOW")
_PROVIDER_KEYS: Final = frozenset({"audio", "inference", "turn_detection"})
_AUDIO_KEYS: Final = frozenset({"input_rate", "output_rate", "channels", "format", "voice"})
_CLIENT_KEYS: Final = frozenset(
    {"region", "endpoint_url", "boto_session", "ssl_context", "time_limit_s"}
)


def is_nova_2(model_id: str) -> bool:
    """True for Nova 2 Sonic (interactive text input, turn detection, more voices)."""
    return model_id.startswith("amazon.nova-2-sonic")


def _unknown(keys: Any, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in keys if k not in allowed)
    if unknown:
        raise BidiConfigurationError(
            f"unknown {where} key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(sorted(allowed))}"
        )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BidiConfigurationError(f"{where} must be a mapping, not {type(value).__name__}")
    return value


def _resolve_audio(value: Any, model_id: str) -> AudioConfig:
    audio = copy.deepcopy(_DEFAULT_AUDIO)
    if value is not None:
        given = _mapping(value, "provider_config['audio']")
        _unknown(given, _AUDIO_KEYS, "provider_config['audio']")
        audio.update(copy.deepcopy(dict(given)))
    if audio["input_rate"] != _INPUT_RATE:
        raise BidiConfigurationError(
            f"audio input_rate={audio['input_rate']!r}: Nova Sonic takes 16000 Hz input only"
        )
    if audio["output_rate"] not in _OUTPUT_RATES:
        raise BidiConfigurationError(
            f"audio output_rate={audio['output_rate']!r}: use 16000 or 24000 Hz (the service "
            "also offers 8000 Hz, which trio_bidi's audio events do not carry)"
        )
    if audio["channels"] != 1 or audio["format"] != "pcm":
        raise BidiConfigurationError("Nova Sonic speaks mono 16-bit PCM (channels=1, format='pcm')")
    voices = VOICES.get(model_id, VOICES[NOVA_SONIC_V2])
    if not isinstance(audio["voice"], str) or audio["voice"] not in voices:
        raise BidiConfigurationError(
            f"voice {audio['voice']!r} is not a documented voice of {model_id}; "
            f"choose one of {', '.join(sorted(voices))}"
        )
    return audio  # type: ignore[return-value]


def _resolve_inference(value: Any) -> dict[str, Any]:
    inference = copy.deepcopy(_DEFAULT_INFERENCE)
    if value is None:
        return inference
    given = _mapping(value, "provider_config['inference']")
    _unknown(given, frozenset(_INFERENCE_ALIASES), "provider_config['inference']")
    for key, item in given.items():
        inference[_INFERENCE_ALIASES[key]] = item
    max_tokens = inference["maxTokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BidiConfigurationError(f"inference maxTokens={max_tokens!r} must be an int >= 1")
    for key in ("topP", "temperature"):
        number = inference[key]
        if isinstance(number, bool) or not isinstance(number, int | float) or not 0 <= number <= 1:
            raise BidiConfigurationError(f"inference {key}={number!r} must be between 0 and 1")
    return inference


def _resolve_turn_detection(value: Any, model_id: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not is_nova_2(model_id):
        raise BidiConfigurationError(
            f"turn_detection is a Nova 2 Sonic setting; {model_id} does not accept it"
        )
    given = _mapping(value, "provider_config['turn_detection']")
    _unknown(given, frozenset({"endpointingSensitivity"}), "provider_config['turn_detection']")
    sensitivity = given.get("endpointingSensitivity", "MEDIUM")
    if sensitivity not in _SENSITIVITIES:
        raise BidiConfigurationError(
            f"endpointingSensitivity={sensitivity!r} must be one of {', '.join(_SENSITIVITIES)}"
        )
    return {"endpointingSensitivity": sensitivity}


def resolve_provider_config(
    provider_config: Mapping[str, Any] | None, model_id: str = DEFAULT_MODEL_ID
) -> dict[str, Any]:
    """Validate ``provider_config`` and fill in defaults (a fresh dict).

    Raises:
        BidiConfigurationError: An unknown key, an unsupported rate, an undocumented
            voice, an out-of-range inference value, or a v2-only setting on v1.
    """
    given = _mapping(provider_config or {}, "provider_config")
    _unknown(given, _PROVIDER_KEYS, "provider_config")
    return {
        "audio": _resolve_audio(given.get("audio"), model_id),
        "inference": _resolve_inference(given.get("inference")),
        "turn_detection": _resolve_turn_detection(given.get("turn_detection"), model_id),
    }


@attrs.frozen
class ClientSettings:
    """Where and how to connect (credentials are resolved per connection).

    Attributes:
        region: The AWS region (signing scope and default endpoint).
        endpoint_url: ``https://host[:port]`` of the Bedrock runtime.
        boto_session: A botocore or boto3 session to take credentials from (None:
            botocore's default chain).
        ssl_context: The TLS context (ALPN is set to h2 on it).
        time_limit_s: The connection's deadline, in seconds after it opens.
    """

    region: str
    endpoint_url: str
    boto_session: Any = attrs.field(repr=False)
    ssl_context: ssl.SSLContext = attrs.field(repr=False)
    time_limit_s: float

    @property
    def host(self) -> str:
        """The endpoint's host name."""
        return urlsplit(self.endpoint_url).hostname or ""

    @property
    def port(self) -> int:
        """The endpoint's port (443 by default)."""
        return urlsplit(self.endpoint_url).port or 443

    @property
    def authority(self) -> str:
        """``host`` or ``host:port`` as signed and sent in ``:authority``."""
        return self.host if self.port == 443 else f"{self.host}:{self.port}"


def _positive(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BidiConfigurationError(f"client_config[{key!r}]={value!r} must be a positive number")
    return float(value)


def resolve_client_config(client_config: Mapping[str, Any] | None) -> ClientSettings:
    """Validate ``client_config`` and fill in defaults from the environment.

    Raises:
        BidiConfigurationError: An unknown key, a non-HTTPS endpoint, or a bad number.
    """
    given = _mapping(client_config or {}, "client_config")
    _unknown(given, _CLIENT_KEYS, "client_config")
    region = (
        given.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    endpoint = (
        given.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
        or f"https://bedrock-runtime.{region}.amazonaws.com"
    )
    parts = urlsplit(str(endpoint))
    if parts.scheme != "https" or not parts.hostname:
        raise BidiConfigurationError(
            f"endpoint_url {endpoint!r} must be https://host[:port] (Bedrock speaks HTTP/2 "
            "over TLS only)"
        )
    context = given.get("ssl_context")
    if context is None:
        context = ssl.create_default_context()
    elif not isinstance(context, ssl.SSLContext):
        raise BidiConfigurationError("client_config['ssl_context'] must be an ssl.SSLContext")
    return ClientSettings(
        region=str(region),
        endpoint_url=f"https://{parts.netloc}",
        boto_session=given.get("boto_session"),
        ssl_context=context,
        time_limit_s=_positive(given.get("time_limit_s", DEFAULT_TIME_LIMIT_S), "time_limit_s"),
    )
