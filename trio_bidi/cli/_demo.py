"""``trio-bidi demo``: a whole conversation through the real stack, against a local emulator.

The "model" is `OpenAIRealtimeEmulator`, the project's loopback
emulator of the OpenAI Realtime service, scripted for this conversation. Everything on the
client side is the real thing: [`BidiAgent`][trio_bidi.BidiAgent] with real tools, the OpenAI
Realtime provider speaking the wire protocol over a real WebSocket on 127.0.0.1. The
conversation:

1. A typed question the model answers with a tool call (``calculate``).
2. A spoken barge-in: the assistant tells a story, the user talks over it (a synthesised
   voice, through the emulator's voice activity detection). The assistant stops, the
   simulated speaker reports how much it had played, and the provider truncates the
   model's memory of the reply to that (``conversation.item.truncate``). The user's
   question is answered with another tool call (``current_time``).
3. The emulator ends the session as the service does at its time limit; the agent
   reconnects with the history and the conversation goes on.
4. The user says goodbye; the model ends the conversation with ``stop_conversation``.

The transcript is printed with `BidiTextIO`'s output, and the audio of both sides (user
left, assistant right, as heard) is written to a WAV file. Where ``espeak-ng`` is
installed, the assistant's replies and the user's spoken question are synthesized speech
(two different voices); otherwise the assistant speaks in tones and the user in a
voice-like buzz. The demo says which it used.
"""

from __future__ import annotations

import argparse
import base64
import logging
import math
import os
import tempfile
import textwrap
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import attrs
import numpy as np
import trio

from ..errors import BidiAudioFormatError, BidiConfigurationError, BidiError
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ..io import BidiTextIO, BidiTextOutput
from ..io._base import AgentHandle
from ._voices import USER, SpeechUnavailable, espeak_available, espeak_voice

if TYPE_CHECKING:
    from ..testing import OpenAIRealtimeEmulator, SpokenReply

logger = logging.getLogger(__name__)

__all__ = ["DemoResult", "SimulatedSpeaker", "run_demo", "run_demo_conversation", "synth_voice"]

RATE: Final = 24000
"""The demo's audio rate (the OpenAI Realtime service's PCM rate)."""
_CHUNK_MS = 100
_STORY = (
    "Once upon a time, on a rocky island at the edge of the map, there lived a lighthouse "
    "keeper who counted the ships that passed each night, and one winter evening a ship "
    "appeared that was not on any chart, its sails as grey as the fog around it."
)
_SPOKEN_QUESTION = "Sorry to interrupt, what time is it right now?"
_STILL_HERE = "Yes, I'm still here."
_EMULATOR_NOTE = (
    'This is an offline demo. The "model" is trio_bidi\'s local emulator of the OpenAI '
    "Realtime API at {url}, scripted for this conversation: no network, no API key, no sound "
    "card. The client side is the real stack: BidiAgent and its tools, and the OpenAI "
    "Realtime provider speaking the wire protocol over a real WebSocket."
)
_SPEECH_NOTE = (
    "Voices: synthesized speech (espeak-ng): the assistant and the user speak their lines."
)
_TONES_NOTE = (
    "Voices: tones (install espeak-ng to hear synthesized speech): the assistant speaks "
    "in tones, the user in a voice-like buzz"
)
_REAL_SERVICE = """\
To talk with the real service instead:
    export OPENAI_API_KEY=sk-...
    trio-bidi chat --provider openai          # by voice (needs the package's audio extra)
    trio-bidi chat --provider openai --text   # by typing
"""


