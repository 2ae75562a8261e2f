"""The conversation history: appending with hooks, and copying without recursion.

The history holds what the model sent (tool arguments included), so its depth is chosen
by the peer: a recursive copy (``copy.deepcopy``) of arguments nested a few hundred levels
deep raises RecursionError. `copy_json` copies the containers with an explicit stack
and shares every other value (strings, numbers, bytes... are immutable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ..types import Message, ToolResult, ToolUse
from . import _hooks as hooks

if TYPE_CHECKING:
    from ._agent import BidiAgent

__all__ = ["add_messages", "copy_json", "tool_exchange"]

T = TypeVar("T")


def copy_json(value: T) -> T:
    """Return a copy of a JSON-shaped value: new containers, shared leaves.

    Dicts (TypedDicts included), lists and tuples are copied at every depth; any other
    object (strings, numbers, bytes...) is shared. Works at any nesting depth.
    """
    if not isinstance(value, dict | list | tuple):
        return value
    root: list[Any] = [None]
    # Each entry: a source container, and where its copy goes (parent container, key).
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    tuples: list[tuple[Any, Any, list[Any]]] = []  # filled as lists, made tuples at the end
    while stack:
        source, parent, key = stack.pop()
        copied: Any = dict(source) if isinstance(source, dict) else list(source)
        parent[key] = copied
        if isinstance(source, tuple):
            tuples.append((parent, key, copied))
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for item_key, item in items:
            if isinstance(item, dict | list | tuple):
                stack.append((item, copied, item_key))
    # Inner tuples were reached after their containers: convert them first.
    for parent, key, items_list in reversed(tuples):
        parent[key] = tuple(items_list)
    return root[0]  # type: ignore[no-any-return]


async def add_messages(agent: BidiAgent, *messages: Message) -> None:
    """Append messages to the agent's history together, then fire the message-added hooks."""
    agent.messages.extend(messages)
    for message in messages:
        await agent.hooks.invoke(hooks.BidiMessageAddedEvent(agent=agent, message=message))


def tool_exchange(tool_use: ToolUse, result: ToolResult) -> tuple[Message, Message]:
    """The two history messages of one tool call: the use, then its result."""
    return (
        {"role": "assistant", "content": [{"toolUse": tool_use}]},
        {"role": "user", "content": [{"toolResult": result}]},
    )
