"""pygwire: a sans-I/O codec for the PostgreSQL wire protocol (3.0 and 3.2).

Bytes in, messages out; messages in, bytes out.  No sockets, no threads, no
event loop: callers bring their own I/O.  Messages live in
:mod:`pygwire.messages`, the stream decoders in :mod:`pygwire.codec`, phase
tracking in :mod:`pygwire.state_machine`, and both together in
:mod:`pygwire.connection`.
"""

from ._hotpath import implementation
from .codec import BackendMessageDecoder, FrontendMessageDecoder
from .connection import BackendConnection, Connection, FrontendConnection, ProxyConnection
from .constants import (
    ConnectionPhase,
    MessageDirection,
    StartupRequestCode,
    TransactionStatus,
)
from .exceptions import (
    AuthenticationError,
    DecodingError,
    EncodingError,
    FramingError,
    ProtocolError,
    PygwireError,
    StateMachineError,
)
from .state_machine import BackendStateMachine, FrontendStateMachine, ProtocolState, StateMachine

__version__ = "0.3.0"

__all__ = [
    "AuthenticationError",
    "BackendConnection",
    "BackendMessageDecoder",
    "BackendStateMachine",
    "Connection",
    "ConnectionPhase",
    "DecodingError",
    "EncodingError",
    "FramingError",
    "FrontendConnection",
    "FrontendMessageDecoder",
    "FrontendStateMachine",
    "MessageDirection",
    "ProtocolError",
    "ProtocolState",
    "ProxyConnection",
    "PygwireError",
    "StartupRequestCode",
    "StateMachine",
    "StateMachineError",
    "TransactionStatus",
    "__version__",
    "implementation",
]
