"""model_from_id: the default model and the provider chosen by a model id."""

from __future__ import annotations

import pytest

from trio_bidi.errors import BidiConfigurationError
from trio_bidi.models import BidiGeminiLiveModel, BidiOpenAIRealtimeModel
from trio_bidi.models._registry import model_from_id
from trio_bidi.models.nova_sonic import BidiNovaSonicModel


def test_none_is_nova_2_sonic() -> None:
    model = model_from_id(None)
    assert isinstance(model, BidiNovaSonicModel)
    assert model.model_id == "amazon.nova-2-sonic-v1:0"


def test_nova_ids() -> None:
    model = model_from_id("amazon.nova-sonic-v1:0")
    assert isinstance(model, BidiNovaSonicModel)
    assert model.model_id == "amazon.nova-sonic-v1:0"


def test_openai_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = model_from_id("gpt-realtime")
    assert isinstance(model, BidiOpenAIRealtimeModel)
    assert model.model_id == "gpt-realtime"


def test_gemini_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    model = model_from_id("gemini-2.5-flash-native-audio-preview-09-2025")
    assert isinstance(model, BidiGeminiLiveModel)


@pytest.mark.parametrize("model_id", ["claude-3", "nova-sonic", "", "amazon.titan-text"])
def test_unknown_ids_list_the_three_providers(model_id: str) -> None:
    with pytest.raises(BidiConfigurationError) as caught:
        model_from_id(model_id)
    if model_id:
        for hint in ("amazon.nova-2-sonic-v1:0", "gpt-", "gemini-"):
            assert hint in str(caught.value)
