"""Shared data shapes in the Strands Agents JSON form.

These are ``TypedDict`` s, so values are plain dicts that serialise with ``json.dumps``
and can be exchanged with Strands code unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "AudioConfig",
    "ContentBlock",
    "Message",
    "ToolResult",
    "ToolResultContent",
    "ToolResultStatus",
    "ToolSpec",
    "ToolUse",
]


class ToolInputSchema(TypedDict):
    """The JSON schema of a tool's input, wrapped as Strands does (``{"json": schema}``)."""

    json: dict[str, Any]


class ToolSpec(TypedDict):
    """What the model is told about a tool.

    Attributes:
        name: Tool name, unique within an agent.
        description: What the tool does, for the model.
        inputSchema: ``{"json": <JSON schema of the arguments>}``.
    """

    name: str
    description: str
    inputSchema: ToolInputSchema


class ToolUse(TypedDict):
    """A tool call requested by the model.

    Attributes:
        toolUseId: The provider's call id.
        name: The tool's name.
        input: The parsed arguments.
    """

    toolUseId: str
    name: str
    input: Any


class ToolResultContent(TypedDict, total=False):
    """One block of a tool result: either ``{"text": ...}`` or ``{"json": ...}``."""

    text: str
    json: Any


ToolResultStatus = Literal["success", "error"]
"""Whether a tool call succeeded."""


class ToolResult(TypedDict):
    """The result of one tool call.

    Attributes:
        toolUseId: The id of the call this answers.
        status: ``"success"`` or ``"error"``.
        content: Result blocks; an error carries its message as a text block.
    """

    toolUseId: str
    status: ToolResultStatus
    content: list[ToolResultContent]


class ContentBlock(TypedDict, total=False):
    """One block of a message: ``text``, ``toolUse`` or ``toolResult``."""

    text: str
    toolUse: ToolUse
    toolResult: ToolResult


class Message(TypedDict):
    """One conversation message in Strands form.

    Attributes:
        role: ``"user"`` or ``"assistant"``.
        content: The message's blocks.
    """

    role: Literal["user", "assistant"]
    content: list[ContentBlock]


class AudioConfig(TypedDict):
    """The audio a model connection speaks, read by the audio IO.

    Attributes:
        input_rate: Sample rate of audio sent to the model, in Hz.
        output_rate: Sample rate of audio received from the model, in Hz.
        channels: Channel count (1 or 2).
        format: Encoding, ``"pcm"`` for 16-bit little-endian signed PCM.
        voice: The provider's voice name, when it has one.
    """

    input_rate: int
    output_rate: int
    channels: int
    format: str
    voice: NotRequired[str]
