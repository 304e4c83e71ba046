"""``pygwire proxy``: a validating, tracing PostgreSQL proxy on asyncio.

Each client gets its own upstream connection.  Every message of both
directions goes through one :class:`~pygwire.ProxyConnection`, and what is
written on is the original bytes, never a re-encoding.  On a protocol
violation the proxy logs it and keeps forwarding (``strict=False``), or,
with ``--strict``, drops the client with a FATAL ErrorResponse.

The startup is the proxy's own business:

* SSLRequest is answered ``S`` when the proxy has a certificate (then TLS
  is terminated here, on memory BIOs: :mod:`pygwire.tls`), else ``N``;
  GSSENCRequest is answered ``N``; a direct-SSL ClientHello (ALPN
  ``postgresql``) is accepted with a certificate.  Upstream, the proxy
  speaks TLS of its own when told to (``--upstream-tls``).
* CancelRequest is sent on to the upstream server on a connection of its
  own, as libpq does; the keys are the server's, relayed untouched.
* In pass-through mode the authentication exchange is relayed.  In
  authentication-proxy mode (``--client-auth``) the proxy authenticates
  the client itself (trust, or passwords checked against a users file of
  PostgreSQL-format verifiers) and logs in upstream with its own
  credentials (MD5, SCRAM-SHA-256, or SCRAM-SHA-256-PLUS over TLS); the
  upstream login runs first, so that a NegotiateProtocolVersion or an
  error from the server reaches the client in its place.

After the startup the relay runs on protocol callbacks, without a task per
read: bytes in, ``forward_from_*``, bytes out, with reading paused on one
side while the other side's write buffer is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, Protocol

from .. import MessageDirection, ProtocolError, ProxyConnection, StateMachineError
from .._aio import TLSProtocol
from ..auth import (
    SCRAM_SHA_256,
    AuthMethod,
    ClientAuthenticator,
    ScramVerifier,
    ServerAuthenticator,
    error_response,
)
from ..constants import ConnectionPhase
from ..exceptions import AuthenticationError, PygwireError
from ..messages import (
    AuthenticationMessage,
    AuthenticationOk,
    CancelRequest,
    DirectSSLHandshake,
    ErrorResponse,
    FrontendMessage,
    GSSEncRequest,
    NegotiateProtocolVersion,
    PGMessage,
    SSLRequest,
    StartupMessage,
)
from ..tls import ALPN_POSTGRESQL, TLSEndpoint, TLSError, Verify, client_context, server_context
from ..trace import Tracer
from .decode import PrefixedLines
from .html import SessionDiagram
from .recording import RecordingWriter

__all__ = [
    "ProxyOptions",
    "ProxyServer",
    "UpstreamTLS",
    "load_users",
    "method_for",
    "os_reason",
]

log = logging.getLogger("pygwire.proxy")

F = MessageDirection.FRONTEND
B = MessageDirection.BACKEND

UpstreamTLS = Literal["disable", "require", "verify-ca", "verify-full"]
"""libpq's ``sslmode`` values that ``--upstream-tls`` takes."""
#: How long a client may take to send its startup packet, and an upstream
#: server to accept a connection or answer a cancel.
STARTUP_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
#: Above this many bytes waiting to be written to one side, reading from
#: the other side pauses (asyncio's own default high-water mark is 64 KiB).
HIGH_WATER = 256 * 1024


@dataclass
class ProxyOptions:
    """What ``pygwire proxy`` was told on its command line."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 6432
    upstream_host: str = "127.0.0.1"
    upstream_port: int = 5432
    strict: bool = False
    #: A file, "-" (standard output) or a directory (one file per connection).
    trace: str | None = None
    trace_timestamps: bool = True
    trace_regress: bool = False
    show_passwords: bool = False
    html: Path | None = None
    record: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    upstream_tls: UpstreamTLS = "disable"
    upstream_ca: Path | None = None
    #: Authentication-proxy mode: how clients authenticate to the proxy;
    #: "auto" picks by each user's secret (see :func:`method_for`).
    client_auth: AuthMethod | Literal["auto"] | None = None
    #: user -> stored password (plain, md5 or SCRAM verifier).
    users: dict[str, str] = field(default_factory=dict)
    upstream_user: str | None = None
    upstream_password: str | None = None
    upstream_channel_binding: Literal["disable", "prefer", "require"] = "prefer"
    max_connections: int = 1000


def os_reason(exc: OSError) -> str:
    """An OS error in the system's words ("Connection refused"), without
    the call and address asyncio wraps around them."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


