"""How ``BidiAgent.run`` ends when its inputs end (a pipe closed, Ctrl-D).

End of input is a normal end: the run stops taking input, lets the reply in progress
finish (bounded by `INPUT_END_REPLY_TIMEOUT_S`), then ends the conversation.
"""

from __future__ import annotations

import trio

from ..events import BidiResponseCompleteEvent, BidiResponseStartEvent

__all__ = ["INPUT_END_REPLY_TIMEOUT_S", "InputTurns"]


INPUT_END_REPLY_TIMEOUT_S = 60.0
"""After every input ended, how long ``run`` waits for the reply in progress."""


class InputTurns:
    """For ``run()``: have all inputs ended, and is a reply still owed to what they sent?

    A reply is owed from an input's send until a response completes other than for a
    tool call (after a tool call the model answers in a new response).

    Args:
        inputs: How many inputs the run pumps.
    """

    def __init__(self, inputs: int) -> None:
        self.open_inputs = inputs
        self.all_ended = trio.Event()
        self.awaiting_reply = False
        self.responding = False
        self._changed = trio.Event()

    def input_ended(self) -> None:
        """One input reached its end."""
        self.open_inputs -= 1
        if self.open_inputs <= 0:
            self.all_ended.set()

    def sent(self) -> None:
        """An input was sent to the model: a reply is owed."""
        self.awaiting_reply = True

    def saw(self, event: object) -> None:
        """Follow the model's responses (any other event is ignored)."""
        if isinstance(event, BidiResponseStartEvent):
            self.responding = True
        elif isinstance(event, BidiResponseCompleteEvent):
            # After a tool call the model answers in a new response.
            self.responding = event.stop_reason == "tool_use"
            if not self.responding:
                self.awaiting_reply = False
        else:
            return
        self._changed.set()
        self._changed = trio.Event()

    async def wait_idle(self) -> None:
        """Wait until no response is in progress and no reply is owed."""
        await trio.lowlevel.checkpoint()
        while self.responding or self.awaiting_reply:
            await self._changed.wait()
