"""Microphone and speaker IO on PortAudio (through ``sounddevice``).

[`BidiAudioIO`][trio_bidi.io.BidiAudioIO] makes an input (the microphone) and an output
(the speaker) for ``BidiAgent.run``::

    audio = BidiAudioIO()
    await agent.run(inputs=[audio.input()], outputs=[audio.output()])

Threads: PortAudio calls our callbacks on its own thread. The callbacks never wait for
Trio and never raise: the input callback copies the block into a bounded ring buffer
(dropping the oldest audio when Trio falls behind, and counting it) and wakes Trio with
``TrioToken.run_sync_soon``; the output callback copies exact frame counts out of a ring
buffer and pads with silence. Closing a stream joins its callback thread, and ``stop()``
closes the streams, so no thread outlives ``BidiAgent.run``.

PortAudio's own calls block (opening a device can take a while on some systems, closing
one waits for its callback thread), so they run in a worker thread
(``trio.to_thread.run_sync``) and never stall the Trio loop. ``stop()`` gives the close
``STOP_TIMEOUT_S`` (5 s) at most; a device that hangs longer is logged and abandoned to its
worker thread, so ``BidiAgent.run`` always returns.

``sounddevice`` (and the PortAudio library) are imported only when a stream opens, so
``import trio_bidi`` works on machines without them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import trio

from ..errors import BidiAudioFormatError, BidiConfigurationError, BidiStateError
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    ToolResultEvent,
)
from ._base import AgentHandle
from ._buffers import FrameRing
from ._resample import Int16Array, StreamResampler, convert_channels, pcm16_from_bytes

if TYPE_CHECKING:
    import types

__all__ = ["AudioStatistics", "BidiAudioIO", "BidiAudioInput", "BidiAudioOutput"]

logger = logging.getLogger(__name__)

_MODEL_RATES = frozenset((16000, 24000, 48000))

STOP_TIMEOUT_S = 5.0
"""The longest ``stop()`` waits for PortAudio to close a device (then it is abandoned)."""

Device = int | str | None
"""A PortAudio device: its index, (part of) its name, or None for the default."""


def import_sounddevice() -> types.ModuleType:
    """Import ``sounddevice``, turning a missing module or PortAudio into a clear error.

    Raises:
        BidiConfigurationError: ``sounddevice`` or the PortAudio library is missing.
    """
    try:
        import sounddevice  # lazily: PortAudio may be missing
    except (ImportError, OSError) as exc:
        raise BidiConfigurationError(
            "audio IO needs the sounddevice package and the PortAudio library (install "
            "trio_bidi with its audio extra: from a clone, python -m pip install '.[audio]'; "
            f"on Debian/Ubuntu: apt-get install libportaudio2): {exc}"
        ) from exc
    module: types.ModuleType = sounddevice
    return module


@attrs.frozen
class _Format:
    rate: int
    channels: int


def _model_format(agent: AgentHandle, key: str) -> _Format:
    audio = agent.model.config.get("audio")
    if not isinstance(audio, Mapping):
        raise BidiStateError(f"model {agent.model.model_id!r} has no audio configuration")
    encoding = audio.get("format", "pcm")
    if encoding != "pcm":
        raise BidiAudioFormatError(
            f"audio IO plays and records 16-bit PCM; the model is configured for {encoding!r}"
        )
    rate = audio.get(key)
    channels = audio.get("channels")
    if rate not in _MODEL_RATES:
        raise BidiAudioFormatError(f"model audio {key}={rate!r} is not one of 16000/24000/48000")
    if channels not in (1, 2):
        raise BidiAudioFormatError(f"model audio channels={channels!r} is not 1 or 2")
    return _Format(rate=rate, channels=channels)


@attrs.frozen
class AudioStatistics:
    """A snapshot of an audio IO's counters.

    Attributes:
        input_buffered_ms: Microphone audio waiting to be sent.
        input_dropped_ms: Microphone audio lost because the consumer fell behind.
        input_gated_ms: Microphone audio replaced by silence while the assistant spoke
            (echo suppression).
        input_overflows: Input callbacks that PortAudio flagged (overflow or other status).
        output_buffered_ms: Assistant audio waiting to be played.
        output_dropped_ms: Assistant audio lost because the output buffer was full.
        output_cleared_ms: Assistant audio thrown away by interruptions.
        output_played_ms: Assistant audio handed to the device in total.
        output_underflows: Output callbacks that PortAudio flagged (underflow or other).
        callback_errors: Exceptions caught inside the PortAudio callbacks (logged).
        input_rate: The rate the microphone runs at (0 before it opens).
        output_rate: The rate the speaker runs at (0 before it opens).
    """

    input_buffered_ms: float = 0.0
    input_dropped_ms: float = 0.0
    input_gated_ms: float = 0.0
    input_overflows: int = 0
    output_buffered_ms: float = 0.0
    output_dropped_ms: float = 0.0
    output_cleared_ms: float = 0.0
    output_played_ms: float = 0.0
    output_underflows: int = 0
    callback_errors: int = 0
    input_rate: int = 0
    output_rate: int = 0


def _ms(frames: int, rate: int) -> float:
    return 1000.0 * frames / rate if rate else 0.0


def _open_settings(
    sd: Any, device: Device, kind: str, model: _Format, forced_rate: int | None
) -> tuple[int, int]:
    """Pick the device's rate and channels: the model's if the device takes them."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        info = sd.query_devices(device, kind)
    except (ValueError, sd.PortAudioError) as exc:
        which = (
            f"default {kind} audio device" if device is None else f"{kind} audio device {device!r}"
        )
        raise BidiConfigurationError(
            f"no {which}: {exc} (`trio-bidi devices` lists the devices)"
        ) from exc
    max_channels = int(info[f"max_{kind}_channels"])
    channels = model.channels if max_channels >= model.channels else max(1, max_channels)
    candidates = [forced_rate] if forced_rate else [model.rate, int(info["default_samplerate"])]
    errors = []
    for rate in candidates:
        try:
            check(device=device, samplerate=rate, channels=channels, dtype="int16")
        except (ValueError, sd.PortAudioError) as exc:
            errors.append(f"{rate} Hz: {exc}")
            continue
        return rate, channels
    raise BidiConfigurationError(
        f"{kind} device {info['name']!r} opens at none of the tried settings ({'; '.join(errors)})"
    )


