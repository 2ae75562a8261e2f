"""S3SessionManager: a session in an S3 bucket, with Strands 1.40's keys and JSON.

::

    <prefix>/session_<session_id>/session.json
    <prefix>/session_<session_id>/agents/agent_<agent_id>/agent.json
    <prefix>/session_<session_id>/agents/agent_<agent_id>/messages/message_<index>.json

Needs ``boto3`` (``pip install trio-bidi[s3]``). Every call runs in a worker thread. An S3
object is replaced whole by each ``PutObject``, so readers never see a torn record. Message
records are created with ``If-None-Match: *``: a second writer creating the same message
index is refused ([`SessionException`][trio_bidi.session.SessionException]) instead of overwriting
it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._model import (
    Session,
    SessionAgent,
    SessionException,
    SessionMessage,
    dumps,
    loads,
    validate_id,
)
from ._repository import RepositorySessionManager

if TYPE_CHECKING:
    import boto3

__all__ = ["S3SessionManager"]

_SESSION_PREFIX = "session_"
_AGENT_PREFIX = "agent_"
_MESSAGE_PREFIX = "message_"


class S3SessionManager(RepositorySessionManager):
    """Keeps a session in S3 (or an S3-compatible store), in Strands' layout.

    Args:
        session_id: The session (no path separators).
        bucket: The bucket.
        prefix: A key prefix for the sessions.
        boto_session: A ``boto3.Session`` (default: a new one for ``region_name``).
        boto_client_config: A ``botocore.config.Config`` for the client.
        region_name: The AWS region (when ``boto_session`` is not given).
        endpoint_url: Another S3-compatible endpoint (not in Strands; for local stores).

    Raises:
        ImportError: boto3 is not installed.
        ValueError: The session id contains a path separator.
    """

    def __init__(
        self,
        session_id: str,
        bucket: str,
        prefix: str = "",
        boto_session: boto3.Session | None = None,
        boto_client_config: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise ImportError("S3SessionManager needs boto3: pip install 'trio-bidi[s3]'") from exc
        self.bucket = bucket
        self.prefix = prefix
        session = boto_session or boto3.Session(region_name=region_name)
        config = Config(user_agent_extra="trio-bidi")
        if boto_client_config is not None:
            config = boto_client_config.merge(config)
        self.client = session.client("s3", config=config, endpoint_url=endpoint_url)
        super().__init__(session_id, self)

    # ------------------------------------------------------------------ keys

    def _session_key(self, session_id: str) -> str:
        session_dir = f"{_SESSION_PREFIX}{validate_id(session_id, 'session')}/"
        prefix = self.prefix.strip("/")
        return f"{prefix}/{session_dir}" if prefix else session_dir

    def _agent_key(self, session_id: str, agent_id: str) -> str:
        agent_dir = f"{_AGENT_PREFIX}{validate_id(agent_id, 'agent')}/"
        return f"{self._session_key(session_id)}agents/{agent_dir}"

    def _message_key(self, session_id: str, agent_id: str, message_id: int) -> str:
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise ValueError(f"message_id={message_id!r} | message id must be an integer")
        return f"{self._agent_key(session_id, agent_id)}messages/{_MESSAGE_PREFIX}{message_id}.json"

    # ------------------------------------------------------------------ objects

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _read(self, key: str) -> Any | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise SessionException(f"{self._where(key)}: cannot be read ({exc})") from exc
        except BotoCoreError as exc:
            raise SessionException(f"{self._where(key)}: cannot be read ({exc})") from exc
        return loads(body, self._where(key))

    def _write(self, key: str, data: dict[str, Any], *, create_only: bool = False) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        body = dumps(data).encode("utf-8")
        try:
            if create_only:  # refused when the object exists (another writer made it)
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            else:
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
                )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if create_only and code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise SessionException(
                    f"{self._where(key)}: already written by another writer; one agent object "
                    "per agent_id at a time"
                ) from exc
            raise SessionException(f"{self._where(key)}: cannot be written ({exc})") from exc
        except BotoCoreError as exc:
            raise SessionException(f"{self._where(key)}: cannot be written ({exc})") from exc

    # ------------------------------------------------------------------ repository

    def create_session(self, session: Session) -> Session:
        """Write ``session.json``."""
        key = f"{self._session_key(session.session_id)}session.json"
        if self._read(key) is not None:
            raise SessionException(f"session {session.session_id!r} already exists")
        self._write(key, session.to_dict())
        return session

    def read_session(self, session_id: str) -> Session | None:
        """Read ``session.json``, or None."""
        key = f"{self._session_key(session_id)}session.json"
        data = self._read(key)
        return None if data is None else Session.from_dict(data, self._where(key))

    def delete_session(self, session_id: str) -> None:
        """Delete every object of the session."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._session_key(session_id)):
            contents = page.get("Contents", [])
            if contents:
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": o["Key"]} for o in contents if "Key" in o]},
                )

    def create_agent(self, session_id: str, session_agent: SessionAgent) -> None:
        """Write ``agent.json``."""
        key = f"{self._agent_key(session_id, session_agent.agent_id)}agent.json"
        self._write(key, session_agent.to_dict())

    def read_agent(self, session_id: str, agent_id: str) -> SessionAgent | None:
        """Read ``agent.json``, or None."""
        key = f"{self._agent_key(session_id, agent_id)}agent.json"
        data = self._read(key)
        return None if data is None else SessionAgent.from_dict(data, self._where(key))

    def update_agent(self, session_id: str, session_agent: SessionAgent) -> None:
        """Rewrite ``agent.json``, keeping its ``created_at``."""
        previous = self.read_agent(session_id, session_agent.agent_id)
        if previous is None:
            raise SessionException(
                f"agent {session_agent.agent_id!r} of session {session_id!r} does not exist"
            )
        session_agent.created_at = previous.created_at
        self.create_agent(session_id, session_agent)

    def create_message(self, session_id: str, agent_id: str, message: SessionMessage) -> None:
        """Write ``message_<index>.json`` (refused when that index exists)."""
        key = self._message_key(session_id, agent_id, message.message_id)
        self._write(key, message.to_dict(), create_only=True)

    def read_message(
        self, session_id: str, agent_id: str, message_id: int
    ) -> SessionMessage | None:
        """Read one message, or None."""
        key = self._message_key(session_id, agent_id, message_id)
        data = self._read(key)
        return None if data is None else SessionMessage.from_dict(data, self._where(key))

    def list_messages(self, session_id: str, agent_id: str) -> list[SessionMessage]:
        """Read every message of the agent, in index order."""
        prefix = f"{self._agent_key(session_id, agent_id)}messages/"
        indexed: list[tuple[int, str]] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if name.startswith(_MESSAGE_PREFIX) and name.endswith(".json"):
                    try:
                        indexed.append(
                            (int(name[len(_MESSAGE_PREFIX) : -len(".json")]), obj["Key"])
                        )
                    except ValueError:
                        raise SessionException(
                            f"{self._where(obj['Key'])}: not a message key"
                        ) from None
        messages = []
        for index, key in sorted(indexed):
            record = SessionMessage.from_dict(self._read(key), self._where(key))
            if record.message_id != index:
                raise SessionException(f"{self._where(key)}: holds message_id {record.message_id}")
            messages.append(record)
        return messages
