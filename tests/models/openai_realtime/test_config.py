"""Configuration of the OpenAI Realtime model: defaults, validation, environment."""

from __future__ import annotations

from typing import Any

import pytest

from trio_bidi import BidiOpenAIRealtimeModel
from trio_bidi.errors import BidiConfigurationError
from trio_bidi.models.openai_realtime._config import (
    DEFAULT_URL,
    resolve_client_config,
    resolve_provider_config,
)


def test_defaults() -> None:
    config = resolve_provider_config(None)
    assert config == {
        "audio": {
            "input_rate": 24000,
            "output_rate": 24000,
            "channels": 1,
            "format": "pcm",
            "voice": "alloy",
        },
        "inference": {},
        "turn_detection": {"type": "server_vad"},
        "transcription": {"model": "gpt-4o-transcribe"},
        "noise_reduction": None,
    }


def test_resolved_config_is_a_fresh_copy() -> None:
    first = resolve_provider_config({"turn_detection": {"type": "server_vad", "threshold": 0.4}})
    first["audio"]["voice"] = "changed"
    first["turn_detection"]["threshold"] = 0.9
    first["transcription"]["model"] = "changed"
    again = resolve_provider_config(None)
    assert again["audio"]["voice"] == "alloy"
    assert again["turn_detection"] == {"type": "server_vad"}
    assert again["transcription"] == {"model": "gpt-4o-transcribe"}


def test_model_exposes_the_resolved_audio_config() -> None:
    model = BidiOpenAIRealtimeModel(
        provider_config={"audio": {"voice": "verse"}}, client_config={"api_key": "k"}
    )
    assert model.model_id == "gpt-realtime"
    assert model.config["audio"]["voice"] == "verse"
    assert model.config["audio"]["output_rate"] == 24000


@pytest.mark.parametrize(
    ("provider_config", "match"),
    [
        ({"audo": {}}, r"provider_config: unknown key 'audo'"),
        ({"audio": {"rate": 24000}}, r"provider_config\['audio'\]: unknown key 'rate'"),
        ({"audio": {"input_rate": 16000}}, r"'input_rate'\]=16000: .*24000 Hz only"),
        ({"audio": {"output_rate": 48000}}, r"'output_rate'\]=48000"),
        ({"audio": {"channels": 2}}, r"mono audio only"),
        ({"audio": {"format": "opus"}}, r"only 'pcm'"),
        ({"audio": {"voice": 3}}, r"a voice name"),
        ({"audio": {"speed": 2.0}}, r"0.25 to 1.5"),
        ({"audio": "loud"}, r"provider_config\['audio'\] must be a dict"),
        ({"inference": {"temperature": 0.5}}, r"unknown key 'temperature'"),
        ({"inference": {"output_modalities": ["audio", "text"]}}, r"\['audio'\].*or \['text'\]"),
        ({"inference": {"max_output_tokens": 0}}, r"1 to 4096, or 'inf'"),
        ({"turn_detection": "push_to_talk"}, r"'server_vad', 'semantic_vad'"),
        ({"turn_detection": {"type": "semantic_vad", "threshold": 1}}, r"unknown key 'threshold'"),
        ({"transcription": {"modle": "whisper-1"}}, r"unknown key 'modle'"),
        ({"noise_reduction": "studio"}, r"'near_field' or 'far_field'"),
    ],
)
def test_bad_provider_config_is_a_clear_error(provider_config: Any, match: str) -> None:
    with pytest.raises(BidiConfigurationError, match=match):
        resolve_provider_config(provider_config)


def test_accepted_provider_config() -> None:
    config = resolve_provider_config(
        {
            "audio": {"voice": {"id": "voice_123"}, "speed": 0.5},
            "inference": {"max_output_tokens": "inf", "output_modalities": ["text"]},
            "turn_detection": "manual",
            "transcription": "whisper-1",
            "noise_reduction": {"type": "far_field"},
        }
    )
    assert config["audio"]["voice"] == {"id": "voice_123"}
    assert config["turn_detection"] is None
    assert config["transcription"] == {"model": "whisper-1"}
    assert config["noise_reduction"] == {"type": "far_field"}
    assert resolve_provider_config({"turn_detection": "semantic_vad"})["turn_detection"] == {
        "type": "semantic_vad"
    }
    assert resolve_provider_config({"transcription": None})["transcription"] is None


def test_missing_api_key_names_both_ways() -> None:
    with pytest.raises(BidiConfigurationError) as info:
        resolve_client_config({}, environ={})
    assert "client_config={'api_key': ...}" in str(info.value)
    assert "OPENAI_API_KEY" in str(info.value)


