"""Model providers and the model contract they share."""

from ._base import BidiConnection as BidiConnection
from ._base import BidiModel as BidiModel
from ._base import ConnectionBase as ConnectionBase
from ._base import SendableEvent as SendableEvent
from .gemini_live import BidiGeminiLiveModel as BidiGeminiLiveModel
from .nova_sonic import BidiNovaSonicModel as BidiNovaSonicModel
from .openai_realtime import BidiOpenAIRealtimeModel as BidiOpenAIRealtimeModel

__all__ = [
    "BidiConnection",
    "BidiGeminiLiveModel",
    "BidiModel",
    "BidiNovaSonicModel",
    "BidiOpenAIRealtimeModel",
    "ConnectionBase",
    "SendableEvent",
]
