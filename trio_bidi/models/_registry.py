"""Pick a provider from a model id: what ``BidiAgent(model="...")`` and ``BidiAgent()`` use."""

from __future__ import annotations

from ..errors import BidiConfigurationError
from ._base import BidiModel

__all__ = ["model_from_id"]


def model_from_id(model_id: str | None) -> BidiModel:
    """Build the model for ``model_id`` with its default configuration.

    Args:
        model_id: ``None`` for the default (Amazon Nova 2 Sonic, as the API we follow
            does); ``amazon.nova-*`` for Nova Sonic, ``gpt-*`` for OpenAI Realtime,
            ``gemini-*`` for Gemini Live.

    Raises:
        BidiConfigurationError: An id no provider claims (the message lists the three),
            or the provider's own configuration error (a missing OpenAI API key...).
    """
    if model_id is None:
        from .nova_sonic import BidiNovaSonicModel

        return BidiNovaSonicModel()
    if not isinstance(model_id, str) or not model_id:
        raise BidiConfigurationError(f"model id must be a non-empty string, not {model_id!r}")
    if model_id.startswith("amazon.nova-"):
        from .nova_sonic import BidiNovaSonicModel

        return BidiNovaSonicModel(model_id)
    if model_id.startswith("gpt-"):
        from .openai_realtime import BidiOpenAIRealtimeModel

        return BidiOpenAIRealtimeModel(model_id)
    if model_id.startswith("gemini-"):
        from .gemini_live import BidiGeminiLiveModel

        return BidiGeminiLiveModel(model_id)
    raise BidiConfigurationError(
        f"no provider for model id {model_id!r}: use an Amazon Nova Sonic id "
        "('amazon.nova-2-sonic-v1:0', 'amazon.nova-sonic-v1:0'), an OpenAI Realtime id "
        "('gpt-realtime', 'gpt-*'), or a Gemini Live id ('gemini-*'); or pass a model object"
    )
