"""Connection phase tracking for both roles, as one declarative table.

The protocol's state is shared by both ends: the same message moves a
client's and a server's view of the connection the same way.  So a single
:class:`ProtocolState` consumes "the frontend sent X" and "the backend sent
X" events, and the two public classes only say which of their calls is
which: :class:`FrontendStateMachine` (client role) sends frontend messages
and receives backend ones; :class:`BackendStateMachine` the reverse.

``_TABLE`` maps ``(phase, sender, message type)`` to the next phase or to
an action for the few transitions that depend on counters (pending Syncs,
the phase a COPY returns to, the skip-until-Sync rule after an error).
Messages the server may send at any time after startup (NoticeResponse,
ParameterStatus, NotificationResponse) and a FATAL/PANIC ErrorResponse are
handled once, before the table, instead of being repeated per phase.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import NoReturn

from .constants import ConnectionPhase, MessageDirection, TransactionStatus
from .exceptions import StateMachineError
from .messages import (
    AuthenticationCleartextPassword,
    AuthenticationGSS,
    AuthenticationGSSContinue,
    AuthenticationKerberosV5,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    AuthenticationSCMCredential,
    AuthenticationSSPI,
    BackendKeyData,
    Bind,
    BindComplete,
    CancelRequest,
    Close,
    CloseComplete,
    CommandComplete,
    CopyBothResponse,
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
    FunctionCall,
    FunctionCallResponse,
    GSSEncRequest,
    GSSEncResponse,
    GSSResponse,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PasswordMessage,
    PGMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Sync,
    Terminate,
)

__all__ = ["BackendStateMachine", "FrontendStateMachine", "ProtocolState"]

P = ConnectionPhase
F = MessageDirection.FRONTEND
B = MessageDirection.BACKEND


class _Act(enum.Enum):
    """Transitions that need more than the phase to decide."""

    SAME = "stay in the phase"
    SYNC = "count a pending Sync"
    READY_FOR_QUERY = "close a query cycle"
    QUERY_ERROR = "error inside a query cycle"
    COPY_START = "enter COPY, remembering where to return"
    COPY_END = "leave COPY"
    COPY_BOTH_DONE = "one side of COPY BOTH is done"
    PIPELINED = "client message queued while the server streams"


_Next = ConnectionPhase | _Act

_EXTENDED_MSGS = (Parse, Bind, Describe, Execute, Close, Flush)
_AUTH_PHASES = (
    P.AUTHENTICATING,
    P.AUTHENTICATING_SASL_INITIAL,
    P.AUTHENTICATING_SASL_CONTINUE,
    P.AUTHENTICATING_GSS,
)
# Phases in which the server may send its any-time messages.
_SESSION_PHASES = frozenset(P) - {
    P.STARTUP,
    P.SSL_NEGOTIATION,
    P.GSS_NEGOTIATION,
    P.TERMINATED,
    P.FAILED,
}


def _rows() -> Iterable[tuple[ConnectionPhase, MessageDirection, type[PGMessage], _Next]]:
    """The transition table, one row per (phase, sender, message type)."""
    msg: type[PGMessage]
    req: type[PGMessage]
    # Startup packets and encryption negotiation.
    yield P.STARTUP, F, StartupMessage, P.AUTHENTICATING
    yield P.STARTUP, F, SSLRequest, P.SSL_NEGOTIATION
    yield P.STARTUP, F, GSSEncRequest, P.GSS_NEGOTIATION
    yield P.STARTUP, F, DirectSSLHandshake, P.STARTUP
    yield P.STARTUP, F, CancelRequest, P.TERMINATED
    yield P.SSL_NEGOTIATION, B, SSLResponse, P.STARTUP
    yield P.GSS_NEGOTIATION, B, GSSEncResponse, P.STARTUP
    for phase in (P.STARTUP, P.SSL_NEGOTIATION, P.GSS_NEGOTIATION):
        yield phase, B, ErrorResponse, P.FAILED

    # Authentication.  AUTHENTICATING covers both "waiting for the server's
    # request" and "a password was requested": PasswordMessage is only
    # valid after a cleartext or MD5 request, enforced by _password_ok.
    yield P.AUTHENTICATING, B, NegotiateProtocolVersion, P.AUTHENTICATING
    for req in (AuthenticationCleartextPassword, AuthenticationMD5Password):
        yield P.AUTHENTICATING, B, req, P.AUTHENTICATING
    for req in (AuthenticationKerberosV5, AuthenticationSCMCredential):
        # Obsolete methods: clients give up, but the server may ask.
        yield P.AUTHENTICATING, B, req, P.AUTHENTICATING
    yield P.AUTHENTICATING, F, PasswordMessage, P.AUTHENTICATING
    yield P.AUTHENTICATING, B, AuthenticationSASL, P.AUTHENTICATING_SASL_INITIAL
    yield P.AUTHENTICATING_SASL_INITIAL, F, SASLInitialResponse, P.AUTHENTICATING_SASL_CONTINUE
    yield (
        P.AUTHENTICATING_SASL_CONTINUE,
        B,
        AuthenticationSASLContinue,
        P.AUTHENTICATING_SASL_CONTINUE,
    )
    yield P.AUTHENTICATING_SASL_CONTINUE, F, SASLResponse, P.AUTHENTICATING_SASL_CONTINUE
    yield P.AUTHENTICATING_SASL_CONTINUE, B, AuthenticationSASLFinal, P.AUTHENTICATING
    for req in (AuthenticationGSS, AuthenticationSSPI):
        yield P.AUTHENTICATING, B, req, P.AUTHENTICATING_GSS
    yield P.AUTHENTICATING_GSS, F, GSSResponse, P.AUTHENTICATING_GSS
    yield P.AUTHENTICATING_GSS, B, AuthenticationGSSContinue, P.AUTHENTICATING_GSS
    for phase in (P.AUTHENTICATING, P.AUTHENTICATING_GSS):
        yield phase, B, AuthenticationOk, P.INITIALIZATION
    for phase in _AUTH_PHASES:
        yield phase, B, ErrorResponse, P.FAILED

    # Initialization: parameter reports and the cancel key.
    yield P.INITIALIZATION, B, BackendKeyData, P.INITIALIZATION
    yield P.INITIALIZATION, B, ReadyForQuery, _Act.READY_FOR_QUERY
    yield P.INITIALIZATION, B, ErrorResponse, P.FAILED

    # Idle.
    yield P.READY, F, Query, P.SIMPLE_QUERY
    yield P.READY, F, FunctionCall, P.FUNCTION_CALL
    yield P.READY, F, Sync, _Act.SYNC
    # A Flush with nothing before it produces nothing: the session stays idle.
    yield P.READY, F, Flush, P.READY
    for msg in _EXTENDED_MSGS:
        if msg is not Flush:
            yield P.READY, F, msg, P.EXTENDED_QUERY

    # Simple query: results of one or more statements, then ReadyForQuery.
    for msg in (RowDescription, DataRow, CommandComplete, EmptyQueryResponse):
        yield P.SIMPLE_QUERY, B, msg, P.SIMPLE_QUERY
    yield P.SIMPLE_QUERY, B, ErrorResponse, P.SIMPLE_QUERY
    yield P.SIMPLE_QUERY, B, ReadyForQuery, _Act.READY_FOR_QUERY

    # Extended query, pipelined: the client may keep sending while results
    # arrive; each Sync earns one ReadyForQuery.
    for msg in _EXTENDED_MSGS:
        yield P.EXTENDED_QUERY, F, msg, P.EXTENDED_QUERY
    yield P.EXTENDED_QUERY, F, Sync, _Act.SYNC
    for msg in (
        ParseComplete, BindComplete, CloseComplete, NoData, ParameterDescription,
        RowDescription, DataRow, CommandComplete, EmptyQueryResponse, PortalSuspended,
    ):  # fmt: skip
        yield P.EXTENDED_QUERY, B, msg, _Act.SAME
    yield P.EXTENDED_QUERY, B, ErrorResponse, _Act.QUERY_ERROR
    yield P.EXTENDED_QUERY, B, ReadyForQuery, _Act.READY_FOR_QUERY

    # COPY, entered from a simple or an extended query.
    for phase in (P.SIMPLE_QUERY, P.EXTENDED_QUERY):
        for resp in (CopyInResponse, CopyOutResponse, CopyBothResponse):
            yield phase, B, resp, _Act.COPY_START
    yield P.COPY_IN, F, CopyData, P.COPY_IN
    yield P.COPY_IN, F, CopyDone, _Act.COPY_END
    yield P.COPY_IN, F, CopyFail, _Act.COPY_END
    # "The backend will ignore Flush and Sync messages received during
    # copy-in mode": they neither leave COPY nor earn a ReadyForQuery.
    yield P.COPY_IN, F, Flush, P.COPY_IN
    yield P.COPY_IN, F, Sync, P.COPY_IN
    yield P.COPY_IN, B, ErrorResponse, _Act.COPY_END
    yield P.COPY_OUT, B, CopyData, P.COPY_OUT
    yield P.COPY_OUT, B, CopyDone, _Act.COPY_END
    yield P.COPY_OUT, B, ErrorResponse, _Act.COPY_END
    for msg in (*_EXTENDED_MSGS, Sync):
        yield P.COPY_OUT, F, msg, _Act.PIPELINED
    for sender in (F, B):
        yield P.COPY_BOTH, sender, CopyData, P.COPY_BOTH
        yield P.COPY_BOTH, sender, CopyDone, _Act.COPY_BOTH_DONE
    yield P.COPY_BOTH, B, ErrorResponse, _Act.COPY_END

    # Function call.
    yield P.FUNCTION_CALL, B, FunctionCallResponse, P.FUNCTION_CALL
    yield P.FUNCTION_CALL, B, ErrorResponse, P.FUNCTION_CALL
    yield P.FUNCTION_CALL, B, ReadyForQuery, _Act.READY_FOR_QUERY

    # Terminate: allowed whenever standard framing is in use.
    for phase in P:
        if phase not in (P.STARTUP, P.SSL_NEGOTIATION, P.GSS_NEGOTIATION, P.TERMINATED):
            yield phase, F, Terminate, P.TERMINATED


_TABLE: dict[tuple[ConnectionPhase, MessageDirection, type[PGMessage]], _Next] = {}
for _phase, _sender, _msg, _next in _rows():
    assert (_phase, _sender, _msg) not in _TABLE, (_phase, _sender, _msg)
    _TABLE[_phase, _sender, _msg] = _next

#: Per (phase, sender): the message types whose arrival keeps the phase
#: and records nothing, the bulk of the traffic (rows, COPY data).
_STEADY: dict[tuple[ConnectionPhase, MessageDirection], frozenset[type[PGMessage]]] = {}
for (_phase, _sender, _msg), _next in _TABLE.items():
    if (_next is _phase or _next is _Act.SAME) and _msg in (DataRow, CopyData):
        _STEADY[_phase, _sender] = _STEADY.get((_phase, _sender), frozenset()) | {_msg}

_ANY_TIME = (NoticeResponse, ParameterStatus, NotificationResponse)
_NEEDS_SYNC = frozenset({Parse, Bind, Describe, Execute, Close})
_FATAL = frozenset({"FATAL", "PANIC"})


class ProtocolState:
    """The shared protocol state, advanced by what each side sends."""

    def __init__(self, phase: ConnectionPhase = P.STARTUP) -> None:
        self.phase = phase
        #: Syncs sent whose ReadyForQuery has not arrived yet.
        self.pending_syncs = 0
        #: After an ErrorResponse in extended query, the server discards
        #: messages until Sync; only ReadyForQuery can follow.
        self.skipping_to_sync = False
        #: Status from the last ReadyForQuery.
        self.transaction_status: TransactionStatus | None = None
        #: Version requested by StartupMessage, lowered by negotiation.
        self.protocol_version: int | None = None
        self._copy_return: ConnectionPhase | None = None
        self._copy_done: set[MessageDirection] = set()
        self._password_requested = False
        self._syncs_after_execute = 0
        # Extended-query messages sent since the last Sync: their replies
        # are still to come even when every Sync has been answered.
        self._unsynced = False
        #: Per sender, the message types that are valid now and change
        #: nothing.  The sets are updated in place after every change, so a
        #: receive loop may hold one and skip advance() for those types.
        self.steady: dict[MessageDirection, set[type[PGMessage]]] = {F: set(), B: set()}
        self._steady_for: tuple[ConnectionPhase, bool] | None = None
        self.restate()

    # -- the one entry point ------------------------------------------------
    def advance(self, sender: MessageDirection, msg: PGMessage, verb: str) -> None:
        """Apply ``msg`` sent by ``sender``; raise StateMachineError if invalid."""
        mtype = type(msg)
        if mtype in self.steady[sender]:
            return  # rows and COPY data: valid, and nothing changes
        phase = self.phase
        if sender is B and phase in _SESSION_PHASES:
            if mtype in _ANY_TIME:
                return
            if mtype is ErrorResponse and msg.severity in _FATAL:  # type: ignore[attr-defined]
                self.phase = P.FAILED
                self.restate()
                return
        nxt = _TABLE.get((phase, sender, mtype))
        if nxt is None or not self._guard(sender, msg):
            self._reject(sender, mtype, verb)
        if isinstance(nxt, ConnectionPhase):
            self.phase = nxt
        else:
            self._act(nxt, sender, msg)
        self._note(msg)
        self.restate()

    def restate(self) -> None:
        """Bring :attr:`steady` up to date; call after changing ``phase``
        or ``skipping_to_sync`` from outside :meth:`advance`."""
        key = (self.phase, self.skipping_to_sync)
        if key == self._steady_for:
            return
        self._steady_for = key
        for sender, types in self.steady.items():
            types.clear()
            if not self.skipping_to_sync:  # then rows are refused, not steady
                types.update(_STEADY.get((self.phase, sender), ()))

    def _guard(self, sender: MessageDirection, msg: PGMessage) -> bool:
        """Conditions a table row cannot express."""
        if self.skipping_to_sync and sender is B and type(msg) is not ReadyForQuery:
            return False
        mtype = type(msg)
        if mtype is PasswordMessage:
            return self._password_requested
        if mtype is ReadyForQuery and self.phase is P.EXTENDED_QUERY:
            return self.pending_syncs > 0
        return True

    def _note(self, msg: PGMessage) -> None:
        """Record what a message carries beyond the phase change."""
        mtype = type(msg)
        if mtype is StartupMessage:
            self.protocol_version = msg.protocol_version  # type: ignore[attr-defined]
        elif mtype is NegotiateProtocolVersion:
            self.protocol_version = (3 << 16) | msg.newest_minor  # type: ignore[attr-defined]
        elif mtype in (AuthenticationCleartextPassword, AuthenticationMD5Password):
            self._password_requested = True
        elif mtype is PasswordMessage:
            self._password_requested = False
        elif mtype in _NEEDS_SYNC:
            self._unsynced = True
            if mtype is Execute:
                self._syncs_after_execute = 0

    def _act(self, act: _Act, sender: MessageDirection, msg: PGMessage) -> None:
        if act is _Act.SAME:
            return
        if act is _Act.SYNC:
            self.pending_syncs += 1
            self._syncs_after_execute += 1
            self._unsynced = False
            self.phase = P.EXTENDED_QUERY
        elif act is _Act.READY_FOR_QUERY:
            self.transaction_status = msg.status  # type: ignore[attr-defined]
            self.skipping_to_sync = False
            if self.phase is P.EXTENDED_QUERY:
                self.pending_syncs -= 1
            busy = self.pending_syncs > 0 or self._unsynced
            self.phase = P.EXTENDED_QUERY if busy else P.READY
        elif act is _Act.QUERY_ERROR:
            self.skipping_to_sync = True
        elif act is _Act.COPY_START:
            if self.phase is P.EXTENDED_QUERY and type(msg) is not CopyOutResponse:
                # The server reads everything after the Execute that started
                # COPY FROM STDIN in copy mode, where Sync is ignored: Syncs
                # already sent behind that Execute will earn no ReadyForQuery
                # (which is why clients send another Sync after CopyDone).
                self.pending_syncs -= self._syncs_after_execute
            self._syncs_after_execute = 0
            self._copy_return = self.phase
            self._copy_done = set()
            self.phase = _COPY_PHASE[type(msg)]
        elif act is _Act.COPY_END:
            self._end_copy()
            if type(msg) is ErrorResponse and self.phase is P.EXTENDED_QUERY:
                self.skipping_to_sync = True
        elif act is _Act.COPY_BOTH_DONE:
            self._copy_done.add(sender)
            if len(self._copy_done) == 2:
                self._end_copy()
        elif act is _Act.PIPELINED:
            if self._copy_return is not P.EXTENDED_QUERY:
                self._reject(sender, type(msg), "send")
            if type(msg) is Sync:
                self.pending_syncs += 1
                self._unsynced = False

    def _end_copy(self) -> None:
        self.phase = self._copy_return or P.SIMPLE_QUERY
        self._copy_return = None

    def _reject(self, sender: MessageDirection, mtype: type[PGMessage], verb: str) -> NoReturn:
        expected = self.expected(sender)
        why = ""
        if self.skipping_to_sync and sender is B:
            why = " (after an ErrorResponse the server skips to the next Sync)"
        elif mtype is PasswordMessage and self.phase is P.AUTHENTICATING:
            why = " (no cleartext or MD5 password was requested)"
        raise StateMachineError(
            f"cannot {verb} {mtype.__name__} in phase {self.phase.name}{why}; "
            f"expected one of: {', '.join(expected) or 'nothing'}",
            phase=self.phase,
            message=mtype.__name__,
            direction=verb,
            expected=expected,
        )

    def expected(self, sender: MessageDirection) -> tuple[str, ...]:
        """Names of the messages ``sender`` may send in the current phase."""
        names = [m.__name__ for (ph, s, m) in _TABLE if ph is self.phase and s is sender]
        if sender is B and self.phase in _SESSION_PHASES:
            names += [m.__name__ for m in _ANY_TIME]
        return tuple(sorted(set(names)))


_COPY_PHASE: dict[type[PGMessage], ConnectionPhase] = {
    CopyInResponse: P.COPY_IN,
    CopyOutResponse: P.COPY_OUT,
    CopyBothResponse: P.COPY_BOTH,
}


class _StateMachine:
    """Shared surface of both roles; ``_mine`` is the direction this role sends."""

    _mine: MessageDirection
    _theirs: MessageDirection

    def __init__(self, phase: ConnectionPhase = P.STARTUP) -> None:
        self._state = ProtocolState(phase)

    def send(self, msg: PGMessage) -> None:
        """Record a message this side sends; raise if it cannot occur now."""
        self._state.advance(self._mine, msg, "send")

    def receive(self, msg: PGMessage) -> None:
        """Record a message this side received; raise if it cannot occur now."""
        self._state.advance(self._theirs, msg, "receive")

    @property
    def phase(self) -> ConnectionPhase:
        return self._state.phase

    @phase.setter
    def phase(self, phase: ConnectionPhase) -> None:
        """Force a phase, e.g. to follow a stream joined part-way through."""
        self._state.phase = phase
        self._state.restate()

    @property
    def is_ready(self) -> bool:
        """True when idle between query cycles."""
        return self._state.phase is P.READY

    @property
    def is_active(self) -> bool:
        """False once the connection is terminated or has failed."""
        return self._state.phase not in (P.TERMINATED, P.FAILED)

    @property
    def pending_syncs(self) -> int:
        """Syncs sent whose ReadyForQuery has not come yet."""
        return self._state.pending_syncs

    @property
    def transaction_status(self) -> TransactionStatus | None:
        """The status from the last ReadyForQuery, if any."""
        return self._state.transaction_status

    @property
    def protocol_version(self) -> int | None:
        """The protocol version in force: requested, or negotiated down."""
        return self._state.protocol_version

    @property
    def expected(self) -> tuple[str, ...]:
        """Names of the messages the peer may send next."""
        return self._state.expected(self._theirs)

    def fail(self) -> None:
        """Mark the connection failed (e.g. after an undecodable stream)."""
        self._state.phase = P.FAILED
        self._state.restate()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} phase={self.phase.name} pending_syncs={self.pending_syncs}>"


class FrontendStateMachine(_StateMachine):
    """The client's view: sends frontend messages, receives backend ones."""

    _mine = F
    _theirs = B


class BackendStateMachine(_StateMachine):
    """The server's view: sends backend messages, receives frontend ones."""

    _mine = B
    _theirs = F
