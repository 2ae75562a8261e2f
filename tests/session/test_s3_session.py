"""S3SessionManager against a local S3-compatible server (moto in server mode, loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from trio_bidi import BidiAgent, BidiResponseCompleteEvent
from trio_bidi.session import S3SessionManager, SessionException, SessionMessage
from trio_bidi.testing import ScriptedModel

from ._helpers import FIXTURES, STRANDS_SESSION, read_json, reply, stored_messages

BUCKET = "sessions"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def boto_session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )


@pytest.fixture
def bucket(s3_endpoint: str, boto_session: boto3.Session, request: pytest.FixtureRequest) -> str:
    name = f"{BUCKET}-{abs(hash(request.node.name)) % 10**8}"
    client = boto_session.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=name)
    return name


def _manager(
    endpoint: str, session: boto3.Session, bucket: str, session_id: str, prefix: str = ""
) -> S3SessionManager:
    return S3SessionManager(
        session_id, bucket, prefix=prefix, boto_session=session, endpoint_url=endpoint
    )


async def _one_turn(agent: BidiAgent, model: ScriptedModel, text: str, answer: str) -> None:
    connection = await model.wait_connection()
    await agent.send(text)
    connection.push(*reply(f"r-{len(agent.messages)}", answer))
    async for event in agent.receive():
        if isinstance(event, BidiResponseCompleteEvent):
            return


def _upload_fixture(client: Any, bucket: str, prefix: str) -> None:
    root = FIXTURES / f"session_{STRANDS_SESSION}"
    for path in root.rglob("*.json"):
        key = f"{prefix}/session_{STRANDS_SESSION}/{path.relative_to(root).as_posix()}"
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


async def test_a_strands_written_session_continues_from_s3(
    s3_endpoint: str, boto_session: boto3.Session, bucket: str
) -> None:
    client = boto_session.client("s3", endpoint_url=s3_endpoint)
    _upload_fixture(client, bucket, "app/v1")
    strands_messages = [
        m["message"]
        for m in stored_messages(FIXTURES / f"session_{STRANDS_SESSION}/agents/agent_voice")
    ]
    model = ScriptedModel()
    manager = _manager(s3_endpoint, boto_session, bucket, STRANDS_SESSION, prefix="/app/v1/")
    agent = BidiAgent(model=model, agent_id="voice", session_manager=manager)
    async with agent:
        assert agent.messages == strands_messages
        assert dict(agent.state) == {"user": "ada", "turns": 1}
        await _one_turn(agent, model, "More?", "No more.")
    base = f"app/v1/session_{STRANDS_SESSION}/agents/agent_voice/"
    body = client.get_object(Bucket=bucket, Key=f"{base}messages/message_6.json")["Body"].read()
    record = SessionMessage.from_dict(json.loads(body))
    assert record.message == {"role": "assistant", "content": [{"text": "No more."}]}
    agent_record = client.get_object(Bucket=bucket, Key=f"{base}agent.json")["Body"].read()
    original = read_json(FIXTURES / f"session_{STRANDS_SESSION}/agents/agent_voice/agent.json")
    assert json.loads(agent_record)["created_at"] == original["created_at"]


async def test_s3_round_trip_and_keys(
    s3_endpoint: str, boto_session: boto3.Session, bucket: str
) -> None:
    model = ScriptedModel()
    first = BidiAgent(
        model=model,
        state={"lang": "fr"},
        session_manager=_manager(s3_endpoint, boto_session, bucket, "s1"),
    )
    async with first:
        await _one_turn(first, model, "Bonjour", "Salut")
    client = boto_session.client("s3", endpoint_url=s3_endpoint)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [
        "session_s1/agents/agent_default/agent.json",
        "session_s1/agents/agent_default/messages/message_0.json",
        "session_s1/agents/agent_default/messages/message_1.json",
        "session_s1/session.json",
    ]
    second = BidiAgent(
        model=ScriptedModel(), session_manager=_manager(s3_endpoint, boto_session, bucket, "s1")
    )
    async with second:
        assert second.messages == first.messages
        assert dict(second.state) == {"lang": "fr"}


async def test_s3_a_second_writer_of_the_same_message_is_refused(
    s3_endpoint: str, boto_session: boto3.Session, bucket: str
) -> None:
    manager = _manager(s3_endpoint, boto_session, bucket, "s2")
    record = SessionMessage(message={"role": "user", "content": [{"text": "a"}]}, message_id=0)
    manager.create_message("s2", "default", record)
    with pytest.raises(SessionException, match="already written by another writer"):
        manager.create_message("s2", "default", record)


async def test_s3_a_corrupt_object_is_named(
    s3_endpoint: str, boto_session: boto3.Session, bucket: str, tmp_path: Path
) -> None:
    client = boto_session.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket=bucket, Key="session_bad/session.json", Body=b"{not json")
    agent = BidiAgent(
        model=ScriptedModel(),
        session_manager=_manager(s3_endpoint, boto_session, bucket, "bad"),
    )
    with pytest.raises(SessionException, match=rf"s3://{bucket}/session_bad/session.json"):
        async with agent:
            pass