class BidiAudioIO:
    """Microphone input and speaker output on PortAudio devices.

    Strands' configuration keys are accepted too (``BidiAudioIO(**strands_config)``
    works): ``input_device_index`` / ``output_device_index`` name the device like
    ``input_device`` / ``output_device``; ``input_frames_per_buffer`` /
    ``output_frames_per_buffer`` set each direction's block size; ``input_buffer_size`` /
    ``output_buffer_size`` bound the buffers in blocks of that many frames, as Strands'
    queues of PortAudio blocks do (None: the millisecond defaults here; Strands' queues
    are unbounded). Giving both spellings of one setting with different values is an
    error.

    Args:
        input_device: Microphone: device index, (part of) its name, or None (default).
        output_device: Speaker: device index, (part of) its name, or None (default).
        blocksize: Frames per PortAudio callback (both directions).
        input_buffer_ms: Microphone audio kept while the agent is not reading; older
            audio is dropped (and counted) beyond it. Default 1000.
        output_buffer_ms: Assistant audio queued for playback; audio arriving beyond it
            is dropped (and counted). Default 120000.
        input_chunk_ms: The most audio one input event carries.
        echo_suppression: Half-duplex gate: send silence instead of the microphone while
            the assistant's audio plays (and ``echo_tail_ms`` after), so the model does
            not hear itself through the speakers. It also stops the user from
            interrupting by voice; use it only without headphones or echo cancellation.
        echo_tail_ms: How long the gate stays shut after the assistant's audio ends.
        input_device_rate: Open the microphone at this rate (default: the model's rate
            if the device takes it, else the device's default) and resample.
        output_device_rate: The same for the speaker.
        latency: PortAudio's suggested latency (``"low"``, ``"high"`` or seconds).
        input_device_index: Strands' name for ``input_device`` (an index).
        output_device_index: Strands' name for ``output_device`` (an index).
        input_frames_per_buffer: Frames per microphone callback (default: ``blocksize``).
        output_frames_per_buffer: Frames per speaker callback (default: ``blocksize``).
        input_buffer_size: The microphone buffer in blocks of ``input_frames_per_buffer``
            frames (instead of ``input_buffer_ms``).
        output_buffer_size: The speaker buffer in blocks of ``output_frames_per_buffer``
            frames (instead of ``output_buffer_ms``).

    Raises:
        BidiConfigurationError: A setting is out of range, or given in both spellings
            with different values.
    """

    def __init__(
        self,
        *,
        input_device: Device = None,
        output_device: Device = None,
        blocksize: int = 512,
        input_buffer_ms: int | None = None,
        output_buffer_ms: int | None = None,
        input_chunk_ms: int = 100,
        echo_suppression: bool = False,
        echo_tail_ms: int = 300,
        input_device_rate: int | None = None,
        output_device_rate: int | None = None,
        latency: str | float = "low",
        input_device_index: int | None = None,
        output_device_index: int | None = None,
        input_frames_per_buffer: int | None = None,
        output_frames_per_buffer: int | None = None,
        input_buffer_size: int | None = None,
        output_buffer_size: int | None = None,
    ) -> None:
        optional = (
            ("input_buffer_ms", input_buffer_ms),
            ("output_buffer_ms", output_buffer_ms),
            ("input_frames_per_buffer", input_frames_per_buffer),
            ("output_frames_per_buffer", output_frames_per_buffer),
            ("input_buffer_size", input_buffer_size),
            ("output_buffer_size", output_buffer_size),
        )
        for name, value in (
            ("blocksize", blocksize),
            ("input_chunk_ms", input_chunk_ms),
            *((n, v) for n, v in optional if v is not None),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BidiConfigurationError(f"{name} must be a positive int, got {value!r}")
        for key, index in (
            ("input_device_index", input_device_index),
            ("output_device_index", output_device_index),
        ):
            if index is not None and (
                not isinstance(index, int) or isinstance(index, bool) or index < 0
            ):
                raise BidiConfigurationError(f"{key} must be a device index, got {index!r}")
        if echo_tail_ms < 0:
            raise BidiConfigurationError(f"echo_tail_ms must be >= 0, got {echo_tail_ms!r}")
        self.input_device = _one_of("input_device", input_device, input_device_index)
        self.output_device = _one_of("output_device", output_device, output_device_index)
        self.blocksize = blocksize
        self.input_blocksize = input_frames_per_buffer or blocksize
        self.output_blocksize = output_frames_per_buffer or blocksize
        self.input_buffer_ms = _either("input", input_buffer_ms, input_buffer_size, 1000)
        self.output_buffer_ms = _either("output", output_buffer_ms, output_buffer_size, 120_000)
        self.input_buffer_blocks = input_buffer_size
        self.output_buffer_blocks = output_buffer_size
        self.input_chunk_ms = input_chunk_ms
        self.echo_suppression = echo_suppression
        self.echo_tail_ms = echo_tail_ms
        self.input_device_rate = input_device_rate
        self.output_device_rate = output_device_rate
        self.latency = latency
        self._input: BidiAudioInput | None = None
        self._output: BidiAudioOutput | None = None

    def buffer_frames(self, direction: str, rate: int) -> int:
        """The buffer of one direction (``"input"`` or ``"output"``) in device frames."""
        if direction == "input":
            blocks, block, ms = self.input_buffer_blocks, self.input_blocksize, self.input_buffer_ms
        else:
            blocks, block = self.output_buffer_blocks, self.output_blocksize
            ms = self.output_buffer_ms
        if blocks is not None:
            return blocks * block
        return max(1, rate * ms // 1000)

    def input(self) -> BidiAudioInput:
        """Return the microphone input (the same object on every call)."""
        if self._input is None:
            self._input = BidiAudioInput(self)
        return self._input

    def output(self) -> BidiAudioOutput:
        """Return the speaker output (the same object on every call)."""
        if self._output is None:
            self._output = BidiAudioOutput(self)
        return self._output

    def statistics(self) -> AudioStatistics:
        """Return the counters of both directions."""
        fields: dict[str, Any] = {"callback_errors": 0}
        if self._input is not None:
            fields.update(self._input._statistics())
            fields["callback_errors"] += self._input._errors
        if self._output is not None:
            fields.update(self._output._statistics())
            fields["callback_errors"] += self._output._errors
        return AudioStatistics(**fields)

    def _assistant_speaking(self) -> bool:
        # PortAudio's thread. Audio handed to the device is heard up to the output's
        # latency later, so the gate stays shut that much longer than the tail.
        output = self._output
        if output is None:
            return False
        return output.speaking(self.echo_tail_ms / 1000.0 + output.latency_s)


def _one_of(name: str, ours: Device, strands: int | None) -> Device:
    """The device from either spelling (``input_device`` or ``input_device_index``)."""
    if strands is None:
        return ours
    if ours is not None and ours != strands:
        raise BidiConfigurationError(
            f"{name}={ours!r} and {name}_index={strands!r} name different devices; give one"
        )
    return strands


def _either(direction: str, ms: int | None, blocks: int | None, default_ms: int) -> int:
    """The buffer in milliseconds; refuses both spellings given at once."""
    if ms is not None and blocks is not None:
        raise BidiConfigurationError(
            f"give {direction}_buffer_ms or {direction}_buffer_size (Strands' blocks), not both"
        )
    return ms if ms is not None else default_ms


class BidiAudioInput:
    """The microphone: ``await mic()`` returns the next audio input event.

    The events are [`BidiAudioInputEvent`][trio_bidi.events.BidiAudioInputEvent]s. Made by
    [`BidiAudioIO.input`][trio_bidi.io.BidiAudioIO.input]; ``start(agent)`` opens the
    device at the model's input format, ``stop()`` closes it.
    """

    def __init__(self, io: BidiAudioIO) -> None:
        self._io = io
        self._stream: Any = None
        self._ring: FrameRing | None = None
        self._resampler: StreamResampler | None = None
        self._model: _Format | None = None
        self._device_rate = 0
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = trio.Event()
        self._statuses = 0
        self._errors = 0
        self._gated = 0

    @property
    def is_open(self) -> bool:
        """True while the device stream is open."""
        return self._stream is not None

    async def start(self, agent: AgentHandle) -> None:
        """Open the microphone at the model's input rate and channels (resampling if needed).

        Raises:
            BidiStateError: Already started.
            BidiAudioFormatError: The model's audio format is not 16-bit PCM.
            BidiConfigurationError: sounddevice/PortAudio or the device is missing.
        """
        if self._stream is not None:
            raise BidiStateError("the audio input is already started")
        model = _model_format(agent, "input_rate")
        io = self._io
        self._token = trio.lowlevel.current_trio_token()
        self._model = model
        self._ready = trio.Event()
        self._ring = None  # made by _prepare (in the worker thread) before the stream starts
        stream, rate, channels = await _open_stream(
            "input", io.input_device, model, io.input_device_rate, io, self._prepare
        )
        self._stream = stream
        logger.debug(
            "device=<%s>, rate=<%s>, channels=<%s>, model_rate=<%s> | microphone open",
            io.input_device,
            rate,
            channels,
            model.rate,
        )

    def _prepare(self, rate: int, channels: int) -> _Callback:
        """Size the buffers for the device's settings (before the stream starts)."""
        assert self._model is not None
        self._device_rate = rate
        self._ring = FrameRing(self._io.buffer_frames("input", rate), channels, "drop_oldest")
        self._resampler = StreamResampler(rate, self._model.rate, self._model.channels)
        return self._callback

    def _callback(self, indata: Int16Array, frames: int, _time: Any, status: Any) -> None:
        # PortAudio's thread: never block on Trio, never raise.
        try:
            if status:
                self._statuses += 1
            ring = self._ring
            token = self._token
            if ring is None or token is None:
                return
            if self._io.echo_suppression and self._io._assistant_speaking():
                # Decided when the sound was captured, not when the app reads it: a late
                # reader must not let through what the microphone heard of the assistant.
                self._gated += frames
                ring.write(np.zeros_like(indata))
            else:
                ring.write(indata)
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._wake, idempotent=True)
        except Exception:
            self._errors += 1
            if self._errors == 1:
                logger.exception("error in the audio input callback")

    def _wake(self) -> None:
        self._ready.set()

    async def __call__(self) -> BidiAudioInputEvent:
        """Wait for microphone audio and return it as an input event.

        Raises:
            BidiStateError: The input is not started.
        """
        while True:
            ring, resampler, model = self._ring, self._resampler, self._model
            if self._stream is None or ring is None or resampler is None or model is None:
                raise BidiStateError("the audio input is not started")
            chunk = max(1, self._device_rate * self._io.input_chunk_ms // 1000)
            frames = ring.read(chunk)
            if len(frames):
                samples = resampler.process(convert_channels(frames, model.channels))
                if len(samples):
                    audio = base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii")
                    return BidiAudioInputEvent(audio, "pcm", model.rate, model.channels)  # type: ignore[arg-type]
                continue
            self._ready = trio.Event()
            if len(ring):
                continue
            await self._ready.wait()

    async def stop(self) -> None:
        """Close the microphone (idempotent); its callback thread ends with it.

        Waits ``STOP_TIMEOUT_S`` at most (then logs and abandons the device).
        """
        stream, self._stream = self._stream, None
        self._ready.set()
        await _close_in_thread(stream, "microphone")

    def _statistics(self) -> dict[str, Any]:
        stats = self._ring.statistics() if self._ring is not None else None
        rate = self._device_rate
        return {
            "input_buffered_ms": _ms(stats.buffered, rate) if stats else 0.0,
            "input_dropped_ms": _ms(stats.dropped, rate) if stats else 0.0,
            "input_gated_ms": _ms(self._gated, rate),
            "input_overflows": self._statuses,
            "input_rate": rate,
        }


_Callback = Callable[[Int16Array, int, Any, Any], None]


async def _open_stream(
    direction: str,
    device: Device,
    model: _Format,
    forced_rate: int | None,
    io: BidiAudioIO,
    prepare: Callable[[int, int], _Callback],
) -> tuple[Any, int, int]:
    """Pick the settings, open and start a 16-bit stream, all in a worker thread.

    ``prepare(rate, channels)`` runs (in the worker thread) once the settings are known
    and before the stream starts; it returns the stream's callback.

    Returns:
        The started stream, its rate and its channels.

    Raises:
        BidiConfigurationError: sounddevice/PortAudio or the device is missing, or
            PortAudio cannot open it with these settings.
    """

    def open_in_thread() -> tuple[Any, int, int]:
        sd = import_sounddevice()
        rate, channels = _open_settings(sd, device, direction, model, forced_rate)
        callback = prepare(rate, channels)
        stream_class = sd.InputStream if direction == "input" else sd.OutputStream
        try:
            stream = stream_class(
                device=device,
                samplerate=rate,
                channels=channels,
                dtype="int16",
                blocksize=io.input_blocksize if direction == "input" else io.output_blocksize,
                latency=io.latency,
                callback=callback,
            )
        except sd.PortAudioError as exc:
            raise BidiConfigurationError(f"cannot open the audio {direction}: {exc}") from exc
        try:
            stream.start()
        except BaseException:
            stream.close(ignore_errors=True)
            raise
        return stream, rate, channels

    return await trio.to_thread.run_sync(open_in_thread)


def _close_stream(stream: Any) -> None:
    """Abort (drop what is queued) and close a stream; joins PortAudio's thread."""
    try:
        stream.abort(ignore_errors=True)
    finally:
        stream.close(ignore_errors=True)


async def _close_in_thread(stream: Any, what: str) -> None:
    """Close ``stream`` (if any) in a worker thread, waiting ``STOP_TIMEOUT_S`` at most.

    Shielded (the device closes even when the caller is cancelled), with that deadline.
    """
    if stream is None:
        await trio.lowlevel.checkpoint()
        return
    with trio.move_on_after(STOP_TIMEOUT_S, shield=True) as scope:
        await trio.to_thread.run_sync(_close_stream, stream, abandon_on_cancel=True)
    if scope.cancelled_caught:
        logger.warning(
            "timeout_s=<%s>, device=<%s> | PortAudio did not close the device in time; "
            "abandoning it to its worker thread",
            STOP_TIMEOUT_S,
            what,
        )
    else:
        logger.debug("device=<%s> | closed", what)


class BidiAudioOutput:
    """The speaker: ``await speaker(event)`` plays the model's audio.

    Made by [`BidiAudioIO.output`][trio_bidi.io.BidiAudioIO.output]. It reacts to:

    - [`BidiAudioStreamEvent`][trio_bidi.events.BidiAudioStreamEvent]: queued for
      playback (resampled and remixed to the device's format).
    - [`BidiResponseStartEvent`][trio_bidi.events.BidiResponseStartEvent]: a new response
      starts; played audio is counted from here (after what is still queued from the
      previous one).
    - [`BidiInterruptionEvent`][trio_bidi.events.BidiInterruptionEvent]: the queue is
      cleared, so the device plays silence from its next callback, and
      ``agent.report_playback(ms)`` reports how much of the current response was played.
    - [`BidiResponseCompleteEvent`][trio_bidi.events.BidiResponseCompleteEvent]: the
      resampler's tail is queued.

    A connection restart changes nothing here: queued audio keeps playing.
    """

    def __init__(self, io: BidiAudioIO) -> None:
        self._io = io
        self._stream: Any = None
        self._agent: AgentHandle | None = None
        self._ring: FrameRing | None = None
        self._resampler: StreamResampler | None = None
        self._model: _Format | None = None
        self._device_rate = 0
        self._device_channels = 0
        self._token: trio.lowlevel.TrioToken | None = None
        self._statuses = 0
        self._errors = 0
        self._last_audio = -float("inf")  # time.monotonic() of the last non-silent callback
        self._drained = trio.Event()
        self._drained.set()
        self._want_drained = threading.Event()
        # The current response: frames read when it started, frames queued before it.
        self._response: tuple[int, int] | None = None
        self._response_received_ms = 0.0  # audio received for the current response

    @property
    def is_open(self) -> bool:
        """True while the device stream is open."""
        return self._stream is not None

    async def start(self, agent: AgentHandle) -> None:
        """Open the speaker for the model's output rate and channels.

        Raises:
            BidiStateError: Already started.
            BidiAudioFormatError: The model's audio format is not 16-bit PCM.
            BidiConfigurationError: sounddevice/PortAudio or the device is missing.
        """
        if self._stream is not None:
            raise BidiStateError("the audio output is already started")
        model = _model_format(agent, "output_rate")
        io = self._io
        self._agent = agent
        self._model = model
        self._token = trio.lowlevel.current_trio_token()
        self._ring = None
        self._response = None
        stream, rate, channels = await _open_stream(
            "output", io.output_device, model, io.output_device_rate, io, self._prepare
        )
        self._stream = stream
        logger.debug(
            "device=<%s>, rate=<%s>, channels=<%s>, model_rate=<%s> | speaker open",
            io.output_device,
            rate,
            channels,
            model.rate,
        )

    def _prepare(self, rate: int, channels: int) -> _Callback:
        """Size the buffer for the device's settings (before the stream starts)."""
        assert self._model is not None
        self._device_rate = rate
        self._device_channels = channels
        self._ring = FrameRing(self._io.buffer_frames("output", rate), channels, "drop_newest")
        self._resampler = StreamResampler(self._model.rate, rate, channels)
        return self._callback

    def _callback(self, outdata: Int16Array, frames: int, _time: Any, status: Any) -> None:
        # PortAudio's thread: never block on Trio, never raise.
        try:
            if status:
                self._statuses += 1
            ring = self._ring
            if ring is None:
                outdata.fill(0)
                return
            if ring.read_into(outdata):
                self._last_audio = time.monotonic()
            elif self._want_drained.is_set() and self._token is not None:
                self._want_drained.clear()
                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(self._drained.set, idempotent=True)
        except Exception:
            self._errors += 1
            if self._errors == 1:
                logger.exception("error in the audio output callback")
            with contextlib.suppress(Exception):
                outdata.fill(0)

    @property
    def latency_s(self) -> float:
        """The device output latency PortAudio reports (0 when not open)."""
        stream = self._stream
        latency = getattr(stream, "latency", 0.0) if stream is not None else 0.0
        return latency if isinstance(latency, float) else 0.0

    def speaking(self, tail_s: float = 0.0) -> bool:
        """True while assistant audio is queued, or was played less than ``tail_s`` ago."""
        ring = self._ring
        if ring is not None and len(ring):
            return True
        return time.monotonic() - self._last_audio < tail_s

    async def wait_played(self) -> None:
        """Wait until every queued frame has been handed to the device.

        Raises:
            BidiStateError: The output is not started.
        """
        ring = self._ring
        if self._stream is None or ring is None:
            raise BidiStateError("the audio output is not started")
        while len(ring) and self._stream is not None:
            self._drained = trio.Event()
            self._want_drained.set()
            if not len(ring):
                break
            await self._drained.wait()

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Play or react to one agent event (see the class docstring).

        Raises:
            BidiStateError: The output is not started.
            BidiAudioFormatError: An audio event is not base64 16-bit PCM.
        """
        ring, model, agent = self._ring, self._model, self._agent
        if self._stream is None or ring is None or model is None or agent is None:
            raise BidiStateError("the audio output is not started")
        if isinstance(event, BidiAudioStreamEvent):
            self._queue(event, ring)
        elif isinstance(event, BidiInterruptionEvent):
            ring.clear()  # the next callback plays silence
            if self._resampler is not None:
                self._resampler.reset()
            played_ms = self._played_ms(ring)
            self._response = None
            if played_ms is not None:
                logger.debug("played_ms=<%s> | interrupted; reporting playback", played_ms)
                await agent.report_playback(played_ms)
        elif isinstance(event, BidiResponseStartEvent):
            self._flush_resampler(ring)
            self._response = (ring.statistics().read, len(ring))
            self._response_received_ms = 0.0
        elif isinstance(event, BidiResponseCompleteEvent):
            self._flush_resampler(ring)

    def _queue(self, event: BidiAudioStreamEvent, ring: FrameRing) -> None:
        if event.format != "pcm":
            raise BidiAudioFormatError(f"cannot play {event.format!r} audio; expected 'pcm'")
        try:
            data = base64.b64decode(event.audio, validate=True)
            samples = pcm16_from_bytes(data, event.channels)
        except (binascii.Error, ValueError) as exc:
            raise BidiAudioFormatError(f"audio event is not base64 16-bit PCM: {exc}") from exc
        resampler = self._resampler
        if resampler is None or resampler.in_rate != event.sample_rate:
            self._flush_resampler(ring)
            resampler = self._resampler = StreamResampler(
                event.sample_rate, self._device_rate, self._device_channels
            )
        self._response_received_ms += len(samples) * 1000 / event.sample_rate
        out = resampler.process(convert_channels(samples, self._device_channels))
        self._put(out, ring)

    def _flush_resampler(self, ring: FrameRing) -> None:
        if self._resampler is not None:
            self._put(self._resampler.flush(), ring)

    def _put(self, frames: Int16Array, ring: FrameRing) -> None:
        if not len(frames):
            return
        dropped = ring.write(frames)
        if dropped:
            logger.warning(
                "dropped_ms=<%.0f> | audio output buffer full; dropping assistant audio",
                _ms(dropped, self._device_rate),
            )

    def _played_ms(self, ring: FrameRing) -> int | None:
        """Milliseconds of the current response handed to the device (None: no response)."""
        if self._response is None:
            return None
        read_at_start, backlog = self._response
        frames = max(0, ring.statistics().read - read_at_start - backlog)
        played = int(_ms(frames, self._device_rate))
        return min(played, int(self._response_received_ms))

    async def stop(self) -> None:
        """Close the speaker (idempotent), dropping what was still queued.

        Waits ``STOP_TIMEOUT_S`` at most (then logs and abandons the device).
        """
        stream, self._stream = self._stream, None
        self._drained.set()
        await _close_in_thread(stream, "speaker")

    def _statistics(self) -> dict[str, Any]:
        stats = self._ring.statistics() if self._ring is not None else None
        rate = self._device_rate
        return {
            "output_buffered_ms": _ms(stats.buffered, rate) if stats else 0.0,
            "output_dropped_ms": _ms(stats.dropped, rate) if stats else 0.0,
            "output_cleared_ms": _ms(stats.cleared, rate) if stats else 0.0,
            "output_played_ms": _ms(stats.read, rate) if stats else 0.0,
            "output_underflows": self._statuses,
            "output_rate": rate,
        }