def test_environment_fallbacks() -> None:
    settings = resolve_client_config(
        None,
        environ={
            "OPENAI_API_KEY": "sk-env",
            "OPENAI_ORGANIZATION": "org-env",
            "OPENAI_PROJECT": "proj-env",
        },
    )
    assert settings.headers() == {
        "Authorization": "Bearer sk-env",
        "OpenAI-Organization": "org-env",
        "OpenAI-Project": "proj-env",
    }
    assert settings.url == DEFAULT_URL
    assert settings.timeout_s == 3000
    assert "sk-env" not in repr(settings)


def test_explicit_config_wins_over_the_environment() -> None:
    settings = resolve_client_config(
        {"api_key": "sk-arg", "organization": "org-arg"},
        environ={"OPENAI_API_KEY": "sk-env", "OPENAI_ORGANIZATION": "org-env"},
    )
    assert settings.headers() == {
        "Authorization": "Bearer sk-arg",
        "OpenAI-Organization": "org-arg",
    }


def test_env_var_read_by_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    model = BidiOpenAIRealtimeModel()
    assert model.client_settings.headers()["Authorization"] == "Bearer sk-from-env"
    assert "sk-from-env" not in repr(model)
    assert "sk-from-env" not in repr(model.client_settings)


def test_model_query_is_appended() -> None:
    settings = resolve_client_config({"api_key": "k"}, environ={})
    assert settings.url_for("gpt-realtime") == f"{DEFAULT_URL}?model=gpt-realtime"
    proxy = resolve_client_config({"api_key": "k", "url": "ws://h/v1/realtime?x=1"}, environ={})
    assert proxy.url_for("m") == "ws://h/v1/realtime?x=1&model=m"


@pytest.mark.parametrize(
    ("client_config", "match"),
    [
        ({"timeout_s": 3001}, r"above the maximum 3000 s"),
        ({"timeout_s": 0}, r"a positive number"),
        ({"timeout_s": True}, r"a positive number"),
        ({"url": "https://api.openai.com"}, r"a ws:// or wss:// URL"),
        ({"base_url": "ws://x"}, r"client_config: unknown key 'base_url'"),
    ],
)
def test_bad_client_config_is_a_clear_error(client_config: dict[str, Any], match: str) -> None:
    with pytest.raises(BidiConfigurationError, match=match):
        resolve_client_config({"api_key": "k", **client_config}, environ={})


def test_timeout_at_the_maximum_is_accepted() -> None:
    assert resolve_client_config({"api_key": "k", "timeout_s": 3000}, environ={}).timeout_s == 3000


def test_keyword_arguments_are_accepted_like_strands(caplog: pytest.LogCaptureFixture) -> None:
    model = BidiOpenAIRealtimeModel(
        "gpt-realtime", client_config={"api_key": "k"}, reserved_option=1, another=None
    )
    assert model.model_id == "gpt-realtime"
    (record,) = [r for r in caplog.records if "ignoring unknown keyword" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert "another" in record.getMessage()
    assert "reserved_option" in record.getMessage()


@pytest.mark.parametrize(
    ("audio", "accepted"),
    [
        ({"input_rate": 16000}, "PCM at 24000 Hz only"),
        ({"output_rate": 48000}, "PCM at 24000 Hz only"),
        ({"channels": 2}, "mono audio only (channels=1)"),
        ({"format": "g711_ulaw"}, "only 'pcm'"),
        ({"speed": 3}, "a number from 0.25 to 1.5"),
        ({"bitrate": 1}, "allowed keys:"),
    ],
)
def test_unsupported_audio_settings_say_what_the_api_accepts(
    audio: dict[str, Any], accepted: str
) -> None:
    with pytest.raises(
        BidiConfigurationError, match=accepted.replace("(", r"\(").replace(")", r"\)")
    ):
        BidiOpenAIRealtimeModel(provider_config={"audio": audio}, client_config={"api_key": "k"})


def test_connect_timeout_and_json_depth_are_settings() -> None:
    settings = resolve_client_config({"api_key": "k"})
    assert (settings.connect_timeout_s, settings.max_json_depth) == (15.0, 64)
    settings = resolve_client_config({"api_key": "k", "connect_timeout_s": 2, "max_json_depth": 8})
    assert (settings.connect_timeout_s, settings.max_json_depth) == (2.0, 8)
    assert "k" not in repr(settings).replace("api_key", "")
    for bad in ({"connect_timeout_s": 0}, {"connect_timeout_s": True}, {"max_json_depth": 1}):
        with pytest.raises(BidiConfigurationError):
            resolve_client_config({"api_key": "k", **bad})
