"""pygwire: a sans-I/O codec for the PostgreSQL wire protocol (3.0 and 3.2).

Bytes in, messages out; messages in, bytes out.  No sockets, no threads, no
event loop: callers bring their own I/O.  Messages live in
:mod:`pygwire.messages`; the stream decoders in :mod:`pygwire.codec`.
"""

from .codec import BackendMessageDecoder, FrontendMessageDecoder
from .constants import (
    ConnectionPhase,
    MessageDirection,
    StartupRequestCode,
    TransactionStatus,
)
from .exceptions import (
    DecodingError,
    EncodingError,
    FramingError,
    ProtocolError,
    PygwireError,
    StateMachineError,
)

__version__ = "0.3.0"

__all__ = [
    "BackendMessageDecoder",
    "ConnectionPhase",
    "DecodingError",
    "EncodingError",
    "FramingError",
    "FrontendMessageDecoder",
    "MessageDirection",
    "ProtocolError",
    "PygwireError",
    "StartupRequestCode",
    "StateMachineError",
    "TransactionStatus",
    "__version__",
]
