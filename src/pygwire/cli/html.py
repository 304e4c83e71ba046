"""Proxied PostgreSQL connections drawn as sequence diagrams, in one HTML page.

A :class:`SessionDiagram` collects what a proxy saw during one run and
renders it as a single self-contained page: inline CSS, no script, no
font, image or anything else fetched (a Content-Security-Policy in the page
forbids it, so even a mistake in escaping could not run code).  Each
connection is one diagram with three lanes, client, proxy and server; each
message is one horizontal arrow labelled with its name, its key fields, its
wire size and its time since the connection's first event.

Message contents are hostile input: every piece of text is cut to a
bounded length, control and invisible formatting characters are shown as
escapes, and the result is HTML-escaped.  Passwords and authentication
tokens are never shown.

Recording is built for long sessions: a run of DataRow (or CopyData)
messages in one direction is counted into a single arrow as it arrives,
no message object is kept, and the number of arrows per connection, in
the whole page, and the number of connections drawn are capped (what is
left out is counted and said on the page).
"""

from __future__ import annotations

import html
import os
import re
import reprlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from pygwire.constants import TransactionStatus
from pygwire.exceptions import PygwireError
from pygwire.messages import (
    AuthenticationGSSContinue,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    Bind,
    CancelRequest,
    Close,
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    DirectSSLHandshake,
    ErrorResponse,
    Execute,
    Flush,
    FunctionCall,
    FunctionCallResponse,
    GSSEncResponse,
    GSSResponse,
    NegotiateProtocolVersion,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    PasswordMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLResponse,
    StartupMessage,
    Sync,
)

__all__ = ["LANES", "ConnectionRecorder", "SessionDiagram", "summarize"]

LANES: Final = ("client", "proxy", "server")
"""The three lanes of every diagram, left to right."""

_LANES: Final = {lane: i for i, lane in enumerate(LANES)}

#: How much of a query, an error message or a note a label shows.
QUERY_CHARS: Final = 80
TEXT_CHARS: Final = 160
NAME_CHARS: Final = 60
NOTE_CHARS: Final = 300

_REDACTED: Final = "[redacted]"

# Control characters, and the invisible ones that could make a label read
# as something else (bidirectional overrides, zero-width joiners, BOM) or
# could not be encoded at all (lone surrogates): shown as escapes.
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_SPACE = re.compile(r"[\t\n\r ]+")

_REPR = reprlib.Repr()
_REPR.maxstring = TEXT_CHARS
_REPR.maxother = TEXT_CHARS
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 8


