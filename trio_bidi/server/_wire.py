"""The wire between a web page and the gateway: pure functions, no I/O.

Every message is one of the library's event dict forms as a JSON text frame (the server
sends ``event.to_json_dict()``: the Strands dict, with exceptions as plain data), plus two
gateway messages:

- ``{"type": "gateway_session", ...}`` (server to page, first message): the session id,
  whether the conversation was restored, its history, the audio formats and the limits.
- ``{"type": "gateway_playback", "played_ms": N}`` (page to server): how much of the
  interrupted response the page actually played, after it cleared its buffer.

Audio can also travel as binary frames, which skips base64 and JSON on both sides: an
8-byte header (``b"A"``, the channel count, two zero bytes, the sample rate as a
little-endian ``uint32``) and then 16-bit little-endian PCM. Both sides accept both forms;
which one the server sends is chosen per connection (``?audio=binary`` or ``base64``).

The page is not trusted: `decode_client_message` accepts only input events (text,
audio in the model's format, images) and playback reports, checks their sizes and their
contents, and raises `BidiMessageRefusedError` for anything else. What it returns
can go to the model as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ..errors import BidiError
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiOutputEvent,
    BidiTextInputEvent,
    ToolResultEvent,
    event_from_dict,
)

__all__ = [
    "AUDIO_HEADER",
    "AudioFormat",
    "BidiClientDisconnectedError",
    "BidiMessageRefusedError",
    "BidiMessageTooLargeError",
    "BidiRateLimitError",
    "PlaybackReport",
    "decode_client_message",
    "encode_audio_frame",
    "encode_server_event",
]

AUDIO_HEADER: Final = struct.Struct("<cBxxI")
"""Binary audio frames: ``b"A"``, channels, two zero bytes, sample rate (uint32 LE)."""

_AUDIO_TAG: Final = b"A"
_CLIENT_TYPES: Final = frozenset(
    {"bidi_text_input", "bidi_audio_input", "bidi_image_input", "gateway_playback"}
)
_MAX_PLAYED_MS: Final = 24 * 3600 * 1000
_IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


class BidiMessageRefusedError(BidiError, ValueError):
    """A message from the page was refused; it never reaches the model."""


class BidiMessageTooLargeError(BidiMessageRefusedError):
    """A message from the page is larger than the gateway's ``max_message_bytes``."""


class BidiRateLimitError(BidiMessageRefusedError):
    """The page sends messages faster than the gateway's ``max_messages_per_s``."""


class BidiClientDisconnectedError(BidiError):
    """The page's WebSocket closed (it may reconnect with its session id)."""


@attrs.frozen
class AudioFormat:
    """One direction's audio: 16-bit PCM at ``rate`` with ``channels`` channels."""

    rate: int
    channels: int

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"format": "pcm", "sample_rate", "channels"}``."""
        return {"format": "pcm", "sample_rate": self.rate, "channels": self.channels}


@attrs.frozen
class PlaybackReport:
    """The page played ``played_ms`` of the interrupted response."""

    played_ms: int


ClientMessage = BidiInputEvent | PlaybackReport


def encode_server_event(
    event: BidiOutputEvent | ToolResultEvent, *, binary_audio: bool
) -> str | bytes:
    """Encode one agent event for the page.

    Args:
        event: The event.
        binary_audio: Send audio as a binary frame instead of base64 in JSON.

    Returns:
        A text frame (JSON) or, for audio with ``binary_audio``, a binary frame.

    Raises:
        ValueError: The audio is not valid base64 (a provider bug; nothing is sent).
    """
    if binary_audio and isinstance(event, BidiAudioStreamEvent) and event.format == "pcm":
        try:
            pcm = base64.b64decode(event.audio, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"audio event is not valid base64: {exc}") from exc
        return encode_audio_frame(pcm, event.sample_rate, event.channels)
    return json.dumps(
        event.to_json_dict(), separators=(",", ":"), ensure_ascii=False, default=_as_text
    )


def _as_text(value: Any) -> str:
    """What JSON cannot hold (bytes in a tool result, an object) is sent as its text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def encode_audio_frame(pcm: bytes, rate: int, channels: int) -> bytes:
    """Return a binary audio frame: the header, then ``pcm``."""
    return AUDIO_HEADER.pack(_AUDIO_TAG, channels, rate) + pcm


