"""Test helpers for trio_bidi and its users: emulators, a scripted model, contract tests."""

from ._scripted import Responder as Responder
from ._scripted import ScriptedConnection as ScriptedConnection
from ._scripted import ScriptedModel as ScriptedModel

__all__ = ["Responder", "ScriptedConnection", "ScriptedModel"]