def method_for(stored: str | None) -> AuthMethod:
    """The method "auto" uses for a user: MD5 for an ``md5`` secret (the
    only method it can serve), SCRAM-SHA-256 for a SCRAM verifier, a plain
    password, or an unknown user (who fails like any other)."""
    if stored is not None and len(stored) == 35 and stored.startswith("md5"):
        return "md5"
    return "scram-sha-256"


def _scram_ready(secret: str, method: str | None) -> str:
    plain = not secret.startswith(SCRAM_SHA_256 + "$") and method_for(secret) != "md5"
    if plain and method in ("auto", "scram-sha-256"):
        return str(ScramVerifier.from_password(secret))
    return secret


def load_users(path: Path) -> dict[str, str]:
    """Read a users file: one ``"name" "secret"`` per line, both double
    quoted (a ``""`` inside stands for one quote), as PgBouncer's
    ``auth_file``; the secret is what PostgreSQL keeps in ``pg_authid``
    (``SCRAM-SHA-256$...``, ``md5...``) or a plain password.  Blank lines
    and lines starting with ``;`` or ``#`` are skipped."""
    users: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text[0] in ";#":
            continue
        try:
            fields = list(_quoted_fields(text))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
        if len(fields) != 2:
            raise ValueError(f"{path}:{number}: expected two quoted fields, name and secret")
        users[fields[0]] = fields[1]
    return users


def _quoted_fields(text: str) -> Iterator[str]:
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        if text[pos] != '"':
            raise ValueError(f"unquoted field at column {pos + 1}")
        value: list[str] = []
        pos += 1
        while True:
            end = text.find('"', pos)
            if end < 0:
                raise ValueError("unterminated quoted field")
            value.append(text[pos:end])
            if text.startswith('"', end + 1):  # "" is one quote
                value.append('"')
                pos = end + 2
                continue
            pos = end + 1
            break
        yield "".join(value)


class _ConnectionDiagram(Protocol):
    """What a session draws on (:mod:`.html`)."""

    def message(self, *, src: str, dst: str, message: PGMessage, size: int, at: float) -> None: ...
    def note(self, text: str, *, at: float, kind: str = "info") -> None: ...
    def close(self, *, at: float, reason: str = "") -> None: ...


class _Diagram(Protocol):
    def connection(self, *, client: str, server: str) -> _ConnectionDiagram: ...
    def write(self, path: Path) -> None: ...


#: libpq's sslmode names for the upstream connection, as TLS verification.
_VERIFY: dict[str, Verify] = {"require": "none", "verify-ca": "ca", "verify-full": "full"}


class _ConnectionTag(logging.Filter):
    """Puts the connection's number on what the model logs (a violation
    that lax mode applied anyway): the relay runs one session at a time."""

    number = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.number:
            record.msg = f"conn {self.number}: {record.msg}"
        return True


_TAG = _ConnectionTag()
logging.getLogger("pygwire").addFilter(_TAG)


