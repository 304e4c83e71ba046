"""A validating relay between a PostgreSQL client and a real server, for tests.

For every client connection the relay opens one to the upstream server and
runs two pump threads, one per direction.  Both feed one
:class:`pygwire.ProxyConnection` (strict): each message is decoded and
validated once, by the one shared model, in the order the relay saw it,
and the relay forwards the *original* bytes of the validated messages.
Each message is also re-encoded and compared with those bytes: any
decode/encode infidelity is recorded (:attr:`RelaySession.mismatches`).
The relay does not understand authentication: SCRAM and the other methods
pass through as ordinary messages.

One lock per relayed connection serializes both pumps' use of the proxy.
Bytes are written after the lock is released, but only after the message
that changed the phase went through the model, so a peer can never answer a
message before the relay is ready to decode the answer.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from dataclasses import dataclass

from loopback import LoopbackServer
from pygwire import ConnectionPhase, ProxyConnection
from pygwire.messages import PGMessage

__all__ = ["Relay", "RelaySession"]


@dataclass(frozen=True)
class Mismatch:
    """Re-encoded bytes that differ from the bytes they were decoded from."""

    direction: str
    original: bytes
    reencoded: bytes
    messages: tuple[PGMessage, ...]


class RelaySession:
    """One relayed client connection and its upstream connection."""

    def __init__(
        self, client: socket.socket, server: socket.socket, chunk_size: int = 65536
    ) -> None:
        self.client = client
        self.chunk_size = chunk_size
        self.server = server
        #: The one model of the connection, fed by both pumps.
        self.proxy = ProxyConnection()
        self.lock = threading.Lock()
        #: Messages from the client, in order.
        self.from_client: list[PGMessage] = []
        #: Messages from the server, in order.
        self.from_server: list[PGMessage] = []
        #: Both directions in the order the relay decoded them: ("F"|"B", message).
        self.log: list[tuple[str, PGMessage]] = []
        #: Exceptions met by the pumps (a StateMachineError, say).
        self.errors: list[BaseException] = []
        #: Socket errors: a peer went away (e.g. closed with unread data).
        self.disconnects: list[OSError] = []
        self.mismatches: list[Mismatch] = []
        self.done = threading.Event()
        self._pumps_left = 2

    # -- pumps ----------------------------------------------------------------
    def pump_client(self) -> None:
        self._pump(self.client, self.server, "F")

    def pump_server(self) -> None:
        self._pump(self.server, self.client, "B")

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        proxy = self.proxy
        if direction == "F":
            decode, take, log = proxy.from_client, proxy.take_from_client, self.from_client
        else:
            decode, take, log = proxy.from_server, proxy.take_from_server, self.from_server
        try:
            while data := source.recv(self.chunk_size):
                with self.lock:
                    msgs = list(decode(data))
                    out = take()
                    log.extend(msgs)
                    self.log.extend((direction, m) for m in msgs)
                    reencoded = b"".join(m.to_wire() for m in msgs)
                    if reencoded != out:
                        self.mismatches.append(Mismatch(direction, out, reencoded, tuple(msgs)))
                if out:
                    sink.sendall(out)
            # End of stream: pass it on.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
        except BaseException as exc:
            with self.lock:
                if isinstance(exc, OSError):
                    self.disconnects.append(exc)
                else:
                    self.errors.append(exc)
            # Break both connections so that neither peer waits forever.
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            with self.lock:
                self._pumps_left -= 1
                last = self._pumps_left == 0
            if last:
                self.client.close()
                self.server.close()
                self.done.set()

    # -- inspection -----------------------------------------------------------
    @property
    def phase(self) -> ConnectionPhase:
        """The model's phase, read consistently."""
        with self.lock:
            return self.proxy.phase

    def wait_closed(self, timeout: float = 10.0) -> None:
        if not self.done.wait(timeout):
            raise TimeoutError(f"relayed connection still open after {timeout}s")

    def shutdown(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def check(self) -> None:
        """Raise if a pump failed or a message did not re-encode to its bytes."""
        with self.lock:
            errors, mismatches = list(self.errors), list(self.mismatches)
        if errors:
            raise AssertionError(f"relay errors: {errors!r}") from errors[0]
        if mismatches:
            raise AssertionError(f"re-encoding differs from the original bytes: {mismatches!r}")


class Relay(LoopbackServer):
    """Listens on 127.0.0.1 and relays each connection to ``upstream``.

    ``chunk_size`` is the most bytes read at once: a small one splits
    messages, so the decoders see them arrive piecemeal.
    """

    def __init__(self, upstream_host: str, upstream_port: int, chunk_size: int = 65536) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.chunk_size = chunk_size
        super().__init__()
        #: Every relayed connection, in order of arrival.
        self.sessions: list[RelaySession] = []

    # -- connections (LoopbackServer) -----------------------------------------
    thread_name = "relay"

    def _accepted(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError as exc:
            with self._lock:
                self.errors.append(exc)  # connecting upstream failed
            client.close()
            return
        server.settimeout(None)
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = RelaySession(client, server, self.chunk_size)
        with self._lock:
            self.sessions.append(session)
            n = len(self.sessions)
        self._start_thread(session.pump_client, f"relay-{n}-client")
        self._start_thread(session.pump_server, f"relay-{n}-server")

    def _break_connections(self) -> None:
        with self._lock:
            sessions = list(self.sessions)
        for session in sessions:
            session.shutdown()

    # -- helpers for tests ----------------------------------------------------
    def conninfo(self, upstream_conninfo: dict[str, str], **params: str) -> dict[str, str]:
        """``upstream_conninfo`` pointed at the relay instead."""
        return upstream_conninfo | {"host": self.host, "port": str(self.port)} | params

    def dsn(self, upstream_conninfo: dict[str, str], **params: str) -> str:
        info = self.conninfo(upstream_conninfo, **params)
        return " ".join(f"{k}={_quote(v)}" for k, v in info.items())

    def check(self) -> None:
        """Raise if anything went wrong in any relayed connection."""
        if self.errors:
            raise AssertionError(f"relay accept errors: {self.errors!r}") from self.errors[0]
        for session in self.sessions:
            session.check()


@functools.cache
def _quote(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
