"""Configuration of BidiGeminiLiveModel: defaults, validation, the setup message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oracles.gemini import validate_client_message
from trio_bidi import BidiGeminiLiveModel
from trio_bidi.errors import BidiConfigurationError
from trio_bidi.models import BidiModel
from trio_bidi.models.gemini_live._config import (
    DEFAULT_MODEL_ID,
    build_setup,
    default_url,
    resolve_client_config,
    resolve_provider_config,
)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    model = BidiGeminiLiveModel()
    assert isinstance(model, BidiModel)
    assert model.model_id == DEFAULT_MODEL_ID == "gemini-2.5-flash-native-audio-preview-09-2025"
    assert model.config["audio"] == {
        "input_rate": 16000,
        "output_rate": 24000,
        "channels": 1,
        "format": "pcm",
    }
    assert model.client_settings.api_key == "from-env"
    assert model.client_settings.url == default_url("v1beta")
    assert "from-env" not in repr(model)
    assert "from-env" not in repr(model.client_settings)


def test_google_api_key_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "google")
    monkeypatch.setenv("GEMINI_API_KEY", "gemini")
    assert BidiGeminiLiveModel().client_settings.api_key == "google"
    explicit = BidiGeminiLiveModel(client_config={"api_key": "explicit"})
    assert explicit.client_settings.api_key == "explicit"


def test_missing_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(BidiConfigurationError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        BidiGeminiLiveModel()


def test_api_version_in_the_default_url() -> None:
    model = BidiGeminiLiveModel(client_config={"api_key": "k", "api_version": "v1alpha"})
    assert "v1alpha.GenerativeService.BidiGenerateContent" in model.client_settings.url


@pytest.mark.parametrize(
    ("provider_config", "client_config", "message"),
    [
        ({"voices": "x"}, {}, "unknown provider_config key 'voices'"),
        ({"audio": {"rate": 1}}, {}, "unknown provider_config\\['audio'\\] key 'rate'"),
        ({"audio": {"input_rate": 8000}}, {}, "input_rate"),
        ({"audio": {"output_rate": 16000}}, {}, "output_rate"),
        ({"audio": {"channels": 2}}, {}, "mono only"),
        ({"audio": {"format": "opus"}}, {}, "only 'pcm'"),
        ({"inference": {"temp": 1}}, {}, "unknown provider_config\\['inference'\\] key 'temp'"),
        ({"response_modalities": ["VIDEO"]}, {}, "response_modalities"),
        ({"activity_detection": {"bogus": 1}}, {}, "activity_detection"),
        (
            {"manual_activity": True, "activity_detection": {"disabled": False}},
            {},
            "manual_activity",
        ),
        ({"text_input": "shout"}, {}, "text_input"),
        ({"session_resumption": "yes"}, {}, "session_resumption"),
        ({"session_resumption": {"opaque": True}}, {}, "session_resumption"),
        ({"context_window_compression": {"window": 1}}, {}, "context_window_compression"),
        ({"max_unconsumed_input_bytes": -1}, {}, "max_unconsumed_input_bytes"),
        ({"initial_history_in_client_content": 1}, {}, "initial_history_in_client_content"),
        ({}, {"apikey": "x"}, "unknown client_config key 'apikey'"),
        ({}, {"url": "http://example"}, "ws:// or wss://"),
        ({}, {"time_limit_s": 0}, "time_limit_s"),
        ({}, {"connect_timeout_s": "5"}, "connect_timeout_s"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    provider_config: dict[str, Any], client_config: dict[str, Any], message: str
) -> None:
    with pytest.raises(BidiConfigurationError, match=message):
        BidiGeminiLiveModel(
            provider_config=provider_config, client_config={"api_key": "k", **client_config}
        )


def test_configuration_is_deep_copied() -> None:
    provider_config: dict[str, Any] = {
        "inference": {"temperature": 0.1},
        "audio": {"voice": "Kore"},
    }
    model = BidiGeminiLiveModel(provider_config=provider_config, client_config={"api_key": "k"})
    provider_config["inference"]["temperature"] = 0.9
    model.config["inference"]["temperature"] = 0.5
    other = BidiGeminiLiveModel(client_config={"api_key": "k"})
    assert "inference" not in other.config
    assert provider_config["inference"]["temperature"] == 0.9


def test_setup_variants_validate_against_the_sdk_types() -> None:
    configs: list[dict[str, Any]] = [
        {},
        {
            "response_modalities": ["text"],
            "input_transcription": False,
            "output_transcription": False,
        },
        {"context_window_compression": True, "session_resumption": {"transparent": True}},
        {
            "inference": {
                "temperature": 0.2,
                "top_p": 0.9,
                "top_k": 20,
                "max_output_tokens": 100,
                "seed": 7,
                "thinking_config": {"thinking_budget": 0},
            },
            "manual_activity": True,
            "turn_coverage": "TURN_INCLUDES_ALL_INPUT",
            "activity_detection": {"end_of_speech_sensitivity": "END_SENSITIVITY_HIGH"},
        },
    ]
    for config in configs:
        settings = resolve_provider_config(config)
        setup = build_setup(
            "models/custom",
            settings,
            system_prompt=None,
            function_declarations=[],
            session_handle="h",
        )
        validate_client_message({"setup": setup})
        assert setup["sessionResumption"]["handle"] == "h"
    text_setup = build_setup(
        "m",
        resolve_provider_config(configs[1]),
        system_prompt="s",
        function_declarations=[],
        session_handle=None,
    )
    assert text_setup["model"] == "models/m"
    assert text_setup["generationConfig"]["responseModalities"] == ["TEXT"]
    assert "inputAudioTranscription" not in text_setup
    thinking = build_setup(
        "m",
        resolve_provider_config(configs[3]),
        system_prompt=None,
        function_declarations=[],
        session_handle=None,
    )
    assert thinking["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_strands_inference_keys_set_modalities_and_transcription() -> None:
    settings = resolve_provider_config(
        {
            "inference": {
                "response_modalities": ["TEXT"],
                "outputAudioTranscription": None,
                "inputAudioTranscription": {},
                "temperature": 0.3,
                "topP": 0.9,
            }
        }
    )
    setup = build_setup(
        "m", settings, system_prompt=None, function_declarations=[], session_handle=None
    )
    assert setup["generationConfig"]["responseModalities"] == ["TEXT"]
    assert setup["generationConfig"]["temperature"] == 0.3
    assert setup["generationConfig"]["topP"] == 0.9
    assert setup["inputAudioTranscription"] == {}
    assert "outputAudioTranscription" not in setup
    assert settings.config["response_modalities"] == ["TEXT"]
    validate_client_message({"setup": setup})


def test_strands_inference_keys_that_contradict_the_settings_are_refused() -> None:
    with pytest.raises(BidiConfigurationError, match="disagree"):
        resolve_provider_config(
            {"response_modalities": ["AUDIO"], "inference": {"response_modalities": ["TEXT"]}}
        )


def test_http_options_as_google_genai_means_them() -> None:
    from google.genai import types

    for options in (
        {
            "base_url": "https://proxy.example/",
            "api_version": "v1alpha",
            "headers": {"x-team": "a"},
            "timeout": 2500,
        },
        types.HttpOptions(
            base_url="https://proxy.example/",
            api_version="v1alpha",
            headers={"x-team": "a"},
            timeout=2500,
        ),
    ):
        settings = resolve_client_config({"api_key": "k", "http_options": options})
        assert settings.url == (
            "wss://proxy.example/ws/google.ai.generativelanguage.v1alpha."
            "GenerativeService.BidiGenerateContent"
        )
        assert settings.headers == {"x-team": "a"}
        assert settings.connect_timeout_s == 2.5
    # Explicit client_config keys win over http_options.
    settings = resolve_client_config(
        {
            "api_key": "k",
            "api_version": "v1beta",
            "headers": {"x-team": "b"},
            "http_options": {"api_version": "v1alpha", "headers": {"x-team": "a", "x-o": "1"}},
        }
    )
    assert ".v1beta." in settings.url
    assert settings.headers == {"x-team": "b", "x-o": "1"}
    with pytest.raises(BidiConfigurationError, match="supported: api_version, base_url"):
        resolve_client_config({"api_key": "k", "http_options": {"client_args": {"proxy": "x"}}})


async def test_http_options_base_url_reaches_the_emulator() -> None:
    from tests.fixtures.gemini import assert_no_violations, validated_gemini_emulator
    from trio_bidi.events import BidiConnectionStartEvent

    async with validated_gemini_emulator() as emulator:
        model = BidiGeminiLiveModel(
            client_config={
                "api_key": emulator.api_key,
                "http_options": {"base_url": emulator.base_url, "headers": {"x-extra": "yes"}},
            }
        )
        async with model.connect() as connection:
            session = await emulator.wait_for_session()
            assert isinstance(await connection.receive().__anext__(), BidiConnectionStartEvent)
        assert session.request_headers["x-extra"] == "yes"
        assert_no_violations(emulator)
