"""Hypothesis over server message sequences: GeminiLiveProtocol never raises, drops nothing,
and keeps responses paired.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracles.gemini import validate_client_message, validate_server_message
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancellationEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from trio_bidi.models.gemini_live import GeminiLiveProtocol
from trio_bidi.types import ToolResultContent

words = st.text(alphabet="abc xyz", min_size=1, max_size=8)
ids = st.sampled_from(["a", "b", "c", "d"])

audio_part = st.builds(
    lambda data, mime: {"inlineData": {"data": data, "mimeType": mime}},
    st.sampled_from(["AAA=", "AQID", "MDAwMDAw"]),
    st.sampled_from(["audio/pcm", "audio/pcm;rate=24000"]),
)
text_part = st.builds(lambda t: {"text": t}, words)
server_content = st.fixed_dictionaries(
    {},
    optional={
        "modelTurn": st.builds(
            lambda parts: {"parts": parts}, st.lists(st.one_of(audio_part, text_part), max_size=3)
        ),
        "inputTranscription": st.fixed_dictionaries(
            {"text": words}, optional={"finished": st.booleans()}
        ),
        "outputTranscription": st.fixed_dictionaries(
            {"text": words}, optional={"finished": st.booleans()}
        ),
        "interrupted": st.booleans(),
        "generationComplete": st.booleans(),
        "turnComplete": st.booleans(),
    },
)
usage = st.fixed_dictionaries(
    {"promptTokenCount": st.integers(0, 100), "responseTokenCount": st.integers(0, 100)},
    optional={
        "responseTokensDetails": st.lists(
            st.fixed_dictionaries(
                {"modality": st.sampled_from(["AUDIO", "TEXT"]), "tokenCount": st.integers(0, 50)}
            ),
            max_size=2,
        )
    },
)
tool_call = st.builds(
    lambda calls: {"functionCalls": calls},
    st.lists(
        st.fixed_dictionaries(
            {"id": ids, "name": st.sampled_from(["f", "g"])},
            optional={"args": st.dictionaries(st.sampled_from(["x", "y"]), st.integers())},
        ),
        min_size=1,
        max_size=3,
    ),
)
server_message = st.fixed_dictionaries(
    {},
    optional={
        "serverContent": server_content,
        "toolCall": tool_call,
        "toolCallCancellation": st.builds(lambda i: {"ids": i}, st.lists(ids, max_size=2)),
        "usageMetadata": usage,
        "sessionResumptionUpdate": st.builds(
            lambda h, r: {"newHandle": h, "resumable": r}, ids, st.booleans()
        ),
        "goAway": st.just({"timeLeft": "10s"}),
    },
)


def _count_parts(message: dict[str, Any], kind: str) -> int:
    parts = message.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    return sum(1 for part in parts if kind in part)


@settings(max_examples=100, deadline=None)
@given(st.lists(server_message, max_size=25))
def test_valid_sequences_drop_nothing_and_pair_responses(messages: list[dict[str, Any]]) -> None:
    protocol = GeminiLiveProtocol("p")
    open_id: str | None = None
    seen_ids: set[str] = set()
    for message in messages:
        validate_server_message(message)  # the strategy builds only real server messages
        events = protocol.receive(json.dumps(message))
        assert not [e for e in events if isinstance(e, BidiErrorEvent)], events
        # Every audio part, function call, usage and cancellation comes out.
        assert len([e for e in events if isinstance(e, BidiAudioStreamEvent)]) == _count_parts(
            message, "inlineData"
        )
        calls = message.get("toolCall", {}).get("functionCalls", [])
        assert len([e for e in events if isinstance(e, ToolUseStreamEvent)]) == len(calls)
        assert len([e for e in events if isinstance(e, BidiUsageEvent)]) == (
            1 if "usageMetadata" in message else 0
        )
        cancelled = message.get("toolCallCancellation", {}).get("ids", [])
        cancellations = [e for e in events if isinstance(e, BidiToolCancellationEvent)]
        assert [c.tool_use_ids for c in cancellations] == ([tuple(cancelled)] if cancelled else [])
        content = message.get("serverContent", {})
        assert len([e for e in events if isinstance(e, BidiInterruptionEvent)]) == (
            1 if content.get("interrupted") else 0
        )
        deltas = [e for e in events if isinstance(e, BidiTranscriptStreamEvent) and not e.is_final]
        expected_texts = (
            ([content["inputTranscription"]["text"]] if "inputTranscription" in content else [])
            + [p["text"] for p in content.get("modelTurn", {}).get("parts", []) if "text" in p]
            + ([content["outputTranscription"]["text"]] if "outputTranscription" in content else [])
        )
        assert [d.text for d in deltas] == expected_texts
        # Responses: strictly alternating start/complete with fresh ids; content inside one.
        for event in events:
            if isinstance(event, BidiResponseStartEvent):
                assert open_id is None
                assert event.response_id not in seen_ids
                seen_ids.add(event.response_id)
                open_id = event.response_id
            elif isinstance(event, BidiResponseCompleteEvent):
                assert event.response_id == open_id
                open_id = None
            elif isinstance(event, BidiAudioStreamEvent | ToolUseStreamEvent):
                assert open_id is not None
        assert protocol.response_id == open_id
        if content.get("turnComplete") or (
            content.get("interrupted") and "toolCall" not in message
        ):
            assert open_id is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.text(max_size=40),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                lambda children: (
                    st.lists(children, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            [
                                "serverContent",
                                "modelTurn",
                                "parts",
                                "inlineData",
                                "text",
                                "toolCall",
                                "functionCalls",
                                "usageMetadata",
                                "turnComplete",
                                "interrupted",
                                "goAway",
                                "sessionResumptionUpdate",
                                "newHandle",
                                "data",
                                "mimeType",
                            ]
                        ),
                        children,
                        max_size=4,
                    )
                ),
                max_leaves=12,
            ).map(json.dumps),
        ),
        max_size=15,
    )
)
def test_arbitrary_input_never_raises(raw_messages: list[str | bytes]) -> None:
    protocol = GeminiLiveProtocol("p")
    starts = completes = 0
    for raw in raw_messages:
        for event in protocol.receive(raw):
            if isinstance(event, BidiResponseStartEvent):
                starts += 1
            elif isinstance(event, BidiResponseCompleteEvent):
                completes += 1
        assert starts - completes == (1 if protocol.response_id is not None else 0)
    # After all that the state still converts a normal turn.
    events = protocol.receive(json.dumps({"serverContent": {"turnComplete": True}}))
    assert all(not isinstance(e, BidiErrorEvent) for e in events)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="xyz", min_size=1, max_size=6).map(lambda t: ("send", t)),
            st.integers(0, 40).map(lambda i: ("consumed", i)),
            st.just(("update", None)),
        ),
        max_size=40,
    ),
    st.integers(8, 64),
)
def test_replay_buffer_keeps_exactly_the_unconsumed_tail(
    steps: list[tuple[str, Any]], bound: int
) -> None:
    protocol = GeminiLiveProtocol("p", max_unconsumed_input_bytes=bound)
    sent: list[str] = []
    covered = 0  # messages 1..covered are covered by a handle
    for kind, value in steps:
        if kind == "send":
            protocol.sent(value)
            sent.append(value)
            continue
        update: dict[str, Any] = {"newHandle": "h", "resumable": True}
        if kind == "consumed":
            index = min(max(value, covered), len(sent))  # the server's index only grows
            update["lastConsumedClientMessageIndex"] = str(index)
            covered = index
        else:
            covered = len(sent)
        protocol.receive(json.dumps({"sessionResumptionUpdate": update}))
    kept = protocol.unconsumed_input()
    tail = sent[covered:]
    # What is kept is the newest part of the uncovered tail, within the byte bound.
    assert kept == tail[len(tail) - len(kept) :]
    assert sum(map(len, kept)) <= bound
    if sum(map(len, tail)) <= bound:
        assert kept == tail


def _tool_result_event(status: str, text: str, data: dict[str, int]) -> ToolResultEvent:
    content: list[ToolResultContent] = [{"text": text}, {"json": data}]
    return ToolResultEvent(
        {
            "toolUseId": "call-1",
            "status": "error" if status == "error" else "success",
            "content": content[: 1 + len(text) % 2],
        }
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                BidiTextInputEvent, st.text(max_size=30), st.sampled_from(["user", "assistant"])
            ),
            st.binary(min_size=0, max_size=64).map(
                lambda b: BidiAudioInputEvent(base64.b64encode(b).decode(), "pcm", 16000, 1)
            ),
            st.builds(
                lambda b, mime: BidiImageInputEvent(base64.b64encode(b).decode(), mime),
                st.binary(min_size=1, max_size=32),
                st.sampled_from(["image/jpeg", "image/png"]),
            ),
            st.builds(
                _tool_result_event,
                st.sampled_from(["success", "error"]),
                st.text(max_size=10),
                st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
            ),
        ),
        max_size=20,
    ),
    st.sampled_from(["client_content", "realtime"]),
)
def test_every_encoded_input_is_a_valid_client_message(inputs: list[Any], text_input: str) -> None:
    protocol = GeminiLiveProtocol("p", text_input=text_input, tool_names={"call-1": "f"})
    for event in inputs:
        message = json.loads(protocol.encode(event))
        validate_client_message(message)
        if isinstance(event, BidiTextInputEvent):
            if "clientContent" in message:
                (turn,) = message["clientContent"]["turns"]
                assert turn["parts"] == [{"text": event.text}]
            else:
                assert message == {"realtimeInput": {"text": event.text}}
        elif isinstance(event, BidiAudioInputEvent):
            assert message["realtimeInput"]["audio"]["data"] == event.audio
