"""Protocol constants: request codes, phases, statuses and field codes.

Values are those of the PostgreSQL protocol documentation ("Message
Formats" and "Error and Notice Message Fields").
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthenticationCode",
    "ConnectionPhase",
    "ErrorField",
    "MessageDirection",
    "StartupRequestCode",
    "TransactionStatus",
    "PROTOCOL_V3_GREASE",
    "MAX_CANCEL_KEY_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "MAX_STARTUP_PACKET_LENGTH",
]


class StartupRequestCode(enum.IntEnum):
    """The Int32 that follows the length word of a startup packet."""

    V3_0 = 0x00030000
    V3_2 = 0x00030002
    CANCEL_REQUEST = 80877102
    SSL_REQUEST = 80877103
    GSSENC_REQUEST = 80877104


PROTOCOL_V3_GREASE = 0x0003270F
"""Protocol 3.9999: a version no server implements, sent by libpq to check that
servers and poolers answer with NegotiateProtocolVersion."""

MAX_STARTUP_PACKET_LENGTH = 10_000
"""PostgreSQL's MAX_STARTUP_PACKET_LENGTH: longer startup packets are refused."""

MAX_MESSAGE_LENGTH = 0x3FFFFFFE
"""The largest length word a message may declare: PostgreSQL's
PQ_LARGE_MESSAGE_LIMIT, MaxAllocSize minus one (0x3FFFFFFE), the limit of
both its server and libpq.  The encoder refuses anything larger, which is
what defeats length-overflow smuggling."""

MAX_CANCEL_KEY_LENGTH = 256
"""BackendKeyData / CancelRequest secret keys are at most 256 bytes (3.2)."""


class AuthenticationCode(enum.IntEnum):
    """The Int32 that selects the kind of an Authentication ('R') message."""

    OK = 0
    KERBEROS_V5 = 2
    CLEARTEXT_PASSWORD = 3
    MD5_PASSWORD = 5
    SCM_CREDENTIAL = 6
    GSS = 7
    GSS_CONTINUE = 8
    SSPI = 9
    SASL = 10
    SASL_CONTINUE = 11
    SASL_FINAL = 12


class TransactionStatus(enum.StrEnum):
    """The status byte of ReadyForQuery."""

    IDLE = "I"
    IN_TRANSACTION = "T"
    ERROR_TRANSACTION = "E"


class MessageDirection(enum.StrEnum):
    """Who sends a message: the client (frontend) or the server (backend)."""

    FRONTEND = "frontend"
    BACKEND = "backend"


class ConnectionPhase(enum.Enum):
    """Where a connection stands; decides framing and which messages fit.

    ``SSL_NEGOTIATION`` and ``GSS_NEGOTIATION`` cover the wait for the
    one-byte answer to SSLRequest / GSSENCRequest.  The ``AUTHENTICATING_*``
    sub-phases tell which reply a ``p`` message carries.
    """

    STARTUP = "startup"
    SSL_NEGOTIATION = "ssl_negotiation"
    GSS_NEGOTIATION = "gss_negotiation"
    AUTHENTICATING = "authenticating"
    AUTHENTICATING_SASL_INITIAL = "authenticating_sasl_initial"
    AUTHENTICATING_SASL_CONTINUE = "authenticating_sasl_continue"
    AUTHENTICATING_GSS = "authenticating_gss"
    INITIALIZATION = "initialization"
    READY = "ready"
    SIMPLE_QUERY = "simple_query"
    EXTENDED_QUERY = "extended_query"
    COPY_IN = "copy_in"
    COPY_OUT = "copy_out"
    COPY_BOTH = "copy_both"
    FUNCTION_CALL = "function_call"
    TERMINATED = "terminated"
    FAILED = "failed"

    # Members are singletons compared by identity, so hashing by identity
    # is consistent; Enum's own __hash__ is Python code, and the state
    # machine hashes a phase for every message.
    __hash__ = object.__hash__


class ErrorField(enum.StrEnum):
    """Field codes of ErrorResponse and NoticeResponse."""

    SEVERITY = "S"
    SEVERITY_NONLOCALIZED = "V"
    CODE = "C"
    MESSAGE = "M"
    DETAIL = "D"
    HINT = "H"
    POSITION = "P"
    INTERNAL_POSITION = "p"
    INTERNAL_QUERY = "q"
    WHERE = "W"
    SCHEMA_NAME = "s"
    TABLE_NAME = "t"
    COLUMN_NAME = "c"
    DATA_TYPE_NAME = "d"
    CONSTRAINT_NAME = "n"
    FILE = "F"
    LINE = "L"
    ROUTINE = "R"