def _escape_hidden(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _clip(value: object, limit: int) -> str:
    """One line of at most ``limit`` characters, safe to show."""
    if (
        type(value) is str
        and len(value) <= limit
        and value.isprintable()  # False for every character _HIDDEN matches, and for \t \n \r
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
    ):
        return value  # the usual name, tag or short query: nothing to change
    if isinstance(value, str):
        # Slicing first bounds the work on a huge field; whitespace runs
        # are folded afterwards, so a little more than the limit is read.
        raw = value[: limit * 2 + 1]
        cut = len(value) > len(raw)
    else:
        raw = _REPR.repr(value)
        cut = False
    text = _HIDDEN.sub(_escape_hidden, _SPACE.sub(" ", raw)).strip()
    if cut or len(text) > limit:
        return text[: limit - 1].rstrip() + "\u2026"
    return text


def _name(value: object) -> str:
    """A statement or portal name: quoted, or "unnamed"."""
    return f'"{_clip(value, NAME_CHARS)}"' if value else "unnamed"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _size(n: int) -> str:
    """A byte count as people read it (decimal units, as in "56 kB")."""
    value, unit = float(n), 0
    while value >= 999.5 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    if unit == 0:
        return f"{n} B"
    return f"{value:.1f} {_UNITS[unit]}" if value < 9.95 else f"{value:,.0f} {_UNITS[unit]}"


_UNITS: Final = ("B", "kB", "MB", "GB", "TB")


# -- one line per message: what a person needs to follow the conversation ----------


_STARTUP_KEYS: Final = ("user", "database", "application_name", "replication")


def _startup(m: StartupMessage) -> str:
    params = m.params if isinstance(m.params, dict) else {}
    shown = [key for key in _STARTUP_KEYS if key in params]
    parts = [f"{key}={_clip(params[key], NAME_CHARS)}" for key in shown]
    version = m.protocol_version
    if isinstance(version, int):
        parts.append(f"protocol {version >> 16}.{version & 0xFFFF}")
    others = len(params) - len(shown)
    if others > 0:
        parts.append(f"+{_count(others, 'parameter')}")
    return " ".join(parts)


def _cancel(m: CancelRequest) -> str:
    return f"pid {m.process_id}"  # the secret key is what makes a cancel valid


def _answer(m: SSLResponse | GSSEncResponse) -> str:
    return "S (accepted)" if m.name == "SUPPORTED" else "N (refused)"


def _direct_ssl(m: DirectSSLHandshake) -> str:
    return f"TLS handshake, {_size(len(m.data))}"


def _redacted(m: object) -> str:
    return _REDACTED


def _sasl(m: AuthenticationSASL) -> str:
    return ", ".join(_clip(name, NAME_CHARS) for name in m.mechanisms[:8])


def _auth_data(m: AuthenticationSASLContinue) -> str:
    # Server nonces, salts and signatures are no password, but they are of
    # no use to a reader either: the size says enough.
    return f"{_size(len(m.data))} of data"


def _parameter_status(m: ParameterStatus) -> str:
    return f"{_clip(m.name, NAME_CHARS)}={_clip(m.value, NAME_CHARS)}"


def _key_data(m: BackendKeyData) -> str:
    return f"pid {m.process_id}"


_STATUS: Final = {
    TransactionStatus.IDLE: "idle",
    TransactionStatus.IN_TRANSACTION: "in transaction",
    TransactionStatus.ERROR_TRANSACTION: "failed transaction",
}


def _ready(m: ReadyForQuery) -> str:
    status = m.status
    meaning = _STATUS.get(status) if isinstance(status, str) else None
    return f"{status} ({meaning})" if meaning else _clip(status, NAME_CHARS)


def _query(m: Query) -> str:
    return _clip(m.query_string, QUERY_CHARS)


def _parse(m: Parse) -> str:
    text = f"{_name(m.statement)}: {_clip(m.query, QUERY_CHARS)}"
    if m.param_types:
        text += f" ({_count(len(m.param_types), 'parameter type')})"
    return text


def _bind(m: Bind) -> str:
    return (
        f"portal {_name(m.portal)} from statement {_name(m.statement)}, "
        f"{_count(len(m.param_values), 'parameter')}"
    )


_KINDS: Final = {"S": "statement", "P": "portal"}


def _kind_and_name(m: Describe | Close) -> str:
    kind = _KINDS.get(m.kind) if isinstance(m.kind, str) else None
    return f"{kind or _clip(m.kind, NAME_CHARS)} {_name(m.name)}"


def _execute(m: Execute) -> str:
    rows = "all rows" if m.max_rows == 0 else f"max_rows {m.max_rows}"
    return f"portal {_name(m.portal)}, {rows}"


def _row_description(m: RowDescription) -> str:
    names = ", ".join(_clip(f.name, NAME_CHARS) for f in m.fields[:40])
    return f"{_count(len(m.fields), 'column')}: {_clip(names, QUERY_CHARS)}"


def _data_row(m: DataRow) -> str:
    try:
        return _count(len(m.columns), "column")
    except PygwireError:  # a decoded row is split on first access
        return "malformed row"


def _command_complete(m: CommandComplete) -> str:
    return _clip(m.tag, NAME_CHARS)


def _fields(m: ErrorResponse | NoticeResponse) -> str:
    severity = m.severity_nonlocalized or m.severity
    return (
        f"{_clip(severity, NAME_CHARS)} {_clip(m.code, NAME_CHARS)}: {_clip(m.message, TEXT_CHARS)}"
    )


def _notification(m: NotificationResponse) -> str:
    return (
        f"channel {_clip(m.channel, NAME_CHARS)}: {_clip(m.payload, QUERY_CHARS)} "
        f"(pid {m.process_id})"
    )


def _copy_response(m: CopyInResponse) -> str:
    form = {0: "text", 1: "binary"}.get(m.overall_format, _clip(m.overall_format, NAME_CHARS))
    return f"{form}, {_count(len(m.col_formats), 'column')}"


def _copy_data(m: CopyData) -> str:
    return f"{_size(len(m.data))} of data"


def _copy_fail(m: CopyFail) -> str:
    return _clip(m.error_message, TEXT_CHARS)


def _function_call(m: FunctionCall) -> str:
    return f"function {m.function_oid}, {_count(len(m.arguments), 'argument')}"


def _function_result(m: FunctionCallResponse) -> str:
    return "NULL" if m.result is None else _size(len(m.result))


def _negotiate(m: NegotiateProtocolVersion) -> str:
    text = f"newest minor {m.newest_minor}"
    if m.unrecognized:
        names = ", ".join(_clip(name, NAME_CHARS) for name in m.unrecognized[:8])
        text += f", unrecognized: {_clip(names, QUERY_CHARS)}"
    return text


def _parameter_description(m: ParameterDescription) -> str:
    return _count(len(m.type_oids), "parameter")


_SUMMARIES: Final[dict[type, Callable[[Any], str]]] = {
    StartupMessage: _startup,
    CancelRequest: _cancel,
    SSLResponse: _answer,
    GSSEncResponse: _answer,
    DirectSSLHandshake: _direct_ssl,
    PasswordMessage: _redacted,
    SASLInitialResponse: _redacted,
    SASLResponse: _redacted,
    GSSResponse: _redacted,
    AuthenticationSASL: _sasl,
    AuthenticationSASLContinue: _auth_data,
    AuthenticationSASLFinal: _auth_data,
    AuthenticationGSSContinue: _auth_data,
    ParameterStatus: _parameter_status,
    BackendKeyData: _key_data,
    ReadyForQuery: _ready,
    Query: _query,
    Parse: _parse,
    Bind: _bind,
    Describe: _kind_and_name,
    Close: _kind_and_name,
    Execute: _execute,
    RowDescription: _row_description,
    DataRow: _data_row,
    CommandComplete: _command_complete,
    ErrorResponse: _fields,
    NoticeResponse: _fields,
    NotificationResponse: _notification,
    CopyInResponse: _copy_response,
    CopyOutResponse: _copy_response,
    CopyBothResponse: _copy_response,
    CopyData: _copy_data,
    CopyFail: _copy_fail,
    FunctionCall: _function_call,
    FunctionCallResponse: _function_result,
    NegotiateProtocolVersion: _negotiate,
    ParameterDescription: _parameter_description,
}


def summarize(message: object) -> str:
    """The key fields of ``message`` on one line, safe to show anywhere.

    Long text is cut (a query to about 80 characters), control characters
    are escaped, and passwords and authentication tokens are replaced by
    ``[redacted]``.  The result is plain text (not yet HTML-escaped); it is
    empty for messages without fields.  It never raises: a message whose
    fields cannot be read (a hand-made one with wrong types, say) gets a
    placeholder instead.
    """
    kind = type(message)
    summary = _SUMMARIES.get(kind)
    if summary is None:
        # A subclass is described as what it extends.
        summary = next((_SUMMARIES[c] for c in kind.__mro__ if c in _SUMMARIES), None)
        if summary is None:
            return ""
    try:
        return summary(message)
    except Exception as exc:  # messages are anyone's objects; a label never stops a proxy
        return f"(fields unreadable: {type(exc).__name__})"


# -- recording ---------------------------------------------------------------------

# Extended-query messages a client sends ahead of its Sync: drawn as one
# pipeline when several come in a row.
_EXTENDED: Final = frozenset({Parse, Bind, Describe, Execute, Close, Flush, Sync})
# Messages that come in long runs: one arrow per run.
_RUNS: Final = frozenset({DataRow, CopyData})


class _Arrow:
    """One drawn arrow: a message, or a run of DataRow or CopyData."""

    __slots__ = (
        "at", "count", "detail", "dst", "group", "kind", "last_at", "size", "src", "type", "way",
    )  # fmt: skip

    def __init__(
        self, src: str, dst: str, type_: type, *, detail: str, size: int, at: float, group: int
    ) -> None:
        self.src = src
        self.dst = dst
        self.way = 0 if _LANES[dst] > _LANES[src] else 1  # towards the server, or the client
        self.type = type_
        self.kind = type_.__name__
        self.detail = detail
        self.size = size
        self.count = 1
        self.at = at
        self.last_at = at
        self.group = group


class _Note:
    """A line of text the proxy adds to the diagram: TLS, errors, closing."""

    __slots__ = ("at", "kind", "text")

    def __init__(self, text: str, at: float, kind: str) -> None:
        self.text = text
        self.at = at
        self.kind = kind


class ConnectionRecorder:
    """What one connection exchanged, as :meth:`SessionDiagram.connection` records it.

    Call :meth:`message` for every message seen, :meth:`note` for anything
    else worth showing and :meth:`close` at the end.  Times are seconds from
    any clock (``time.monotonic()``); the diagram shows them relative to the
    connection's first event.  A recorder beyond the diagram's connection
    cap accepts the same calls and keeps nothing.

    Each direction may be recorded from its own thread (a proxy's two
    pumps), and the page drawn from a third; messages of one direction
    must come from one thread at a time, as they do from one socket.
    """

    def __init__(
        self,
        diagram: SessionDiagram,
        number: int,
        client: str,
        server: str,
        started: float,
        *,
        drawn: bool,
    ) -> None:
        #: 1 for the diagram's first connection, 2 for the next, ...
        self.number = number
        #: The client's and the server's addresses, as given.
        self.client = client
        self.server = server
        #: Wall-clock time (``time.time()``) the connection was opened.
        self.started = started
        #: False when the diagram's connection cap left this one out.
        self.drawn = drawn
        self._diagram = diagram
        self._lock = threading.Lock()
        self._items: list[_Arrow | _Note] = []
        # The arrow a DataRow or CopyData run grows, while it is the last
        # thing drawn; None once anything else is recorded or dropped.
        self._run: _Arrow | None = None
        self._group = 0  # the latest pipeline's number
        self._group_open = False  # its Sync has not been seen yet
        self._first_at: float | None = None
        self._last_at: float | None = None
        self._messages = [0, 0]  # towards the server, towards the client
        self._bytes = [0, 0]
        self._dropped_messages = 0
        self._dropped_notes = 0
        self._closed: tuple[float, str] | None = None

    def _event(self, at: float) -> float:
        at = float(at)
        if self._first_at is None:
            self._first_at = at
        if self._last_at is None or at > self._last_at:
            self._last_at = at
        return at

    def message(self, src: str, dst: str, message: object, size: int, at: float) -> None:
        """Record ``message`` (a :class:`pygwire.messages.PGMessage`) going ``src`` to ``dst``.

        A message the proxy forwards goes client to server (or back) and
        crosses the proxy's lane; one the proxy sends or consumes itself
        starts or ends there (``src`` and ``dst`` are two of :data:`LANES`;
        anything else is a ValueError).  ``size`` is its size on the wire in
        bytes.
        """
        run = self._run
        if run is not None and type(message) is run.type and src == run.src and dst == run.dst:
            # The hot case, each row of a long result: a few sums and no
            # lock (taking one would cost more than all the rest).  Only the
            # thread that records this direction touches the run and its
            # counters; the run's last time joins the connection's when the
            # page is drawn.
            run.count += 1
            run.size += size
            run.last_at = at
            self._messages[run.way] += 1
            self._bytes[run.way] += size
            return
        self._message(src, dst, message, size, at)

    def _message(self, src: str, dst: str, message: object, size: int, at: float) -> None:
        if not self.drawn:
            return
        try:
            towards_server = _LANES[dst] > _LANES[src]
        except KeyError:
            lanes = f"{src!r} -> {dst!r}"
            raise ValueError(f"lanes are client, proxy and server, not {lanes}") from None
        if src == dst:
            raise ValueError(f"a message goes from one lane to another, not {src!r} to itself")
        size = int(size)
        size = max(size, 0)
        kind = type(message)
        with self._lock:
            at = self._event(at)
            way = 0 if towards_server else 1
            self._messages[way] += 1
            self._bytes[way] += size
            group = 0
            if kind in _EXTENDED and towards_server:
                last = self._items[-1] if self._items else None
                if not (
                    self._group_open
                    and isinstance(last, _Arrow)
                    and last.group == self._group
                    and last.src == src
                    and last.dst == dst
                ):
                    self._group += 1
                group = self._group
                self._group_open = kind is not Sync
            else:
                self._group_open = False
            if len(self._items) >= self._diagram.max_arrows or not self._diagram._take_room():
                self._dropped_messages += 1
                self._run = None
                self._group_open = False
                return
            arrow = _Arrow(src, dst, kind, detail=summarize(message), size=size, at=at, group=group)
            self._items.append(arrow)
            self._run = arrow if kind in _RUNS else None

    def note(self, text: str, *, at: float, kind: str = "info") -> None:
        """Add a line of text to the diagram, e.g. "TLS established (TLSv1.3)".

        ``kind="error"`` draws it as an error ("protocol violation: ...");
        any other kind is drawn as ``"info"``.
        """
        if not self.drawn:
            return
        with self._lock:
            at = self._event(at)
            self._run = None
            self._group_open = False
            if len(self._items) >= self._diagram.max_arrows or not self._diagram._take_room():
                self._dropped_notes += 1
                return
            self._items.append(_Note(_clip(text, NOTE_CHARS), at, _note_kind(kind)))

    def close(self, *, at: float, reason: str = "") -> None:
        """Record the end of the connection (the first call counts)."""
        if not self.drawn:
            return
        with self._lock:
            at = self._event(at)
            if self._closed is None:
                self._closed = (at, _clip(reason, NOTE_CHARS))

    def render(self) -> str:
        """This connection's section of the page (HTML)."""
        with self._lock:
            return _render_connection(self)


def _note_kind(kind: object) -> str:
    return "error" if kind == "error" else "info"


class SessionDiagram:
    """Every connection of one proxy run, drawn as sequence diagrams in one page.

    ``max_arrows`` caps the arrows (and notes) kept per connection,
    ``max_total_arrows`` those kept in the whole diagram, and
    ``max_connections`` the connections drawn; what is left out is counted
    and said on the page.  A run of DataRow or CopyData messages is one
    arrow, so the caps bite on long conversations, not on big results.
    """

    def __init__(
        self,
        title: str = "pygwire sessions",
        *,
        max_connections: int = 1000,
        max_arrows: int = 5000,
        max_total_arrows: int = 500_000,
    ) -> None:
        self.title = title
        self.max_connections = max_connections
        self.max_arrows = max_arrows
        self.max_total_arrows = max_total_arrows
        self._connections: list[ConnectionRecorder] = []
        self._opened = 0
        self._kept = 0  # arrows and notes kept, all connections together
        self._lock = threading.Lock()

    def _take_room(self) -> bool:
        # Connections record from their own threads; the page-wide count is shared.
        with self._lock:
            if self._kept >= self.max_total_arrows:
                return False
            self._kept += 1
            return True

    @property
    def connections_left_out(self) -> int:
        """Connections opened beyond ``max_connections``: counted, not drawn."""
        return self._opened - len(self._connections)

    def connection(
        self, client: str, server: str, *, started: float | None = None
    ) -> ConnectionRecorder:
        """Start recording a connection; connections are numbered 1, 2, ... in this order.

        ``started`` is the wall-clock time shown in its header (default: now).
        """
        with self._lock:
            self._opened += 1
            drawn = len(self._connections) < self.max_connections
            recorder = ConnectionRecorder(
                self,
                self._opened,
                _clip(client, NAME_CHARS * 2),
                _clip(server, NAME_CHARS * 2),
                time.time() if started is None else started,
                drawn=drawn,
            )
            if drawn:
                self._connections.append(recorder)
            return recorder

    def render(self) -> str:
        """The whole page: one self-contained HTML document."""
        with self._lock:
            connections = list(self._connections)
            left_out = self.connections_left_out
        title = _clip(self.title, TEXT_CHARS)
        out = [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            # Nothing may be fetched and no script may run: the page is
            # self-contained, and escaped text stays text even if an escape
            # were ever missed.
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
            f'<header class="page"><h1>{_e(title)}</h1>\n<p class="summary">',
            _e(_count(len(connections) + left_out, "connection")),
            f", generated {_e(_wall(time.time()))}.</p>\n",
            _LEGEND,
        ]
        if left_out:
            out.append(
                f'<p class="left-out" data-left-out="{left_out}">'
                f"\u2026 {_e(_count(left_out, 'more connection'))} not drawn "
                f"(at most {self.max_connections:,} per page).</p>\n"
            )
        out.append("</header>\n")
        out.extend(conn.render() for conn in connections)
        out.append("</body>\n</html>\n")
        return "".join(out)

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`render` to ``path`` atomically.

        The page goes to a temporary file in the same directory, which then
        replaces ``path``: a reader sees the old page or the new one, never
        half of one.  The file is readable by its owner only (it holds query
        text).
        """
        target = Path(path)
        data = self.render().encode("utf-8", "replace")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# -- rendering ---------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _wall(seconds: float) -> str:
    try:
        stamp = time.localtime(seconds)
    except (OverflowError, OSError, ValueError):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", stamp) + f".{int(seconds % 1 * 1000):03d}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.3f} ms"


def _span(src: str, dst: str) -> str:
    low, high = sorted((_LANES[src], _LANES[dst]))
    return "span-" + "cps"[low] + "cps"[high]


def _render_connection(conn: ConnectionRecorder) -> str:
    t0 = conn._first_at if conn._first_at is not None else 0.0
    times = [item.last_at for item in conn._items if isinstance(item, _Arrow)]
    if conn._last_at is not None:
        times.append(conn._last_at)
    duration = max(times) - t0 if times else 0.0
    closed = conn._closed
    state = f"closed: {closed[1]}" if closed and closed[1] else ("closed" if closed else "open")
    stats = [
        ("client", conn.client),
        ("server", conn.server),
        ("started", _wall(conn.started)),
        ("duration", _ms(duration)),
        (
            "to server",
            f"{_count(conn._messages[0], 'message')}, {_size(conn._bytes[0])}",
        ),
        (
            "to client",
            f"{_count(conn._messages[1], 'message')}, {_size(conn._bytes[1])}",
        ),
        ("state", state),
    ]
    out = [
        f'<section class="conn" id="conn-{conn.number}" data-conn="{conn.number}">\n',
        f'<h2>Connection {conn.number}</h2>\n<dl class="stats">',
    ]
    out += [f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in stats]
    out.append('</dl>\n<div class="seq">\n')
    out.append(
        '<div class="row lanes"><div class="t">time</div><div class="area">'
        f'<div class="head client"><b>client</b><small>{_e(conn.client)}</small></div>'
        '<div class="head proxy"><b>proxy</b><small>pygwire</small></div>'
        f'<div class="head server"><b>server</b><small>{_e(conn.server)}</small></div>'
        "</div></div>\n"
    )
    items = conn._items
    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, _Arrow) and item.group:
            j = i + 1
            while j < len(items):
                nxt = items[j]
                if not (isinstance(nxt, _Arrow) and nxt.group == item.group):
                    break
                j += 1
            if j - i > 1:
                out.append(_pipeline(items[i:j], t0))
                i = j
                continue
        out.append(_item(item, t0))
        i += 1
    if conn._dropped_messages or conn._dropped_notes:
        parts = []
        if conn._dropped_messages:
            parts.append(_count(conn._dropped_messages, "more message"))
        if conn._dropped_notes:
            parts.append(_count(conn._dropped_notes, "more note"))
        out.append(
            f'<div class="row dropped" data-dropped="{conn._dropped_messages}">'
            '<div class="t"></div><div class="area"><div class="box">'
            f"\u2026 {_e(' and '.join(parts))} not drawn</div></div></div>\n"
        )
    if closed:
        out.append(
            f'<div class="row note close" data-kind="close"><div class="t">+{_ms(closed[0] - t0)}'
            f'</div><div class="area"><div class="box">{_e(state)}</div></div></div>\n'
        )
    out.append("</div>\n</section>\n")
    return "".join(out)


def _pipeline(arrows: Iterable[_Arrow | _Note], t0: float) -> str:
    rows = [_item(a, t0) for a in arrows]
    return (
        f'<div class="pipeline" data-messages="{len(rows)}">'
        '<div class="row pl-label"><div class="t"></div><div class="area">'
        f"<span>pipeline: {len(rows)} messages</span></div></div>\n" + "".join(rows) + "</div>\n"
    )


def _item(item: _Arrow | _Note, t0: float) -> str:
    if isinstance(item, _Note):
        return (
            f'<div class="row note {item.kind}" data-kind="note">'
            f'<div class="t">+{_ms(item.at - t0)}</div>'
            f'<div class="area"><div class="box">{_e(item.text)}</div></div></div>\n'
        )
    a = item
    ltr = _LANES[a.dst] > _LANES[a.src]
    span = _span(a.src, a.dst)
    classes = ["row", "arrow", "ltr" if ltr else "rtl", f"from-{a.src}", f"to-{a.dst}", span]
    if "proxy" in (a.src, a.dst):
        classes.append("own")  # the proxy speaks for itself, not forwarding
    if a.kind == "ErrorResponse":
        classes.append("error")
    elif a.kind == "NoticeResponse":
        classes.append("notice")
    if a.count > 1:
        name = f"{a.kind} x {a.count}"
        detail = f"({_size(a.size)})"
        meta = f"over {_ms(a.last_at - a.at)}"
    else:
        name, detail, meta = a.kind, a.detail, _size(a.size)
    # A forwarded message passes through the proxy: a dot where it crosses.
    via = '<i class="via"></i>' if span == "span-cs" else ""
    return (
        f'<div class="{" ".join(classes)}" data-kind="{_e(a.kind)}" data-count="{a.count}" '
        f'data-size="{a.size}" data-src="{a.src}" data-dst="{a.dst}">'
        f'<div class="t">+{_ms(a.at - t0)}</div><div class="area"><div class="span">'
        f'<div class="label"><span class="lbl"><b>{_e(name)}</b>'
        + (f' <span class="detail">{_e(detail)}</span>' if detail else "")
        + f' <span class="meta">{_e(meta)}</span></span></div>'
        f'<div class="line">{via}</div></div></div></div>\n'
    )


_LEGEND: Final = (
    '<p class="legend"><span class="k up">client to server</span>'
    '<span class="k down">server to client</span>'
    '<span class="k own">sent or consumed by the proxy</span>'
    '<span class="k err">error</span><span class="k warn">notice</span>'
    '<span class="k pl">pipeline (extended query up to Sync)</span></p>\n'
)

# Lanes sit at 8%, 50% and 92% of each row's drawing area; every row paints
# the three lane lines as its own background, so the lines run unbroken
# down the diagram and nothing needs absolute positions to line up.
_CSS: Final = """
:root{--lane:#9aa3b2;--up:#1f5fbf;--down:#2d7a3a;--own:#7b3fb0;--err:#c62828;--warn:#a86400}
*{box-sizing:border-box}
body{margin:0;padding:16px 20px;font:13px/1.35 system-ui,"DejaVu Sans",Arial,sans-serif;
color:#1d2330;background:#f4f5f8}
h1{font-size:18px;margin:0 0 4px}
h2{font-size:15px;margin:0 0 6px}
.summary,.left-out{margin:2px 0;color:#4a5160}
.left-out{color:var(--err);font-weight:600}
.legend{margin:6px 0 14px;font-size:12px}
.legend .k{display:inline-block;margin-right:14px;padding-left:22px;position:relative}
.legend .k::before{content:"";position:absolute;left:0;top:50%;width:16px;height:3px;
margin-top:-1px;background:var(--c)}
.k.up{--c:var(--up)}.k.down{--c:var(--down)}.k.own{--c:var(--own)}.k.err{--c:var(--err)}
.k.warn{--c:var(--warn)}.k.pl{--c:#6b8fd6}
.conn{background:#fff;border:1px solid #d9dde5;border-radius:6px;margin:0 0 20px;
padding:12px 14px 10px}
.stats{display:flex;flex-wrap:wrap;gap:4px 18px;margin:0 0 10px;font-size:12px}
.stats div{display:flex;gap:5px}.stats dt{color:#6a7180}.stats dd{margin:0;font-weight:600}
.seq{font-size:12px}
.row{display:grid;grid-template-columns:104px 1fr}
.t{color:#6a7180;font:11px/1.2 ui-monospace,"DejaVu Sans Mono",monospace;text-align:right;
padding:0 10px 0 0;align-self:end;white-space:nowrap}
.area{position:relative;min-width:0;background:
linear-gradient(var(--lane),var(--lane)) 8% 0/1px 100% no-repeat,
linear-gradient(var(--lane),var(--lane)) 50% 0/1px 100% no-repeat,
linear-gradient(var(--lane),var(--lane)) 92% 0/1px 100% no-repeat}
.lanes .area{height:46px}
.lanes .t{align-self:center;font-weight:600}
.head{position:absolute;top:2px;width:15%;min-width:90px;transform:translateX(-50%);
background:#eef1f6;border:1px solid #c3cad6;border-radius:4px;text-align:center;
padding:3px 4px;line-height:1.2;overflow:hidden}
.head b{display:block}.head small{display:block;color:#5a6170;font-size:11px;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.head.client{left:8%}.head.proxy{left:50%}.head.server{left:92%}
.arrow{--c:var(--down);color:var(--c);padding:2px 0 1px}
.arrow.ltr{--c:var(--up)}.arrow.own{--c:var(--own)}
.arrow.notice{--c:var(--warn)}.arrow.error{--c:var(--err)}
.span{position:relative}
.span-cs .span{margin-left:8%;width:84%}
.span-cp .span{margin-left:8%;width:42%}
.span-ps .span{margin-left:50%;width:42%}
.label{text-align:center;padding:0 12px 2px;line-height:1.25;overflow-wrap:anywhere;color:#1d2330}
.lbl{background:rgba(255,255,255,.9);padding:0 3px;border-radius:2px}
.lbl b{color:var(--c)}
.detail{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:11.5px}
.meta{color:#7a8190;font-size:11px;white-space:nowrap}
.error .lbl{background:#fdecea;color:#7f1d1d}.notice .lbl{background:#fff3d6;color:#5c3a00}
.line{position:relative;height:2px;background:currentColor}
.line::after{content:"";position:absolute;top:-4px;border:5px solid transparent}
.ltr .line::after{right:-1px;border-left:10px solid currentColor;border-right:0}
.rtl .line::after{left:-1px;border-right:10px solid currentColor;border-left:0}
.via{position:absolute;left:50%;top:-3px;width:8px;height:8px;margin-left:-4px;
border-radius:50%;background:#fff;border:2px solid currentColor}
.pipeline{background:rgba(70,110,200,.07);box-shadow:inset 3px 0 0 #6b8fd6;
border-radius:3px;margin:3px 0}
.pl-label .area span{margin-left:calc(8% + 8px);font-size:11px;font-weight:600;color:#3b5ea8}
.note .area,.dropped .area{text-align:center;padding:4px 0}
.box{display:inline-block;max-width:84%;padding:3px 10px;border-radius:4px;
border:1px solid #b9c3d3;background:#eef3fb;overflow-wrap:anywhere}
.note.error .box{border-color:var(--err);background:#fdecea;color:#7f1d1d;font-weight:600}
.note.close .box{background:#e9ebef;border-color:#9aa3b2}
.dropped .box{background:#fff;border-style:dashed;color:#4a5160}
"""
