"""``pygwire proxy`` and ``pygwire decode``, run as a user runs them.

The command runs as a subprocess (``python -m pygwire``) between real
clients (psql, pgbench, psycopg with libpq 18) and PostgreSQL 18; what the
clients get back is what PostgreSQL answered, and what the proxy writes
(traces, recordings, diagrams) is checked against libpq's own trace or
against the proxy's other outputs of the same run.  Faults and leaks are
checked on a proxy run in this process, where its tasks and file
descriptors can be counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest
from harness.postgres import PostgresServer, make_self_signed_certificate
from psycopg import pq

from peers import pg_tool, run_tool
from pygwire import BackendMessageDecoder, ConnectionPhase
from pygwire.auth import ScramVerifier, md5_stored
from pygwire.cli.proxy import ProxyOptions, ProxyServer
from pygwire.messages import (
    ErrorResponse,
    PasswordMessage,
    Query,
    ReadyForQuery,
    StartupMessage,
)

TIMEOUT = 20.0
HOST = "127.0.0.1"


# -- running the command ----------------------------------------------------------------


@dataclass
class Proxy:
    """A ``pygwire proxy`` subprocess and what it logged."""

    proc: subprocess.Popen[str]
    port: int = 0
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self) -> str:
        """SIGTERM (a clean shutdown: the HTML page is written); the log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(TIMEOUT)
        if self.reader is not None:
            self.reader.join(TIMEOUT)  # the log is read to its end
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return "".join(self.log)


@contextlib.contextmanager
def proxy(*args: str, env: dict[str, str] | None = None) -> Iterator[Proxy]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pygwire", "proxy", "--listen", f"{HOST}:0", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    running = Proxy(proc)
    listening = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            running.log.append(line)
            match = re.search(r"listening on [\d.]+:(\d+)", line)
            if match:
                running.port = int(match.group(1))
                listening.set()

    running.reader = threading.Thread(target=read, daemon=True)
    running.reader.start()
    try:
        if not listening.wait(TIMEOUT):
            proc.kill()
            raise AssertionError(f"the proxy did not start:\n{''.join(running.log)}")
        yield running
    finally:
        running.stop()


Conn = psycopg.Connection[tuple[object, ...]]


def _connect(port: int, user: str = "trust_user", dbname: str = "postgres", **kw: str) -> Conn:
    params = {"sslmode": "disable", "gssencmode": "disable", "connect_timeout": "10", **kw}
    conninfo = psycopg.conninfo.make_conninfo(
        host=HOST, port=str(port), user=user, dbname=dbname, **params
    )
    return psycopg.connect(conninfo)


def _env(port: int, user: str = "trust_user", **extra: str) -> dict[str, str]:
    return {"PGHOST": HOST, "PGPORT": str(port), "PGUSER": user, "PGDATABASE": "postgres", **extra}


def _no_traceback(log: str) -> None:
    assert "Traceback" not in log, log


# -- relaying and tracing -------------------------------------------------------------------


def test_trace_per_connection_is_libpqs_trace(pg18: PostgresServer, tmp_path: Path) -> None:
    """What the proxy traces for a connection is what libpq traced, line for
    line, after the startup (which libpq only traces from its first packet,
    and where it leaves AuthenticationOk out)."""
    traces = tmp_path / "traces"
    libpq_file = tmp_path / "libpq.trace"
    with proxy(
        "--upstream", f"{HOST}:{pg18.port}", "--trace", f"{traces}/", "--no-timestamps"
    ) as p:
        with (
            _connect(p.port, "scram_user", password="scram_pw") as conn,
            libpq_file.open("w") as f,
        ):
            conn.pgconn.trace(f.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            conn.execute("select 1 as x, 'two' as y")
            conn.execute("select %s::int + %s", (20, 22), prepare=False)
            with conn.cursor() as cur:
                cur.execute("select generate_series(1, 3)", prepare=True)
                assert cur.fetchall() == [(1,), (2,), (3,)]
            with contextlib.suppress(psycopg.errors.DivisionByZero):
                conn.execute("select 1/0")
            conn.rollback()
            conn.pgconn.untrace()  # flushes libpq's buffer
        log = p.stop()
    _no_traceback(log)
    ours = (traces / "conn-0001.trace").read_text(encoding="utf-8", errors="surrogateescape")
    theirs = libpq_file.read_text(encoding="utf-8", errors="surrogateescape")
    assert theirs.count("\n") > 15
    lines = ours.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "ReadyForQuery" in line) + 1
    assert "".join(lines[start:]).startswith(theirs), (theirs, "".join(lines[start:]))
    assert "AuthenticationOk" in ours  # the proxy traces what libpq leaves out
    assert "<redacted>" in ours
    assert "scram_pw" not in ours


