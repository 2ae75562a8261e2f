"""Session persistence: an agent's history and state kept in Strands 1.40's layout.

``BidiAgent(session_manager=FileSessionManager("s1", storage_dir="sessions"))`` continues a
conversation Strands wrote there, and Strands continues one written here. See
:class:`RepositorySessionManager` for when records are read and written.
"""

from ._file import FileSessionManager as FileSessionManager
from ._model import Session as Session
from ._model import SessionAgent as SessionAgent
from ._model import SessionException as SessionException
from ._model import SessionMessage as SessionMessage
from ._model import SessionType as SessionType
from ._repository import RepositorySessionManager as RepositorySessionManager
from ._repository import SessionRepository as SessionRepository
from ._s3 import S3SessionManager as S3SessionManager

__all__ = [
    "FileSessionManager",
    "RepositorySessionManager",
    "S3SessionManager",
    "Session",
    "SessionAgent",
    "SessionException",
    "SessionMessage",
    "SessionRepository",
    "SessionType",
]
