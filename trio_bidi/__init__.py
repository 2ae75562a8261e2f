"""trio_bidi: real-time, two-way conversations with speech-to-speech models, on Trio.

The public names follow the Strands Agents ``bidi`` package, so code can be ported by
changing imports.
"""

from typing import TYPE_CHECKING, Any

from .agent import AgentState as AgentState
from .agent import AgentStatistics as AgentStatistics
from .agent import BidiAfterConnectionRestartEvent as BidiAfterConnectionRestartEvent
from .agent import BidiAfterInvocationEvent as BidiAfterInvocationEvent
from .agent import BidiAfterToolCallEvent as BidiAfterToolCallEvent
from .agent import BidiAgent as BidiAgent
from .agent import BidiAgentInitializedEvent as BidiAgentInitializedEvent
from .agent import BidiBeforeConnectionRestartEvent as BidiBeforeConnectionRestartEvent
from .agent import BidiBeforeInvocationEvent as BidiBeforeInvocationEvent
from .agent import BidiBeforeToolCallEvent as BidiBeforeToolCallEvent
from .agent import BidiHookEvent as BidiHookEvent
from .agent import BidiInterruptionHookEvent as BidiInterruptionHookEvent
from .agent import BidiMessageAddedEvent as BidiMessageAddedEvent
from .agent import ConcurrentToolExecutor as ConcurrentToolExecutor
from .agent import HookProvider as HookProvider
from .agent import HookRegistry as HookRegistry
from .agent import SequentialToolExecutor as SequentialToolExecutor
from .agent import ToolContext as ToolContext
from .agent import stop_conversation as stop_conversation
from .agent import tool as tool
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
from .events import ModalityUsage as ModalityUsage
from .events import ToolResultEvent as ToolResultEvent
from .events import ToolStreamEvent as ToolStreamEvent
from .events import ToolUseStreamEvent as ToolUseStreamEvent
from .events import event_from_dict as event_from_dict
from .io import BidiTextIO as BidiTextIO
from .models import BidiConnection as BidiConnection
from .models import BidiGeminiLiveModel as BidiGeminiLiveModel
from .models import BidiModel as BidiModel
from .models import BidiOpenAIRealtimeModel as BidiOpenAIRealtimeModel

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .io import BidiAudioIO as BidiAudioIO


def __getattr__(name: str) -> Any:
    """Import the audio devices (and numpy) on first use of ``BidiAudioIO``."""
    if name == "BidiAudioIO":
        from .io import _audio

        return _audio.BidiAudioIO
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AgentState",
    "AgentStatistics",
    "BidiAfterConnectionRestartEvent",
    "BidiAfterInvocationEvent",
    "BidiAfterToolCallEvent",
    "BidiAgent",
    "BidiAgentInitializedEvent",
    "BidiAudioFormatError",
    "BidiAudioIO",
    "BidiAudioInputEvent",
    "BidiAudioStreamEvent",
    "BidiBeforeConnectionRestartEvent",
    "BidiBeforeInvocationEvent",
    "BidiBeforeToolCallEvent",
    "BidiConfigurationError",
    "BidiConnection",
    "BidiConnectionCloseEvent",
    "BidiConnectionError",
    "BidiConnectionRestartEvent",
    "BidiConnectionStartEvent",
    "BidiError",
    "BidiErrorEvent",
    "BidiGeminiLiveModel",
    "BidiHookEvent",
    "BidiImageInputEvent",
    "BidiInputEvent",
    "BidiInterruptionEvent",
    "BidiInterruptionHookEvent",
    "BidiMessageAddedEvent",
    "BidiModel",
    "BidiModelTimeoutError",
    "BidiOpenAIRealtimeModel",
    "BidiOutputEvent",
    "BidiProtocolError",
    "BidiProviderError",
    "BidiResponseCompleteEvent",
    "BidiResponseStartEvent",
    "BidiStateError",
    "BidiTextIO",
    "BidiTextInputEvent",
    "BidiToolCancellationEvent",
    "BidiTranscriptStreamEvent",
    "BidiUsageEvent",
    "ConcurrentToolExecutor",
    "HookProvider",
    "HookRegistry",
    "ModalityUsage",
    "SequentialToolExecutor",
    "ToolContext",
    "ToolResultEvent",
    "ToolStreamEvent",
    "ToolUseStreamEvent",
    "event_from_dict",
    "stop_conversation",
    "tool",
]
