"""Errors a handler raises, and the SQLSTATE codes they carry.

A handler reports a failed statement by raising :class:`SQLError`; the
session turns it into an ErrorResponse with the same fields PostgreSQL
fills in (severity, code, message, detail, hint, position, ...).  Any
other exception becomes ``XX000`` (internal_error) with its message, and
the session goes on.  :class:`SQLState` names the codes of PostgreSQL's
``errcodes.txt`` that servers use most.
"""

from __future__ import annotations

import enum

from ..constants import ErrorField
from ..exceptions import PygwireError
from ..messages import ErrorResponse, NoticeResponse

__all__ = ["SQLError", "SQLState"]


class SQLState(enum.StrEnum):
    """SQLSTATE codes (PostgreSQL's ``errcodes.txt``), by their condition names.

    Members are strings, so they go wherever a code is expected:
    ``SQLError(SQLState.UNDEFINED_TABLE, 'relation "t" does not exist')``.
    """

    SUCCESSFUL_COMPLETION = "00000"
    WARNING = "01000"
    NO_DATA = "02000"
    CONNECTION_EXCEPTION = "08000"
    CONNECTION_FAILURE = "08006"
    PROTOCOL_VIOLATION = "08P01"
    FEATURE_NOT_SUPPORTED = "0A000"
    CARDINALITY_VIOLATION = "21000"
    DATA_EXCEPTION = "22000"
    STRING_DATA_RIGHT_TRUNCATION = "22001"
    NUMERIC_VALUE_OUT_OF_RANGE = "22003"
    NULL_VALUE_NOT_ALLOWED = "22004"
    INVALID_DATETIME_FORMAT = "22007"
    DATETIME_FIELD_OVERFLOW = "22008"
    DIVISION_BY_ZERO = "22012"
    CHARACTER_NOT_IN_REPERTOIRE = "22021"
    INVALID_PARAMETER_VALUE = "22023"
    INVALID_ESCAPE_SEQUENCE = "22025"
    INVALID_TEXT_REPRESENTATION = "22P02"
    INVALID_BINARY_REPRESENTATION = "22P03"
    BAD_COPY_FILE_FORMAT = "22P04"
    INTEGRITY_CONSTRAINT_VIOLATION = "23000"
    RESTRICT_VIOLATION = "23001"
    NOT_NULL_VIOLATION = "23502"
    FOREIGN_KEY_VIOLATION = "23503"
    UNIQUE_VIOLATION = "23505"
    CHECK_VIOLATION = "23514"
    EXCLUSION_VIOLATION = "23P01"
    INVALID_CURSOR_STATE = "24000"
    INVALID_TRANSACTION_STATE = "25000"
    ACTIVE_SQL_TRANSACTION = "25001"
    READ_ONLY_SQL_TRANSACTION = "25006"
    NO_ACTIVE_SQL_TRANSACTION = "25P01"
    IN_FAILED_SQL_TRANSACTION = "25P02"
    IDLE_IN_TRANSACTION_SESSION_TIMEOUT = "25P03"
    INVALID_SQL_STATEMENT_NAME = "26000"
    INVALID_AUTHORIZATION_SPECIFICATION = "28000"
    INVALID_PASSWORD = "28P01"
    INVALID_CURSOR_NAME = "34000"
    INVALID_CATALOG_NAME = "3D000"
    INVALID_SCHEMA_NAME = "3F000"
    TRANSACTION_ROLLBACK = "40000"
    SERIALIZATION_FAILURE = "40001"
    DEADLOCK_DETECTED = "40P01"
    SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION = "42000"
    INSUFFICIENT_PRIVILEGE = "42501"
    SYNTAX_ERROR = "42601"
    DUPLICATE_COLUMN = "42701"
    AMBIGUOUS_COLUMN = "42702"
    UNDEFINED_COLUMN = "42703"
    UNDEFINED_OBJECT = "42704"
    DUPLICATE_OBJECT = "42710"
    DATATYPE_MISMATCH = "42804"
    WRONG_OBJECT_TYPE = "42809"
    UNDEFINED_FUNCTION = "42883"
    UNDEFINED_TABLE = "42P01"
    UNDEFINED_PARAMETER = "42P02"
    INVALID_CURSOR_DEFINITION = "42P11"
    DUPLICATE_CURSOR = "42P03"
    DUPLICATE_DATABASE = "42P04"
    DUPLICATE_PREPARED_STATEMENT = "42P05"
    DUPLICATE_TABLE = "42P07"
    INDETERMINATE_DATATYPE = "42P18"
    INSUFFICIENT_RESOURCES = "53000"
    DISK_FULL = "53100"
    OUT_OF_MEMORY = "53200"
    TOO_MANY_CONNECTIONS = "53300"
    PROGRAM_LIMIT_EXCEEDED = "54000"
    OBJECT_NOT_IN_PREREQUISITE_STATE = "55000"
    OBJECT_IN_USE = "55006"
    LOCK_NOT_AVAILABLE = "55P03"
    OPERATOR_INTERVENTION = "57000"
    QUERY_CANCELED = "57014"
    ADMIN_SHUTDOWN = "57P01"
    CRASH_SHUTDOWN = "57P02"
    CANNOT_CONNECT_NOW = "57P03"
    DATABASE_DROPPED = "57P04"
    IDLE_SESSION_TIMEOUT = "57P05"
    SYSTEM_ERROR = "58000"
    IO_ERROR = "58030"
    INTERNAL_ERROR = "XX000"
    DATA_CORRUPTED = "XX001"


