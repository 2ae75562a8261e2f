"""The agent: a supervised real-time conversation with tools, history, hooks and restarts."""

from ._agent import BidiAgent as BidiAgent
from ._hooks import BidiAfterConnectionRestartEvent as BidiAfterConnectionRestartEvent
from ._hooks import BidiAfterInvocationEvent as BidiAfterInvocationEvent
from ._hooks import BidiAfterToolCallEvent as BidiAfterToolCallEvent
from ._hooks import BidiAgentInitializedEvent as BidiAgentInitializedEvent
from ._hooks import BidiBeforeConnectionRestartEvent as BidiBeforeConnectionRestartEvent
from ._hooks import BidiBeforeInvocationEvent as BidiBeforeInvocationEvent
from ._hooks import BidiBeforeToolCallEvent as BidiBeforeToolCallEvent
from ._hooks import BidiHookEvent as BidiHookEvent
from ._hooks import BidiInterruptionHookEvent as BidiInterruptionHookEvent
from ._hooks import BidiMessageAddedEvent as BidiMessageAddedEvent
from ._hooks import HookProvider as HookProvider
from ._hooks import HookRegistry as HookRegistry
from ._loop import AgentSettings as AgentSettings
from ._state import AgentState as AgentState
from ._stats import AgentStatistics as AgentStatistics
from ._tool_loader import ModuleTool as ModuleTool
from ._tool_loader import ToolDirectoryWatcher as ToolDirectoryWatcher
from ._tool_loader import ToolLoadError as ToolLoadError
from ._tools import AgentTool as AgentTool
from ._tools import ConcurrentToolExecutor as ConcurrentToolExecutor
from ._tools import DirectToolCall as DirectToolCall
from ._tools import FunctionTool as FunctionTool
from ._tools import SequentialToolExecutor as SequentialToolExecutor
from ._tools import ToolArgumentError as ToolArgumentError
from ._tools import ToolContext as ToolContext
from ._tools import ToolRegistry as ToolRegistry
from ._tools import stop_conversation as stop_conversation
from ._tools import tool as tool

__all__ = [
    "AgentSettings",
    "AgentState",
    "AgentStatistics",
    "AgentTool",
    "BidiAfterConnectionRestartEvent",
    "BidiAfterInvocationEvent",
    "BidiAfterToolCallEvent",
    "BidiAgent",
    "BidiAgentInitializedEvent",
    "BidiBeforeConnectionRestartEvent",
    "BidiBeforeInvocationEvent",
    "BidiBeforeToolCallEvent",
    "BidiHookEvent",
    "BidiInterruptionHookEvent",
    "BidiMessageAddedEvent",
    "ConcurrentToolExecutor",
    "DirectToolCall",
    "FunctionTool",
    "HookProvider",
    "HookRegistry",
    "ModuleTool",
    "SequentialToolExecutor",
    "ToolArgumentError",
    "ToolContext",
    "ToolDirectoryWatcher",
    "ToolLoadError",
    "ToolRegistry",
    "stop_conversation",
    "tool",
]
