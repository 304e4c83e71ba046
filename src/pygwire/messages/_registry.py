"""Identifier tables: which class decodes which type byte, per direction.

Built once at import from the classes' own ``identifier`` attributes, so a
message is declared in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable

from .._wire import Reader
from ._base import PGMessage
from .auth import AUTH_CLASSES, AuthenticationMessage, PasswordMessage
from .copy import CopyBothResponse, CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse
from .errors import ErrorResponse, NoticeResponse
from .extended_query import (
    Bind,
    BindComplete,
    Close,
    CloseComplete,
    Describe,
    Execute,
    Flush,
    NoData,
    ParameterDescription,
    Parse,
    ParseComplete,
    PortalSuspended,
    Sync,
)
from .misc import FunctionCall, FunctionCallResponse, Terminate
from .simple_query import (
    CommandComplete,
    DataRow,
    EmptyQueryResponse,
    Query,
    ReadyForQuery,
    RowDescription,
)
from .status import BackendKeyData, NegotiateProtocolVersion, NotificationResponse, ParameterStatus

__all__ = [
    "BACKEND_CLASSES",
    "BACKEND_PARSERS",
    "FRONTEND_CLASSES",
    "FRONTEND_PARSERS",
    "LONG_BACKEND_TYPES",
    "SMALL_FRONTEND_TYPES",
]

Parser = Callable[[Reader], PGMessage]

FRONTEND_CLASSES: tuple[type[PGMessage], ...] = (
    Bind, Close, CopyData, CopyDone, CopyFail, Describe, Execute, Flush,
    FunctionCall, Parse, PasswordMessage, Query, Sync, Terminate,
)  # fmt: skip

BACKEND_CLASSES: tuple[type[PGMessage], ...] = (
    AuthenticationMessage, BackendKeyData, BindComplete, CloseComplete,
    CommandComplete, CopyBothResponse, CopyData, CopyDone, CopyInResponse,
    CopyOutResponse, DataRow, EmptyQueryResponse, ErrorResponse,
    FunctionCallResponse, NegotiateProtocolVersion, NoData, NoticeResponse,
    NotificationResponse, ParameterDescription, ParameterStatus,
    ParseComplete, PortalSuspended, ReadyForQuery, RowDescription,
)  # fmt: skip


def _read_authentication(r: Reader) -> PGMessage:
    """'R': the Int32 code at the start of the payload picks the class."""
    if r.remaining < 4:
        r.fail("authentication code needs 4 bytes")
    code = int.from_bytes(r.buf[r.pos : r.pos + 4], "big", signed=True)
    cls = AUTH_CLASSES.get(code)
    if cls is None:
        r.fail(f"unknown authentication code {code}")
    r.name = cls.__name__
    return cls._read(r)


def _parsers(classes: tuple[type[PGMessage], ...]) -> dict[int, tuple[str, Parser]]:
    table: dict[int, tuple[str, Parser]] = {}
    for cls in classes:
        ident = cls.identifier[0]
        assert ident not in table, cls
        if cls is AuthenticationMessage:
            table[ident] = ("Authentication", _read_authentication)
        else:
            table[ident] = (cls.__name__, cls._read)
    return table


FRONTEND_PARSERS = _parsers(FRONTEND_CLASSES)
BACKEND_PARSERS = _parsers(BACKEND_CLASSES)

#: Frontend types PostgreSQL reads with PQ_SMALL_MESSAGE_LIMIT.
SMALL_FRONTEND_TYPES = frozenset(
    c.identifier[0] for c in (Close, CopyDone, CopyFail, Describe, Execute, Flush, Sync, Terminate)
)

#: Backend types libpq lets exceed its small limit (they carry user data),
#: plus ParameterDescription, which reaches 262 KB at 65535 parameters.
LONG_BACKEND_TYPES = frozenset(
    c.identifier[0]
    for c in (
        CopyData, DataRow, ErrorResponse, FunctionCallResponse, NoticeResponse,
        NotificationResponse, ParameterDescription, RowDescription,
    )
)  # fmt: skip