#: The optional fields, in the order PostgreSQL sends them, by attribute name.
_OPTIONAL: tuple[tuple[str, ErrorField], ...] = (
    ("detail", ErrorField.DETAIL),
    ("hint", ErrorField.HINT),
    ("position", ErrorField.POSITION),
    ("internal_position", ErrorField.INTERNAL_POSITION),
    ("internal_query", ErrorField.INTERNAL_QUERY),
    ("where", ErrorField.WHERE),
    ("schema_name", ErrorField.SCHEMA_NAME),
    ("table_name", ErrorField.TABLE_NAME),
    ("column_name", ErrorField.COLUMN_NAME),
    ("data_type_name", ErrorField.DATA_TYPE_NAME),
    ("constraint_name", ErrorField.CONSTRAINT_NAME),
)


class SQLError(PygwireError):
    """A statement failed: raised by a handler, sent as an ErrorResponse.

    ``code`` is the SQLSTATE (an :class:`SQLState` member or any
    five-character code), ``message`` the primary message.  The other
    fields are optional and named as in the protocol documentation's
    "Error and Notice Message Fields".  ``position`` is a 1-based character
    position in the statement the handler was given; the session shifts it
    when that statement was one of several in a simple query, so that it
    points into the string the client sent.  ``severity`` is ``ERROR``
    (the statement fails, the session goes on) or ``FATAL`` (the session
    ends after the message).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        severity: str = "ERROR",
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
        internal_position: int | None = None,
        internal_query: str | None = None,
        where: str | None = None,
        schema_name: str | None = None,
        table_name: str | None = None,
        column_name: str | None = None,
        data_type_name: str | None = None,
        constraint_name: str | None = None,
    ) -> None:
        if len(code) != 5 or not code.isascii() or not code.isalnum():
            raise ValueError(f"a SQLSTATE is five ASCII letters or digits, not {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = str(code)
        self.message = message
        self.severity = severity
        self.detail = detail
        self.hint = hint
        self.position = position
        self.internal_position = internal_position
        self.internal_query = internal_query
        self.where = where
        self.schema_name = schema_name
        self.table_name = table_name
        self.column_name = column_name
        self.data_type_name = data_type_name
        self.constraint_name = constraint_name

    def fields(self) -> dict[str, str]:
        """The ErrorResponse fields, keyed by their one-letter codes."""
        fields = {
            ErrorField.SEVERITY.value: self.severity,
            ErrorField.SEVERITY_NONLOCALIZED.value: self.severity,
            ErrorField.CODE.value: self.code,
            ErrorField.MESSAGE.value: self.message,
        }
        for attr, code in _OPTIONAL:
            value = getattr(self, attr)
            if value is not None:
                fields[code.value] = str(value)
        return fields

    def to_response(self) -> ErrorResponse:
        """The ErrorResponse that reports this error."""
        return ErrorResponse(fields=self.fields())

    def to_notice(self) -> NoticeResponse:
        """The same fields as a NoticeResponse (for a WARNING or NOTICE)."""
        return NoticeResponse(fields=self.fields())
