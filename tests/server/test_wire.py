"""The page<->server wire: pure functions, plain synchronous tests."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_bidi.errors import BidiModelTimeoutError
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionRestartEvent,
    BidiTextInputEvent,
)
from trio_bidi.server import AudioFormat, BidiMessageRefusedError, BidiMessageTooLargeError
from trio_bidi.server._wire import (
    AUDIO_HEADER,
    PlaybackReport,
    decode_client_message,
    encode_audio_frame,
    encode_server_event,
)

FMT = AudioFormat(24000, 1)
LIMIT = 64 * 1024


def decode(data: str | bytes) -> object:
    return decode_client_message(data, audio=FMT, max_bytes=LIMIT)


def test_binary_audio_frame_becomes_an_audio_input_event() -> None:
    pcm = bytes(range(256)) * 4
    event = decode(encode_audio_frame(pcm, 24000, 1))
    assert event == BidiAudioInputEvent(base64.b64encode(pcm).decode(), "pcm", 24000, 1)


def test_json_audio_and_text_inputs_pass_through() -> None:
    audio = {
        "type": "bidi_audio_input",
        "audio": base64.b64encode(b"\x01\x00" * 240).decode(),
        "format": "pcm",
        "sample_rate": 24000,
        "channels": 1,
    }
    assert decode(json.dumps(audio)) == BidiAudioInputEvent(audio["audio"], "pcm", 24000, 1)
    text = {"type": "bidi_text_input", "text": "hello", "role": "user"}
    assert decode(json.dumps(text)) == BidiTextInputEvent("hello")


def test_playback_report() -> None:
    assert decode('{"type": "gateway_playback", "played_ms": 1234.7}') == PlaybackReport(1234)


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "bidi_audio_stream", "audio": "", "format": "pcm"}', "refused"),
        ('{"type": "tool_result", "tool_result": {}}', "refused"),
        ('{"type": "bidi_text_input", "text": "x", "role": "assistant"}', "role must be"),
        ('{"type": "bidi_text_input", "text": "   ", "role": "user"}', "not blank"),
        ('{"type": "bidi_text_input"}', "bidi_text_input"),
        (
            '{"type": "bidi_audio_input", "audio": "AAAA", "format": "pcm",'
            ' "sample_rate": 16000, "channels": 1}',
            "the model takes pcm 24000",
        ),
        (
            '{"type": "bidi_audio_input", "audio": "!!!!", "format": "pcm",'
            ' "sample_rate": 24000, "channels": 1}',
            "not base64",
        ),
        (
            '{"type": "bidi_audio_input", "audio": "AA==", "format": "pcm",'
            ' "sample_rate": 24000, "channels": 1}',
            "whole 16-bit samples",
        ),
        ('{"type": "bidi_image_input", "image": "AAAA", "mime_type": "text/html"}', "mime_type"),
        ('{"type": "gateway_playback", "played_ms": -5}', "played_ms"),
        ('{"type": "gateway_playback", "played_ms": true}', "played_ms"),
        (b"B\x01\x00\x00\xc0]\x00\x00\x00\x00", "bad header"),
        (encode_audio_frame(b"\x00\x00", 16000, 1), "16000 Hz"),
        (encode_audio_frame(b"\x00\x00\x00", 24000, 1), "not whole samples"),
        (encode_audio_frame(b"", 24000, 1), "not whole samples"),
    ],
)
def test_refused_messages_name_the_problem(message: str | bytes, words: str) -> None:
    with pytest.raises(BidiMessageRefusedError, match=words):
        decode(message)


def test_oversized_text_and_binary_messages() -> None:
    with pytest.raises(BidiMessageTooLargeError, match="limit is 65536"):
        decode(json.dumps({"type": "bidi_text_input", "text": "x" * LIMIT, "role": "user"}))
    with pytest.raises(BidiMessageTooLargeError):
        decode(encode_audio_frame(b"\x00" * LIMIT, 24000, 1))
    # Multi-byte characters count in bytes, not characters.
    accented = {"type": "bidi_text_input", "text": "é" * (LIMIT // 2 + 10), "role": "user"}
    with pytest.raises(BidiMessageTooLargeError):
        decode(json.dumps(accented, ensure_ascii=False))


@given(st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_arbitrary_messages_are_refused_or_valid(data: str | bytes) -> None:
    try:
        decoded = decode(data)
    except BidiMessageRefusedError:
        return
    assert isinstance(decoded, BidiAudioInputEvent | BidiTextInputEvent | PlaybackReport)


def test_server_audio_as_binary_frame_or_json() -> None:
    pcm = b"\x10\x00" * 480
    event = BidiAudioStreamEvent(base64.b64encode(pcm).decode(), "pcm", 24000, 1)
    frame = encode_server_event(event, binary_audio=True)
    assert isinstance(frame, bytes)
    assert AUDIO_HEADER.unpack_from(frame) == (b"A", 1, 24000)
    assert frame[AUDIO_HEADER.size :] == pcm
    text = encode_server_event(event, binary_audio=False)
    assert isinstance(text, str)
    assert json.loads(text) == event.to_dict()


def test_events_holding_exceptions_go_as_json() -> None:
    error = BidiModelTimeoutError("the connection reached its time limit")
    text = encode_server_event(BidiConnectionRestartEvent(error), binary_audio=True)
    assert isinstance(text, str)
    assert json.loads(text)["timeout_error"]["message"] == "the connection reached its time limit"
