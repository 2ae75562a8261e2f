"""Test helpers for trio_bidi and its users: emulators, a scripted model, contract tests.

The Nova Sonic emulator is imported on first use (it needs the ``nova-emulator`` extra:
``h2``, ``botocore`` and ``trustme``).
"""

from typing import TYPE_CHECKING, Any

from ._gemini_emulator import EmulatedGeminiSession as EmulatedGeminiSession
from ._gemini_emulator import GeminiLiveEmulator as GeminiLiveEmulator
from ._openai_emulator import EmulatedOpenAISession as EmulatedOpenAISession
from ._openai_emulator import OpenAIRealtimeEmulator as OpenAIRealtimeEmulator
from ._replies import FunctionCallReply as FunctionCallReply
from ._replies import SpokenReply as SpokenReply
from ._scripted import Responder as Responder
from ._scripted import ScriptedConnection as ScriptedConnection
from ._scripted import ScriptedModel as ScriptedModel

if TYPE_CHECKING:
    from ._nova_emulator import EmulatedNovaSession as EmulatedNovaSession
    from ._nova_emulator import NovaSonicEmulator as NovaSonicEmulator

_LAZY = frozenset({"EmulatedNovaSession", "NovaSonicEmulator"})


def __getattr__(name: str) -> Any:
    """Import the Nova Sonic emulator on first use."""
    if name in _LAZY:
        from . import _nova_emulator

        return getattr(_nova_emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EmulatedGeminiSession",
    "EmulatedNovaSession",
    "EmulatedOpenAISession",
    "FunctionCallReply",
    "GeminiLiveEmulator",
    "NovaSonicEmulator",
    "OpenAIRealtimeEmulator",
    "Responder",
    "ScriptedConnection",
    "ScriptedModel",
    "SpokenReply",
]
