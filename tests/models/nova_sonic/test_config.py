"""Configuration of BidiNovaSonicModel: defaults, validation, environment."""

from __future__ import annotations

import ssl

import pytest

from trio_bidi.errors import BidiConfigurationError
from trio_bidi.models.nova_sonic import BidiNovaSonicModel
from trio_bidi.models.nova_sonic._config import VOICES, resolve_client_config


def test_defaults() -> None:
    model = BidiNovaSonicModel()
    assert model.model_id == "amazon.nova-2-sonic-v1:0"
    assert model.config["audio"] == {
        "input_rate": 16000,
        "output_rate": 16000,
        "channels": 1,
        "format": "pcm",
        "voice": "matthew",
    }
    assert model.config["turn_detection"] is None
    model.config["audio"]["voice"] = "amy"
    assert BidiNovaSonicModel().config["audio"]["voice"] == "matthew"


@pytest.mark.parametrize(
    ("provider_config", "match"),
    [
        ({"voices": {}}, "unknown provider_config key.*'voices'"),
        ({"audio": {"rate": 1}}, "unknown provider_config\\['audio'\\] key.*'rate'"),
        ({"audio": {"input_rate": 24000}}, "16000 Hz input only"),
        ({"audio": {"output_rate": 8000}}, "8000 Hz"),
        ({"audio": {"voice": "alloy"}}, "voice 'alloy' is not a documented voice"),
        ({"inference": {"maxTokens": 0}}, "maxTokens"),
        ({"inference": {"temperature": 2}}, "temperature"),
        ({"inference": {"top_k": 5}}, "'top_k'"),
        ({"turn_detection": {"endpointingSensitivity": "EXTREME"}}, "HIGH, MEDIUM, LOW"),
        ({"turn_detection": {"silence": 1}}, "'silence'"),
    ],
)
def test_provider_config_errors_name_the_problem(provider_config: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(BidiConfigurationError, match=match):
        BidiNovaSonicModel(provider_config=provider_config)


def test_voices_depend_on_the_model() -> None:
    assert BidiNovaSonicModel(provider_config={"audio": {"voice": "kiara"}})
    with pytest.raises(BidiConfigurationError, match=r"amazon\.nova-sonic-v1:0"):
        BidiNovaSonicModel("amazon.nova-sonic-v1:0", {"audio": {"voice": "kiara"}})
    assert VOICES["amazon.nova-sonic-v1:0"] < VOICES["amazon.nova-2-sonic-v1:0"]


def test_turn_detection_is_nova_2_only() -> None:
    model = BidiNovaSonicModel(provider_config={"turn_detection": {}})
    assert model.config["turn_detection"] == {"endpointingSensitivity": "MEDIUM"}
    with pytest.raises(BidiConfigurationError, match="Nova 2 Sonic setting"):
        BidiNovaSonicModel("amazon.nova-sonic-v1:0", {"turn_detection": {}})


def test_inference_aliases() -> None:
    model = BidiNovaSonicModel(provider_config={"inference": {"max_tokens": 50, "topP": 0.5}})
    assert model.config["inference"] == {"maxTokens": 50, "topP": 0.5, "temperature": 0.7}


def test_client_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", raising=False)
    settings = resolve_client_config(None)
    assert settings.region == "eu-north-1"
    assert settings.endpoint_url == "https://bedrock-runtime.eu-north-1.amazonaws.com"
    assert settings.authority == "bedrock-runtime.eu-north-1.amazonaws.com"
    assert settings.time_limit_s == 470
    assert isinstance(settings.ssl_context, ssl.SSLContext)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "https://localhost:8443")
    settings = resolve_client_config({"region": "us-west-2"})
    assert (settings.region, settings.host, settings.port) == ("us-west-2", "localhost", 8443)
    assert settings.authority == "localhost:8443"


def test_client_config_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_client_config({}).region == "us-east-1"


@pytest.mark.parametrize(
    ("client_config", "match"),
    [
        ({"url": "x"}, "'url'"),
        ({"endpoint_url": "http://localhost:80"}, "https://host"),
        ({"time_limit_s": 0}, "time_limit_s"),
        ({"ssl_context": "yes"}, "ssl.SSLContext"),
    ],
)
def test_client_config_errors(client_config: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(BidiConfigurationError, match=match):
        BidiNovaSonicModel(client_config=client_config)


def test_repr_shows_no_credentials() -> None:
    assert "endpoint_url" in repr(BidiNovaSonicModel())
