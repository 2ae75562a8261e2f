"""Model providers and the model contract they share."""

from ._base import BidiConnection as BidiConnection
from ._base import BidiModel as BidiModel
from ._base import ConnectionBase as ConnectionBase
from ._base import SendableEvent as SendableEvent

__all__ = ["BidiConnection", "BidiModel", "ConnectionBase", "SendableEvent"]
