"""The input and output protocols that ``BidiAgent.run`` wires together.

An *input* produces events for the model (a microphone, a terminal, a browser socket); an
*output* consumes the agent's events (a speaker, a terminal, a browser socket). Both are
plain objects, so an application can write its own in a few lines::

    class PrintOutput:
        async def __call__(self, event: BidiOutputEvent) -> None:
            print(event.to_dict())

``start`` and ``stop`` are optional. ``BidiAgent.run`` calls every ``start(agent)`` before
the first event, and every ``stop()`` when it ends on any path; errors from several stops
are raised together.

An input whose source has ended (the end of a pipe, Ctrl-D on a terminal) raises
[`BidiInputEnded`][trio_bidi.io.BidiInputEnded] from ``__call__``. That is a normal end,
not an error: ``BidiAgent.run`` stops reading that input, and once every input has ended it
lets the reply in progress finish (for a bounded time) and returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..events import BidiInputEvent, BidiOutputEvent, ToolResultEvent

__all__ = ["AgentHandle", "BidiInput", "BidiInputEnded", "BidiOutput"]


class BidiInputEnded(EOFError):
    """Raised by an input's ``__call__`` when its source has ended; no more events will come.

    A subclass of `EOFError`, so code that already catches ``EOFError`` (as Strands
    programs do around a prompt's Ctrl-D) keeps working. Every call after the end raises a
    new one.
    """


class _ModelView(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def config(self) -> Mapping[str, Any]: ...


@runtime_checkable
class AgentHandle(Protocol):
    """What inputs and outputs may use of the agent that runs them."""

    @property
    def model(self) -> _ModelView:
        """The agent's model; ``model.config["audio"]`` tells the audio format."""
        ...

    async def report_playback(self, played_ms: int) -> None:
        """Report how much of the current response's audio the user actually heard.

        The audio output calls it after an interruption, so the model can forget what
        was never played (OpenAI's ``conversation.item.truncate``).
        """
        ...


@runtime_checkable
class BidiInput(Protocol):
    """A source of input events; ``await source()`` returns the next one."""

    async def __call__(self) -> BidiInputEvent | ToolResultEvent:
        """Wait for and return the next event to send to the model.

        Raises:
            BidiInputEnded: The source has ended (a normal end of this input).
        """
        ...


@runtime_checkable
class BidiOutput(Protocol):
    """A consumer of the agent's events; ``await sink(event)`` handles one."""

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Handle one event from the agent."""
        ...