class _End(Exception):
    """The session ends; ``reason`` is logged."""

    def __init__(self, reason: str, *, error: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


# -- one TCP connection -------------------------------------------------------------------


class _Link(TLSProtocol):
    """One TCP connection, optionally under TLS, as plaintext in and out.

    During the startup the session awaits :meth:`read`; in the relay,
    ``on_data`` is called for every plaintext chunk as it arrives.  When
    this side's write buffer fills, reading from :attr:`peer` pauses.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.peer: _Link | None = None
        self.on_data: Callable[[bytes], None] | None = None
        self.on_close: Callable[[_Link, str], None] | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self.eof = False
        loop = asyncio.get_running_loop()
        #: Resolved by connection_made: a session's task may start first.
        self.made: asyncio.Future[None] = loop.create_future()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        if not self.made.done():
            self.made.set_result(None)

    def _received(self, data: bytes) -> None:
        if data:
            self._deliver(data)
        else:
            self._wake()  # a handshake step: start_tls is waiting

    def eof_received(self) -> bool:
        self._ended()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    # plaintext in
    def _deliver(self, data: bytes) -> None:
        if self.on_data is not None:
            self.on_data(data)
        else:
            self._buffer += data
            self._wake()

    def _ended(self, exc: Exception | None = None) -> None:
        if self.eof:
            return
        self.eof = True
        if exc is not None and self._error is None:
            self._error = exc
        self._wake()
        if self.on_close is not None:
            self.on_close(self, str(exc) if exc else "closed the connection")

    def _fail(self, exc: Exception) -> None:
        self._error = exc
        self._ended(exc)
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, timeout: float | None = None) -> bytes:
        """The plaintext received so far (waiting for some); ``b""`` at the end."""
        while not self._buffer and not self.eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            finally:
                self._waiter = None
        if self._error is not None and not self._buffer:
            raise _End(f"{self.name}: {self._error}", error=True)
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def take_buffered(self) -> bytes:
        """What arrived while nobody read (handed to the relay at its start)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def start_tls(self, tls: TLSEndpoint, received: bytes = b"") -> None:
        """Run a TLS handshake over this connection: ``received`` is
        ciphertext already read (a direct-SSL ClientHello)."""
        leftover = bytes(self._buffer)  # ciphertext that arrived meanwhile
        self._buffer.clear()
        self.tls = tls
        try:
            tls.start()
            plain = tls.receive(received + leftover) if received or leftover else b""
        except TLSError as exc:
            raise _End(f"{self.name}: {exc}", error=True) from exc
        self._send_tls()
        if plain:
            self._buffer += plain
        while not tls.handshake_done:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, STARTUP_TIMEOUT)
            except TimeoutError:
                raise _End(f"{self.name}: TLS handshake timed out", error=True) from None
            finally:
                self._waiter = None
            if self._error is not None:
                raise _End(f"{self.name}: {self._error}", error=True)
            if self.eof and not tls.handshake_done:
                raise _End(f"{self.name} closed the connection during the TLS handshake")


# -- the server --------------------------------------------------------------------------