def test_interleaved_trace_record_decode_and_html(pg18: PostgresServer, tmp_path: Path) -> None:
    """One trace file for all connections (each line starts with its
    number); ``pygwire decode`` of a recording prints that connection's
    trace; the diagram draws every traced message."""
    trace = tmp_path / "all.trace"
    record = tmp_path / "rec"
    page = tmp_path / "run.html"
    with proxy(
        "--upstream", f"{HOST}:{pg18.port}",
        "--trace", str(trace), "--no-timestamps", "--record", str(record), "--html", str(page),
    ) as p:  # fmt: skip
        for _ in range(2):
            run_tool("psql", ["-c", "select 42", "-c", "select repeat('x', 3)"], _env(p.port))
        log = p.stop()
    _no_traceback(log)
    text = trace.read_text()
    numbers = {line.split("\t", 1)[0] for line in text.splitlines()}
    assert numbers == {"1", "2"}
    first = "".join(
        line.split("\t", 1)[1] for line in text.splitlines(keepends=True) if line.startswith("1\t")
    )
    assert 'Query\t "select 42"' in first
    decoded = subprocess.run(
        [sys.executable, "-m", "pygwire", "decode", "--no-timestamps",
         str(record / "conn-0001.pgwire")],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    ).stdout  # fmt: skip
    assert decoded == first
    # The interleaved file reads back (every connection) and prints again.
    again = subprocess.run(
        [sys.executable, "-m", "pygwire", "decode", "--no-timestamps", str(trace)],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    ).stdout  # fmt: skip
    assert again == text
    # One arrow per message (runs collapsed into counted arrows).
    counts = _arrow_counts(page.read_text())
    assert sum(counts) == len(text.splitlines())


class _Arrows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.counts: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "arrow" in (a.get("class") or "").split():
            self.counts.append(int(a.get("data-count") or 1))


def _arrow_counts(page: str) -> list[int]:
    parser = _Arrows()
    parser.feed(page)
    return parser.counts


def test_libpq_trace_file_decodes_to_itself(pg18: PostgresServer, tmp_path: Path) -> None:
    libpq_file = tmp_path / "libpq.trace"
    with _connect(pg18.port) as conn, libpq_file.open("w") as f:
        conn.pgconn.trace(f.fileno())
        conn.execute("select 'a b' as c, 1")
        conn.pgconn.untrace()
    out = subprocess.run(
        [sys.executable, "-m", "pygwire", "decode", str(libpq_file)],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    ).stdout  # fmt: skip
    assert out == libpq_file.read_text()
    assert "\tQuery\t" in out


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_certificate(tmp_path_factory.mktemp("proxy-tls"))


@pytest.mark.parametrize("negotiation", ["postgres", "direct"])
def test_tls_terminated_at_the_proxy(
    pg18: PostgresServer, proxy_cert: tuple[Path, Path], negotiation: str
) -> None:
    cert, key = proxy_cert
    with proxy(
        "--upstream", f"{HOST}:{pg18.port}", "--tls-cert", str(cert), "--tls-key", str(key)
    ) as p:  # fmt: skip
        with _connect(
            p.port, sslmode="verify-full", sslrootcert=str(cert), sslnegotiation=negotiation
        ) as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("select 'through TLS'").fetchone() == ("through TLS",)
        _no_traceback(p.stop())


