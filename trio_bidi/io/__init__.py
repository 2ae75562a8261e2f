"""Inputs and outputs for ``BidiAgent.run``: the protocols, audio devices, the terminal."""

from ._base import AgentHandle as AgentHandle
from ._base import BidiInput as BidiInput
from ._base import BidiOutput as BidiOutput

__all__ = ["AgentHandle", "BidiInput", "BidiOutput"]
