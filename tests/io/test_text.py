from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from trio_bidi.errors import (
    BidiConfigurationError,
    BidiModelTimeoutError,
    BidiProviderError,
    BidiStateError,
)
from trio_bidi.events import (
    BidiAudioStreamEvent,
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
from trio_bidi.io import BidiInput, BidiInputEnded, BidiOutput, BidiTextIO, TextUsage


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    try:
        yield read_fd, write_fd
    finally:
        for fd in (read_fd, write_fd):
            with contextlib.suppress(OSError):  # a test may have closed it
                os.close(fd)


def partial(role: str, delta: str, so_far: str | None) -> BidiTranscriptStreamEvent:
    return BidiTranscriptStreamEvent({"text": delta}, delta, role, False, so_far)  # type: ignore[arg-type]


def final(role: str, text: str) -> BidiTranscriptStreamEvent:
    return BidiTranscriptStreamEvent({"text": text}, text, role, True, text)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- input


async def test_input_reads_lines_without_blocking_the_loop(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    text_input = BidiTextIO(stdin=read_fd).input()
    assert isinstance(text_input, BidiInput)
    got: list[BidiTextInputEvent] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        # "héllo" with its two-byte é split across two writes; CRLF; a blank line.
        os.write(write_fd, "first line\r\n\n   \nh\u00e9".encode()[:-1])
        got.append(await text_input())
        await trio.sleep(0.02)  # the loop keeps running while the input waits
        os.write(write_fd, "h\u00e9llo".encode()[-4:] + b"\nlast without newline")
        got.append(await text_input())
        os.close(write_fd)
        got.append(await text_input())
        with pytest.raises(BidiInputEnded):
            await text_input()
        nursery.cancel_scope.cancel()
    assert [e.text for e in got] == ["first line", "h\u00e9llo", "last without newline"]
    assert all(e.role == "user" for e in got)
    assert ticks > 5


async def test_input_wait_is_cancellable(pipe: tuple[int, int]) -> None:
    read_fd, _write_fd = pipe
    text_input = BidiTextIO(stdin=read_fd).input()
    with trio.move_on_after(0.05) as scope:
        await text_input()
    assert scope.cancelled_caught


@pytest.fixture
def lines_file(tmp_path: Path) -> Iterator[int]:
    path = tmp_path / "lines.txt"
    path.write_text("one\ntwo\n", encoding="utf-8")
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


async def test_input_from_a_regular_file(lines_file: int) -> None:
    text_input = BidiTextIO(stdin=lines_file).input()
    assert (await text_input()).text == "one"
    assert (await text_input()).text == "two"
    with pytest.raises(BidiInputEnded):
        await text_input()


async def test_input_from_dev_null_ends_at_once() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(BidiInputEnded):
            await BidiTextIO(stdin=fd).input()()
    finally:
        os.close(fd)


async def test_input_rejects_an_overlong_line(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    text_input = BidiTextIO(stdin=read_fd, max_line_chars=10).input()
    os.write(write_fd, b"first\n" + b"x" * 11 + b"\nsecond\n")
    with pytest.raises(BidiConfigurationError, match=r"1 input line.* max_line_chars=10"):
        await text_input()
    # The lines around the refused one are kept.
    assert (await text_input()).text == "first"
    assert (await text_input()).text == "second"
    # A line that grows too long before its end is refused once, all of it.
    os.write(write_fd, b"y" * 12)
    with pytest.raises(BidiConfigurationError, match="max_line_chars=10"):
        await text_input()
    os.write(write_fd, b"yyyy\nthird\n")
    assert (await text_input()).text == "third"


def test_bad_max_line_chars() -> None:
    with pytest.raises(BidiConfigurationError, match="max_line_chars"):
        BidiTextIO(max_line_chars=0)


# --------------------------------------------------------------------------- output

CONVERSATION: list[BidiOutputEvent | ToolResultEvent] = [
    BidiConnectionStartEvent("conn-1", "gpt-realtime"),
    partial("user", "What", "What"),
    partial("user", " time", "What time"),
    final("user", "What time is it?"),
    BidiResponseStartEvent("r1"),
    ToolUseStreamEvent(
        {"toolUse": {"input": '{"timezone": "UTC"}'}},
        {"toolUseId": "call_1", "name": "current_time", "input": {"timezone": "UTC"}},
    ),
    BidiResponseCompleteEvent("r1", "tool_use"),
    ToolResultEvent(
        {"toolUseId": "call_1", "status": "success", "content": [{"text": "10:00 (UTC)"}]}
    ),
    BidiResponseStartEvent("r2"),
    BidiAudioStreamEvent("AAAA", "pcm", 24000, 1),
    partial("assistant", "It is", "It is"),
    partial("assistant", " ten", "It is ten"),
    BidiInterruptionEvent("user_speech"),
    # The rest of the cut reply's transcript was never heard: not printed.
    partial("assistant", " o'clock", "It is ten o'clock"),
    final("assistant", "It is ten o'clock and sunny."),
    BidiResponseCompleteEvent("r2", "interrupted"),
    BidiUsageEvent(100, 20, 120),
    BidiConnectionRestartEvent(BidiModelTimeoutError("connection conn-1 reached its limit")),
    BidiConnectionStartEvent("conn-2", "gpt-realtime"),
    BidiErrorEvent(BidiProviderError("rate limited", code="rate_limit")),
    BidiResponseStartEvent("r3"),
    partial("assistant", "Bye", None),
    partial("assistant", " now", None),
    BidiResponseCompleteEvent("r3", "complete"),
    BidiUsageEvent(50, 10, 60),
    BidiToolCancellationEvent(("call_9",)),
    BidiConnectionCloseEvent("conn-2", "user_request"),
]

EXPECTED_PLAIN = """\
[connected] model gpt-realtime, connection conn-1
You: What time is it?
[tool call] current_time({"timezone": "UTC"})
[tool result] current_time success: 10:00 (UTC)
Assistant: It is ten …
[interrupted: the user spoke]
[connection restart] connection conn-1 reached its limit
[connected] model gpt-realtime, connection conn-2
[error BidiProviderError] rate limited
Assistant: Bye now
[tool cancelled] call_9
[closed] connection conn-2: user_request
[usage] 150 input + 30 output = 180 tokens over 2 responses
"""


async def test_output_plain_text() -> None:
    stream = io.StringIO()
    output = BidiTextIO(stdout=stream).output()  # a StringIO is not a terminal
    assert isinstance(output, BidiOutput)
    assert not output.live
    for event in CONVERSATION:
        await output(event)
    assert output.usage() == TextUsage(150, 30, 180, 2)
    await output.stop()
    assert stream.getvalue() == EXPECTED_PLAIN


async def test_output_live_updates_partials_in_place() -> None:
    stream = io.StringIO()
    output = BidiTextIO(stdout=stream, live=True).output()
    for event in CONVERSATION[:5]:
        await output(event)
    shown = stream.getvalue()
    # Each partial redraws its line; the final text replaces it.
    assert "\r\x1b[KYou: What\r\x1b[KYou: What time\r\x1b[KYou: What time is it?\n" in shown
    # A line printed while a partial is on screen goes above it; the partial is redrawn.
    stream.seek(0)
    stream.truncate()
    await output(partial("assistant", "Hel", "Hel"))
    await output(BidiErrorEvent(BidiProviderError("slow down")))
    await output(final("assistant", "Hello"))
    assert stream.getvalue() == (
        "\r\x1b[KAssistant: Hel"
        "\r\x1b[K[error BidiProviderError] slow down\n"
        "\r\x1b[KAssistant: Hel"
        "\r\x1b[KAssistant: Hello\n"
    )


async def test_output_live_keeps_a_long_partial_on_one_line() -> None:
    stream = io.StringIO()
    output = BidiTextIO(stdout=stream, live=True).output()
    long_text = "word " * 200
    await output(partial("assistant", long_text, long_text))
    line = stream.getvalue().split("\r\x1b[K")[-1]
    assert line.startswith("Assistant: …")
    assert len(line) < 400
    assert "\n" not in line


async def test_output_refuses_a_closed_stream() -> None:
    stream = io.StringIO()
    output = BidiTextIO(stdout=stream).output()
    stream.close()
    with pytest.raises(BidiStateError, match="closed"):
        await output(final("user", "hi"))


# --------------------------------------------------------------------------- end of input


async def test_end_of_input_is_an_eoferror_raised_fresh_on_every_call(
    pipe: tuple[int, int],
) -> None:
    read_fd, write_fd = pipe
    text_input = BidiTextIO(stdin=read_fd).input()
    os.write(write_fd, b"last words")
    os.close(write_fd)
    assert (await text_input()).text == "last words"
    errors = []
    for _ in range(3):
        with pytest.raises(BidiInputEnded) as info:
            await text_input()
        errors.append(info.value)
    # A subclass of EOFError, so Strands-style `except EOFError` still catches it.
    assert all(isinstance(error, EOFError) for error in errors)
    assert len({id(error) for error in errors}) == 3
    assert all(len(list(_frames(error))) <= 2 for error in errors)


def _frames(error: BaseException) -> Iterator[object]:
    tb = error.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


# --------------------------------------------------------------------------- input_prompt


async def test_input_prompt_is_shown_before_each_line_on_a_terminal(
    pipe: tuple[int, int],
) -> None:
    read_fd, write_fd = pipe
    stream = io.StringIO()
    text = BidiTextIO(stdin=read_fd, stdout=stream, live=True, input_prompt="> ")
    text_input, output = text.input(), text.output()
    with trio.move_on_after(0.02):
        await text_input()
    assert stream.getvalue() == "> "
    # A line printed meanwhile goes above the prompt, which is drawn again below it.
    await output(final("assistant", "Hello"))
    assert stream.getvalue() == "> \r\x1b[KAssistant: Hello\n> "
    os.write(write_fd, b"hi\n")
    assert (await text_input()).text == "hi"
    await output(final("assistant", "Hi!"))  # the prompt was answered: not redrawn
    assert stream.getvalue().endswith("> Assistant: Hi!\n")
    os.close(write_fd)
    with pytest.raises(BidiInputEnded):
        await text_input()


async def test_input_prompt_is_not_printed_on_a_pipe(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    stream = io.StringIO()
    text = BidiTextIO(stdin=read_fd, stdout=stream, input_prompt="> ")
    os.write(write_fd, b"one\n")
    os.close(write_fd)
    assert (await text.input()()).text == "one"
    with pytest.raises(BidiInputEnded):
        await text.input()()
    assert stream.getvalue() == ""


def test_input_prompt_must_be_text() -> None:
    with pytest.raises(BidiConfigurationError, match="input_prompt"):
        BidiTextIO(input_prompt=3)  # type: ignore[arg-type]


async def test_ctrl_d_on_a_terminal_ends_the_input() -> None:
    controller, terminal = os.openpty()  # a real terminal, in canonical (line) mode
    try:
        text_input = BidiTextIO(stdin=terminal).input()
        os.write(controller, b"hello\n")
        assert (await text_input()).text == "hello"
        os.write(controller, b"\x04")  # Ctrl-D at the start of a line
        with trio.fail_after(5), pytest.raises(BidiInputEnded):
            await text_input()
    finally:
        os.close(controller)
        os.close(terminal)
