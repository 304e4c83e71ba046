"""Protocol state for both roles: one table, and a queue of outstanding requests.

Everything that decides which message may come next lives in this module,
and it does not know which role it plays: :class:`ProtocolState` consumes
"the client sent X" and "the server sent X" events.  The public classes only
say which of their calls is which: :class:`FrontendStateMachine` (client
role) sends frontend messages and receives backend ones,
:class:`BackendStateMachine` the reverse, and a proxy feeds both directions
into one :class:`ProtocolState`.

Theory of operation
-------------------
*Until the session is established* the two sides take turns: a state (the
startup packet was sent, a SCRAM exchange is waiting for the client, ...)
says which message each side may send and where it leads.

*After that*, PostgreSQL reads the client's messages in order and answers
each one in order; the client need not wait for an answer before sending
the next command.  So each message the client sends becomes a *request* at
the back of a queue, and the request the server is answering is the
*current* state.  Every server message must be a step of the current
request's answer (ParseComplete for Parse; rows and a CommandComplete for
Execute; ...) or one of the messages a server may send at any time
(NoticeResponse, ParameterStatus, NotificationResponse); anything else is
refused, naming the request that was expected to be answered.  When an
answer is complete the next request becomes current.  The rules the server
applies while reading the queue are those of ``postgres.c``:

* Flush produces nothing; CopyData, CopyDone and CopyFail outside COPY are
  ignored.
* After an ErrorResponse to an extended-query message the server skips
  every message up to the next Sync (Query and FunctionCall included).
* In COPY FROM STDIN the server reads the client's CopyData, CopyDone and
  CopyFail, ignores Flush and Sync (so a Sync sent right behind the Execute
  earns no ReadyForQuery), and ends the COPY with an error on anything else.
* A FATAL or PANIC ErrorResponse ends the session.

``_rules()`` is the table, one row per (state, sender, message type, next
state); targets written in capitals without a phase (``DONE``, ``SKIP``,
``RFQ``) are effects: the request is answered; answered and the server
skips to Sync; ReadyForQuery closes a cycle.  The table is compiled into a
dictionary per state, so each message costs one lookup.

``phase`` (the seed's :class:`ConnectionPhase`) describes the oldest
outstanding request: READY when nothing is outstanding and no extended-query
batch is open, SIMPLE_QUERY while a Query is answered, COPY_IN while the
server reads COPY data, and so on.

With ``strict=False`` a violation is logged on the ``pygwire`` logger and
the message is applied as far as the model can: a ReadyForQuery closes
every request up to and including the next one that earns it; another
server message is taken as the answer to the first queued request that
could produce it (dropping those before it) or else ignored; a client
message is applied as the server would take it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Final, cast

from ._hotpath import model_steppers
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

__all__ = [
    "BackendStateMachine",
    "FrontendStateMachine",
    "ProtocolState",
    "StateMachine",
    "transition_table",
]

log = logging.getLogger("pygwire")

P = ConnectionPhase
F = MessageDirection.FRONTEND
B = MessageDirection.BACKEND
_MsgType = type[PGMessage]


class _State:
    """One node of the model.

    ``server`` maps a server message type, ``client`` a client message type
    (before the session) or request (while COPY reads the client) to the
    next state; ``error`` is where a non-fatal ErrorResponse leads and
    ``bad_input`` where COPY goes when it reads anything but COPY input.
    A state that starts a request's answer (PARSE, SYNC, ...) is also what
    the queue of outstanding requests holds.
    """

    __slots__ = (
        "name",
        "phase",
        "request",
        "server",
        "client",
        "error",
        "bad_input",
        "effect",
        "silent",
        "plain",
        "queues",
        "startable",
        "batch",
        "syncs",
        "steady_server",
        "steady_client",
    )

    def __init__(
        self,
        name: str,
        phase: ConnectionPhase,
        request: str = "",
        *,
        effect: bool = False,
        silent: bool = False,
    ) -> None:
        self.name = name
        self.phase = phase
        #: The client request whose answer this state is part of.
        self.request = request
        self.server: dict[_MsgType, _State] = {}
        self.client: dict[object, _State] = {}
        self.error: _State | None = None
        self.bad_input: _State | None = None
        #: An effect, not a place: DONE, SKIP, RFQ.
        self.effect = effect
        #: A request the server answers with nothing (Flush, stray COPY input).
        self.silent = silent
        # Set by _compile, for ProtocolState's fast paths: entering it needs
        # no more than recording it; client requests queue behind it; as a
        # request, the server simply begins to answer it; what it does to
        # the open batch (True opens, False closes); Syncs it counts.
        self.plain = False
        self.queues = False
        self.startable = False
        self.batch: bool | None = None
        self.syncs = 0
        self.steady_server: frozenset[_MsgType] = frozenset()
        self.steady_client: frozenset[_MsgType] = frozenset()

    def __repr__(self) -> str:
        return f"<state {self.name}>"


def _s(name: str, phase: ConnectionPhase, request: str = "", **kw: bool) -> _State:
    return _State(name, phase, request, **kw)


# -- before the session ---------------------------------------------------------------
STARTUP = _s("STARTUP", P.STARTUP)
SSL_WAIT = _s("SSL_WAIT", P.SSL_NEGOTIATION)
GSS_WAIT = _s("GSS_WAIT", P.GSS_NEGOTIATION)
AUTH = _s("AUTH", P.AUTHENTICATING)  # waiting for the server's first request
AUTH_NEGOTIATED = _s("AUTH_NEGOTIATED", P.AUTHENTICATING)  # ... after NegotiateProtocolVersion
AUTH_PASSWORD = _s("AUTH_PASSWORD", P.AUTHENTICATING)  # a password was asked for
AUTH_RESULT = _s("AUTH_RESULT", P.AUTHENTICATING)  # the exchange is over: Ok or an error
SASL_INITIAL = _s("SASL_INITIAL", P.AUTHENTICATING_SASL_INITIAL)
SASL_WAIT = _s("SASL_WAIT", P.AUTHENTICATING_SASL_CONTINUE)  # the server's turn
SASL_REPLY = _s("SASL_REPLY", P.AUTHENTICATING_SASL_CONTINUE)  # the client's turn
AUTH_GSS = _s("AUTH_GSS", P.AUTHENTICATING_GSS)
INIT = _s("INIT", P.INITIALIZATION)
INIT_KEYED = _s("INIT_KEYED", P.INITIALIZATION)  # BackendKeyData came
TERMINATED = _s("TERMINATED", P.TERMINATED)
FAILED = _s("FAILED", P.FAILED)

# -- the session: IDLE, and a state per request and step of its answer --------------------
IDLE = _s("IDLE", P.READY)
QUERY = _s("QUERY", P.SIMPLE_QUERY, "Query")
Q_ROWS = _s("Q_ROWS", P.SIMPLE_QUERY, "Query")
Q_ERROR = _s("Q_ERROR", P.SIMPLE_QUERY, "Query")  # only ReadyForQuery may follow
PARSE = _s("PARSE", P.EXTENDED_QUERY, "Parse")
BIND = _s("BIND", P.EXTENDED_QUERY, "Bind")
DESCRIBE_S = _s("DESCRIBE_S", P.EXTENDED_QUERY, "Describe")
DESCRIBE_S_ROWS = _s("DESCRIBE_S_ROWS", P.EXTENDED_QUERY, "Describe")
DESCRIBE_P = _s("DESCRIBE_P", P.EXTENDED_QUERY, "Describe")
EXECUTE = _s("EXECUTE", P.EXTENDED_QUERY, "Execute")
CLOSE = _s("CLOSE", P.EXTENDED_QUERY, "Close")
SYNC = _s("SYNC", P.EXTENDED_QUERY, "Sync")
SYNC_ERROR = _s("SYNC_ERROR", P.EXTENDED_QUERY, "Sync")
FUNCTION = _s("FUNCTION", P.FUNCTION_CALL, "FunctionCall")
FUNCTION_END = _s("FUNCTION_END", P.FUNCTION_CALL, "FunctionCall")
TERMINATE = _s("TERMINATE", P.TERMINATED, "Terminate")
# Requests answered by nothing: never current, so their phase is never read.
FLUSH = _s("FLUSH", P.READY, "Flush", silent=True)
COPY_DATA = _s("COPY_DATA", P.READY, "CopyData", silent=True)
COPY_DONE = _s("COPY_DONE", P.READY, "CopyDone", silent=True)
COPY_FAIL = _s("COPY_FAIL", P.READY, "CopyFail", silent=True)
# A stream joined part-way (a phase forced from outside): any step of it.
Q_JOINED = _s("Q_JOINED", P.SIMPLE_QUERY, "Query")
X_JOINED = _s("X_JOINED", P.EXTENDED_QUERY, "an extended-query batch")

# -- effects ---------------------------------------------------------------------------
# (Effects are never current either: their phase is never read.)
DONE = _s("DONE", P.READY, effect=True)  # the current request is answered
SKIP = _s("SKIP", P.READY, effect=True)  # answered by an error: skip to the next Sync
RFQ = _s("RFQ", P.READY, effect=True)  # ReadyForQuery closes a cycle (or the startup)


class _Copy:
    """The COPY states of one kind of request (Query or Execute)."""

    def __init__(self, owner: str, phase: ConnectionPhase, request: str) -> None:
        self.out = _s(f"{owner}_COPY_OUT", P.COPY_OUT, request)
        self.into = _s(f"{owner}_COPY_IN", P.COPY_IN, request)
        self.failing = _s(f"{owner}_COPY_FAILING", phase, request)  # an error must follow
        self.end = _s(f"{owner}_COPY_END", phase, request)  # CommandComplete must follow
        self.both = _s(f"{owner}_COPY_BOTH", P.COPY_BOTH, request)
        self.server_done = _s(f"{owner}_COPY_BOTH_SERVER_DONE", P.COPY_BOTH, request)
        self.client_done = _s(f"{owner}_COPY_BOTH_CLIENT_DONE", P.COPY_BOTH, request)
        self.both_over = _s(f"{owner}_COPY_BOTH_OVER", phase, request)  # both sent CopyDone

    def states(self) -> tuple[_State, ...]:
        return tuple(vars(self).values())


Q_COPY = _Copy("Q", P.SIMPLE_QUERY, "Query")
X_COPY = _Copy("X", P.EXTENDED_QUERY, "Execute")

#: What each client message adds to the queue once the session runs
#: (Describe by its kind: _DESCRIBE).
_REQUESTS: Final[dict[_MsgType, _State]] = {
    Query: QUERY,
    Parse: PARSE,
    Bind: BIND,
    Execute: EXECUTE,
    Close: CLOSE,
    Sync: SYNC,
    Flush: FLUSH,
    FunctionCall: FUNCTION,
    CopyData: COPY_DATA,
    CopyDone: COPY_DONE,
    CopyFail: COPY_FAIL,
    Terminate: TERMINATE,
}
_DESCRIBE: Final = {"S": DESCRIBE_S, "P": DESCRIBE_P}
_EXTENDED = frozenset({PARSE, BIND, DESCRIBE_S, DESCRIBE_P, EXECUTE, CLOSE})
#: Requests answered by ReadyForQuery.
_CYCLE_END = frozenset({SYNC, QUERY, FUNCTION})
_ANY_TIME: Final = (NoticeResponse, ParameterStatus, NotificationResponse)
_FATAL = frozenset({"FATAL", "PANIC"})

Rule = tuple[_State, MessageDirection, object, _State]


def _rules() -> Iterator[Rule]:
    """The transition table: (state, sender, message type or request, next)."""
    msg: _MsgType
    # Startup packets and encryption negotiation; which request may follow
    # which answer is a guard (ProtocolState._startup_guard).
    yield STARTUP, F, StartupMessage, AUTH
    yield STARTUP, F, SSLRequest, SSL_WAIT
    yield STARTUP, F, GSSEncRequest, GSS_WAIT
    yield STARTUP, F, DirectSSLHandshake, STARTUP
    yield STARTUP, F, CancelRequest, TERMINATED
    yield SSL_WAIT, B, SSLResponse, STARTUP
    yield GSS_WAIT, B, GSSEncResponse, STARTUP
    for state in (SSL_WAIT, GSS_WAIT):  # a server too old to know the request
        yield state, B, ErrorResponse, FAILED

    # Authentication: the server asks, the client answers, until Ok.  A
    # NegotiateProtocolVersion may come first, once.
    yield AUTH, B, NegotiateProtocolVersion, AUTH_NEGOTIATED
    for auth in (AUTH, AUTH_NEGOTIATED):
        yield auth, B, AuthenticationCleartextPassword, AUTH_PASSWORD
        yield auth, B, AuthenticationMD5Password, AUTH_PASSWORD
        yield auth, B, AuthenticationSASL, SASL_INITIAL
        yield auth, B, AuthenticationGSS, AUTH_GSS
        yield auth, B, AuthenticationSSPI, AUTH_GSS
        # Obsolete methods: clients give up, but a server may still ask.
        yield auth, B, AuthenticationKerberosV5, auth
        yield auth, B, AuthenticationSCMCredential, auth
    yield AUTH_PASSWORD, F, PasswordMessage, AUTH_RESULT
    yield SASL_INITIAL, F, SASLInitialResponse, SASL_WAIT
    yield SASL_WAIT, B, AuthenticationSASLContinue, SASL_REPLY
    yield SASL_REPLY, F, SASLResponse, SASL_WAIT
    yield SASL_WAIT, B, AuthenticationSASLFinal, AUTH_RESULT
    yield AUTH_GSS, F, GSSResponse, AUTH_GSS
    yield AUTH_GSS, B, AuthenticationGSSContinue, AUTH_GSS
    for state in (AUTH, AUTH_NEGOTIATED, AUTH_RESULT, AUTH_GSS):
        yield state, B, AuthenticationOk, INIT
    for state in (
        AUTH, AUTH_NEGOTIATED, AUTH_PASSWORD, AUTH_RESULT,
        SASL_INITIAL, SASL_WAIT, SASL_REPLY, AUTH_GSS,
    ):  # fmt: skip
        yield state, B, ErrorResponse, FAILED
        yield state, F, Terminate, TERMINATED

    # Initialization: parameter reports (any time) and the cancel key, once.
    yield INIT, B, BackendKeyData, INIT_KEYED
    for state in (INIT, INIT_KEYED):
        yield state, B, ReadyForQuery, RFQ
        yield state, B, ErrorResponse, FAILED
        yield state, F, Terminate, TERMINATED

    # Simple query: the results of one or more statements, then ReadyForQuery.
    yield QUERY, B, RowDescription, Q_ROWS
    yield QUERY, B, CommandComplete, QUERY
    yield QUERY, B, EmptyQueryResponse, QUERY
    yield QUERY, B, ReadyForQuery, RFQ
    yield QUERY, B, ErrorResponse, Q_ERROR
    yield Q_ROWS, B, DataRow, Q_ROWS
    yield Q_ROWS, B, CommandComplete, QUERY
    yield Q_ROWS, B, ErrorResponse, Q_ERROR
    yield Q_ERROR, B, ReadyForQuery, RFQ  # an error ends the whole query string

    # Extended query: one answer per message; an error skips to Sync.
    yield PARSE, B, ParseComplete, DONE
    yield BIND, B, BindComplete, DONE
    yield DESCRIBE_S, B, ParameterDescription, DESCRIBE_S_ROWS
    for state in (DESCRIBE_S_ROWS, DESCRIBE_P):
        yield state, B, RowDescription, DONE
        yield state, B, NoData, DONE
    yield EXECUTE, B, DataRow, EXECUTE
    yield EXECUTE, B, CommandComplete, DONE
    yield EXECUTE, B, EmptyQueryResponse, DONE
    yield EXECUTE, B, PortalSuspended, DONE
    yield CLOSE, B, CloseComplete, DONE
    for state in (PARSE, BIND, DESCRIBE_S, DESCRIBE_S_ROWS, DESCRIBE_P, EXECUTE, CLOSE):
        yield state, B, ErrorResponse, SKIP
    # Sync commits the implicit transaction, which can fail (a deferred
    # constraint): then an error comes before ReadyForQuery, with no skipping.
    yield SYNC, B, ReadyForQuery, RFQ
    yield SYNC, B, ErrorResponse, SYNC_ERROR
    yield SYNC_ERROR, B, ReadyForQuery, RFQ

    # COPY, started by a Query (then more statements may follow) or an Execute.
    for owner, copy, after, fail in (
        (QUERY, Q_COPY, QUERY, Q_ERROR),
        (EXECUTE, X_COPY, DONE, SKIP),
    ):
        yield owner, B, CopyOutResponse, copy.out
        yield owner, B, CopyInResponse, copy.into
        yield owner, B, CopyBothResponse, copy.both
        yield copy.out, B, CopyData, copy.out
        yield copy.out, B, CopyDone, copy.end
        yield copy.end, B, CommandComplete, after
        # COPY FROM STDIN reads the client's input as it comes, ignoring
        # Flush and Sync (a Sync sent behind the Execute earns nothing).
        yield copy.into, F, COPY_DATA, copy.into
        yield copy.into, F, COPY_DONE, copy.end
        yield copy.into, F, COPY_FAIL, copy.failing
        yield copy.into, F, FLUSH, copy.into
        yield copy.into, F, SYNC, copy.into
        # COPY BOTH (replication): data both ways until both sides are done;
        # then, after a Query, the command's own results.
        yield copy.both, B, CopyData, copy.both
        yield copy.both, F, COPY_DATA, copy.both
        yield copy.both, B, CopyDone, copy.server_done
        yield copy.both, F, COPY_DONE, copy.client_done
        yield copy.server_done, F, COPY_DATA, copy.server_done
        yield copy.server_done, F, COPY_DONE, QUERY if owner is QUERY else copy.end
        yield copy.client_done, B, CopyData, copy.client_done
        yield copy.client_done, B, CopyDone, copy.both_over
        # A walsender (PostgreSQL 15 to 18) may still send a keepalive after
        # answering the client's CopyDone with its own; libpq drops it.
        yield copy.both_over, B, CopyData, copy.both_over
        yield copy.both_over, B, CommandComplete, after
        if owner is QUERY:
            yield copy.both_over, B, RowDescription, Q_ROWS
            # BASE_BACKUP ends its COPY OUT with a result set (the end
            # position) where SQL's COPY sends CommandComplete.
            yield copy.end, B, RowDescription, Q_ROWS
        for state in copy.states():
            yield state, B, ErrorResponse, fail

    # Function call.
    yield FUNCTION, B, FunctionCallResponse, FUNCTION_END
    yield FUNCTION, B, ErrorResponse, FUNCTION_END
    yield FUNCTION_END, B, ReadyForQuery, RFQ

    # A stream joined part-way accepts any step of its phase.
    for msg in (RowDescription, DataRow, CommandComplete, EmptyQueryResponse):
        yield Q_JOINED, B, msg, Q_JOINED
    yield Q_JOINED, B, CopyOutResponse, Q_COPY.out
    yield Q_JOINED, B, CopyInResponse, Q_COPY.into
    yield Q_JOINED, B, CopyBothResponse, Q_COPY.both
    yield Q_JOINED, B, ErrorResponse, Q_ERROR
    yield Q_JOINED, B, ReadyForQuery, RFQ
    for msg in (
        ParseComplete, BindComplete, CloseComplete, NoData, ParameterDescription, RowDescription,
        DataRow, CommandComplete, EmptyQueryResponse, PortalSuspended,
    ):  # fmt: skip
        yield X_JOINED, B, msg, X_JOINED
    yield X_JOINED, B, ErrorResponse, X_JOINED
    yield X_JOINED, B, ReadyForQuery, RFQ


_STARTUP_STATES = (
    STARTUP, SSL_WAIT, GSS_WAIT, AUTH, AUTH_NEGOTIATED, AUTH_PASSWORD, AUTH_RESULT,
    SASL_INITIAL, SASL_WAIT, SASL_REPLY, AUTH_GSS, INIT, INIT_KEYED,
)  # fmt: skip
_SESSION_STATES = (
    IDLE, QUERY, Q_ROWS, Q_ERROR, PARSE, BIND, DESCRIBE_S, DESCRIBE_S_ROWS, DESCRIBE_P,
    EXECUTE, CLOSE, SYNC, SYNC_ERROR, FUNCTION, FUNCTION_END, Q_JOINED, X_JOINED,
    *Q_COPY.states(), *X_COPY.states(),
)  # fmt: skip
#: Where each startup-phase message leads, wherever it comes (strict=False).
_STARTUP_TARGETS: dict[object, _State] = {}


def _compile() -> list[Rule]:
    rules = list(_rules())
    for state, sender, msg, target in rules:
        if msg is ErrorResponse:
            assert state.error is None, state
            state.error = target
            continue
        table: dict[Any, _State] = state.client if sender is F else state.server
        assert msg not in table, (state, sender, msg)
        table[msg] = target
        if state in _STARTUP_STATES:
            _STARTUP_TARGETS.setdefault(msg, target)
    # What COPY does when it reads anything but COPY input: the server
    # ends it with an error ("unexpected message type ... during COPY").
    for copy in (Q_COPY, X_COPY):
        for state in (copy.into, copy.both, copy.server_done):
            state.bad_input = copy.failing
    # The messages a server may send at any time once it has the startup
    # packet, written here once instead of in every state.
    for state in (*_STARTUP_STATES[3:], *_SESSION_STATES):
        for msg in _ANY_TIME:
            state.server.setdefault(msg, state)
    for request in _REQUESTS.values():
        request.startable = not request.silent and request is not TERMINATE
        request.syncs = request is SYNC
        request.batch = True if request in _EXTENDED else False if request in _CYCLE_END else None
    for request in _DESCRIBE.values():
        request.startable = request.batch = True
    SYNC_ERROR.syncs = 1
    for state in (*_STARTUP_STATES, *_SESSION_STATES, TERMINATED, FAILED):
        state.plain = state in _SESSION_STATES and not state.client
        state.queues = state.plain
        # Rows and COPY data that keep the state: a receive loop may let
        # them through without calling the model (ProtocolState.steady_*).
        state.steady_server = frozenset(
            m for m in (DataRow, CopyData) if state.server.get(m) is state
        )
        state.steady_client = frozenset({CopyData} if state.client.get(COPY_DATA) is state else ())
    return rules


_RULES: Final = _compile()


def transition_table() -> list[tuple[str, str, str, str]]:
    """The model as rows of text: (state, sender, message, next state).

    For documentation and tests; the model runs on compiled lookups.
    The any-time messages (NoticeResponse, ParameterStatus,
    NotificationResponse) and FATAL errors are accepted in every state
    after the startup packet and are not listed.
    """
    return [
        (state.name, sender.value, _name(msg), target.name) for state, sender, msg, target in _RULES
    ]


def _name(key: object) -> str:
    if isinstance(key, _State):
        return key.request
    assert isinstance(key, type)
    return key.__name__


def _request_of(msg: PGMessage) -> _State | None:
    mtype = type(msg)
    if mtype is Describe:
        return _DESCRIBE.get(cast(Describe, msg).kind)
    return _REQUESTS.get(mtype)


_FORCED: Final[dict[ConnectionPhase, _State]] = {
    P.STARTUP: STARTUP,
    P.SSL_NEGOTIATION: SSL_WAIT,
    P.GSS_NEGOTIATION: GSS_WAIT,
    P.AUTHENTICATING: AUTH,
    P.AUTHENTICATING_SASL_INITIAL: SASL_INITIAL,
    P.AUTHENTICATING_SASL_CONTINUE: SASL_WAIT,
    P.AUTHENTICATING_GSS: AUTH_GSS,
    P.INITIALIZATION: INIT,
    P.READY: IDLE,
    P.SIMPLE_QUERY: Q_JOINED,
    P.EXTENDED_QUERY: X_JOINED,
    P.COPY_IN: Q_COPY.into,
    P.COPY_OUT: Q_COPY.out,
    P.COPY_BOTH: Q_COPY.both,
    P.FUNCTION_CALL: FUNCTION,
    P.TERMINATED: TERMINATED,
    P.FAILED: FAILED,
}
_COPY_INPUT = frozenset({COPY_DATA, COPY_DONE, COPY_FAIL, FLUSH, SYNC})


class ProtocolState:
    """The state of one connection, advanced by what each side sends.

    Feed every client message to :meth:`client_sent` and every server
    message to :meth:`server_sent`, in the order they crossed the point
    where you stand (a client, a server, or a proxy between them: one
    object serves both directions).  A message that cannot occur raises
    :class:`StateMachineError`, or with ``strict=False`` is logged and
    applied as far as the model can (see the module's notes).
    """

    __slots__ = (
        "strict",
        "pending_syncs",
        "transaction_status",
        "protocol_version",
        "steady_server",
        "steady_client",
        "verbs",
        "_cur",
        "_queue",
        "in_session",
        "_skipping",
        "_unsynced",
        "_closed",
        "_after_error",
        "_ssl_done",
        "_gss_done",
        "_options",
    )

    def __init__(self, phase: ConnectionPhase = P.STARTUP, *, strict: bool = True) -> None:
        self.strict = strict
        #: Syncs sent whose ReadyForQuery has not arrived (a Sync that COPY
        #: FROM STDIN swallows, which earns none, is no longer counted).
        self.pending_syncs = 0
        #: Status from the last ReadyForQuery.
        self.transaction_status: TransactionStatus | None = None
        #: Version requested by StartupMessage, lowered by negotiation.
        self.protocol_version: int | None = None
        #: Server (client) message types that are valid now and change
        #: nothing: a receive loop may let them through without a call.
        self.steady_server: frozenset[_MsgType] = frozenset()
        self.steady_client: frozenset[_MsgType] = frozenset()
        #: How errors name each side's action (a role says send/receive).
        self.verbs = {F: "accept from the client", B: "accept from the server"}
        self._cur = STARTUP
        # Requests sent whose answer has not begun, oldest first.
        self._queue: deque[_State] = deque()
        #: True once ReadyForQuery ended the startup: client messages are
        #: requests of the session from then on.
        self.in_session = False
        # After an error in extended query the server skips to Sync.
        self._skipping = False
        # Extended-query messages sent since the last Sync (or Query): the
        # server holds an implicit transaction open for them.
        self._unsynced = False
        # The client sent Terminate: it may send nothing more.
        self._closed = False
        self._after_error = False
        # Startup guards: encryption negotiated, options asked for.
        self._ssl_done = self._gss_done = False
        self._options: frozenset[str] = frozenset()
        self.force(phase)

    # -- the entry points --------------------------------------------------------------
    def server_sent(self, msg: PGMessage) -> None:
        """Apply a message the server sent."""
        _server_steps(self, (msg,))

    def client_sent(self, msg: PGMessage) -> None:
        """Apply a message the client sent."""
        _client_steps(self, (msg,))

    # These two run for nearly every message: their loops are in the hot
    # path (pygwire._hotpath.model_steppers, compiled when built), which
    # writes out the common cases and calls the general methods below for
    # everything else.  A proxy validates each chunk's messages in one call.
    def server_sent_all(self, msgs: Iterable[PGMessage]) -> None:
        """Apply messages the server sent, in order."""
        _server_steps(self, msgs)

    def client_sent_all(self, msgs: Iterable[PGMessage]) -> None:
        """Apply messages the client sent, in order."""
        _client_steps(self, msgs)

    def advance(self, sender: MessageDirection, msg: PGMessage) -> None:
        """Apply ``msg`` sent by ``sender``."""
        if sender is B:
            self.server_sent(msg)
        else:
            self.client_sent(msg)

    # -- views -------------------------------------------------------------------------
    @property
    def phase(self) -> ConnectionPhase:
        """The phase of the oldest outstanding request (see the module notes)."""
        cur = self._cur
        if cur is IDLE and (self._unsynced or self._skipping):
            return P.EXTENDED_QUERY
        return cur.phase

    @property
    def outstanding(self) -> tuple[str, ...]:
        """Names of the client requests not fully answered yet, oldest first:
        the one being answered, then those queued behind it (Flush and COPY
        input outside COPY, which earn no answer, are left out)."""
        head = (self._cur.request,) if self._cur.request else ()
        return head + tuple(r.request for r in self._queue if not r.silent)

    @property
    def is_idle(self) -> bool:
        """Nothing in flight and not inside a transaction: what a pooler
        checks before it hands the server connection to another client."""
        return (
            self._cur is IDLE
            and not self._queue
            and not self._unsynced
            and not self._skipping
            and self.transaction_status is TransactionStatus.IDLE
        )

    def expected(self, sender: MessageDirection) -> tuple[str, ...]:
        """Names of the messages ``sender`` may send now."""
        cur = self._cur
        names: set[str]
        if sender is B:
            names = {m.__name__ for m in cur.server}
            if cur.error is not None or (self.in_session and cur.phase not in _OVER):
                names.add("ErrorResponse")  # a FATAL one at least
        elif not self.in_session:
            names = {_name(m) for m in cur.client}
        elif self._closed or cur.phase in _OVER:
            names = set()
        elif cur.client and not self._queue:  # COPY reads the client now
            names = {_name(r) for r in cur.client} | {"Terminate"}
        else:
            names = {m.__name__ for m in _REQUESTS} | {"Describe"}
        return tuple(sorted(names))

    # -- changing the state from outside -----------------------------------------------
    def force(self, phase: ConnectionPhase) -> None:
        """Put the model in ``phase``, e.g. to follow a stream joined part-way
        through.  Outstanding requests are forgotten."""
        state = _FORCED[phase]
        self._queue.clear()
        self._skipping = self._unsynced = self._after_error = self._closed = False
        self.in_session = state not in _STARTUP_SET and state is not FAILED
        self._enter(state)

    def fail(self) -> None:
        """Mark the connection failed (e.g. after an undecodable stream)."""
        self._queue.clear()
        self._enter(FAILED)

    # -- moving --------------------------------------------------------------------------
    def _enter(self, state: _State) -> None:
        self._cur = state
        self.steady_server = state.steady_server
        self.steady_client = state.steady_client

    def _move(self, nxt: _State, msg: PGMessage | None) -> None:
        """Take a transition of the table (from either side)."""
        if nxt is DONE:
            self._next()
        elif nxt is RFQ:
            self._ready(msg)
        elif nxt is SKIP:
            self._skipping = self._after_error = True
            self._next()
        else:
            if self._cur in _STARTUP_SET:
                self._startup_note(msg)
            self._enter(nxt)
            if nxt.client and self._queue:
                self._feed_copy()

    def _server_step(self, msg: PGMessage, cur: _State, nxt: _State | None) -> None:
        why = ""
        if isinstance(msg, ErrorResponse):
            # The untranslated severity (V) when the server sends it: S
            # follows lc_messages.
            fields = msg.fields
            if (fields.get("V") or fields.get("S")) in _FATAL and cur.phase not in _OVER:
                self._queue.clear()
                self._enter(FAILED)
                return
            nxt = cur.error
        elif nxt is not None and cur in _STARTUP_SET:
            why = self._startup_guard(msg)
        if nxt is None or why:
            self._violation(B, msg, nxt, why)
            return
        self._move(nxt, msg)

    def _startup_client_step(self, msg: PGMessage) -> None:
        nxt = self._cur.client.get(type(msg))
        why = "" if nxt is None else self._startup_guard(msg)
        if nxt is None or why:
            self._violation(F, msg, nxt, why)
            return
        self._move(nxt, msg)

    def _request(self, request: _State | None, msg: PGMessage) -> None:
        """The client sent ``msg`` during the session: the general case."""
        cur = self._cur
        if request is None:
            self._violation(F, msg, None)
            return
        if self._closed or cur.phase in _OVER:
            self._violation(F, msg, None, "the session is over")
            return
        if request.batch is not None:
            self._unsynced = request.batch
        self.pending_syncs += request.syncs
        if request is TERMINATE:
            self._closed = True
        if cur.client and not self._queue:
            # COPY is reading the client: it takes this message now.
            if request is TERMINATE:
                self._enter(TERMINATED)
            elif request in cur.client:
                self._copy_read(request)
            else:
                self._violation(
                    F,
                    msg,
                    None,
                    "during COPY the server reads CopyData, CopyDone, CopyFail, Flush, Sync",
                )
        elif cur is IDLE and not self._queue:
            self._start(request)
        else:
            self._queue.append(request)

    def _copy_read(self, request: _State) -> None:
        """COPY reads one client request (anything but COPY input ends it)."""
        cur = self._cur
        nxt = cur.client.get(request) or cur.bad_input
        if request is SYNC:
            self.pending_syncs -= 1  # swallowed: it earns no ReadyForQuery
        if nxt is not cur and nxt is not None:
            self._enter(nxt)

    def _feed_copy(self) -> None:
        """COPY FROM STDIN (or BOTH) began: the server reads the requests
        already queued as COPY input, as far as they go."""
        queue = self._queue
        while queue and self._cur.client:
            request = queue.popleft()
            if request is TERMINATE:
                self._enter(TERMINATED)
            else:
                self._copy_read(request)

    def _start(self, request: _State) -> None:
        """The server reads ``request``, the next in line."""
        if self._skipping:
            if request is SYNC:
                self._skipping = False
            elif request is not TERMINATE:
                return  # discarded unread
        if not request.silent:
            self._enter(TERMINATED if request is TERMINATE else request)

    def _next(self) -> None:
        """The current request is answered: the next in line begins."""
        queue = self._queue
        self._enter(IDLE)
        while queue and self._cur is IDLE:
            self._start(queue.popleft())

    def _ready(self, msg: PGMessage | None) -> None:
        """ReadyForQuery: a query cycle, or the startup, is closed."""
        cur = self._cur
        if cur is SYNC or cur is SYNC_ERROR:
            self.pending_syncs -= 1
        self.in_session = True
        if isinstance(msg, ReadyForQuery):
            self.transaction_status = msg.status
        self._after_error = False
        self._next()

    # -- startup guards: what a table row cannot say --------------------------------------
    def _startup_guard(self, msg: PGMessage) -> str:
        """Why ``msg`` may not take its row now, or "" (as libpq and the
        server check the startup)."""
        if isinstance(msg, SSLRequest) and self._ssl_done:
            return "encryption was already negotiated"
        if isinstance(msg, GSSEncRequest) and self._gss_done:
            return "GSS encryption was already negotiated"
        if isinstance(msg, DirectSSLHandshake) and (self._ssl_done or self._gss_done):
            return "direct SSL must open the connection"
        if isinstance(msg, NegotiateProtocolVersion):
            return self._negotiation_fault(msg)
        if isinstance(msg, BackendKeyData):
            key = len(msg.secret_key)
            if self.protocol_version == 0x30000 and key != 4:
                return f"a {key}-byte cancel key in a protocol 3.0 session (must be 4)"
        return ""

    def _negotiation_fault(self, msg: NegotiateProtocolVersion) -> str:
        newest = (3 << 16) | msg.newest_minor
        requested = self.protocol_version
        if requested is not None:
            if newest > requested:
                return (
                    f"the server offers 3.{newest & 0xFFFF}, "
                    f"above the 3.{requested & 0xFFFF} asked for"
                )
            unknown = [o for o in msg.unrecognized if o not in self._options]
            if unknown:
                return f"the server refuses options that were not asked for: {unknown}"
            if newest == requested and not msg.unrecognized:
                return "the server negotiated without changing anything"
        return ""

    def _startup_note(self, msg: PGMessage | None) -> None:
        """Record what a startup message carries beyond the state change."""
        if isinstance(msg, StartupMessage):
            self.protocol_version = msg.protocol_version
            self._options = frozenset(k for k in msg.params if k.startswith("_pq_."))
        elif isinstance(msg, NegotiateProtocolVersion):
            self.protocol_version = (3 << 16) | msg.newest_minor
        elif isinstance(msg, SSLRequest):
            self._ssl_done = True
        elif isinstance(msg, GSSEncRequest):
            self._gss_done = True
        elif isinstance(msg, DirectSSLHandshake) or msg in _ENCRYPTED:
            self._ssl_done = self._gss_done = True  # the channel is encrypted now

    # -- violations ------------------------------------------------------------------------
    def _violation(
        self, sender: MessageDirection, msg: PGMessage, nxt: _State | None, why: str = ""
    ) -> None:
        error = self._error(sender, type(msg), why)
        if self.strict:
            raise error
        log.warning("protocol violation, applied anyway: %s", error)
        self._recover(sender, msg, nxt)

    def _error(self, sender: MessageDirection, mtype: _MsgType, why: str) -> StateMachineError:
        cur = self._cur
        if not why and sender is B:
            if self._after_error and cur in (IDLE, SYNC):
                why = "after an ErrorResponse the server skips to the next Sync"
            elif cur.request:
                why = f"the oldest outstanding request is {cur.request}"
            elif cur is IDLE:
                why = "no request is outstanding"
        elif not why and mtype is PasswordMessage and cur in (AUTH, AUTH_RESULT):
            why = "no cleartext or MD5 password was requested"
        expected = self.expected(sender)
        verb = self.verbs[sender]
        return StateMachineError(
            f"cannot {verb} {mtype.__name__} in phase {self.phase.name}"
            + (f" ({why})" if why else "")
            + f"; expected one of: {', '.join(expected) or 'nothing'}",
            phase=self.phase,
            message=mtype.__name__,
            direction=verb if verb in ("send", "receive") else sender.value,
            expected=expected,
        )

    def _recover(self, sender: MessageDirection, msg: PGMessage, nxt: _State | None) -> None:
        """Apply a message the model refused, as far as it can (strict=False)."""
        cur = self._cur
        if cur.phase in _OVER:
            return  # the connection is over: nothing to apply
        if nxt is not None:  # a row whose guard failed: take it anyway
            self._move(nxt, msg)
            return
        mtype = type(msg)
        request = _request_of(msg) if sender is F else None
        if request is not None:
            if not self.in_session:  # session traffic: the session runs
                self.in_session = True
                self._enter(IDLE)
                self._request(request, msg)
            elif cur.client and not self._queue:  # what COPY makes of it
                self._copy_read(request)
            return
        if not self.in_session or mtype not in _SESSION_SERVER:
            target = _STARTUP_TARGETS.get(mtype)
            if target is not None:
                self._move(target, msg)
            return
        queue = self._queue
        if mtype is ReadyForQuery:
            # Close every request up to the first one that earns it.
            if cur.request not in _CYCLE_END_NAMES:
                while queue and queue.popleft() not in _CYCLE_END:
                    pass
            self.pending_syncs = sum(1 for r in queue if r is SYNC)
            self._skipping = False
            self._cur = IDLE
            self._ready(msg)
            return
        # The answer to a later request: drop those queued before it.
        for i, request in enumerate(queue):
            target = request.error if mtype is ErrorResponse else request.server.get(mtype)
            if target is not None:
                for _ in range(i + 1):
                    if queue.popleft() is SYNC:
                        self.pending_syncs -= 1
                self._skipping = False
                self._enter(request)
                self._move(target, msg)
                return
            if request in _CYCLE_END:
                break
        # Nothing outstanding could have produced it: ignore it.


_STARTUP_SET = frozenset(_STARTUP_STATES)
_ENCRYPTED = (SSLResponse.SUPPORTED, GSSEncResponse.SUPPORTED)
_NONE: frozenset[_MsgType] = frozenset()
_CYCLE_END_NAMES = frozenset(r.request for r in _CYCLE_END)
_OVER = frozenset({P.TERMINATED, P.FAILED})
_server_steps, _client_steps = model_steppers(
    ProtocolState, _State, (IDLE, DONE, RFQ, _NONE), _REQUESTS, Describe, _DESCRIBE
)
#: Server message types that answer requests in the session.
_SESSION_SERVER = frozenset(m for s in _SESSION_STATES for m in s.server) | {ErrorResponse}


class StateMachine:
    """One role's view of a connection: its own messages are sent, the
    peer's received.  The model is a :class:`ProtocolState`."""

    #: The side this role speaks for, and the side it hears.
    mine: ClassVar[MessageDirection]
    theirs: ClassVar[MessageDirection]

    def __init__(self, phase: ConnectionPhase = P.STARTUP, *, strict: bool = True) -> None:
        #: The model both roles share.
        self.state = ProtocolState(phase, strict=strict)
        self.state.verbs = {self.mine: "send", self.theirs: "receive"}

    def send(self, msg: PGMessage) -> None:
        """Record a message this side sends; raise if it cannot occur now."""
        self.state.advance(self.mine, msg)

    def receive(self, msg: PGMessage) -> None:
        """Record a message this side received; raise if it cannot occur now."""
        self.state.advance(self.theirs, msg)

    @property
    def phase(self) -> ConnectionPhase:
        """The phase of the oldest outstanding request."""
        return self.state.phase

    @phase.setter
    def phase(self, phase: ConnectionPhase) -> None:
        """Force a phase, e.g. to follow a stream joined part-way."""
        self.state.force(phase)

    @property
    def is_ready(self) -> bool:
        """True when nothing is outstanding (phase READY)."""
        return self.state.phase is P.READY

    @property
    def is_idle(self) -> bool:
        """Nothing in flight and not inside a transaction."""
        return self.state.is_idle

    @property
    def is_active(self) -> bool:
        """False once the connection is terminated or has failed."""
        return self.state.phase not in _OVER

    @property
    def pending_syncs(self) -> int:
        """Syncs sent whose ReadyForQuery has not come yet."""
        return self.state.pending_syncs

    @property
    def outstanding(self) -> tuple[str, ...]:
        """The client requests not fully answered yet, oldest first."""
        return self.state.outstanding

    @property
    def transaction_status(self) -> TransactionStatus | None:
        """The status from the last ReadyForQuery, if any."""
        return self.state.transaction_status

    @property
    def protocol_version(self) -> int | None:
        """The protocol version in force: requested, or negotiated down."""
        return self.state.protocol_version

    @property
    def expected(self) -> tuple[str, ...]:
        """Names of the messages the peer may send next."""
        return self.state.expected(self.theirs)

    def fail(self) -> None:
        """Mark the connection failed (e.g. after an undecodable stream)."""
        self.state.fail()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} phase={self.phase.name} outstanding={list(self.outstanding)}>"
        )


class FrontendStateMachine(StateMachine):
    """The client's view: sends frontend messages, receives backend ones."""

    mine = F
    theirs = B


class BackendStateMachine(StateMachine):
    """The server's view: sends backend messages, receives frontend ones."""

    mine = B
    theirs = F
