"""Test helpers for trio_bidi and its users: emulators, a scripted model, contract tests."""

from ._gemini_emulator import EmulatedGeminiSession as EmulatedGeminiSession
from ._gemini_emulator import GeminiLiveEmulator as GeminiLiveEmulator
from ._openai_emulator import EmulatedOpenAISession as EmulatedOpenAISession
from ._openai_emulator import OpenAIRealtimeEmulator as OpenAIRealtimeEmulator
from ._replies import FunctionCallReply as FunctionCallReply
from ._replies import SpokenReply as SpokenReply
from ._scripted import Responder as Responder
from ._scripted import ScriptedConnection as ScriptedConnection
from ._scripted import ScriptedModel as ScriptedModel

__all__ = [
    "EmulatedGeminiSession",
    "EmulatedOpenAISession",
    "FunctionCallReply",
    "GeminiLiveEmulator",
    "OpenAIRealtimeEmulator",
    "Responder",
    "ScriptedConnection",
    "ScriptedModel",
    "SpokenReply",
]
