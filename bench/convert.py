"""Micro-benchmark: server JSON -> events, per provider, no I/O.

``python bench/convert.py SIDE PROVIDER`` with SIDE ``trio_bidi`` or ``strands`` and
PROVIDER ``openai`` or ``gemini`` converts a realistic mix of server messages (one
response: start, 50 audio deltas, transcript deltas, a function call, usage) many times
and prints one JSON line: ``{"rate": messages per CPU-second, ...}``.

What counts as conversion is what each library does per received message: trio_bidi's
protocol takes the raw text (JSON decode included); Strands' OpenAI model does
``json.loads`` then ``_convert_openai_event``; its Gemini model receives
``LiveServerMessage`` objects that google-genai parses from the JSON first, so that parse
is included too.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

AUDIO = base64.b64encode(bytes(common.FRAME_BYTES)).decode()


def openai_messages() -> list[str]:
    rid, item = "resp_1", "item_1"
    msgs: list[dict[str, Any]] = [
        {
            "type": "response.created",
            "event_id": "e0",
            "response": {"id": rid, "object": "realtime.response", "status": "in_progress"},
        },
        {
            "type": "response.output_item.added",
            "event_id": "e1",
            "response_id": rid,
            "output_index": 0,
            "item": {"id": item, "type": "message", "role": "assistant", "content": []},
        },
    ]
    for i in range(50):
        msgs.append(
            {
                "type": "response.output_audio.delta",
                "event_id": f"a{i}",
                "response_id": rid,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
                "delta": AUDIO,
            }
        )
        if i % 5 == 0:
            msgs.append(
                {
                    "type": "response.output_audio_transcript.delta",
                    "event_id": f"t{i}",
                    "response_id": rid,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "word ",
                }
            )
    msgs += [
        {
            "type": "response.output_audio_transcript.done",
            "event_id": "td",
            "response_id": rid,
            "item_id": item,
            "output_index": 0,
            "content_index": 0,
            "transcript": "word " * 10,
        },
        {
            "type": "response.output_item.added",
            "event_id": "f0",
            "response_id": rid,
            "output_index": 1,
            "item": {
                "id": "item_f",
                "type": "function_call",
                "name": "bench_echo",
                "call_id": "call_1",
                "arguments": "",
            },
        },
        {
            "type": "response.function_call_arguments.delta",
            "event_id": "f1",
            "response_id": rid,
            "item_id": "item_f",
            "output_index": 1,
            "call_id": "call_1",
            "delta": '{"value": 42}',
        },
        {
            "type": "response.function_call_arguments.done",
            "event_id": "f2",
            "response_id": rid,
            "item_id": "item_f",
            "output_index": 1,
            "call_id": "call_1",
            "name": "bench_echo",
            "arguments": '{"value": 42}',
        },
        {
            "type": "response.done",
            "event_id": "d",
            "response": {
                "id": rid,
                "object": "realtime.response",
                "status": "completed",
                "output": [],
                "usage": {
                    "total_tokens": 30,
                    "input_tokens": 10,
                    "output_tokens": 20,
                    "input_token_details": {"text_tokens": 10, "audio_tokens": 0},
                    "output_token_details": {"text_tokens": 0, "audio_tokens": 20},
                },
            },
        },
    ]
    return [json.dumps(m) for m in msgs]


def gemini_messages() -> list[str]:
    msgs: list[dict[str, Any]] = []
    for i in range(50):
        msgs.append(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [
                            {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": AUDIO}}
                        ]
                    }
                }
            }
        )
        if i % 5 == 0:
            msgs.append({"serverContent": {"outputTranscription": {"text": "word "}}})
    msgs += [
        {"toolCall": {"functionCalls": [{"id": "c1", "name": "bench_echo", "args": {"value": 1}}]}},
        {"serverContent": {"generationComplete": True}},
        {"serverContent": {"turnComplete": True}},
        {
            "usageMetadata": {
                "promptTokenCount": 10,
                "responseTokenCount": 20,
                "totalTokenCount": 30,
            }
        },
    ]
    return [json.dumps(m) for m in msgs]


def trio_bidi_converter(provider: str) -> Callable[[str], Any]:
    if provider == "openai":
        from trio_bidi.models.openai_realtime import BidiOpenAIRealtimeModel, OpenAIRealtimeProtocol

        model = BidiOpenAIRealtimeModel(client_config={"api_key": "bench-key"})
        return OpenAIRealtimeProtocol(model.config).receive_raw
    from trio_bidi.models.gemini_live._protocol import GeminiLiveProtocol

    return GeminiLiveProtocol("bench").receive


def strands_converter(provider: str) -> Callable[[str], Any]:
    if provider == "openai":
        from strands.experimental.bidi.models.openai_realtime import BidiOpenAIRealtimeModel

        model = BidiOpenAIRealtimeModel(client_config={"api_key": "bench-key"})
        convert = model._convert_openai_event
        loads = json.loads
        return lambda raw: convert(loads(raw))
    from google.genai.types import LiveServerMessage
    from strands.experimental.bidi.models.gemini_live import BidiGeminiLiveModel

    gemini = BidiGeminiLiveModel(client_config={"api_key": "bench-key"})
    convert_g = gemini._convert_gemini_live_event
    parse = LiveServerMessage.model_validate_json
    return lambda raw: convert_g(parse(raw))


def run(side: str, provider: str, seconds: float = 1.0) -> dict[str, Any]:
    messages = openai_messages() if provider == "openai" else gemini_messages()
    convert = trio_bidi_converter(provider) if side == "trio_bidi" else strands_converter(provider)
    for raw in messages:  # warm up (and fail early if a message is refused)
        convert(raw)
    count = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        for raw in messages:
            convert(raw)
        count += len(messages)
    cpu = time.process_time() - t0
    return {"n": count, "cpu_s": cpu, "rate": count / cpu}


if __name__ == "__main__":
    common.emit(run(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0))
