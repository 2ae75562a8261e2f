"""Configuration of the Gemini Live provider: defaults, validation, and the ``setup`` pieces.

Pure functions over plain dicts. ``provider_config`` and ``client_config`` are deep-copied
and checked key by key, so an unknown or misspelt key fails at construction with a
[`BidiConfigurationError`][trio_bidi.errors.BidiConfigurationError] naming it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import attrs

from ...errors import BidiConfigurationError
from ...types import AudioConfig
from .._untrusted import DEFAULT_MAX_DEPTH

__all__ = [
    "DEFAULT_MODEL_ID",
    "DEFAULT_TIME_LIMIT_S",
    "ClientSettings",
    "ProviderSettings",
    "default_url",
    "resolve_client_config",
    "resolve_provider_config",
]

DEFAULT_MODEL_ID = "gemini-2.5-flash-native-audio-preview-09-2025"
"""The model a [`BidiGeminiLiveModel`][trio_bidi.BidiGeminiLiveModel] talks to by default."""

DEFAULT_API_VERSION = "v1beta"
"""The Live API version in the default endpoint."""

DEFAULT_TIME_LIMIT_S = 570.0
"""Fallback connection deadline: a Live connection lasts about 10 minutes, and ``goAway``
normally ends it earlier; this deadline restarts a little before the hard cut."""

_INPUT_RATES = (16000, 24000, 48000)
_OUTPUT_RATE = 24000

_INFERENCE_KEYS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_output_tokens": "maxOutputTokens",
    "max_tokens": "maxOutputTokens",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "candidate_count": "candidateCount",
    "media_resolution": "mediaResolution",
    "thinking_config": "thinkingConfig",
}

# The camelCase names (as in google-genai's LiveConnectConfig) are accepted too.
_INFERENCE_KEYS.update({wire: wire for wire in list(_INFERENCE_KEYS.values())})

_ACTIVITY_KEYS = {
    "disabled": "disabled",
    "start_of_speech_sensitivity": "startOfSpeechSensitivity",
    "end_of_speech_sensitivity": "endOfSpeechSensitivity",
    "prefix_padding_ms": "prefixPaddingMs",
    "silence_duration_ms": "silenceDurationMs",
}

_REALTIME_KEYS = {
    "activity_handling": "activityHandling",
    "turn_coverage": "turnCoverage",
}

_PROVIDER_KEYS = frozenset(
    {
        "audio",
        "inference",
        "response_modalities",
        "activity_detection",
        "manual_activity",
        "activity_handling",
        "turn_coverage",
        "input_transcription",
        "output_transcription",
        "context_window_compression",
        "proactive_audio",
        "affective_dialog",
        "language_code",
        "session_resumption",
        "text_input",
        "max_unconsumed_input_bytes",
        "initial_history_in_client_content",
    }
)
_AUDIO_KEYS = frozenset({"input_rate", "output_rate", "channels", "format", "voice"})
_CLIENT_KEYS = frozenset(
    {
        "api_key",
        "url",
        "api_version",
        "headers",
        "http_options",
        "time_limit_s",
        "connect_timeout_s",
        "go_away_margin_s",
        "max_json_depth",
    }
)
_HTTP_OPTION_KEYS = frozenset({"base_url", "api_version", "headers", "timeout"})
# Strands passes LiveConnectConfig keys in ``inference``; these map to our own settings.
_INFERENCE_MOVED = {
    "response_modalities": "response_modalities",
    "responseModalities": "response_modalities",
    "input_audio_transcription": "input_transcription",
    "inputAudioTranscription": "input_transcription",
    "output_audio_transcription": "output_transcription",
    "outputAudioTranscription": "output_transcription",
}
DEFAULT_GO_AWAY_MARGIN_S = 1.0
"""After ``goAway``, restart at the latest this long before ``timeLeft`` runs out."""


def default_url(api_version: str = DEFAULT_API_VERSION) -> str:
    """Return the public Live endpoint for an API version.

    Args:
        api_version: For example ``"v1beta"`` or ``"v1alpha"``.

    Returns:
        The ``wss://`` URL of ``BidiGenerateContent``.
    """
    return (
        "wss://generativelanguage.googleapis.com/ws/"
        f"google.ai.generativelanguage.{api_version}.GenerativeService.BidiGenerateContent"
    )


@attrs.frozen
class ClientSettings:
    """Resolved ``client_config``.

    Attributes:
        api_key: The Gemini API key (sent as the ``x-goog-api-key`` header).
        url: The WebSocket endpoint.
        headers: Extra HTTP headers for the opening request.
        time_limit_s: The fallback connection deadline, in seconds.
        connect_timeout_s: Limit for the WebSocket handshake and for ``setupComplete``.
        go_away_margin_s: After ``goAway``, restart at the latest this long before the
            server's ``timeLeft`` runs out.
        max_json_depth: How deeply server JSON may nest.
    """

    api_key: str = attrs.field(repr=False)
    url: str
    headers: dict[str, str] = attrs.field(repr=False)
    time_limit_s: float
    connect_timeout_s: float
    go_away_margin_s: float = DEFAULT_GO_AWAY_MARGIN_S
    max_json_depth: int = DEFAULT_MAX_DEPTH


@attrs.frozen
class ProviderSettings:
    """Resolved ``provider_config``.

    Attributes:
        config: The full configuration as the model reports it (``config["audio"]`` is an
            [`AudioConfig`][trio_bidi.types.AudioConfig]).
        audio: The audio configuration.
        text_input: ``"client_content"`` or ``"realtime"``: how text input is sent.
        manual_activity: True when the client signals speech with activityStart/End.
        session_resumption: True to ask the server for resumption handles.
        transparent_resumption: True to ask for ``lastConsumedClientMessageIndex``.
        max_unconsumed_input_bytes: Bound of the input kept for replay after a resumption.
        initial_history_in_client_content: True when the server waits for the history
            (``historyConfig``) and the client ends it with ``turnComplete: true``.
    """

    config: dict[str, Any]
    audio: AudioConfig
    text_input: str
    manual_activity: bool
    session_resumption: bool
    transparent_resumption: bool
    max_unconsumed_input_bytes: int
    initial_history_in_client_content: bool = False


def _unknown(keys: Any, allowed: frozenset[str] | Mapping[str, str], where: str) -> None:
    for key in keys:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise BidiConfigurationError(f"unknown {where} key {key!r} (known keys: {known})")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise BidiConfigurationError(f"{where} must be a dict, not {type(value).__name__}")
    return dict(value)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_dict(value: Any) -> Any:
    """Convert snake_case keys to camelCase, recursively (camelCase keys pass through)."""
    if isinstance(value, Mapping):
        return {_camel(str(k)): _camel_dict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_dict(v) for v in value]
    return value


def resolve_client_config(client_config: Mapping[str, Any] | None) -> ClientSettings:
    """Check ``client_config`` and fill in defaults.

    Args:
        client_config: ``api_key`` (else ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY``), ``url``,
            ``api_version``, ``headers``, ``time_limit_s``, ``connect_timeout_s``.

    Returns:
        The resolved settings.

    Raises:
        BidiConfigurationError: A key is unknown, a value is malformed, or no API key is
            available.
    """
    data = _mapping(copy.deepcopy(dict(client_config or {})), "client_config")
    _unknown(data, _CLIENT_KEYS, "client_config")
    http = _http_options(data.pop("http_options", None))
    api_key = data.get("api_key") or os.environ.get("GOOGLE_API_KEY")
    api_key = api_key or os.environ.get("GEMINI_API_KEY")
    if not api_key or not isinstance(api_key, str):
        raise BidiConfigurationError(
            "no Gemini API key: pass client_config={'api_key': ...} or set the "
            "GOOGLE_API_KEY or GEMINI_API_KEY environment variable"
        )
    api_version = data.get("api_version", http.get("api_version", DEFAULT_API_VERSION))
    if not isinstance(api_version, str) or not api_version:
        raise BidiConfigurationError(f"client_config['api_version'] is invalid: {api_version!r}")
    url = data.get("url") or _url_from_base(http.get("base_url"), api_version)
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise BidiConfigurationError(f"client_config['url'] must be a ws:// or wss:// URL: {url!r}")
    headers = {
        **_mapping(http.get("headers") or {}, "client_config['http_options']['headers']"),
        **_mapping(data.get("headers", {}), "client_config['headers']"),
    }
    time_limit_s = data.get("time_limit_s", DEFAULT_TIME_LIMIT_S)
    default_connect = http["timeout"] / 1000 if http.get("timeout") else 10.0
    connect_timeout_s = data.get("connect_timeout_s", default_connect)
    margin = data.get("go_away_margin_s", DEFAULT_GO_AWAY_MARGIN_S)
    for name, value in (
        ("time_limit_s", time_limit_s),
        ("connect_timeout_s", connect_timeout_s),
        ("go_away_margin_s", margin),
    ):
        if value is None and name == "time_limit_s":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise BidiConfigurationError(
                f"client_config[{name!r}] must be a positive number: {value!r}"
            )
    depth = data.get("max_json_depth", DEFAULT_MAX_DEPTH)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 2 <= depth <= 500:
        raise BidiConfigurationError(
            f"client_config['max_json_depth']={depth!r}: an integer from 2 to 500"
        )
    return ClientSettings(
        api_key=api_key,
        url=url,
        headers={str(k): str(v) for k, v in headers.items()},
        time_limit_s=float("inf") if time_limit_s is None else float(time_limit_s),
        connect_timeout_s=float(connect_timeout_s),
        go_away_margin_s=float(margin),
        max_json_depth=depth,
    )


def _http_options(value: Any) -> dict[str, Any]:
    """Read google-genai ``http_options`` (a dict or ``types.HttpOptions``).

    ``base_url``, ``api_version``, ``headers`` and ``timeout`` (milliseconds, the
    handshake limit here) mean what they mean to ``google.genai.Client``; other options
    configure its HTTP client and have no meaning for a WebSocket.
    """
    if value is None:
        return {}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(exclude_none=True)
    options = {
        key: item
        for key, item in _mapping(value, "client_config['http_options']").items()
        if item is not None
    }
    unsupported = sorted(key for key in options if key not in _HTTP_OPTION_KEYS)
    if unsupported:
        raise BidiConfigurationError(
            f"client_config['http_options'] keys {unsupported} are not supported for the Live "
            f"WebSocket (supported: {', '.join(sorted(_HTTP_OPTION_KEYS))})"
        )
    timeout = options.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise BidiConfigurationError(
            f"client_config['http_options']['timeout']={timeout!r}: milliseconds, a positive number"
        )
    return options


def _url_from_base(base_url: Any, api_version: str) -> str:
    """The Live endpoint under ``http_options.base_url`` (as google-genai builds it)."""
    if base_url is None:
        return default_url(api_version)
    if not isinstance(base_url, str) or not base_url.startswith(
        ("http://", "https://", "ws://", "wss://")
    ):
        raise BidiConfigurationError(
            f"client_config['http_options']['base_url'] must be an http(s) URL: {base_url!r}"
        )
    root = base_url.rstrip("/")
    if root.startswith("https://"):
        root = "wss://" + root[len("https://") :]
    elif root.startswith("http://"):
        root = "ws://" + root[len("http://") :]
    return (
        f"{root}/ws/google.ai.generativelanguage.{api_version}."
        "GenerativeService.BidiGenerateContent"
    )


def _resolve_audio(value: Any) -> AudioConfig:
    audio = _mapping(value if value is not None else {}, "provider_config['audio']")
    _unknown(audio, _AUDIO_KEYS, "provider_config['audio']")
    input_rate = audio.get("input_rate", 16000)
    if input_rate not in _INPUT_RATES or isinstance(input_rate, bool):
        raise BidiConfigurationError(
            f"provider_config['audio']['input_rate']={input_rate!r} is not supported "
            f"(Gemini Live takes 16-bit PCM at {', '.join(map(str, _INPUT_RATES))} Hz)"
        )
    output_rate = audio.get("output_rate", _OUTPUT_RATE)
    if output_rate != _OUTPUT_RATE or isinstance(output_rate, bool):
        raise BidiConfigurationError(
            f"provider_config['audio']['output_rate']={output_rate!r} is not supported "
            f"(Gemini Live speaks 24000 Hz PCM)"
        )
    channels = audio.get("channels", 1)
    if channels != 1 or isinstance(channels, bool):
        raise BidiConfigurationError(
            f"provider_config['audio']['channels']={channels!r} is not supported (mono only)"
        )
    fmt = audio.get("format", "pcm")
    if fmt != "pcm":
        raise BidiConfigurationError(
            f"provider_config['audio']['format']={fmt!r} is not supported (only 'pcm')"
        )
    result: AudioConfig = {
        "input_rate": input_rate,
        "output_rate": output_rate,
        "channels": 1,
        "format": "pcm",
    }
    voice = audio.get("voice")
    if voice is not None:
        if not isinstance(voice, str) or not voice:
            raise BidiConfigurationError(f"provider_config['audio']['voice'] is invalid: {voice!r}")
        result["voice"] = voice
    return result


def _transcription(value: Any, key: str) -> dict[str, Any] | None:
    if value is True:
        return {}
    if value is False or value is None:
        return None
    return _camel_dict(_mapping(value, f"provider_config[{key!r}]"))  # type: ignore[no-any-return]


def resolve_provider_config(provider_config: Mapping[str, Any] | None) -> ProviderSettings:
    """Check ``provider_config`` and fill in defaults.

    Args:
        provider_config: See the provider's documentation page for every key.

    Returns:
        The resolved settings.

    Raises:
        BidiConfigurationError: A key is unknown or a value is malformed.
    """
    data = _mapping(copy.deepcopy(dict(provider_config or {})), "provider_config")
    _unknown(data, _PROVIDER_KEYS, "provider_config")
    audio = _resolve_audio(data.get("audio"))
    inference = _mapping(data.get("inference", {}), "provider_config['inference']")
    for key, setting in _INFERENCE_MOVED.items():
        if key in inference:
            # Strands' form: LiveConnectConfig keys inside ``inference``.
            moved = inference.pop(key)
            if setting in data and data[setting] != moved:
                raise BidiConfigurationError(
                    f"provider_config['inference'][{key!r}] and provider_config[{setting!r}] "
                    "disagree; give one of them"
                )
            data[setting] = moved
    if "inference" in data:
        data["inference"] = inference
    _unknown(inference, _INFERENCE_KEYS, "provider_config['inference']")
    modalities = data.get("response_modalities", ["AUDIO"])
    if (
        not isinstance(modalities, list | tuple)
        or len(modalities) != 1
        or str(modalities[0]).upper() not in ("AUDIO", "TEXT")
    ):
        raise BidiConfigurationError(
            f"provider_config['response_modalities']={modalities!r} must be ['AUDIO'] or ['TEXT']"
        )
    activity = _mapping(data.get("activity_detection", {}), "provider_config['activity_detection']")
    _unknown(activity, _ACTIVITY_KEYS, "provider_config['activity_detection']")
    manual = bool(data.get("manual_activity", False))
    if manual and activity.get("disabled") is False:
        raise BidiConfigurationError(
            "provider_config['manual_activity'] needs automatic activity detection off "
            "(activity_detection={'disabled': True} or leave 'disabled' out)"
        )
    text_input = data.get("text_input", "client_content")
    if text_input not in ("client_content", "realtime"):
        raise BidiConfigurationError(
            f"provider_config['text_input']={text_input!r} must be 'client_content' or 'realtime'"
        )
    resumption = data.get("session_resumption", True)
    if isinstance(resumption, Mapping):
        _unknown(resumption, frozenset({"transparent"}), "provider_config['session_resumption']")
        transparent = bool(resumption.get("transparent", False))
        resumption = True
    elif isinstance(resumption, bool):
        transparent = False
    else:
        raise BidiConfigurationError(
            "provider_config['session_resumption'] must be a bool or {'transparent': bool}"
        )
    compression = data.get("context_window_compression")
    if compression is not None and compression is not False and compression is not True:
        compression_map = _mapping(compression, "provider_config['context_window_compression']")
        _unknown(
            compression_map,
            frozenset({"trigger_tokens", "sliding_window"}),
            "provider_config['context_window_compression']",
        )
    max_unconsumed = data.get("max_unconsumed_input_bytes", 8 * 1024 * 1024)
    if (
        isinstance(max_unconsumed, bool)
        or not isinstance(max_unconsumed, int)
        or max_unconsumed < 0
    ):
        raise BidiConfigurationError(
            "provider_config['max_unconsumed_input_bytes'] must be a non-negative int"
        )
    for key in ("input_transcription", "output_transcription"):
        _transcription(data.get(key, True), key)
    initial_history = data.get("initial_history_in_client_content", False)
    if not isinstance(initial_history, bool):
        raise BidiConfigurationError(
            "provider_config['initial_history_in_client_content'] must be a bool"
        )
    config: dict[str, Any] = dict(data)
    config["audio"] = audio
    config["response_modalities"] = [str(modalities[0]).upper()]
    return ProviderSettings(
        config=config,
        audio=audio,
        text_input=text_input,
        manual_activity=manual,
        session_resumption=bool(resumption),
        transparent_resumption=transparent,
        max_unconsumed_input_bytes=max_unconsumed,
        initial_history_in_client_content=initial_history,
    )


def build_setup(
    model_id: str,
    settings: ProviderSettings,
    *,
    system_prompt: str | None,
    function_declarations: list[dict[str, Any]],
    session_handle: str | None,
) -> dict[str, Any]:
    """Build the body of the ``setup`` message.

    Args:
        model_id: The model name (``models/`` is prefixed when missing).
        settings: The resolved provider configuration.
        system_prompt: The system instruction.
        function_declarations: Tools, already in Gemini's shape.
        session_handle: A resumption handle to continue a session, or None.

    Returns:
        The ``setup`` object (camelCase).
    """
    data = settings.config
    model = model_id if model_id.startswith(("models/", "tunedModels/")) else f"models/{model_id}"
    generation: dict[str, Any] = {"responseModalities": list(data["response_modalities"])}
    for key, value in data.get("inference", {}).items():
        generation[_INFERENCE_KEYS[key]] = _camel_dict(value)
    speech: dict[str, Any] = {}
    voice = settings.audio.get("voice")
    if voice is not None:
        speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": voice}}
    if data.get("language_code"):
        speech["languageCode"] = data["language_code"]
    if speech:
        generation["speechConfig"] = speech
    if data.get("affective_dialog"):
        generation["enableAffectiveDialog"] = True
    setup: dict[str, Any] = {"model": model, "generationConfig": generation}
    if system_prompt:
        setup["systemInstruction"] = {"parts": [{"text": system_prompt}]}
    if function_declarations:
        setup["tools"] = [{"functionDeclarations": function_declarations}]
    realtime: dict[str, Any] = {}
    activity = {_ACTIVITY_KEYS[k]: v for k, v in data.get("activity_detection", {}).items()}
    if settings.manual_activity:
        activity["disabled"] = True
    if activity:
        realtime["automaticActivityDetection"] = activity
    for key, wire in _REALTIME_KEYS.items():
        if data.get(key) is not None:
            realtime[wire] = data[key]
    if realtime:
        setup["realtimeInputConfig"] = realtime
    for key, wire in (
        ("input_transcription", "inputAudioTranscription"),
        ("output_transcription", "outputAudioTranscription"),
    ):
        transcription = _transcription(data.get(key, True), key)
        if transcription is not None:
            setup[wire] = transcription
    if settings.session_resumption or session_handle:
        resumption: dict[str, Any] = {}
        if session_handle:
            resumption["handle"] = session_handle
        if settings.transparent_resumption:
            resumption["transparent"] = True
        setup["sessionResumption"] = resumption
    compression = data.get("context_window_compression")
    if compression is True:
        setup["contextWindowCompression"] = {"slidingWindow": {}}
    elif compression:
        setup["contextWindowCompression"] = _camel_dict(compression)
    if data.get("proactive_audio"):
        setup["proactivity"] = {"proactiveAudio": True}
    if settings.initial_history_in_client_content:
        setup["historyConfig"] = {"initialHistoryInClientContent": True}
    return setup
