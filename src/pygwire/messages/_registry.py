"""Identifier tables: which class decodes which type byte, per direction.

Built once at import from the classes' own ``identifier`` attributes, so a
message is declared in exactly one place.
"""

from __future__ import annotations

from ._base import PGMessage
from .auth import AuthenticationMessage, PasswordMessage
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
    "BACKEND_BY_ID",
    "BACKEND_CLASSES",
    "FRONTEND_BY_ID",
    "FRONTEND_CLASSES",
    "LONG_BACKEND_TYPES",
    "SMALL_FRONTEND_TYPES",
]

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


def _by_identifier(classes: tuple[type[PGMessage], ...]) -> dict[int, type[PGMessage]]:
    table: dict[int, type[PGMessage]] = {}
    for cls in classes:
        assert cls.identifier[0] not in table, cls
        table[cls.identifier[0]] = cls
    return table


FRONTEND_BY_ID = _by_identifier(FRONTEND_CLASSES)
BACKEND_BY_ID = _by_identifier(BACKEND_CLASSES)

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
