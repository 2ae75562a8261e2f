"""trio_bidi: real-time, two-way conversations with speech-to-speech models, on Trio.

The public names follow the Strands Agents ``bidi`` package, so code can be ported by
changing imports.
"""

from .errors import BidiAudioFormatError as BidiAudioFormatError
from .errors import BidiConfigurationError as BidiConfigurationError
from .errors import BidiConnectionError as BidiConnectionError
from .errors import BidiError as BidiError
from .errors import BidiModelTimeoutError as BidiModelTimeoutError
from .errors import BidiProtocolError as BidiProtocolError
from .errors import BidiProviderError as BidiProviderError
from .errors import BidiStateError as BidiStateError
from .events import BidiAudioInputEvent as BidiAudioInputEvent
from .events import BidiAudioStreamEvent as BidiAudioStreamEvent
from .events import BidiConnectionCloseEvent as BidiConnectionCloseEvent
from .events import BidiConnectionRestartEvent as BidiConnectionRestartEvent
from .events import BidiConnectionStartEvent as BidiConnectionStartEvent
from .events import BidiErrorEvent as BidiErrorEvent
from .events import BidiImageInputEvent as BidiImageInputEvent
from .events import BidiInputEvent as BidiInputEvent
from .events import BidiInterruptionEvent as BidiInterruptionEvent
from .events import BidiOutputEvent as BidiOutputEvent
from .events import BidiResponseCompleteEvent as BidiResponseCompleteEvent
from .events import BidiResponseStartEvent as BidiResponseStartEvent
from .events import BidiTextInputEvent as BidiTextInputEvent
from .events import BidiToolCancellationEvent as BidiToolCancellationEvent
from .events import BidiTranscriptStreamEvent as BidiTranscriptStreamEvent
from .events import BidiUsageEvent as BidiUsageEvent
from .events import ToolResultEvent as ToolResultEvent
from .events import ToolUseStreamEvent as ToolUseStreamEvent
from .events import event_from_dict as event_from_dict
from .models import BidiConnection as BidiConnection
from .models import BidiModel as BidiModel

__version__ = "0.1.0"

__all__ = [
    "BidiAudioFormatError",
    "BidiAudioInputEvent",
    "BidiAudioStreamEvent",
    "BidiConfigurationError",
    "BidiConnection",
    "BidiConnectionCloseEvent",
    "BidiConnectionError",
    "BidiConnectionRestartEvent",
    "BidiConnectionStartEvent",
    "BidiError",
    "BidiErrorEvent",
    "BidiImageInputEvent",
    "BidiInputEvent",
    "BidiInterruptionEvent",
    "BidiModel",
    "BidiModelTimeoutError",
    "BidiOutputEvent",
    "BidiProtocolError",
    "BidiProviderError",
    "BidiResponseCompleteEvent",
    "BidiResponseStartEvent",
    "BidiStateError",
    "BidiTextInputEvent",
    "BidiToolCancellationEvent",
    "BidiTranscriptStreamEvent",
    "BidiUsageEvent",
    "ToolResultEvent",
    "ToolUseStreamEvent",
    "event_from_dict",
]
