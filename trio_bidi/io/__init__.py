"""Inputs and outputs for ``BidiAgent.run``: the protocols, audio devices, the terminal.

The audio devices are imported on first use: they need numpy (about 15 MB of memory),
which an application that only types, or serves browsers, never loads.
"""

from typing import TYPE_CHECKING, Any

from ._base import AgentHandle as AgentHandle
from ._base import BidiInput as BidiInput
from ._base import BidiInputEnded as BidiInputEnded
from ._base import BidiOutput as BidiOutput
from ._text import BidiTextInput as BidiTextInput
from ._text import BidiTextIO as BidiTextIO
from ._text import BidiTextOutput as BidiTextOutput
from ._text import TextUsage as TextUsage

if TYPE_CHECKING:
    from ._audio import AudioStatistics as AudioStatistics
    from ._audio import BidiAudioInput as BidiAudioInput
    from ._audio import BidiAudioIO as BidiAudioIO
    from ._audio import BidiAudioOutput as BidiAudioOutput

_AUDIO = frozenset({"AudioStatistics", "BidiAudioIO", "BidiAudioInput", "BidiAudioOutput"})


def __getattr__(name: str) -> Any:
    """Import the audio devices on first use."""
    if name in _AUDIO:
        from . import _audio

        return getattr(_audio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
