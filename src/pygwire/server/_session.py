"""One client connection on the server side: startup, the session, the end.

A :class:`Session` runs as one asyncio task per connection.  It reads the
client's messages through a strict :class:`~pygwire.BackendConnection`
(every message both ways is validated by the state model), answers them
in order, and calls the session's :class:`Handler` for the statements.
Output is gathered and written when the session is about to wait for more
input, at a Flush, and every 64 KiB; while the client does not read, the
session waits (the stream's drain) before it reads further requests.

Each call into the handler runs in a task of its own, which a
CancelRequest with this session's key cancels: the client then gets
57014, as from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..auth import AuthMethod, ServerAuthenticator, error_response
from ..connection import BackendConnection
from ..constants import TransactionStatus
from ..exceptions import AuthenticationError, ProtocolError, PygwireError, StateMachineError
from ..messages import (
    BackendKeyData,
    Bind,
    BindComplete,
    CancelRequest,
    Close,
    CloseComplete,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    DirectSSLHandshake,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    Flush,
    FrontendMessage,
    FunctionCall,
    GSSEncRequest,
    GSSEncResponse,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PGMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Sync,
    Terminate,
)
from ..sql import SqlSyntaxError, parameters, statement_spans
from ..tls import ALPN_POSTGRESQL, TLSEndpoint, TLSError
from ..types import Oid, TypeCodecError
from ._builtins import checked_setting, describe_builtin, is_transaction_exit, startup_settings
from ._copy import BINARY_TRAILER, CopyReader, binary_header, binary_row, text_row
from ._errors import SQLError, SQLState
from ._portal import (
    Portal,
    RowSource,
    description_columns,
    encode_row,
    expand_formats,
    field_descriptions,
    resolve_columns,
)
from ._results import CopyIn, CopyOut, Description, Statement
from ._stream import ClientStream
from ._values import codec_error, decoder, encoder

if TYPE_CHECKING:
    from ._handler import Handler
    from ._server import Server

__all__ = ["REPORTED_PARAMETERS", "Session"]

log = logging.getLogger("pygwire.server")

T = TypeVar("T")

REPORTED_PARAMETERS: dict[str, str] = {
    name.lower(): name
    for name in (
        "application_name",
        "client_encoding",
        "DateStyle",
        "default_transaction_read_only",
        "in_hot_standby",
        "integer_datetimes",
        "IntervalStyle",
        "is_superuser",
        "scram_iterations",
        "search_path",
        "server_encoding",
        "server_version",
        "session_authorization",
        "standard_conforming_strings",
        "TimeZone",
    )
}
"""Parameters PostgreSQL reports with ParameterStatus (GUC_REPORT), at the
start and whenever they change; lower-case name -> spelling."""

#: Output is written out once this much is gathered.
FLUSH_SIZE = 64 * 1024
#: Rows taken from a result at a time.
BATCH = 256
#: Bytes of notifications a session keeps for a client that cannot take
#: them now (inside a transaction block, or not reading); beyond this its
#: session ends (53200) rather than the server's memory growing.
NOTIFY_BACKLOG = 8 * 1024 * 1024

#: Statements that never open an implicit transaction block themselves.
_TRANSACTION_KEYWORDS = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"})

#: Queries described, when the handler cannot say, by running them with
#: NULL parameters (they only read; WITH may hold an INSERT).
_DESCRIBED_BY_RUNNING = frozenset({"SELECT", "VALUES", "TABLE"})

_IDLE = TransactionStatus.IDLE
_IN = TransactionStatus.IN_TRANSACTION
_FAILED = TransactionStatus.ERROR_TRANSACTION


class _Closed(Exception):
    """The session ends; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Prepared:
    """A prepared statement (Parse): its text, parameter types, shape."""

    sql: str
    types: list[int]
    description: Description | None = None
    described: bool = False
    # The client was sent its RowDescription (Describe S): its portals must
    # keep those types, whatever running the statement would infer.
    reported: bool = False