class ProxyServer:
    """Accepts clients and runs one session per client."""

    def __init__(self, options: ProxyOptions) -> None:
        self.options = options
        self._numbers = itertools.count(1)
        self.sessions: dict[int, _Session] = {}
        self._server: asyncio.Server | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._tls_der: bytes | None = None
        self._upstream_context: ssl.SSLContext | None = None
        self._trace_stream: IO[str] | None = None
        self.diagram: _Diagram | None = None
        if options.tls_cert is not None:
            if options.tls_key is None:
                raise TLSError("--tls-cert needs --tls-key")
            self._tls_context = server_context(options.tls_cert, options.tls_key)
            self._tls_der = ssl.PEM_cert_to_DER_cert(options.tls_cert.read_text())
        if options.upstream_tls != "disable":
            self._upstream_context = client_context(
                verify=_VERIFY[options.upstream_tls], cafile=options.upstream_ca, alpn=()
            )
        if options.trace is not None and options.trace != "-" and not self._trace_dir():
            # Kept open for the whole run: every session writes to it.
            self._trace_stream = open(  # noqa: SIM115
                options.trace, "w", encoding="utf-8", errors="surrogateescape"
            )
        if options.record is not None:
            options.record.mkdir(parents=True, exist_ok=True)
        #: The users' secrets as the client-side methods need them: SCRAM
        #: needs a verifier, made once here from a plain password.
        self.secrets = {
            user: _scram_ready(secret, options.client_auth)
            for user, secret in options.users.items()
        }
        if options.html is not None:
            self.diagram = SessionDiagram(
                title=f"pygwire proxy {options.listen_host}:{options.listen_port} -> "
                f"{options.upstream_host}:{options.upstream_port}"
            )

    def _trace_dir(self) -> Path | None:
        trace = self.options.trace
        if trace is None or trace == "-":
            return None
        path = Path(trace)
        return path if trace.endswith(os.sep) or path.is_dir() else None

    async def start(self) -> None:
        """Listen (OSError if the address cannot be bound)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accept, self.options.listen_host, self.options.listen_port
        )

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _accept(self) -> _Link:
        link = _Link("client")
        number = next(self._numbers)
        session = _Session(self, number, link)
        self.sessions[number] = session
        return link

    async def serve_forever(self) -> None:
        """Accept clients until cancelled (after :meth:`start`)."""
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening, end every session, write the HTML page."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        for task in tasks:
            task.cancel()  # each session closes its connections as it ends
        await asyncio.gather(*tasks, return_exceptions=True)
        self.write_html()
        if self._trace_stream is not None:
            self._trace_stream.close()

    def write_html(self) -> None:
        """Write the sequence diagrams to the ``--html`` file, if asked for."""
        if self.diagram is not None and self.options.html is not None:
            self.diagram.write(self.options.html)

    def trace_stream(self, number: int) -> IO[str] | PrefixedLines | None:
        """Where a session writes its trace, if anywhere."""
        directory = self._trace_dir()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            return open(
                directory / f"conn-{number:04d}.trace",
                "w",
                encoding="utf-8",
                errors="surrogateescape",
            )
        if self.options.trace == "-":
            return PrefixedLines(sys.stdout, f"{number}\t")
        if self._trace_stream is not None:
            return PrefixedLines(self._trace_stream, f"{number}\t")
        return None


# -- one client ---------------------------------------------------------------------------


class _Lines(list[str]):
    """A text sink that keeps what is written, to be written out at once."""

    write = list.append


class _Session:
    """One client and its upstream connection."""

    def __init__(self, server: ProxyServer, number: int, client: _Link) -> None:
        self.server = server
        self.options = server.options
        self.number = number
        self.client = client
        self.upstream: _Link | None = None
        self.proxy = ProxyConnection(strict=self.options.strict)
        self.started = time.monotonic()
        self.wall_started = time.time()
        self._done: asyncio.Future[tuple[str, bool]] = asyncio.get_running_loop().create_future()
        self._originating = False
        self.recorder: RecordingWriter | None = None
        self.trace_stream: IO[str] | PrefixedLines | None = None
        self.tracer: Tracer | None = None
        self._trace_lines = _Lines()
        self.diagram: _ConnectionDiagram | None = None
        self.task: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(self.run())

    # -- logging and observers ----------------------------------------------------------
    def log(self, text: str, *, level: int = logging.INFO) -> None:
        log.log(level, "conn %d: %s", self.number, text)

    def _setup_observers(self, peer: str) -> None:
        opts = self.options
        if opts.record is not None:
            path = opts.record / f"conn-{self.number:04d}.pgwire"
            self.recorder = RecordingWriter(
                path.open("wb"), wall_start=self.wall_started, clock_start=self.started
            )
        self.trace_stream = self.server.trace_stream(self.number)
        if self.trace_stream is not None:
            # The tracer writes into a list, written out once per chunk
            # forwarded: one write of many lines costs much less than many.
            self.tracer = Tracer(
                self._trace_lines,
                timestamps=opts.trace_timestamps,
                regress=opts.trace_regress,
                redact=not opts.show_passwords,
            )
        if self.server.diagram is not None:
            self.diagram = self.server.diagram.connection(
                client=peer, server=f"{opts.upstream_host}:{opts.upstream_port}"
            )
        if self.tracer is not None or self.diagram is not None:
            self.proxy.observe_wire(self._observe)

    def _observe(self, sender: MessageDirection, msg: PGMessage, wire: bytes) -> None:
        if self.tracer is not None:
            self.tracer.trace(sender, msg, wire=wire)
        if self.diagram is not None:
            size = len(wire)
            if sender is F:
                src, dst = "client", "proxy" if self._originating else "server"
            else:
                src, dst = "proxy" if self._originating else "server", "client"
            self.diagram.message(src=src, dst=dst, message=msg, size=size, at=time.monotonic())

    def flush_trace(self) -> None:
        """Write out the trace lines of the messages forwarded so far."""
        if self._trace_lines and self.trace_stream is not None:
            self.trace_stream.write("".join(self._trace_lines))
            self._trace_lines.clear()

    def note(self, text: str, *, error: bool = False) -> None:
        if self.diagram is not None:
            self.diagram.note(text, at=time.monotonic(), kind="error" if error else "info")

    # -- moving bytes through the model ----------------------------------------------------
    def to_client(self, data: bytes) -> None:
        """Validate bytes for the client as the server's, and write them."""
        _TAG.number = self.number
        out = self.proxy.forward_from_server(data)
        if self.recorder is not None:
            self.recorder.add(B, data, time.monotonic())
        self.flush_trace()
        if out:
            self.client.write(out)

    def send_client(self, msg: PGMessage) -> None:
        """A message the proxy itself sends the client."""
        self._originating = True
        try:
            self.to_client(msg.to_wire())
        finally:
            self._originating = False

    def fatal(self, sqlstate: str, message: str) -> None:
        """Tell the client why its session ends, where the protocol allows."""
        error = ErrorResponse(fields={"S": "FATAL", "V": "FATAL", "C": sqlstate, "M": message})
        with contextlib.suppress(PygwireError):
            self.send_client(error)

    def end(self, reason: str, *, error: bool = False) -> None:
        if not self._done.done():
            self._done.set_result((reason, error))

    # -- the session ----------------------------------------------------------------------
    async def run(self) -> None:
        await self.client.made
        peer = "?"
        if self.client.transport is not None:
            info = self.client.transport.get_extra_info("peername")
            if info:
                peer = f"{info[0]}:{info[1]}"
        reason, error = "closed", False
        try:
            self._setup_observers(peer)
            self.log(f"client {peer} connected")
            await self._startup()
            reason, error = await self._done
        except _End as exc:
            reason, error = exc.reason, exc.error
        except TimeoutError:
            reason, error = "timed out during the startup", True
        except (ProtocolError, AuthenticationError, TLSError) as exc:
            reason, error = str(exc), True
        except OSError as exc:
            reason, error = f"connection error: {os_reason(exc)}", True
        except asyncio.CancelledError:
            reason = "the proxy is shutting down"
        finally:
            self._finish(reason, error)

    def _finish(self, reason: str, error: bool) -> None:
        self.log(f"ended: {reason}", level=logging.WARNING if error else logging.INFO)
        self.note(f"ended: {reason}", error=error)
        if self.diagram is not None:
            self.diagram.close(at=time.monotonic(), reason=reason)
        self.client.close()
        if self.upstream is not None:
            self.upstream.close()
        if self.recorder is not None:
            self.recorder.close()
        if self.trace_stream is not None:
            self.flush_trace()
            if isinstance(self.trace_stream, PrefixedLines):
                self.trace_stream.flush()
            else:
                self.trace_stream.close()
        self.server.sessions.pop(self.number, None)
        self.task = None

    async def _read_client(self) -> bytes:
        data = await self.client.read(STARTUP_TIMEOUT)
        if not data:
            raise _End("the client closed the connection during the startup")
        if self.recorder is not None:
            self.recorder.add(F, data, time.monotonic())
        return data

    async def _startup(self) -> None:
        proxy = self.proxy
        while True:
            data = await self._read_client()
            for msg in proxy.from_client(data):
                raw = proxy.take_from_client()
                if isinstance(msg, SSLRequest | GSSEncRequest):
                    context = self.server._tls_context
                    ssl_ok = isinstance(msg, SSLRequest) and context is not None
                    self.send_client_byte(b"S" if ssl_ok else b"N")
                    if ssl_ok and context is not None:
                        endpoint = TLSEndpoint(context, server_side=True)
                        await self.client.start_tls(endpoint, proxy.take_unread_from_client())
                        self.note("TLS established with the client")
                    break
                if isinstance(msg, DirectSSLHandshake):
                    if self.server._tls_context is None:
                        raise _End("direct SSL, but the proxy has no certificate (--tls-cert)")
                    endpoint = TLSEndpoint(
                        self.server._tls_context, server_side=True, require_alpn=ALPN_POSTGRESQL
                    )
                    await self.client.start_tls(endpoint, raw)
                    self.note("direct TLS established with the client")
                    break
                if isinstance(msg, CancelRequest):
                    await self._cancel(raw)
                    raise _End("cancel request forwarded")
                if isinstance(msg, StartupMessage):
                    if len(self.server.sessions) > self.options.max_connections:
                        self.fatal("53300", "sorry, too many clients already")
                        raise _End("refused: too many clients (--max-connections)")
                    await self._open_upstream(msg)
                    if self.options.client_auth is None:
                        assert self.upstream is not None
                        self.upstream.write(raw)
                    else:
                        await self._authenticate(msg)
                    self._relay(proxy.take_unread_from_client())
                    return

    def send_client_byte(self, answer: bytes) -> None:
        """The proxy's own answer to SSLRequest or GSSENCRequest."""
        self._originating = True
        try:
            self.to_client(answer)
        finally:
            self._originating = False

    # -- upstream ------------------------------------------------------------------------
    async def _connect(self) -> _Link:
        opts = self.options
        loop = asyncio.get_running_loop()
        where = f"{opts.upstream_host}:{opts.upstream_port}"
        try:
            _, link = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Link("upstream"), opts.upstream_host, opts.upstream_port
                ),
                CONNECT_TIMEOUT,
            )
        except TimeoutError:
            raise _Upstream(f"connecting to upstream {where} timed out") from None
        except OSError as exc:
            raise _Upstream(f"upstream {where} refused: {os_reason(exc)}") from None
        context = self.server._upstream_context
        if context is not None:
            link.write(SSLRequest().to_wire())
            answer = await link.read(CONNECT_TIMEOUT)
            if answer != b"S":
                link.close()
                why = "does not support TLS" if answer == b"N" else "answered SSLRequest wrongly"
                raise _Upstream(f"upstream {where} {why}")
            endpoint = TLSEndpoint(context, server_side=False, server_hostname=opts.upstream_host)
            try:
                await link.start_tls(endpoint)
            except _End as exc:
                link.close()
                raise _Upstream(exc.reason) from None
        return link

    async def _open_upstream(self, startup: StartupMessage) -> None:
        try:
            self.upstream = await self._connect()
        except _Upstream as exc:
            self.fatal("08006", str(exc))
            raise _End(str(exc), error=True) from None
        self.upstream.peer = self.client
        self.client.peer = self.upstream
        tls = " over TLS" if self.upstream.tls is not None else ""
        self.log(f"connected to upstream{tls} for user {startup.params.get('user', '?')!r}")

    async def _cancel(self, raw: bytes) -> None:
        try:
            link = await self._connect()
        except _Upstream as exc:
            raise _End(f"cancel request not forwarded: {exc}", error=True) from None
        link.write(raw)
        # The server closes the connection once it has read the request.
        with contextlib.suppress(TimeoutError, _End):
            while await link.read(CONNECT_TIMEOUT):
                pass
        link.close()

    async def _authenticate(self, startup: StartupMessage) -> None:
        """Authentication-proxy mode: log in upstream with the proxy's own
        credentials, then authenticate the client against the users file."""
        opts = self.options
        upstream = self.upstream
        assert upstream is not None
        user = opts.upstream_user or startup.params.get("user", "")
        params = dict(startup.params)
        params["user"] = user
        # PostgreSQL's default database is the user's name: keep the client's.
        params.setdefault("database", startup.params.get("user", ""))
        up = ProxyConnection()
        hello = StartupMessage(params=params, protocol_version=startup.protocol_version)
        upstream.write(up.forward_from_client(hello.to_wire()))
        auth = ClientAuthenticator(
            user,
            opts.upstream_password,
            channel_binding=opts.upstream_channel_binding,
            tls_certificate=upstream.tls.peer_certificate() if upstream.tls else None,
        )
        rest = b""
        while not auth.authenticated:
            data = await upstream.read(STARTUP_TIMEOUT)
            if not data:
                raise _End("upstream closed the connection during its authentication", error=True)
            for msg in up.from_server(data):
                raw = up.take_from_server()
                if isinstance(msg, NegotiateProtocolVersion):
                    self.to_client(raw)  # the client's conversation too
                elif isinstance(msg, ErrorResponse):
                    self.to_client(raw)
                    raise _End(f"upstream refused the login: {msg.fields.get('M', '')}", error=True)
                elif isinstance(msg, AuthenticationMessage):
                    try:
                        reply = auth.handle(msg)
                    except AuthenticationError as exc:
                        self.fatal("28000", f"the proxy could not log in upstream: {exc}")
                        raise _End(f"upstream login failed: {exc}", error=True) from None
                    if reply is not None:
                        upstream.write(up.forward_from_client(reply.to_wire()))
                    if isinstance(msg, AuthenticationOk):
                        rest = up.take_unread_from_server()
                        break
        self.log(f"logged in upstream as {user!r}")
        await self._authenticate_client(startup)
        # What the server sent after AuthenticationOk (ParameterStatus,
        # BackendKeyData, ReadyForQuery) belongs to the client's conversation.
        if rest:
            self.to_client(rest)

    async def _authenticate_client(self, startup: StartupMessage) -> None:
        opts = self.options
        assert opts.client_auth is not None
        user = startup.params.get("user", "")
        tls_der = self.server._tls_der if self.client.tls is not None else None
        stored = self.server.secrets.get(user)
        method = method_for(stored) if opts.client_auth == "auto" else opts.client_auth
        auth = ServerAuthenticator(method, user, stored, tls_certificate=tls_der)
        replies = auth.start()
        while True:
            for reply in replies:
                self.send_client(reply)
            if auth.authenticated:
                self.log(f"client authenticated as {user!r} ({method})")
                return
            data = await self._read_client()
            replies = []
            for msg in self.proxy.from_client(data):
                self.proxy.take_from_client()
                if not isinstance(msg, FrontendMessage):
                    raise _End(f"unexpected {type(msg).__name__} during authentication")
                try:
                    replies += auth.handle(msg)
                except AuthenticationError as exc:
                    self.send_client(error_response(exc))
                    raise _End(f"client authentication failed: {exc.message}") from None

    # -- the relay --------------------------------------------------------------------------
    def _relay(self, client_rest: bytes) -> None:
        client, upstream = self.client, self.upstream
        assert upstream is not None
        client.on_data = self._from_client
        upstream.on_data = self._from_server
        client.on_close = upstream.on_close = self._closed
        if client_rest:
            self._from_client(client_rest)
        server_rest = upstream.take_buffered()
        if server_rest:
            self._from_server(server_rest)
        for link in (client, upstream):
            if link.eof:
                self._closed(link, "closed the connection")

    def _from_client(self, data: bytes) -> None:
        _TAG.number = self.number
        if self.recorder is not None:
            self.recorder.add(F, data, time.monotonic())
        try:
            out = self.proxy.forward_from_client(data)
        except StateMachineError as exc:
            self.fatal("08P01", f"protocol violation: {exc}")
            self.end(f"client protocol violation: {exc}", error=True)
            return
        except ProtocolError as exc:
            self.fatal("08P01", f"invalid message from the client: {exc}")
            self.end(f"invalid message from the client: {exc}", error=True)
            return
        self.flush_trace()
        if out and self.upstream is not None:
            self.upstream.write(out)

    def _from_server(self, data: bytes) -> None:
        try:
            self.to_client(data)
        except StateMachineError as exc:
            self.fatal("08P01", f"protocol violation by the server: {exc}")
            self.end(f"server protocol violation: {exc}", error=True)
        except ProtocolError as exc:
            self.fatal("08P01", f"invalid message from the server: {exc}")
            self.end(f"invalid message from the server: {exc}", error=True)

    def _closed(self, link: _Link, why: str) -> None:
        if link is self.upstream:
            # A server that vanishes mid-session: say so, where a FATAL
            # error is still possible (not after the server's own FATAL).
            if self.proxy.state.in_session and not _over(self.proxy):
                self.fatal("08006", "the upstream server closed the connection unexpectedly")
            self.end(f"upstream {why}")
        else:
            self.end(f"client {why}")


class _Upstream(Exception):
    """The upstream server cannot be reached or refused TLS."""


def _over(proxy: ProxyConnection) -> bool:
    return proxy.phase in (ConnectionPhase.FAILED, ConnectionPhase.TERMINATED)
