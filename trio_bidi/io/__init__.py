"""Inputs and outputs for ``BidiAgent.run``: the protocols, audio devices, the terminal."""

from ._audio import AudioStatistics as AudioStatistics
from ._audio import BidiAudioInput as BidiAudioInput
from ._audio import BidiAudioIO as BidiAudioIO
from ._audio import BidiAudioOutput as BidiAudioOutput
from ._base import AgentHandle as AgentHandle
from ._base import BidiInput as BidiInput
from ._base import BidiInputEnded as BidiInputEnded
from ._base import BidiOutput as BidiOutput
from ._text import BidiTextInput as BidiTextInput
from ._text import BidiTextIO as BidiTextIO
from ._text import BidiTextOutput as BidiTextOutput
from ._text import TextUsage as TextUsage

__all__ = [
    "AgentHandle",
    "AudioStatistics",
    "BidiAudioIO",
    "BidiAudioInput",
    "BidiAudioOutput",
    "BidiInput",
    "BidiInputEnded",
    "BidiOutput",
    "BidiTextIO",
    "BidiTextInput",
    "BidiTextOutput",
    "TextUsage",
]
