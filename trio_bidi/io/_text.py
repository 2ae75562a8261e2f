"""Text IO on the terminal: type to the model, read the conversation.

`BidiTextIO` makes an input that reads lines from standard input without blocking
the Trio loop, and an output that prints what a person wants to see of a conversation::

    text = BidiTextIO()
    await agent.run(inputs=[text.input()], outputs=[text.output()])

On a terminal, partial transcripts update in place on one line and are replaced by the
final text; when standard output is not a terminal (a pipe, a file, a test) only final
lines are printed, as plain text. At the end of standard input (the end of a pipe, Ctrl-D)
the input raises [`BidiInputEnded`][trio_bidi.io.BidiInputEnded], and ``BidiAgent.run``
ends the conversation once the reply in progress is done.
"""

from __future__ import annotations

import codecs
import collections
import json
import logging
import os
import shutil
import stat
import sys
from typing import IO, Any

import attrs
import trio

from ..errors import BidiConfigurationError, BidiStateError
from ..events import (
    BidiConnectionCloseEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancellationEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ..types import ToolResultContent
from ._base import AgentHandle, BidiInputEnded

__all__ = ["BidiTextIO", "BidiTextInput", "BidiTextOutput", "TextUsage"]

logger = logging.getLogger(__name__)

_LABELS = {"user": "You", "assistant": "Assistant"}
_CLEAR_LINE = "\r\x1b[K"
_READ_SIZE = 65536
_SHOWN_CHARS = 300  # tool arguments/results are cut to this many characters


@attrs.frozen
class TextUsage:
    """Token usage summed over the conversation.

    Attributes:
        input_tokens: Input tokens over all responses.
        output_tokens: Output tokens over all responses.
        total_tokens: Total tokens as the provider reported them.
        responses: Usage events seen (one per response on most providers).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    responses: int = 0


class BidiTextIO:
    """Lines from standard input to the model; the conversation printed to standard output.

    Args:
        stdin: Where lines come from: a file object with a ``fileno()`` or a file
            descriptor (default: ``sys.stdin``). It is read at the descriptor level, so
            nothing else should read it meanwhile.
        stdout: Where the conversation is printed (default: ``sys.stdout``).
        live: Update partial transcripts in place. Default: when ``stdout`` is a
            terminal.
        max_line_chars: The longest input line accepted.
        input_prompt: Shown before each line is typed (Strands' ``input_prompt``), when
            the output is live (a terminal); nothing is shown on a pipe.
    """

    def __init__(
        self,
        *,
        stdin: IO[Any] | int | None = None,
        stdout: IO[str] | None = None,
        live: bool | None = None,
        max_line_chars: int = 65536,
        input_prompt: str = "",
    ) -> None:
        if not isinstance(max_line_chars, int) or max_line_chars < 1:
            raise BidiConfigurationError(
                f"max_line_chars must be a positive int, got {max_line_chars!r}"
            )
        if not isinstance(input_prompt, str):
            raise BidiConfigurationError(f"input_prompt must be a str, got {input_prompt!r}")
        self._stdin = stdin
        self._stdout = stdout
        self.live = live
        self.max_line_chars = max_line_chars
        self.input_prompt = input_prompt
        self._input: BidiTextInput | None = None
        self._output: BidiTextOutput | None = None

    def input(self) -> BidiTextInput:
        """Return the line input (the same object on every call)."""
        if self._input is None:
            stdin = self._stdin if self._stdin is not None else sys.stdin
            fd = stdin if isinstance(stdin, int) else stdin.fileno()
            prompter = self.output() if self.input_prompt else None
            self._input = BidiTextInput(
                fd, self.max_line_chars, prompt=self.input_prompt, prompter=prompter
            )
        return self._input

    def output(self) -> BidiTextOutput:
        """Return the printing output (the same object on every call)."""
        if self._output is None:
            stdout = self._stdout if self._stdout is not None else sys.stdout
            live = self.live
            if live is None:
                isatty = getattr(stdout, "isatty", None)
                live = bool(isatty()) if isatty is not None else False
            self._output = BidiTextOutput(stdout, live=live)
        return self._output


class BidiTextInput:
    """``await text_input()`` returns the next non-blank line as a text input event.

    Made by [`BidiTextIO.input`][trio_bidi.io.BidiTextIO.input]. On Unix it waits for the
    descriptor with ``trio.lowlevel.wait_readable`` (no thread, cancellable at once); what
    cannot be waited for that way (a regular file, ``/dev/null``) is always ready and is
    read directly. At the end of the input it raises
    [`BidiInputEnded`][trio_bidi.io.BidiInputEnded] (an ``EOFError``).

    Args:
        fd: The file descriptor to read.
        max_line_chars: The longest line accepted.
        prompt: Shown by ``prompter`` before waiting for a line.
        prompter: The output that shows the prompt (None: no prompt).
    """

    def __init__(
        self,
        fd: int,
        max_line_chars: int = 65536,
        *,
        prompt: str = "",
        prompter: BidiTextOutput | None = None,
    ) -> None:
        self.fd = fd
        self.max_line_chars = max_line_chars
        self.prompt = prompt
        self._prompter = prompter
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._lines: collections.deque[str] = collections.deque()
        self._eof = False
        self._pollable: bool | None = None  # None: not known yet
        self._skipping = False  # inside an overlong line, until its end
        self._lock = trio.Lock()

    async def __call__(self) -> BidiTextInputEvent:
        """Wait for the next non-blank line and return it (without its line ending).

        Raises:
            BidiInputEnded: The input ended and every line was returned (again on
                every later call).
            BidiConfigurationError: A line is longer than ``max_line_chars`` (it is
                refused; the lines around it are kept).
        """
        async with self._lock:
            while True:
                while self._lines:
                    line = self._lines.popleft().rstrip("\r")
                    if line.strip():
                        if self._prompter is not None:
                            self._prompter.end_prompt()
                        return BidiTextInputEvent(line)
                if self._eof:
                    if self._prompter is not None:
                        self._prompter.end_prompt()
                    raise BidiInputEnded("the text input reached its end")
                if self._prompter is not None and self.prompt:
                    self._prompter.show_prompt(self.prompt)
                await self._fill()

    async def _fill(self) -> None:
        if self._pollable is None:
            self._pollable = not _is_regular_file(self.fd)
        if self._pollable:
            try:
                await trio.lowlevel.wait_readable(self.fd)
            except PermissionError:  # epoll refuses files that are always ready (/dev/null)
                self._pollable = False
        if not self._pollable:
            await trio.lowlevel.checkpoint()
        try:
            data = os.read(self.fd, _READ_SIZE)
        except BlockingIOError:  # someone else read it first, or a spurious wake-up
            return
        text = self._decoder.decode(data, final=not data)
        if not data:
            self._eof = True
            if self._partial + text and not self._skipping:
                self._lines.append(self._partial + text)
            self._partial = ""
            return
        *complete, self._partial = (self._partial + text).split("\n")
        if self._skipping and complete:  # the end of a line already refused
            complete.pop(0)
            self._skipping = False
        limit = self.max_line_chars
        refused = sum(len(line) > limit for line in complete)
        self._lines.extend(line for line in complete if len(line) <= limit)
        if len(self._partial) > limit:  # refuse it now; skip the rest of it when it comes
            refused += not self._skipping
            self._partial = ""
            self._skipping = True
        if refused:
            raise BidiConfigurationError(
                f"{refused} input line(s) longer than max_line_chars={limit} refused"
            )


def _is_regular_file(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _result_text(content: list[ToolResultContent]) -> str:
    parts = []
    for block in content:
        if "text" in block:
            parts.append(str(block["text"]))
        elif "json" in block:
            parts.append(json.dumps(block["json"], ensure_ascii=False))
    return " ".join(parts)


class BidiTextOutput:
    """Prints a conversation: transcripts, interruptions, tool calls, restarts, errors.

    Made by [`BidiTextIO.output`][trio_bidi.io.BidiTextIO.output]. Audio events are not
    printed. Usage events are summed; ``stop()`` prints the total (and
    [`usage`][trio_bidi.io.BidiTextOutput.usage] returns it).
    """

    def __init__(self, stream: IO[str], *, live: bool = False) -> None:
        self.stream = stream
        self.live = live
        self._pending: dict[str, str] = {}  # role -> partial transcript not yet final
        self._open: str | None = None  # role whose partial line is on screen (live mode)
        self._tools: dict[str, str] = {}  # toolUseId -> tool name
        self._cut = False  # an interrupted reply was printed; skip the rest of its transcript
        self._usage = TextUsage()
        self._prompt = ""  # the input prompt on screen (live mode), redrawn below new lines

    async def start(self, agent: AgentHandle) -> None:
        """Start a conversation: the usage total starts from zero."""
        self._usage = TextUsage()

    async def stop(self) -> None:
        """Print what is still pending and the usage total."""
        for role in list(self._pending):
            self._flush(role, "")
        if self._usage.responses:
            u = self._usage
            self._line(
                f"[usage] {u.input_tokens} input + {u.output_tokens} output = "
                f"{u.total_tokens} tokens over {u.responses} responses"
            )

    def note(self, text: str) -> None:
        """Print a line of the application's own (above a partial transcript on screen).

        For example what the user typed, when the terminal did not echo it.
        """
        self._line(text)

    def show_prompt(self, prompt: str) -> None:
        """Show the input's prompt on a line of its own (live mode only; idempotent)."""
        if not self.live or self._prompt == prompt:
            return
        if self._open is not None:  # a partial transcript stays on its line
            self._write("\n")
            self._open = None
        self._write(prompt)
        self._prompt = prompt

    def end_prompt(self) -> None:
        """The prompt's line was answered (or the input ended): stop redrawing it."""
        self._prompt = ""

    def usage(self) -> TextUsage:
        """Return the usage summed so far."""
        return self._usage

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Print one event, if it is something a person wants to see."""
        self.show(event)

    def show(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Print one event (the synchronous form of ``await output(event)``).

        Raises:
            BidiStateError: The output stream is closed.
        """
        if getattr(self.stream, "closed", False):
            raise BidiStateError("the text output's stream is closed")
        if isinstance(event, BidiTranscriptStreamEvent):
            self._transcript(event)
        elif isinstance(event, ToolUseStreamEvent):
            use = event.current_tool_use
            tool_id, name = str(use.get("toolUseId", "")), str(use.get("name", "?"))
            self._tools[tool_id] = name
            self._line(f"[tool call] {name}({_short(use.get('input', {}))})")
        elif isinstance(event, ToolResultEvent):
            result = event.tool_result
            name = self._tools.pop(result["toolUseId"], result["toolUseId"])
            content = _short(_result_text(result["content"]))
            self._line(f"[tool result] {name} {result['status']}: {content}")
        elif isinstance(event, BidiInterruptionEvent):
            # A final transcript of the cut reply may still come: it is not what was heard.
            self._cut = self._flush("assistant", " …")
            reason = "the user spoke" if event.reason == "user_speech" else "error"
            self._line(f"[interrupted: {reason}]")
        elif isinstance(event, BidiResponseCompleteEvent):
            self._flush("assistant", "")
        elif isinstance(event, BidiResponseStartEvent):
            self._cut = False
        elif isinstance(event, BidiConnectionStartEvent):
            self._line(f"[connected] model {event.model}, connection {event.connection_id}")
        elif isinstance(event, BidiConnectionRestartEvent):
            for role in list(self._pending):
                self._flush(role, " …")
            self._line(f"[connection restart] {event.timeout_error}")
        elif isinstance(event, BidiConnectionCloseEvent):
            for role in list(self._pending):
                self._flush(role, "")
            self._line(f"[closed] connection {event.connection_id}: {event.reason}")
        elif isinstance(event, BidiErrorEvent):
            self._line(f"[error {event.code}] {event.message}")
        elif isinstance(event, BidiToolCancellationEvent):
            for tool_id in event.tool_use_ids:
                self._line(f"[tool cancelled] {self._tools.pop(tool_id, tool_id)}")
        elif isinstance(event, BidiUsageEvent):
            u = self._usage
            self._usage = TextUsage(
                u.input_tokens + event.input_tokens,
                u.output_tokens + event.output_tokens,
                u.total_tokens + event.total_tokens,
                u.responses + 1,
            )

    # ------------------------------------------------------------------ transcripts

    def _transcript(self, event: BidiTranscriptStreamEvent) -> None:
        role = event.role
        if role == "assistant" and self._cut:
            if event.is_final:
                self._cut = False
            return  # the rest of an interrupted reply
        if event.is_final:
            text = event.current_transcript or event.text
            self._pending.pop(role, None)
            self._erase_open(role)
            if text.strip():
                self._line(f"{_LABELS[role]}: {text.strip()}")
            return
        if event.current_transcript is not None:
            so_far = event.current_transcript
        else:
            so_far = self._pending.get(role, "") + event.text
        self._pending[role] = so_far
        if self.live:
            self._render(role)

    def _flush(self, role: str, suffix: str) -> bool:
        """Print a partial transcript that will get no final text, as a final line.

        Returns:
            True when there was one.
        """
        text = self._pending.pop(role, "")
        self._erase_open(role)
        if text.strip():
            self._line(f"{_LABELS[role]}: {text.strip()}{suffix}")
            return True
        return False

    def _erase_open(self, role: str) -> None:
        if self._open == role:
            self._write(_CLEAR_LINE)
            self._open = None

    def _render(self, role: str) -> None:
        if self._open is not None and self._open != role:
            # Another speaker's partial line stays on screen as it is.
            self._write("\n")
        label = f"{_LABELS[role]}: "
        text = self._pending[role].strip()
        room = max(10, shutil.get_terminal_size().columns - len(label) - 2)
        if len(text) > room:
            text = "…" + text[-(room - 1) :]
        self._write(f"{_CLEAR_LINE}{label}{text}")
        self._open = role

    def _line(self, text: str) -> None:
        """Print a whole line; on a live terminal, the partial line is redrawn below it."""
        open_role = self._open
        if open_role is not None or self._prompt:
            self._write(_CLEAR_LINE)
            self._open = None
        self._write(text + "\n")
        if open_role is not None and open_role in self._pending:
            self._render(open_role)
        elif self._prompt:
            self._write(self._prompt)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