def test_without_a_certificate_ssl_is_refused_politely(pg18: PostgresServer) -> None:
    with proxy("--upstream", f"{HOST}:{pg18.port}") as p:
        with _connect(p.port, sslmode="prefer") as conn:  # 'N', then plain
            assert not conn.pgconn.ssl_in_use
            assert conn.execute("select 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="server does not support SSL"):
            _connect(p.port, sslmode="require")
        log = p.stop()
    _no_traceback(log)


def test_upstream_tls_verified(pg18_ssl: PostgresServer) -> None:
    with proxy(
        "--upstream", f"{HOST}:{pg18_ssl.port}",
        "--upstream-tls", "verify-full", "--upstream-ca", str(pg18_ssl.ssl_cert_file),
    ) as p, _connect(p.port) as conn:  # fmt: skip
        row = conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
        assert row == (True,)


def test_upstream_tls_with_an_untrusted_certificate(
    pg18_ssl: PostgresServer, proxy_cert: tuple[Path, Path]
) -> None:
    with proxy(
        "--upstream", f"{HOST}:{pg18_ssl.port}",
        "--upstream-tls", "verify-ca", "--upstream-ca", str(proxy_cert[0]),
    ) as p:  # fmt: skip
        with pytest.raises(psycopg.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
            _connect(p.port)
        log = p.stop()
    _no_traceback(log)
    assert "CERTIFICATE_VERIFY_FAILED" in log


# -- the authentication proxy ------------------------------------------------------------------


def _users(path: Path) -> Path:
    path.write_text(
        "; clients of the proxy\n"
        f'"alice" "{ScramVerifier.from_password("alice pw", iterations=4096)}"\n'
        f'"bob" "{md5_stored("bob", "bob pw")}"\n'
        '"quote""d" "plain pw"\n'
    )
    return path


@pytest.mark.parametrize(
    ("upstream_user", "password"), [("scram_user", "scram_pw"), ("md5_user", "md5_pw")]
)
def test_authentication_proxy(
    pg18: PostgresServer, tmp_path: Path, upstream_user: str, password: str
) -> None:
    """Clients log in to the proxy with their own passwords; the proxy logs
    in upstream with its own credentials."""
    users = _users(tmp_path / "users.txt")
    with proxy(
        "--upstream", f"{HOST}:{pg18.port}", "--users", str(users),
        "--upstream-user", upstream_user, env={"PYGWIRE_UPSTREAM_PASSWORD": password},
    ) as p:  # fmt: skip
        for user, pw in (("alice", "alice pw"), ("bob", "bob pw"), ('quote"d', "plain pw")):
            with _connect(p.port, user, password=pw) as conn:
                assert conn.execute("select current_user").fetchone() == (upstream_user,)
        with pytest.raises(
            psycopg.OperationalError, match='authentication failed for user "alice"'
        ):
            _connect(p.port, "alice", password="wrong")
        with pytest.raises(psycopg.OperationalError, match='authentication failed for user "eve"'):
            _connect(p.port, "eve", password="anything")
        log = p.stop()
    _no_traceback(log)


def test_authentication_proxy_with_channel_binding_both_ways(
    pg18_ssl: PostgresServer, proxy_cert: tuple[Path, Path], tmp_path: Path
) -> None:
    """SCRAM-SHA-256-PLUS from the client to the proxy (over the proxy's
    TLS) and from the proxy to the server (over the server's TLS)."""
    cert, key = proxy_cert
    users = _users(tmp_path / "users.txt")
    with proxy(
        "--upstream", f"{HOST}:{pg18_ssl.port}", "--users", str(users),
        "--tls-cert", str(cert), "--tls-key", str(key),
        "--upstream-tls", "require", "--upstream-channel-binding", "require",
        "--upstream-user", "scram_user", env={"PYGWIRE_UPSTREAM_PASSWORD": "scram_pw"},
    ) as p:  # fmt: skip
        with _connect(
            p.port, "alice", password="alice pw", sslmode="require", channel_binding="require"
        ) as conn:
            query = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
            assert conn.execute(query).fetchone() == (True,)
            assert conn.execute("select current_user").fetchone() == ("scram_user",)
        log = p.stop()
    _no_traceback(log)


# -- cancel, strictness, errors ---------------------------------------------------------------


def test_cancel_reaches_the_server(pg18: PostgresServer) -> None:
    with proxy("--upstream", f"{HOST}:{pg18.port}") as p, _connect(p.port) as conn:
        timer = threading.Timer(1.0, conn.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(30)")
        assert time.monotonic() - started < 15
        conn.rollback()
        assert conn.execute("select 'still usable'").fetchone() == ("still usable",)


def _session(port: int) -> tuple[socket.socket, BackendMessageDecoder]:
    sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
    sock.sendall(StartupMessage(params={"user": "trust_user", "database": "postgres"}).to_wire())
    decoder = BackendMessageDecoder(ConnectionPhase.AUTHENTICATING)
    _until(sock, decoder, ReadyForQuery)
    return sock, decoder


def _until(sock: socket.socket, decoder: BackendMessageDecoder, kind: type) -> list[object]:
    seen: list[object] = []
    while True:
        data = sock.recv(65536)
        if not data:
            return seen
        decoder.feed(data)
        for msg in decoder:
            seen.append(msg)
            if isinstance(msg, kind):
                return seen


@pytest.mark.parametrize("strict", [False, True])
def test_a_protocol_violation(pg18: PostgresServer, strict: bool) -> None:
    """A PasswordMessage in the middle of a session: the lax proxy logs it
    and forwards it (the server ends the session), the strict one drops the
    client itself with its own FATAL error."""
    args = ["--upstream", f"{HOST}:{pg18.port}", *(["--strict"] if strict else [])]
    with proxy(*args) as p:
        sock, decoder = _session(p.port)
        sock.sendall(PasswordMessage(password="surprise").to_wire() + Query("select 1").to_wire())
        errors = [m for m in _until(sock, decoder, ErrorResponse) if isinstance(m, ErrorResponse)]
        sock.close()
        log = p.stop()
    _no_traceback(log)
    assert len(errors) == 1
    fields = errors[0].fields
    assert fields["S"] == "FATAL"
    assert fields["C"] == "08P01"
    assert fields["M"].startswith("protocol violation") == strict
    assert ("violation" in log) is True


def test_command_errors_are_one_line(pg18: PostgresServer, tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind((HOST, 0))
    busy.listen()
    port = busy.getsockname()[1]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pygwire", "proxy", *args],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip

    try:
        result = run("--listen", f"{HOST}:{port}", "--upstream", f"{HOST}:{pg18.port}")
    finally:
        busy.close()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"pygwire proxy: cannot listen on {HOST}:{port}: Address already in use"
    )
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = run("--upstream", f"{HOST}:1", "--tls-cert", str(bad), "--tls-key", str(bad))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"pygwire proxy: cannot load certificate {bad}")
    (tmp_path / "users").write_text("alice secret\n")
    result = run("--upstream", f"{HOST}:1", "--users", str(tmp_path / "users"))
    assert result.returncode == 1
    assert (
        result.stderr
        == f"pygwire proxy: bad --users file: {tmp_path / 'users'}:1: unquoted field at column 1\n"
    )
    _no_traceback(result.stderr)


def test_upstream_down(tmp_path: Path) -> None:
    dead = socket.socket()
    dead.bind((HOST, 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there now
    with proxy("--upstream", f"{HOST}:{port}") as p:
        with pytest.raises(psycopg.OperationalError, match=f"upstream {HOST}:{port} refused"):
            _connect(p.port)
        log = p.stop()
    _no_traceback(log)
    assert f"upstream {HOST}:{port} refused" in log


# -- load ----------------------------------------------------------------------------------------


def test_pgbench_through_the_tracing_proxy(pg18: PostgresServer, tmp_path: Path) -> None:
    """pgbench -c 16 -j 2 -T 10 with tracing on: no failed transaction, and
    every transaction reported left its row in pgbench_history.  Its tables
    live in a database of their own: other modules run pgbench on the same
    server as another user."""
    with _connect(pg18.port, "postgres") as admin:
        admin.autocommit = True
        admin.execute("drop database if exists proxy_pgbench")
        admin.execute("create database proxy_pgbench")
    with proxy("--upstream", f"{HOST}:{pg18.port}", "--trace", str(tmp_path / "t"), "-q") as p:
        env = _env(p.port, "postgres", PGDATABASE="proxy_pgbench")
        run_tool("pgbench", ["-i", "-s", "1", "-q"], env)
        result = run_tool(
            "pgbench", ["-c", "16", "-j", "2", "-T", "10", "-M", "prepared"], env, timeout=120
        )
        log = p.stop()
    _no_traceback(log)
    processed = int(re.search(r"actually processed: (\d+)", result.stdout).group(1))  # type: ignore[union-attr]
    assert "number of failed transactions: 0 " in result.stdout
    assert processed > 100
    with _connect(pg18.port, "postgres", "proxy_pgbench") as conn:
        assert conn.execute("select count(*) from pgbench_history").fetchone() == (processed,)
    assert (tmp_path / "t").stat().st_size > 100_000


# -- faults and leaks, on a proxy in this process ---------------------------------------------


class _InProcess:
    """A ProxyServer on its own event loop in a thread."""

    def __init__(self, options: ProxyOptions) -> None:
        self.loop = asyncio.new_event_loop()
        self.server: ProxyServer | None = None
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)

            async def start() -> None:
                self.server = ProxyServer(options)
                await self.server.start()
                ready.set()

            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(TIMEOUT)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def tasks(self) -> int:
        return asyncio.run_coroutine_threadsafe(self._tasks(), self.loop).result(TIMEOUT)

    async def _tasks(self) -> int:
        return len(asyncio.all_tasks()) - 1  # not this one

    def sessions(self) -> int:
        assert self.server is not None
        return len(self.server.sessions)

    def close(self) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _settle(proxy: _InProcess) -> None:
    deadline = time.monotonic() + TIMEOUT
    while proxy.sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.sessions() == 0


def test_faults_leave_other_clients_alone_and_leak_nothing(pg18: PostgresServer) -> None:
    relay = _InProcess(ProxyOptions(listen_port=0, upstream_port=pg18.port))
    dead = socket.socket()
    dead.bind((HOST, 0))
    down = _InProcess(ProxyOptions(listen_port=0, upstream_port=dead.getsockname()[1]))
    dead.close()
    try:
        # Warm up once, so that lazily opened files and pools are counted.
        with _connect(relay.port) as conn:
            conn.execute("select 1")
        _settle(relay)
        fds, tasks = _fds(), relay.tasks()

        steady = _connect(relay.port)
        done = threading.Event()
        failures: list[BaseException] = []

        def keep_querying() -> None:
            try:
                n = 0
                while not done.is_set():
                    n += 1
                    assert steady.execute("select %s::int", (n,)).fetchone() == (n,)
            except BaseException as exc:
                failures.append(exc)

        worker = threading.Thread(target=keep_querying)
        worker.start()

        # A client killed in the middle of a query.
        psql = subprocess.Popen(
            [str(pg_tool("psql")), "-c", "select pg_sleep(30)"],
            env={**os.environ, **_env(relay.port), "PGSSLMODE": "disable"},
        )
        time.sleep(1.0)
        psql.kill()
        psql.wait(TIMEOUT)

        # A server backend terminated by an administrator: the server's own
        # FATAL error reaches the client.
        victim = _connect(relay.port)
        pid = victim.execute("select pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        with _connect(pg18.port, "postgres") as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError, match="terminating connection"):
            victim.execute("select 1")
        victim.close()

        # An upstream that is down: a proper error.
        with pytest.raises(psycopg.OperationalError, match="refused"):
            _connect(down.port)

        done.set()
        worker.join(TIMEOUT)
        assert not failures, failures
        steady.close()
        _settle(relay)
        assert relay.tasks() == tasks
        # The backend of the killed psql ends when its sleep does, but the
        # proxy closed its side at once.
        assert _fds() == fds
    finally:
        relay.close()
        down.close()