def decode_client_message(
    data: str | bytes, *, audio: AudioFormat, max_bytes: int
) -> ClientMessage:
    """Check and decode one message from the page.

    Args:
        data: A text frame (JSON) or a binary frame (audio).
        audio: The audio format the model takes; audio in any other format is refused.
        max_bytes: The largest message accepted (UTF-8 bytes for text).

    Returns:
        An input event ready for the model, or a playback report.

    Raises:
        BidiMessageTooLargeError: The message is larger than ``max_bytes``.
        BidiMessageRefusedError: Anything else that is not a valid message.
    """
    size = _size(data, max_bytes)
    if size > max_bytes:
        raise BidiMessageTooLargeError(f"message of {size} bytes refused: the limit is {max_bytes}")
    if isinstance(data, bytes):
        return _decode_audio_frame(data, audio)
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise BidiMessageRefusedError(f"message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BidiMessageRefusedError("message is not a JSON object")
    kind = message.get("type")
    if kind not in _CLIENT_TYPES:
        raise BidiMessageRefusedError(
            f"message type {str(kind)[:64]!r} refused "
            f"(accepted: {', '.join(sorted(_CLIENT_TYPES))})"
        )
    if kind == "gateway_playback":
        return _playback(message)
    try:
        event = event_from_dict(message)
    except (ValueError, TypeError) as exc:
        raise BidiMessageRefusedError(f"{kind}: {exc}") from None
    if isinstance(event, BidiAudioInputEvent):
        _check_audio(event, audio)
    elif isinstance(event, BidiImageInputEvent):
        _check_image(event)
    elif isinstance(event, BidiTextInputEvent) and (event.role != "user" or not event.text.strip()):
        raise BidiMessageRefusedError("bidi_text_input: role must be 'user' and text not blank")
    assert isinstance(event, BidiTextInputEvent | BidiAudioInputEvent | BidiImageInputEvent)
    return event


def _size(data: str | bytes, max_bytes: int) -> int:
    """The message's size in bytes (text is encoded only when it could be too large)."""
    if isinstance(data, bytes) or len(data) > max_bytes or 4 * len(data) <= max_bytes:
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def _decode_audio_frame(data: bytes, audio: AudioFormat) -> BidiAudioInputEvent:
    if len(data) < AUDIO_HEADER.size or data[:1] != _AUDIO_TAG:
        raise BidiMessageRefusedError("binary message is not an audio frame (bad header)")
    _, channels, rate = AUDIO_HEADER.unpack_from(data)
    if rate != audio.rate or channels != audio.channels:
        raise BidiMessageRefusedError(
            f"audio frame is {rate} Hz x{channels}; "
            f"the model takes {audio.rate} Hz x{audio.channels}"
        )
    pcm = memoryview(data)[AUDIO_HEADER.size :]
    if not pcm or len(pcm) % (2 * channels):
        raise BidiMessageRefusedError(f"audio frame holds {len(pcm)} bytes: not whole samples")
    return BidiAudioInputEvent(
        base64.b64encode(pcm).decode("ascii"),
        "pcm",
        audio.rate,  # type: ignore[arg-type]  # checked equal to the model's rate above
        audio.channels,  # type: ignore[arg-type]
    )


def _check_audio(event: BidiAudioInputEvent, audio: AudioFormat) -> None:
    if event.format != "pcm" or event.sample_rate != audio.rate or event.channels != audio.channels:
        raise BidiMessageRefusedError(
            f"bidi_audio_input is {event.format} {event.sample_rate} Hz x{event.channels}; "
            f"the model takes pcm {audio.rate} Hz x{audio.channels}"
        )
    try:
        pcm = binascii.a2b_base64(event.audio, strict_mode=True)
    except binascii.Error as exc:
        raise BidiMessageRefusedError(f"bidi_audio_input: audio is not base64: {exc}") from None
    if not pcm or len(pcm) % (2 * audio.channels):
        raise BidiMessageRefusedError(
            f"bidi_audio_input: {len(pcm)} bytes of audio is not whole 16-bit samples"
        )


def _check_image(event: BidiImageInputEvent) -> None:
    if event.mime_type not in _IMAGE_TYPES:
        raise BidiMessageRefusedError(
            f"bidi_image_input: mime_type {event.mime_type[:64]!r} refused "
            f"(accepted: {', '.join(sorted(_IMAGE_TYPES))})"
        )
    try:
        binascii.a2b_base64(event.image, strict_mode=True)
    except binascii.Error as exc:
        raise BidiMessageRefusedError(f"bidi_image_input: image is not base64: {exc}") from None


def _playback(message: Mapping[str, Any]) -> PlaybackReport:
    played = message.get("played_ms")
    if (
        not isinstance(played, int | float)
        or isinstance(played, bool)
        or not 0 <= played <= _MAX_PLAYED_MS
    ):
        raise BidiMessageRefusedError(
            "gateway_playback: played_ms must be a number of milliseconds >= 0"
        )
    return PlaybackReport(int(played))