def synth_voice(seconds: float, *, rate: int = RATE, pitch_hz: float = 140.0) -> np.ndarray:
    """Synthesise a voice-like sound: a gliding buzz shaped by two vowel formants.

    It stands in for a person speaking (the emulator's voice activity detection hears
    it as speech); it says nothing.

    Args:
        seconds: Length.
        rate: Sample rate.
        pitch_hz: The voice's mean pitch.

    Returns:
        Mono 16-bit samples.
    """
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = pitch_hz * (1 + 0.15 * np.sin(2 * np.pi * 1.3 * t) - 0.1 * t / max(seconds, 1e-9))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    vowel = 0.5 + 0.5 * np.sin(2 * np.pi * 2.1 * t)  # glide between two vowels
    f1 = 500 + 250 * vowel
    f2 = 1000 + 800 * (1 - vowel)
    signal = np.zeros(n)
    for k in range(1, 16):
        freq = k * f0
        gain = np.exp(-(((freq - f1) / 180) ** 2)) + 0.6 * np.exp(-(((freq - f2) / 250) ** 2))
        signal += (gain + 0.05 / k) * np.sin(k * phase)
    syllables = 0.35 + 0.65 * (0.5 - 0.5 * np.cos(2 * np.pi * 4.0 * t))
    signal *= syllables
    fade = min(n // 2, int(0.02 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[n - fade :] *= ramp[::-1]
    rms = float(np.sqrt(np.mean(signal**2))) if n else 0.0
    if rms:
        signal *= 4000.0 / rms
    return np.clip(signal, -32768, 32767).astype(np.int16)


def _b64(samples: np.ndarray) -> str:
    return base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii")


@attrs.define
class _Segment:
    start: float  # trio time at which it starts playing
    samples: np.ndarray
    response_id: str | None


class SimulatedSpeaker:
    """A speaker that plays the assistant's audio in real time, on Trio's clock.

    A [`BidiOutput`][trio_bidi.io.BidiOutput] standing in for a sound card: audio plays from
    the moment it arrives (after what is queued), at ``speed`` times real time. An
    interruption stops it at once; it reports to the agent how much of the interrupted
    response was played, exactly as [`BidiAudioOutput`][trio_bidi.io.BidiAudioOutput] does with a
    device. What was played is kept for `assistant_track`.

    Args:
        speed: Playback speed (1: real time).
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.speed = speed
        self.origin = 0.0  # trio time of position 0 of the recording
        self._agent: AgentHandle | None = None
        self._segments: list[_Segment] = []
        self._busy_until = 0.0
        self._response: str | None = None
        self._interrupted: str | None = None
        self.reports: list[int] = []
        """Every playback position reported to the agent (ms)."""

    async def start(self, agent: AgentHandle) -> None:
        """Remember the agent (to report playback to) and start the clock."""
        self._agent = agent
        self.origin = trio.current_time()
        self._busy_until = self.origin

    def _duration(self, samples: np.ndarray) -> float:
        return len(samples) / RATE / self.speed

    def _played(self, segment: _Segment, now: float) -> int:
        frames = int((now - segment.start) * self.speed * RATE)
        return max(0, min(len(segment.samples), frames))

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Queue audio; on an interruption stop playing and report the position.

        Raises:
            BidiAudioFormatError: Audio that is not 24 kHz mono 16-bit PCM.
        """
        now = trio.current_time()
        if isinstance(event, BidiResponseStartEvent):
            self._response = event.response_id
            self._interrupted = None
        elif isinstance(event, BidiAudioStreamEvent):
            if (event.format, event.sample_rate, event.channels) != ("pcm", RATE, 1):
                raise BidiAudioFormatError(
                    f"the simulated speaker plays 24 kHz mono PCM, not {event.format} "
                    f"{event.sample_rate} Hz x{event.channels}"
                )
            if self._interrupted is not None and self._interrupted == self._response:
                return  # late audio of an interrupted response is never played
            samples = np.frombuffer(base64.b64decode(event.audio), dtype="<i2")
            start = max(now, self._busy_until)
            self._segments.append(_Segment(start, samples, self._response))
            self._busy_until = start + self._duration(samples)
        elif isinstance(event, BidiInterruptionEvent):
            played = 0
            kept = []
            for segment in self._segments:
                frames = self._played(segment, now)
                if frames < len(segment.samples):
                    segment.samples = segment.samples[:frames]
                if segment.response_id == self._response:
                    played += frames
                if frames:
                    kept.append(segment)
            self._segments = kept
            self._busy_until = now
            self._interrupted = self._response
            if self._response is not None and self._agent is not None:
                played_ms = played * 1000 // RATE
                self.reports.append(played_ms)
                await self._agent.report_playback(played_ms)

    def played_ms(self) -> float:
        """Milliseconds of assistant audio played so far."""
        now = trio.current_time()
        return sum(self._played(s, now) for s in self._segments) * 1000 / RATE

    async def wait_played(self) -> None:
        """Wait until the queued audio has played."""
        await trio.sleep_until(self._busy_until)

    def assistant_track(self) -> list[tuple[int, np.ndarray]]:
        """What was played: ``(start frame in the recording, samples)`` pairs."""
        now = trio.current_time()
        return [
            (int((s.start - self.origin) * self.speed * RATE), s.samples[: self._played(s, now)])
            for s in self._segments
        ]


class _Observer:
    """Keeps the agent's events, so the script can wait for what it needs."""

    def __init__(
        self, narrate: Callable[[BidiOutputEvent | ToolResultEvent], None] | None = None
    ) -> None:
        self.events: list[BidiOutputEvent | ToolResultEvent] = []
        self._narrate = narrate
        self._changed = trio.Event()

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        self.events.append(event)
        if self._narrate is not None:
            self._narrate(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(
        self, predicate: Callable[[BidiOutputEvent | ToolResultEvent], bool], after: int
    ) -> int:
        """Wait for an event matching ``predicate`` at index ``after`` or later."""
        while True:
            for index in range(after, len(self.events)):
                if predicate(self.events[index]):
                    return index
            await self._changed.wait()

    async def wait_answered(self, after: int) -> int:
        """Wait for a response that completes with something said (not a tool call)."""
        return await self.wait_for(
            lambda e: isinstance(e, BidiResponseCompleteEvent) and e.stop_reason == "complete",
            after,
        )


class _ScriptInput:
    """The user's side: events the script sends, handed to the agent in order."""

    def __init__(self, receive: trio.MemoryReceiveChannel[BidiInputEvent]) -> None:
        self._receive = receive

    async def __call__(self) -> BidiInputEvent:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            await trio.sleep_forever()
            raise AssertionError("unreachable") from None


@attrs.frozen
class DemoResult:
    """What the demo did, for the summary and for tests.

    Attributes:
        wav_path: The WAV file written.
        wav_seconds: Its length.
        truncations: ``(item_id, audio_end_ms)`` the emulator accepted.
        playback_reports: Positions the speaker reported (ms).
        restarts: Connection restarts.
        connections: Connections the emulator served.
        tool_calls: Names of the tools the model called, in order.
        replayed_items: History items the second connection was opened with.
        speech: True when the voices were synthesized speech (espeak-ng), False: tones.
    """

    wav_path: Path
    wav_seconds: float
    truncations: tuple[tuple[str, int], ...]
    playback_reports: tuple[int, ...]
    restarts: int
    connections: int
    tool_calls: tuple[str, ...]
    replayed_items: int
    speech: bool = False


def write_wav(
    path: Path, user: Sequence[tuple[int, np.ndarray]], assistant: Sequence[tuple[int, np.ndarray]]
) -> float:
    """Write a stereo 24 kHz WAV: the user on the left, the assistant on the right.

    Returns:
        Its length in seconds.
    """
    end = max((start + len(s) for start, s in [*user, *assistant]), default=0) + RATE // 4
    mix = np.zeros((end, 2), dtype=np.int32)
    for channel, track in ((0, user), (1, assistant)):
        for start, samples in track:
            mix[start : start + len(samples), channel] += samples
    pcm = np.clip(mix, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.tobytes())
    return end / RATE


async def run_demo_conversation(
    out: IO[str],
    *,
    wav_path: Path,
    speed: float = 1.0,
    emulator: OpenAIRealtimeEmulator | None = None,
    timeout_s: float = 60.0,
    speech: bool | None = None,
) -> DemoResult:
    """Run the scripted conversation and write its audio.

    Args:
        out: Where the transcript is printed.
        wav_path: Where the WAV goes.
        speed: Speed of the simulated speaker and the user's voice (1: real time).
        emulator: A running `OpenAIRealtimeEmulator` to use
            (tests pass one that validates every message); default: a new one. The demo
            sets its ``transcribe`` and ``reply_text`` and queues its replies.
        timeout_s: Fail if the conversation takes longer.
        speech: Speak with espeak-ng (True), in tones (False), or espeak-ng when it is
            installed (None).

    Raises:
        BidiError: The conversation failed.
        trio.TooSlowError: It did not finish within ``timeout_s``.
    """
    from ..testing import OpenAIRealtimeEmulator

    if emulator is None:
        async with OpenAIRealtimeEmulator(api_key="offline-demo") as own:
            return await run_demo_conversation(
                out,
                wav_path=wav_path,
                speed=speed,
                emulator=own,
                timeout_s=timeout_s,
                speech=speech,
            )
    with trio.fail_after(timeout_s):
        voices = await _Voices.make(espeak_available() if speech is None else speech)
        return await _converse(out, wav_path, speed, emulator, voices)


class _Voices:
    """The demo's voices: espeak-ng speech, or tones when it is missing or failed."""

    def __init__(self, speech: bool, note: str, lines: dict[str, np.ndarray]) -> None:
        self.speech = speech
        self.note = note
        self._lines = lines

    @classmethod
    async def make(cls, speech: bool) -> _Voices:
        """Synthesize the scripted lines (in a worker thread), or settle for tones."""
        if not speech:
            return cls(False, _TONES_NOTE, {})

        def synthesize() -> dict[str, np.ndarray]:
            return {
                _STORY: espeak_voice(_STORY, rate=RATE),
                _STILL_HERE: espeak_voice(_STILL_HERE, rate=RATE),
                _SPOKEN_QUESTION: espeak_voice(_SPOKEN_QUESTION, rate=RATE, voice=USER),
            }

        try:
            lines = await trio.to_thread.run_sync(synthesize)
        except SpeechUnavailable as exc:
            return cls(False, f"{_TONES_NOTE} ({exc})", {})
        return cls(True, _SPEECH_NOTE, lines)

    def reply(
        self, text: str, *, audio_ms: int = 600, chunk_ms: int = 100, chunk_interval_s: float = 0.0
    ) -> SpokenReply:
        """A spoken reply saying ``text``: its speech, or a tone of ``audio_ms``."""
        from ..testing import SpokenReply

        pcm = self._lines.get(text)
        return SpokenReply(
            text,
            audio_ms=audio_ms,
            chunk_ms=chunk_ms,
            chunk_interval_s=chunk_interval_s,
            pcm=None if pcm is None else _pcm_bytes(pcm),
            pcm_rate=RATE,
        )

    def user_question(self) -> np.ndarray:
        """The user's spoken question: speech, or the voice-like buzz."""
        return self._lines.get(_SPOKEN_QUESTION, synth_voice(0.8))

    async def speak(self, text: str) -> SpokenReply:
        """A reply saying ``text``, synthesized now (tones: the emulator's tone)."""
        from ..testing import SpokenReply

        if not self.speech:
            return SpokenReply(text)
        try:
            pcm = await trio.to_thread.run_sync(lambda: espeak_voice(text, rate=RATE))
        except SpeechUnavailable as exc:
            logger.warning("error=<%s> | speech synthesis failed; a tone instead", exc)
            return SpokenReply(text)
        return SpokenReply(text, pcm=_pcm_bytes(pcm), pcm_rate=RATE)


def _pcm_bytes(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()


async def _converse(
    out: IO[str],
    wav_path: Path,
    speed: float,
    emulator: OpenAIRealtimeEmulator,
    voices: _Voices,
) -> DemoResult:
    from .. import BidiAgent, stop_conversation, tool
    from ..models.openai_realtime import BidiOpenAIRealtimeModel
    from ..testing import FunctionCallReply
    from ._tools import calculate, current_time

    out.write(textwrap.fill(_EMULATOR_NOTE.format(url=emulator.url), 88) + "\n")
    out.write(_REAL_SERVICE + "\n")
    out.write(_wrap(f"[demo] {voices.note}") + "\n")
    out.flush()
    text_output: BidiTextOutput = BidiTextIO(stdout=out).output()
    speaker = SimulatedSpeaker(speed)
    chunk_s = _CHUNK_MS / 1000 / speed
    user_track: list[tuple[int, np.ndarray]] = []
    emulator.transcribe = lambda _audio_ms: _SPOKEN_QUESTION
    emulator.reply_text = lambda text: _STILL_HERE if "still there" in text else f"You said: {text}"
    voiced_calls: set[str] = set()

    async def voice_tool_result(_session: object, message: dict[str, Any]) -> None:
        # The model's answer to a tool result, spoken (the emulator's words for it).
        item = message.get("item") or {}
        call_id = str(item.get("call_id"))
        if item.get("type") != "function_call_output" or call_id in voiced_calls:
            return  # not a tool result, or one replayed after the restart
        voiced_calls.add(call_id)
        emulator.queue(await voices.speak(f"The result is {item.get('output', '')}."))

    emulator.on_client("conversation.item.create", voice_tool_result)

    model = BidiOpenAIRealtimeModel(
        "gpt-realtime", client_config={"api_key": emulator.api_key, "url": emulator.url}
    )
    agent = BidiAgent(
        model=model,
        tools=[tool(calculate), tool(current_time), stop_conversation],
        system_prompt="You are a friendly assistant. Keep answers short.",
    )
    send, receive = trio.open_memory_channel[BidiInputEvent](16)

    def note(text: str) -> None:
        text_output.note("\n" + _wrap(f"[demo] {text}"))

    def narrate(event: BidiOutputEvent | ToolResultEvent) -> None:
        # Runs as an output, right after the speaker handled the same event.
        if isinstance(event, BidiInterruptionEvent) and speaker.reports:
            note(
                f"The speaker had played {speaker.reports[-1]} ms of the story when the user "
                "spoke; the agent reported that, and the provider told the model to forget "
                "the rest of its reply (conversation.item.truncate)."
            )

    observer = _Observer(narrate)

    async def say_typed(text: str) -> int:
        text_output.note(f"You (typed): {text}")
        mark = len(observer.events)
        await send.send(BidiTextInputEvent(text))
        return mark

    async def script() -> None:
        await observer.wait_for(lambda e: isinstance(e, BidiConnectionStartEvent), 0)

        note("1. A typed question; the model answers it with a tool call.")
        emulator.queue(FunctionCallReply("calculate", {"expression": "1234 * 5678"}))
        mark = await say_typed("What is 1234 times 5678?")
        await observer.wait_answered(mark)
        await speaker.wait_played()

        note("2. A barge-in: the user talks over the assistant's story.")
        emulator.queue(
            voices.reply(_STORY, audio_ms=6000, chunk_ms=_CHUNK_MS, chunk_interval_s=chunk_s),
            FunctionCallReply("current_time", {"timezone": "UTC"}),
        )
        mark = await say_typed("Tell me a story about a lighthouse keeper.")
        await observer.wait_for(lambda e: isinstance(e, BidiAudioStreamEvent), mark)
        await trio.sleep(1.5 / speed)
        voice = np.concatenate([voices.user_question(), np.zeros(int(0.7 * RATE), np.int16)])
        step = RATE * _CHUNK_MS // 1000
        for start in range(0, len(voice), step):
            chunk = voice[start : start + step]
            position = int((trio.current_time() - speaker.origin) * speed * RATE)
            user_track.append((position, chunk))
            await send.send(BidiAudioInputEvent(_b64(chunk), "pcm", RATE, 1))
            await trio.sleep(chunk_s)
        interrupted = await observer.wait_for(lambda e: isinstance(e, BidiInterruptionEvent), mark)
        await observer.wait_answered(interrupted)
        await speaker.wait_played()

        note("3. The service ends the session at its time limit; the agent reconnects.")
        mark = len(observer.events)
        await emulator.expire(emulator.sessions[-1])
        await observer.wait_for(lambda e: isinstance(e, BidiConnectionRestartEvent), mark)
        await observer.wait_for(lambda e: isinstance(e, BidiConnectionStartEvent), mark)
        emulator.queue(voices.reply(_STILL_HERE))
        mark = await say_typed("Are you still there?")
        await observer.wait_answered(mark)
        await speaker.wait_played()
        note(
            f"The new connection was opened with the conversation so far "
            f"({_replayed_items(emulator)} items of history), so the model remembers it."
        )

        note("4. Goodbye: the model ends the conversation with its stop_conversation tool.")
        emulator.queue(FunctionCallReply("stop_conversation", {}))
        await say_typed("Thanks, that's all. Goodbye!")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        await agent.run(inputs=[_ScriptInput(receive)], outputs=[speaker, text_output, observer])
        nursery.cancel_scope.cancel()

    seconds = write_wav(wav_path, user_track, speaker.assistant_track())
    tool_calls = tuple(
        str(e.current_tool_use.get("name"))
        for e in observer.events
        if isinstance(e, ToolUseStreamEvent)
    )
    replayed = _replayed_items(emulator)
    return DemoResult(
        wav_path=wav_path,
        wav_seconds=seconds,
        truncations=tuple(t for s in emulator.sessions for t in s.truncations),
        playback_reports=tuple(speaker.reports),
        restarts=sum(isinstance(e, BidiConnectionRestartEvent) for e in observer.events),
        connections=len(emulator.sessions),
        tool_calls=tool_calls,
        replayed_items=replayed,
        speech=voices.speech,
    )


def _wrap(text: str) -> str:
    return textwrap.fill(text, 88, subsequent_indent="       ")


def _replayed_items(emulator: OpenAIRealtimeEmulator) -> int:
    """Items the latest connection created before its first ``response.create``."""
    if len(emulator.sessions) < 2:
        return 0
    count = 0
    for message in emulator.sessions[-1].messages:
        if message.get("type") == "response.create":
            break
        count += message.get("type") == "conversation.item.create"
    return count


def run_demo(args: argparse.Namespace, out: IO[str]) -> int:
    """Run ``trio-bidi demo`` with parsed arguments; returns the exit status.

    Raises:
        BidiError: The conversation failed (the caller prints it).
    """
    if not math.isfinite(args.speed) or args.speed <= 0:
        raise BidiConfigurationError(f"--speed must be a positive number, got {args.speed}")
    if args.wav:
        wav_path = Path(args.wav)
        try:  # fail now, not after the conversation
            with wav_path.open("ab"):
                pass
        except OSError as exc:
            raise BidiConfigurationError(
                f"cannot write the WAV file {args.wav}: {exc.strerror or exc}"
            ) from exc
    else:
        fd, name = tempfile.mkstemp(prefix="trio-bidi-demo-", suffix=".wav")
        os.close(fd)
        wav_path = Path(name)
    try:
        result = trio.run(lambda: run_demo_conversation(out, wav_path=wav_path, speed=args.speed))
    except trio.TooSlowError:
        raise BidiError("the demo conversation did not finish in time") from None
    truncated = "; ".join(f"{item} at {ms} ms" for item, ms in result.truncations)
    summary = (
        f"[demo] Done: {result.connections} connections ({result.restarts} restart), "
        f"tool calls: {', '.join(result.tool_calls)}; the emulator truncated "
        f"{truncated or 'nothing'}."
    )
    voices = "synthesized speech" if result.speech else "tones"
    audio = (
        f"[demo] The conversation's audio ({result.wav_seconds:.1f} s, stereo; left: the "
        f"user, right: the assistant as heard; {voices}):"
    )
    out.write(f"\n{_wrap(summary)}\n{_wrap(audio)}\n{wav_path}\n")
    out.flush()
    return 0