class Session:
    """The server side of one client connection.

    Created for every accepted connection (cancel requests included) and
    handed to the server's ``session_started`` hook before anything is
    read.  Its attributes describe the connection:

    * ``connection``: the strict :class:`~pygwire.BackendConnection`
      (``connection.observe(...)`` sees every message both ways);
    * ``startup`` (the StartupMessage), ``user``, ``database``,
      ``protocol_version`` (``0x30000`` or ``0x30002``), ``process_id`` and
      ``secret_key`` (what BackendKeyData sent; 32 bytes in 3.2);
    * ``peer`` (the client's address), ``tls_version``, ``alpn_protocol``,
      ``direct_tls`` (True for direct SSL, False after SSLRequest, None
      without TLS) and ``tls_certificate`` (the server's DER certificate,
      channel binding's input, under TLS);
    * ``authenticator`` and ``auth_error``: the authentication exchange and
      what ended it, if it failed;
    * ``cancel_request``: set when the connection carried a CancelRequest;
    * ``handler`` (once authenticated), ``transaction_status``,
      ``parameters`` (the session's settings), ``listening`` (LISTEN
      channels), ``terminated`` (the client sent Terminate) and
      ``end_reason`` once it ended.
    """

    def __init__(self, server: Server, stream: ClientStream) -> None:
        self.server = server
        self.stream = stream
        self.connection = BackendConnection(
            strict=server.strict, max_message_size=server.max_message_size
        )
        self.peer: object = stream.peer
        self.process_id = 0
        self.secret_key = b""
        self.startup: StartupMessage | None = None
        self.cancel_request: CancelRequest | None = None
        self.protocol_version = 0
        self.tls_version: str | None = None
        self.alpn_protocol: str | None = None
        self.direct_tls: bool | None = None
        self.tls_certificate: bytes | None = None
        self.authenticator: ServerAuthenticator | None = None
        self.auth_error: AuthenticationError | None = None
        self.handler: Handler | None = None
        self.transaction_status = _IDLE
        self.listening: set[str] = set()
        self.terminated = False
        self.end_reason = ""
        #: The asyncio task running the session.
        self.task: asyncio.Task[None] | None = None
        self._settings: dict[str, tuple[str, str]] = {}
        self._initial: dict[str, tuple[str, str]] = {}
        self._changed: dict[str, None] = {}
        self._chunks: list[bytes] = []
        self._pending = 0
        self._messages: Any = None
        self._ready = False  # ReadyForQuery sent, nothing received since
        self._waiting = False  # blocked on the client (reading or draining)
        self._shutdown = False
        self._in_session = False
        self._running: asyncio.Task[Any] | None = None
        self._statements: dict[str, _Prepared] = {}
        self._portals: dict[str, Portal] = {}
        self._current: Portal | None = None
        self._skipping = False
        self._implicit = False  # the handler was told an implicit block began
        self._multi = False  # the running Query holds several statements
        self._notifications: list[NotificationResponse] = []
        self._tx_notifies: list[tuple[str, str]] = []
        self._tx_cursors: set[str] = set()
        self._tx_settings: dict[str, tuple[str, str]] | None = None  # as at BEGIN
        self._tx_local: set[str] = set()
        self._raw_hook = False
        self._reported = frozenset(name.lower() for name in server.reported)
        self._backlog = 0  # bytes of the notifications waiting
        self._delivery: asyncio.Task[None] | None = None
        self._end_error: SQLError | None = None  # why the session is to end

    # -- what the connection is ------------------------------------------------------------------
    @property
    def user(self) -> str:
        """The user name from the StartupMessage ("" before it)."""
        return self.startup.params.get("user", "") if self.startup is not None else ""

    @property
    def database(self) -> str:
        """The database asked for (the user name by default, as PostgreSQL)."""
        if self.startup is None:
            return ""
        return self.startup.params.get("database") or self.user

    @property
    def tls(self) -> bool:
        """True when the connection runs under TLS."""
        return self.stream.tls is not None

    def __repr__(self) -> str:
        return f"<Session pid={self.process_id} user={self.user!r} {self.connection.phase.name}>"

    # -- output ----------------------------------------------------------------------------------
    def send(self, msg: PGMessage) -> None:
        """Validate and encode ``msg``; it goes out with the next flush.

        For handlers that answer messages themselves (:meth:`Handler.message`)
        or push messages of their own; the state model refuses a message
        that cannot come now (:class:`~pygwire.StateMachineError`).
        """
        data = self.connection.send(msg)
        self._chunks.append(data)
        self._pending += len(data)
        if self._pending >= FLUSH_SIZE:
            self.flush()

    def flush(self) -> None:
        """Write what was sent so far to the connection."""
        if self._chunks:
            data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks.clear()
            self._pending = 0
            self.stream.write(data)

    async def drain(self) -> None:
        """Flush, then wait while the client is not reading fast enough."""
        self.flush()
        await self.stream.drain()

    def notice(
        self,
        code: str,
        message: str,
        *,
        severity: str = "NOTICE",
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        """Send a NoticeResponse (a warning, a notice) to the client now."""
        error = SQLError(code, message, severity=severity, detail=detail, hint=hint)
        self.send(NoticeResponse(fields=error.fields()))

    def notify(self, channel: str, payload: str = "", process_id: int | None = None) -> None:
        """Push a NotificationResponse: at once if the session is idle, else
        just before its next ReadyForQuery outside a transaction (where
        PostgreSQL delivers them).  ``process_id`` is the notifying
        session's (this one's by default)."""
        if self._shutdown or not self.connection.is_active:
            # The session is ending (perhaps its connection failed while its
            # handler closes): nothing more can reach this client.
            return
        msg = NotificationResponse(
            process_id=self.process_id if process_id is None else process_id,
            channel=channel,
            payload=payload,
        )
        idle = self._in_session and self._ready and self.transaction_status is _IDLE
        if idle and not self.stream.backed_up:
            self.send(msg)
            self.flush()
            return
        self._notifications.append(msg)
        self._backlog += len(channel) + len(payload)
        if self._backlog > NOTIFY_BACKLOG:
            self._notifications.clear()
            self._end(
                SQLError(
                    SQLState.OUT_OF_MEMORY,
                    "out of memory",
                    detail="Too many notifications wait for the client to read them.",
                )
            )
        elif idle and self._delivery is None:
            self._delivery = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        """Send the waiting notifications once the client reads again, if
        the session is still idle (else they go before ReadyForQuery)."""
        try:
            await self.stream.drain()
            if self._ready and self.transaction_status is _IDLE and not self._shutdown:
                self._send_notifications()
                self.flush()
        finally:
            self._delivery = None

    def _send_notifications(self) -> None:
        for note in self._notifications:
            self.send(note)
        self._notifications.clear()
        self._backlog = 0

    # -- settings --------------------------------------------------------------------------------
    @property
    def parameters(self) -> Mapping[str, str]:
        """The session's settings (what SHOW reads), by their spelling."""
        return {name: value for name, value in self._settings.values()}

    def parameter(self, name: str) -> str | None:
        """A setting's value (names are case-insensitive), None if unset."""
        found = self._settings.get(name.lower())
        return found[1] if found is not None else None

    def parameter_name(self, name: str) -> str:
        """A setting's own spelling (``timezone`` -> ``TimeZone``)."""
        found = self._settings.get(name.lower())
        if found is not None:
            return found[0]
        return REPORTED_PARAMETERS.get(name.lower(), name.lower())

    def set_parameter(self, name: str, value: str) -> None:
        """Set a setting; a reported one goes to the client (ParameterStatus)
        before the next ReadyForQuery, or at once during the startup."""
        key = name.lower()
        spelling = self.parameter_name(name)
        old = self._settings.get(key)
        self._settings[key] = (spelling, value)
        if self._is_reported(key) and (old is None or old[1] != value):
            self._changed[key] = None

    def _is_reported(self, key: str) -> bool:
        """True for a setting sent with ParameterStatus (``key`` lower-case):
        PostgreSQL's, or one the server names in ``reported``."""
        return key in REPORTED_PARAMETERS or key in self._reported

    def begin_transaction(self) -> None:
        """A transaction block begins (BEGIN): the settings are saved, as a
        rollback restores them."""
        self.transaction_status = _IN
        self._tx_settings = dict(self._settings)
        self._tx_local.clear()

    def set_local(self, name: str) -> None:
        """SET LOCAL: the setting goes back to its value before the
        transaction block when the block ends, committed or not."""
        self._tx_local.add(name.lower())

    def _restore_settings(self, keys: set[str] | None) -> None:
        """Back to the settings saved at BEGIN (only ``keys``, if given)."""
        saved = self._tx_settings
        if saved is None:  # no BEGIN: the status was set from outside
            return
        for key in list(self._settings) if keys is None else keys:
            if key not in saved:
                self._settings.pop(key, None)
        for key, (spelling, value) in saved.items():
            if keys is None or key in keys:
                self.set_parameter(spelling, value)

    def reset_parameter(self, name: str | None) -> None:
        """Back to the value at the start of the session (None: all of them)."""
        keys = list(self._settings) if name is None else [name.lower()]
        for key in keys:
            initial = self._initial.get(key)
            if initial is not None:
                self.set_parameter(initial[0], initial[1])
            elif key in self._settings:
                del self._settings[key]

    # -- LISTEN / NOTIFY -------------------------------------------------------------------------
    def listen(self, channel: str) -> None:
        """Receive the notifications of ``channel``."""
        self.listening.add(channel)

    def unlisten(self, channel: str | None) -> None:
        """Stop listening to ``channel`` (None: to every channel)."""
        if channel is None:
            self.listening.clear()
        else:
            self.listening.discard(channel)

    def queue_notification(self, channel: str, payload: str) -> None:
        """NOTIFY: sent to every listening session when the transaction
        commits (at once outside a transaction block)."""
        if self.transaction_status is _IDLE:
            self.server.notify(channel, payload, sender=self.process_id)
        else:
            self._tx_notifies.append((channel, payload))

    # -- portals, cursors, statements ------------------------------------------------------------
    def has_portal(self, name: str) -> bool:
        """True if a portal or cursor of this name is open."""
        return name in self._portals

    def add_cursor(self, portal: Portal) -> None:
        """Open a cursor (DECLARE): a portal by name, as PostgreSQL keeps them."""
        if portal.name in self._portals:
            raise SQLError(SQLState.DUPLICATE_CURSOR, f'cursor "{portal.name}" already exists')
        self._portals[portal.name] = portal
        if self.transaction_status is not _IDLE:
            self._tx_cursors.add(portal.name)

    def cursor(self, name: str) -> Portal:
        """The open cursor or portal ``name`` (34000 if there is none)."""
        portal = self._portals.get(name)
        if portal is None:
            raise SQLError(SQLState.INVALID_CURSOR_NAME, f'cursor "{name}" does not exist')
        return portal

    async def close_portal(self, name: str | None, *, cursors_only: bool = False) -> None:
        """Close a portal or cursor (None: all of them, or all cursors)."""
        if name is not None:
            portal = self._portals.pop(name, None)
            if portal is not None:
                await portal.close()
            return
        await self._close_portals(lambda key, portal: cursors_only and not portal.cursor)

    async def _close_portals(self, spare: Callable[[str, Portal], bool]) -> None:
        """Close every portal but the running one and those ``spare`` keeps."""
        for key, portal in list(self._portals.items()):
            if portal is self._current or spare(key, portal):
                continue
            del self._portals[key]
            await portal.close()

    def deallocate(self, name: str | None) -> None:
        """Drop a prepared statement (None: all of them)."""
        if name is None:
            self._statements.clear()
        elif self._statements.pop(name, None) is None:
            raise SQLError(
                SQLState.INVALID_SQL_STATEMENT_NAME, f'prepared statement "{name}" does not exist'
            )

    async def end_transaction(self, *, committed: bool) -> None:
        """The transaction block is over: back to idle; portals and cursors
        of the transaction close (WITH HOLD cursors survive a commit), and
        NOTIFYs are sent on commit, dropped on rollback."""
        self.transaction_status = _IDLE
        self._restore_settings(self._tx_local if committed else None)
        self._tx_settings = None
        self._tx_local.clear()
        held = [
            portal
            for key, portal in self._portals.items()
            if portal.hold and (committed or key not in self._tx_cursors)
        ]
        for portal in held:
            await portal.materialize()
        await self._close_portals(lambda key, portal: portal in held)
        self._tx_cursors.clear()
        notifies, self._tx_notifies = self._tx_notifies, []
        if committed:
            for channel, payload in notifies:
                self.server.notify(channel, payload, sender=self.process_id)

    # -- cancel and terminate --------------------------------------------------------------------
    def cancel(self) -> bool:
        """Cancel the statement running now, if any (the client gets 57014)."""
        running = self._running
        if running is None or running.done():
            return False
        running.cancel()
        return True

    def shutdown(self) -> None:
        """End the session with 57P01 once it waits for the client (at once
        if it is waiting now); a running statement may finish first."""
        self._end(
            SQLError(SQLState.ADMIN_SHUTDOWN, "terminating connection due to administrator command")
        )

    def _end(self, error: SQLError) -> None:
        """End the session with ``error`` once it waits for the client."""
        if self._shutdown:
            return
        self._shutdown = True
        self._end_error = error
        if self._waiting and self.task is not None:
            self.task.cancel()

    # -- the session's life ----------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it ends (the session's task)."""
        try:
            try:
                async with asyncio.timeout(self.server.startup_timeout):
                    started = await self._startup()
            except TimeoutError:
                if self.startup is not None:
                    self._fatal(
                        SQLError(SQLState.QUERY_CANCELED, "canceling authentication due to timeout")
                    )
                raise _Closed("timed out during the startup") from None
            if started:
                await self._serve()
        except _Closed as exc:
            self.end_reason = exc.reason
        except asyncio.CancelledError:
            if not self._shutdown:
                self.end_reason = "cancelled"
                raise
            error = self._end_error
            assert error is not None
            self._fatal(error)
            self.end_reason = (
                "the server is shutting down"
                if error.code == SQLState.ADMIN_SHUTDOWN
                else f"FATAL {error.code}: {error.message}"
            )
        except TLSError as exc:
            if self.startup is None:
                # TLS was never established (a failed handshake, no ALPN).
                self.direct_tls = None
                self.tls_certificate = None
            self.end_reason = f"TLS: {exc}"
        except ProtocolError as exc:
            error = SQLError(
                SQLState.PROTOCOL_VIOLATION, f"invalid frontend message: {exc}", severity="FATAL"
            )
            # The state model has failed and refuses to send; PostgreSQL
            # still says why it hangs up (FATAL 08P01), in the session as
            # before it (a bad startup packet), so the bytes go out past it.
            with contextlib.suppress(PygwireError):
                self.flush()
            self.stream.write(error.to_response().to_wire())
            self.end_reason = f"protocol violation: {exc}"
        except OSError as exc:
            self.end_reason = f"connection error: {exc}"
        except Exception as exc:
            log.exception("session %d failed", self.process_id)
            self._fatal(SQLError(SQLState.INTERNAL_ERROR, str(exc) or type(exc).__name__))
            self.end_reason = f"internal error: {exc!r}"
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self._shutdown = True
        self._ready = False
        if self._delivery is not None:
            self._delivery.cancel()
        with contextlib.suppress(PygwireError):
            self.flush()
        for portal in list(self._portals.values()):
            try:
                await portal.close()
            except Exception:
                log.exception("closing a portal of session %d", self.process_id)
        self._portals.clear()
        if self.handler is not None:
            try:
                await self.handler.close()
            except Exception:
                log.exception("the handler of session %d failed to close", self.process_id)
        self.stream.close()
        self.server.session_ended(self)

    def _fatal(self, error: SQLError) -> None:
        """Tell the client why its session ends, where the protocol allows."""
        error.severity = "FATAL"
        try:
            self.send(error.to_response())
            self.flush()
        except PygwireError:
            pass

    # -- reading ---------------------------------------------------------------------------------
    async def _next(self) -> PGMessage:
        """The client's next message (flushing what was sent before waiting)."""
        while True:
            messages = self._messages
            if messages is not None:
                msg: PGMessage | None = next(messages, None)
                if msg is not None:
                    self._ready = False
                    return msg
                self._messages = None
            if self._shutdown and self._in_session:
                raise asyncio.CancelledError
            self._waiting = True
            try:
                await self.drain()
                data = await self._read()
            finally:
                self._waiting = False
            self._messages = self.connection.receive(data)

    async def _read(self) -> bytes:
        timeout: float | None = None
        if self._ready:
            idle = self.transaction_status is _IDLE
            timeout = self.server.idle_timeout if idle else self.server.idle_in_transaction_timeout
        try:
            async with asyncio.timeout(timeout):
                data = await self.stream.read()
        except TimeoutError:
            if self.transaction_status is _IDLE:
                code = SQLState.IDLE_SESSION_TIMEOUT
                text = "terminating connection due to idle-session timeout"
            else:
                code = SQLState.IDLE_IN_TRANSACTION_SESSION_TIMEOUT
                text = "terminating connection due to idle-in-transaction timeout"
            self._fatal(SQLError(code, text))
            raise _Closed("idle timeout") from None
        if not data:
            error = self.stream.error
            if isinstance(error, TLSError):
                raise error
            raise _Closed("the client closed the connection")
        return data

    def _refuse_if_aborted(self, sql: str) -> None:
        """In a failed transaction block only what ends it runs (25P02)."""
        if sql and self.transaction_status is _FAILED and not is_transaction_exit(Statement(sql)):
            raise SQLError(
                SQLState.IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            )

    # -- user code -------------------------------------------------------------------------------
    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run handler code in a task a CancelRequest can cancel."""
        task = asyncio.get_running_loop().create_task(coro)
        self._running = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the session itself is being stopped
            raise SQLError(
                SQLState.QUERY_CANCELED, "canceling statement due to user request"
            ) from None
        finally:
            self._running = None

    def _as_sql_error(self, exc: BaseException) -> SQLError:
        if isinstance(exc, SQLError):
            return exc
        if isinstance(exc, TypeCodecError):
            return codec_error(exc)
        if isinstance(exc, SqlSyntaxError):
            return SQLError(SQLState.SYNTAX_ERROR, exc.reason, position=exc.position)
        log.error(
            "session %d: the handler raised %s", self.process_id, type(exc).__name__, exc_info=exc
        )
        return SQLError(SQLState.INTERNAL_ERROR, str(exc) or type(exc).__name__)

    def _error(self, exc: BaseException, offset: int = 0) -> None:
        """Report a failed request; a FATAL one ends the session."""
        if isinstance(exc, StateMachineError):
            # The session itself produced a message the model refuses.
            raise exc
        error = self._as_sql_error(exc)
        if error.severity in ("FATAL", "PANIC"):
            self._fatal(error)
            raise _Closed(f"FATAL {error.code}: {error.message}")
        fields = error.fields()
        if error.position is not None:
            fields["P"] = str(error.position + offset)
        self.send(ErrorResponse(fields=fields))
        if self.transaction_status is _IN:
            self.transaction_status = _FAILED

    # -- startup ---------------------------------------------------------------------------------
    async def _startup(self) -> bool:
        """Encryption, startup packet, authentication; False if the
        connection ends there (a cancel request, a refusal)."""
        server = self.server
        while True:
            msg = await self._next()
            if isinstance(msg, SSLRequest):
                context = server.tls_context
                if context is None or self.stream.tls is not None:
                    self.send(SSLResponse.NOT_SUPPORTED)
                    continue
                self.send(SSLResponse.SUPPORTED)
                self.flush()
                self.stream.start_tls(TLSEndpoint(context, server_side=True))
                self.direct_tls = False
                self.tls_certificate = server.tls_certificate
            elif isinstance(msg, GSSEncRequest):
                self.send(GSSEncResponse.NOT_SUPPORTED)
            elif isinstance(msg, DirectSSLHandshake):
                context = server.tls_context
                if context is None:
                    # PostgreSQL closes the connection: it cannot speak TLS.
                    raise _Closed("direct SSL, but the server has no certificate")
                endpoint = TLSEndpoint(context, server_side=True, require_alpn=ALPN_POSTGRESQL)
                self.stream.start_tls(endpoint, msg.data)
                self.direct_tls = True
                self.tls_certificate = server.tls_certificate
            elif isinstance(msg, CancelRequest):
                self.cancel_request = msg
                server.cancel(msg.process_id, msg.secret_key)
                raise _Closed("cancel request")
            elif isinstance(msg, StartupMessage):
                self.startup = msg
                break
            else:  # pragma: no cover - the state model refuses anything else
                raise _Closed(f"unexpected {type(msg).__name__} at startup")
        tls = self.stream.tls
        if tls is not None:
            self.alpn_protocol = tls.alpn_protocol
            self.tls_version = tls.version
        self._negotiate(msg)
        if not self.user:
            self._fatal(
                SQLError(
                    SQLState.INVALID_AUTHORIZATION_SPECIFICATION,
                    "no PostgreSQL user name specified in startup packet",
                )
            )
            raise _Closed("no user name")
        try:
            self.process_id = server.admit(self)
        except SQLError as exc:
            self._fatal(exc)
            raise _Closed(f"refused: {exc.message}") from None
        if not await self._authenticate():
            return False
        self.secret_key = secrets.token_bytes(32 if self.protocol_version >= 0x00030002 else 4)
        handler = server.handler(self)
        self.handler = handler
        self._raw_hook = type(handler).message is not _handler_message()
        try:
            self._init_parameters()
        except SQLError as exc:
            self._fatal(exc)
            raise _Closed(f"refused: {exc.message}") from None
        try:
            await self._call(handler.startup())
        except Exception as exc:
            error = self._as_sql_error(exc)
            self._fatal(error)
            raise _Closed(f"refused by the handler: {error.message}") from None
        self._report_changes()
        self.send(BackendKeyData(process_id=self.process_id, secret_key=self.secret_key))
        self._in_session = True
        self._ready_for_query()
        return True

    def _negotiate(self, startup: StartupMessage) -> None:
        """NegotiateProtocolVersion for a newer minor or ``_pq_.`` options."""
        requested = startup.protocol_version & 0xFFFF
        newest = self.server.newest_minor
        unrecognized = [name for name in startup.params if name.startswith("_pq_.")]
        if requested > newest or unrecognized:
            self.send(
                NegotiateProtocolVersion(
                    newest_minor=min(requested, newest), unrecognized=unrecognized
                )
            )
        self.protocol_version = (3 << 16) | min(requested, newest)

    async def _authenticate(self) -> bool:
        users = self.server.users
        user = self.user
        method: AuthMethod
        if users is None:
            method, secret, mock = "trust", None, b""
        else:
            role = await users.role(user, self)
            method = role.method if role is not None else users.default_method
            secret = role.secret if role is not None else None
            mock = users.mock_secret
        tls_certificate = self.tls_certificate if self.tls else None
        auth = ServerAuthenticator(
            method, user, secret, tls_certificate=tls_certificate, mock_secret=mock
        )
        self.authenticator = auth
        replies = auth.start()
        while True:
            for reply in replies:
                self.send(reply)
            if auth.authenticated:
                return True
            msg = await self._next()
            if isinstance(msg, Terminate):
                self.terminated = True
                raise _Closed("the client ended the authentication")
            assert isinstance(msg, FrontendMessage)  # the decoder yields nothing else
            try:
                replies = auth.handle(msg)
            except AuthenticationError as exc:
                self.auth_error = exc
                self.send(error_response(exc))
                self.flush()
                raise _Closed(f"authentication failed: {exc.message}") from None

    def _init_parameters(self) -> None:
        assert self.startup is not None
        values = dict(self.server.parameters)
        values["application_name"] = ""
        values["session_authorization"] = self.user
        for name, value in values.items():
            self._settings[name.lower()] = (name, value)
            if self._is_reported(name.lower()):
                self._changed[name.lower()] = None
        # The client's settings, as SET takes them; RESET goes back to them.
        for name, value in startup_settings(self.startup.params):
            self.set_parameter(name, checked_setting(self, name, value))
        self._initial = dict(self._settings)

    def _report_changes(self) -> None:
        for key in self._changed:
            found = self._settings.get(key)
            if found is not None:
                self.send(ParameterStatus(name=found[0], value=found[1]))
        self._changed.clear()

    def _ready_for_query(self) -> None:
        self._report_changes()
        if self.transaction_status is _IDLE and self._notifications:
            self._send_notifications()
        self.send(ReadyForQuery(status=self.transaction_status))
        self._ready = True

    # -- the session -----------------------------------------------------------------------------
    async def _serve(self) -> None:
        while True:
            msg = await self._next()
            if self._raw_hook:
                try:
                    assert self.handler is not None
                    assert isinstance(msg, FrontendMessage)
                    if await self._call(self.handler.message(msg)):
                        if isinstance(msg, Terminate):
                            self.terminated = True
                            raise _Closed("the client sent Terminate")
                        continue
                except _Closed:
                    raise
                except Exception as exc:
                    self._error(exc)
                    if isinstance(msg, Sync):
                        # The batch failed; Sync still ends it (ReadyForQuery).
                        self._skipping = True
                        await self._sync()
                    elif isinstance(msg, (Query, FunctionCall)):
                        self._ready_for_query()
                    elif isinstance(msg, (Parse, Bind, Describe, Execute, Close)):
                        self._skipping = True  # up to the batch's Sync
                    continue
            mtype = type(msg)
            if mtype is Query:
                assert isinstance(msg, Query)
                if self._skipping:
                    continue
                await self._simple_query(msg)
            elif mtype is Sync:
                await self._sync()
            elif mtype is Flush:
                self.flush()
            elif mtype is Terminate:
                self.terminated = True
                raise _Closed("the client sent Terminate")
            elif mtype in (CopyData, CopyDone, CopyFail):
                pass  # outside COPY these are ignored, as PostgreSQL does
            elif self._skipping:
                continue
            elif mtype is FunctionCall:
                self._error(
                    SQLError(SQLState.FEATURE_NOT_SUPPORTED, "function calls are not supported")
                )
                self._ready_for_query()
            else:
                try:
                    await self._extended(msg)
                except _Closed:
                    raise
                except Exception as exc:
                    self._error(exc)
                    self._skipping = True

    # -- simple query ----------------------------------------------------------------------------
    async def _simple_query(self, msg: Query) -> None:
        text = msg.query_string
        # A Query replaces the unnamed statement and portal.
        self._statements.pop("", None)
        await self.close_portal("")
        try:
            spans = statement_spans(text)
        except SqlSyntaxError as exc:
            self._error(exc)
            spans = []
        else:
            if not spans:
                self.send(EmptyQueryResponse())
        failed = False
        # One statement is atomic by itself; several share one implicit
        # transaction block, as in PostgreSQL.
        self._multi = len(spans) > 1
        for start, end in spans:
            statement = Statement(text[start:end])
            try:
                await self._call(self._simple_statement(statement))
            except _Closed:
                raise
            except Exception as exc:
                self._error(exc, offset=start)
                failed = True
                break
            finally:
                self._current = None
        self._multi = False
        await self._end_batch(failed=failed)

    # -- implicit transaction blocks -----------------------------------------------------------
    @property
    def in_implicit_transaction(self) -> bool:
        """True while the handler was told (``begin``) of an implicit
        transaction block that has not ended yet."""
        return self._implicit

    def adopt_implicit_transaction(self) -> bool:
        """BEGIN inside an implicit block turns it into the explicit one
        (the handler's transaction goes on); True if there was one."""
        adopted, self._implicit = self._implicit, False
        return adopted

    async def _begin_implicit(self, statement: Statement) -> None:
        """Open an implicit transaction block for a handler that wants them."""
        handler = self.handler
        if (
            handler is None
            or not handler.implicit_transactions
            or self._implicit
            or self.transaction_status is not _IDLE
            or statement.keyword in _TRANSACTION_KEYWORDS
        ):
            return
        await handler.begin()
        self._implicit = True

    async def _finish_implicit(self, *, failed: bool) -> None:
        """End the implicit block at the end of a Query or at Sync: commit,
        or roll back after an error."""
        if not self._implicit:
            return
        self._implicit = False
        handler = self.handler
        assert handler is not None
        try:
            if failed:
                await self._call(handler.rollback())
            else:
                await self._call(handler.commit())
        except _Closed:
            raise
        except Exception as exc:
            self._error(exc)

    async def _simple_statement(self, statement: Statement) -> None:
        self._refuse_if_aborted(statement.sql)
        handler = self.handler
        assert handler is not None
        portal = Portal("", statement.sql)
        self._current = portal
        if self._multi:
            await self._begin_implicit(statement)
        outcome = await handler.execute(statement)
        await portal.start(outcome, statement.keyword)
        await self._emit(portal, 0, describe=True)

    async def _end_batch(self, *, failed: bool) -> None:
        """A Query or an extended-query batch (at Sync) is over: its implicit
        block ends, and outside a transaction block its portals close
        (WITH HOLD cursors stay); then ReadyForQuery."""
        await self._finish_implicit(failed=failed)
        if self.transaction_status is _IDLE:
            await self._close_portals(lambda key, portal: portal.hold)
        self._ready_for_query()

    # -- results ---------------------------------------------------------------------------------
    async def _emit(self, portal: Portal, max_rows: int, *, describe: bool) -> None:
        """Send a started portal's result: rows (up to ``max_rows``), a
        command's tag, or a COPY."""
        outcome = portal.outcome
        if isinstance(outcome, CopyIn):
            portal.done = True
            await self._copy_in(outcome)
            return
        if isinstance(outcome, CopyOut):
            portal.done = True
            await self._copy_out(outcome)
            return
        columns = portal.columns
        if columns is None:
            if portal.done:
                raise SQLError(
                    SQLState.OBJECT_NOT_IN_PREREQUISITE_STATE,
                    f'portal "{portal.name}" cannot be run',
                )
            portal.done = True
            self.send(CommandComplete(tag=portal.tag))
            return
        if describe:
            self.send(RowDescription(fields=portal.fields(columns)))
        source = portal.source
        sent = 0
        send = self.send
        while not portal.done and source is not None and (max_rows <= 0 or sent < max_rows):
            want = BATCH if max_rows <= 0 else min(BATCH, max_rows - sent)
            rows = await source.take(want)
            encode = portal.encode
            for row in rows:
                send(DataRow(columns=encode(row)))
            sent += len(rows)
            if source.exhausted:
                portal.done = True
            if self._pending >= FLUSH_SIZE // 2:
                await self.drain()
        portal.position += sent
        if not portal.done:
            self.send(PortalSuspended())
            return
        self.send(CommandComplete(tag=portal.tag or f"SELECT {sent}"))

    async def _copy_out(self, out: CopyOut) -> None:
        fmt = out.format
        if fmt not in (0, 1):
            raise SQLError(SQLState.INVALID_PARAMETER_VALUE, f"COPY format {fmt} is not supported")
        source = RowSource(out.rows)
        if out.types is not None:
            types = list(out.types)
        else:
            first = await source.peek(1)
            width = len(first[0]) if first else 0
            columns = await resolve_columns([f"c{i}" for i in range(width)], source)
            types = [c.type_oid for c in columns]
        encoders = [encoder(t, fmt) for t in types]
        self.send(CopyOutResponse(overall_format=fmt, col_formats=[fmt] * len(types)))
        # PostgreSQL (copyto.c) sends the binary header in the CopyData of
        # the first row, or of the trailer when there are no rows; psycopg
        # reads each CopyData as whole rows and fails on a header alone.
        header = binary_header() if fmt else b""
        write_row = binary_row if fmt else text_row
        count = 0
        try:
            while rows := await source.take(BATCH):
                for row in rows:
                    self.send(CopyData(data=header + write_row(encode_row(encoders, row))))
                    header = b""
                count += len(rows)
                if self._pending >= FLUSH_SIZE // 2:
                    await self.drain()
        finally:
            await source.close()
        if fmt:
            self.send(CopyData(data=header + BINARY_TRAILER))
        self.send(CopyDone())
        self.send(CommandComplete(tag=f"COPY {count}"))

    async def _copy_in(self, cin: CopyIn) -> None:
        fmt = cin.format
        if fmt not in (0, 1):
            raise SQLError(SQLState.INVALID_PARAMETER_VALUE, f"COPY format {fmt} is not supported")
        width = cin.width
        self.send(CopyInResponse(overall_format=fmt, col_formats=[fmt] * (width or 0)))
        reader = CopyReader(binary=fmt == 1, columns=width, max_row=self.server.max_message_size)
        decoders = [decoder(t, fmt) for t in cin.types] if cin.types is not None else None
        over: list[BaseException | None] = [None]

        def typed(row: tuple[object, ...]) -> tuple[object, ...]:
            if decoders is None:
                return row
            return tuple(
                None if v is None else dec(v if isinstance(v, bytes) else str(v).encode())
                for dec, v in zip(decoders, row, strict=True)
            )

        async def rows() -> Any:
            while True:
                msg = await self._next()
                if isinstance(msg, CopyData):
                    for row in reader.feed(msg.data):
                        yield typed(row)
                elif isinstance(msg, CopyDone):
                    for row in reader.finish():
                        yield typed(row)
                    return
                elif isinstance(msg, CopyFail):
                    error = SQLError(
                        SQLState.QUERY_CANCELED, f"COPY from stdin failed: {msg.error_message}"
                    )
                    over[0] = error
                    raise error
                elif isinstance(msg, (Flush, Sync)):
                    continue  # ignored during COPY FROM STDIN
                else:  # pragma: no cover - the strict state model refuses it first
                    raise SQLError(
                        SQLState.PROTOCOL_VIOLATION,
                        f"unexpected {type(msg).__name__} during COPY from stdin",
                    )

        iterator = rows()
        try:
            stored = await cin.sink(iterator)
            async for _ in iterator:  # what the sink left unread
                pass
        finally:
            await iterator.aclose()
        if over[0] is not None:
            raise over[0]
        self.send(CommandComplete(tag=f"COPY {stored if stored is not None else reader.rows}"))

    # -- extended query --------------------------------------------------------------------------
    async def _extended(self, msg: PGMessage) -> None:
        if isinstance(msg, Parse):
            await self._parse(msg)
        elif isinstance(msg, Bind):
            await self._bind(msg)
        elif isinstance(msg, Describe):
            await self._describe(msg)
        elif isinstance(msg, Execute):
            await self._execute(msg)
        elif isinstance(msg, Close):
            await self._close(msg)
        else:  # pragma: no cover - the state model lets nothing else through
            raise SQLError(SQLState.PROTOCOL_VIOLATION, f"unexpected {type(msg).__name__}")

    async def _parse(self, msg: Parse) -> None:
        name = msg.statement
        if name and name in self._statements:
            raise SQLError(
                SQLState.DUPLICATE_PREPARED_STATEMENT, f'prepared statement "{name}" already exists'
            )
        spans = statement_spans(msg.query)
        if len(spans) > 1:
            raise SQLError(
                SQLState.SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement"
            )
        sql = msg.query[spans[0][0] : spans[0][1]] if spans else ""
        self._refuse_if_aborted(sql)
        count = max(len(msg.param_types), max(parameters(sql), default=0))
        types = [0 if t == Oid.UNKNOWN else t for t in msg.param_types]
        types += [0] * (count - len(types))
        prepared = _Prepared(sql, types)
        handler = self.handler
        if sql and handler is not None and handler.describe_at_parse:
            # As PostgreSQL analyses a statement at Parse: a statement the
            # handler cannot describe fails here, and is not kept.
            await self._describe_statement(prepared)
        self._statements[name] = prepared
        self.send(ParseComplete())

    def _statement(self, name: str) -> _Prepared:
        prepared = self._statements.get(name)
        if prepared is None:
            raise SQLError(
                SQLState.INVALID_SQL_STATEMENT_NAME, f'prepared statement "{name}" does not exist'
            )
        return prepared

    def _portal(self, name: str) -> Portal:
        portal = self._portals.get(name)
        if portal is None:
            raise SQLError(SQLState.INVALID_CURSOR_NAME, f'portal "{name}" does not exist')
        return portal

    async def _describe_statement(self, prepared: _Prepared) -> None:
        """Ask for the statement's shape once (built-in, else the handler)."""
        if prepared.described or not prepared.sql:
            prepared.described = True
            return
        statement = Statement(prepared.sql, param_types=list(prepared.types))
        description = await self._call(self._description(statement))
        if description is None and statement.keyword in _DESCRIBED_BY_RUNNING:
            description = await self._call(self._describe_by_running(statement))
        prepared.description = description
        prepared.described = True
        if description is not None:
            types = prepared.types
            for i, oid in enumerate(description.params):
                if i >= len(types):
                    types.append(oid)
                elif types[i] == 0:
                    types[i] = oid

    async def _description(self, statement: Statement) -> Description | None:
        """A statement's shape as known ahead: built-in, else the handler's."""
        description = describe_builtin(self, statement)
        if description is None:
            handler = self.handler
            assert handler is not None
            description = await handler.describe(statement.sql, list(statement.param_types))
        return description

    async def _describe_by_running(self, statement: Statement) -> Description | None:
        """A query the handler cannot describe ahead: its columns are those
        of its result with every parameter NULL.  Clients that prepare
        (asyncpg, pg8000) decode rows by the statement's description, so
        "no rows" would contradict the rows that Execute then sends."""
        count = len(statement.param_types)
        portal = Portal("", statement.sql, [None] * count, list(statement.param_types))
        try:
            await self._start_portal(portal)
            columns = portal.columns
        finally:
            await portal.close()
        return None if columns is None else Description(columns)

    async def _bind(self, msg: Bind) -> None:
        prepared = self._statement(msg.statement)
        self._refuse_if_aborted(prepared.sql)
        if 0 in prepared.types:
            await self._describe_statement(prepared)
        types = prepared.types
        values = msg.param_values
        if len(values) != len(types):
            raise SQLError(
                SQLState.PROTOCOL_VIOLATION,
                f"bind message supplies {len(values)} parameters, but prepared statement "
                f'"{msg.statement}" requires {len(types)}',
            )
        formats = expand_formats(msg.param_formats, len(types), "parameter")
        params = [
            None if value is None else decoder(oid, fmt)(bytes(value))
            for value, oid, fmt in zip(values, types, formats, strict=True)
        ]
        name = msg.portal
        if name in self._portals:
            if name:
                raise SQLError(SQLState.DUPLICATE_CURSOR, f'cursor "{name}" already exists')
            await self.close_portal("")
        portal = Portal(name, prepared.sql, params, list(types), msg.result_formats)
        if (
            prepared.described
            and prepared.description is not None
            and (prepared.reported or _typed(prepared.description))
        ):
            portal.described = description_columns(prepared.description)
            portal.shape_known = True
        portal.statement = prepared
        self._portals[name] = portal
        self.send(BindComplete())

    async def _describe(self, msg: Describe) -> None:
        if msg.kind == "S":
            prepared = self._statement(msg.name)
            await self._describe_statement(prepared)
            # Told the parameters are text, the client may send them in
            # text's binary format: they are text from now on.
            prepared.types[:] = [oid if oid else Oid.TEXT for oid in prepared.types]
            self.send(ParameterDescription(type_oids=list(prepared.types)))
            columns = description_columns(prepared.description)
            prepared.reported = True
            if columns is None:
                self.send(NoData())
            else:
                self.send(RowDescription(fields=field_descriptions(columns, [0] * len(columns))))
            return
        portal = self._portal(msg.name)
        if not portal.started and portal.sql and not portal.shape_known:
            await self._call(self._describe_portal(portal))
        columns = portal.columns if portal.started else portal.described
        if columns is None:
            self.send(NoData())
        else:
            self.send(RowDescription(fields=portal.fields(columns)))

    async def _describe_portal(self, portal: Portal) -> None:
        """Describe an unstarted portal: by the statement's description when
        the handler gives one, else by running it."""
        statement = Statement(portal.sql, portal.params, portal.param_types)
        description = await self._description(statement)
        if description is not None and _typed(description):
            portal.described = description_columns(description)
            portal.shape_known = True
            return
        await self._start_portal(portal)

    async def _start_portal(self, portal: Portal) -> None:
        statement = Statement(portal.sql, portal.params, portal.param_types)
        self._refuse_if_aborted(portal.sql)
        handler = self.handler
        assert handler is not None
        previous, self._current = self._current, portal
        try:
            await self._begin_implicit(statement)
            outcome = await handler.execute(statement)
            await portal.start(outcome, statement.keyword)
        finally:
            self._current = previous

    async def _execute(self, msg: Execute) -> None:
        portal = self._portal(msg.portal)
        if not portal.sql:
            self.send(EmptyQueryResponse())
            return
        self._refuse_if_aborted(portal.sql)
        await self._call(self._run_portal(portal, msg.max_rows))

    async def _run_portal(self, portal: Portal, max_rows: int) -> None:
        self._current = portal
        try:
            if not portal.started:
                await self._start_portal(portal)
            await self._emit(portal, max_rows, describe=False)
        finally:
            self._current = None

    async def _close(self, msg: Close) -> None:
        if msg.kind == "S":
            prepared = self._statements.pop(msg.name, None)
            if prepared is not None:
                for name, portal in list(self._portals.items()):
                    if portal.statement is prepared:
                        await self.close_portal(name)
        else:
            await self.close_portal(msg.name)
        self.send(CloseComplete())

    async def _sync(self) -> None:
        failed, self._skipping = self._skipping, False
        await self._end_batch(failed=failed)


def _typed(description: Description) -> bool:
    """True when every column's type is known (a bare name is not: a portal
    is then described by running it, and its values decide)."""
    return description.columns is None or all(
        not isinstance(column, str) for column in description.columns
    )


def _handler_message() -> object:
    from ._handler import Handler  # noqa: PLC0415 - the two modules refer to each other

    return Handler.message
