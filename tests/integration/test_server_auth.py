"""pygwire's server-side authentication against real clients.

:class:`tests.fake_server.FakeServer` authenticates with
:class:`pygwire.auth.ServerAuthenticator` (through
:class:`~tests.fake_server.PygwireAuth`), over plain TCP or TLS (after
SSLRequest, or direct SSL with ALPN ``postgresql``).  libpq (through
psycopg), asyncpg, pg8000 and pygwire's own client authenticate against it
with SCRAM-SHA-256, SCRAM-SHA-256-PLUS (tls-server-end-point channel
binding), MD5 and cleartext passwords; wrong passwords and unknown users
must fail with PostgreSQL's FATAL 28P01, indistinguishably; clients that
require channel binding must refuse a server that cannot give it.

Nothing here skips: a client that cannot connect fails its test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import asyncpg
import pg8000.native
import psycopg
import pytest

from fake_server import FakeServer, FakeSession, PygwireAuth, Role, ServerTLS
from pygwire import ConnectionPhase, FrontendConnection
from pygwire.auth import (
    SCRAM_SHA_256,
    SCRAM_SHA_256_PLUS,
    AuthMethod,
    ScramVerifier,
    md5_stored,
)
from pygwire.client import ServerError, SocketClient
from pygwire.exceptions import AuthenticationError
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationMessage,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    DataRow,
    DirectSSLHandshake,
    ErrorResponse,
    PasswordMessage,
    PGMessage,
    ReadyForQuery,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
    Terminate,
)

TIMEOUT = 10.0

PASSWORDS = {
    "scram_user": "scram-pw",
    "md5_user": "md5-pw",
    "password_user": "clear-pw",
    # md5 in pg_hba.conf, but a SCRAM verifier in pg_authid: PostgreSQL
    # (and ServerAuthenticator) switch to SCRAM.
    "md5_scram_user": "md5-scram-pw",
}
ROLES = {
    "scram_user": Role("scram-sha-256", str(ScramVerifier.from_password("scram-pw"))),
    "md5_user": Role("md5", md5_stored("md5_user", "md5-pw")),
    "password_user": Role("password", "clear-pw"),
    "md5_scram_user": Role("md5", str(ScramVerifier.from_password("md5-scram-pw"))),
    "trust_user": Role("trust"),
}
#: What each user is asked for first.
FIRST_REQUEST: dict[str, type[PGMessage]] = {
    "scram_user": AuthenticationSASL,
    "md5_user": AuthenticationMD5Password,
    "password_user": AuthenticationCleartextPassword,
    "md5_scram_user": AuthenticationSASL,
}
#: Users not in ROLES are asked for SCRAM and fail like a wrong password.
AUTH = PygwireAuth(ROLES, default_method="scram-sha-256")


# --------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTLS:
    return ServerTLS.self_signed(tmp_path_factory.mktemp("fake-server-tls"))


def _serve(server: FakeServer) -> Iterator[FakeServer]:
    with server:
        yield server
    server.check()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("fake-server")]


@pytest.fixture
def plain_server() -> Iterator[FakeServer]:
    yield from _serve(FakeServer(AUTH))


@pytest.fixture
def tls_server(tls: ServerTLS) -> Iterator[FakeServer]:
    yield from _serve(FakeServer(AUTH, tls=tls))


@pytest.fixture(params=["plain", "tls"])
def server(request: pytest.FixtureRequest, tls: ServerTLS) -> Iterator[FakeServer]:
    yield from _serve(FakeServer(AUTH, tls=tls if request.param == "tls" else None))


def _libpq_tls(tls: ServerTLS, sslmode: str = "verify-full") -> dict[str, str]:
    """TLS; verify-full checks the server against its own certificate (it is
    its own CA, CN localhost, SAN 127.0.0.1); require checks nothing."""
    if sslmode == "require":
        return {"sslmode": sslmode}
    return {"sslmode": sslmode, "sslrootcert": str(tls.certfile)}


def _dsn(server: FakeServer, user: str, password: str | None = None, **params: str) -> str:
    params.setdefault("sslmode", "disable")
    params.setdefault("gssencmode", "disable")
    params.setdefault("connect_timeout", "10")
    if password is None:
        password = PASSWORDS.get(user, "whatever")
    return server.dsn(user, password=password, **params)


def _client_context(tls: ServerTLS) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.certfile))


def _sent(session: FakeSession, *types: type[PGMessage]) -> list[PGMessage]:
    return [m for m in session.log.sent if isinstance(m, types)]


def _received(session: FakeSession, *types: type[PGMessage]) -> list[PGMessage]:
    return [m for m in session.log.received if isinstance(m, types)]


def _offered(session: FakeSession) -> list[str]:
    (request,) = _sent(session, AuthenticationSASL)
    assert isinstance(request, AuthenticationSASL)
    return request.mechanisms


def _mechanism(session: FakeSession) -> str:
    (initial,) = _received(session, SASLInitialResponse)
    assert isinstance(initial, SASLInitialResponse)
    return initial.mechanism


def _gs2_flag(session: FakeSession) -> bytes:
    (initial,) = _received(session, SASLInitialResponse)
    assert isinstance(initial, SASLInitialResponse)
    assert initial.data is not None
    return initial.data.split(b",", 1)[0]


def _assert_authenticated(
    server: FakeServer, session: FakeSession, user: str, *, tls: bool | None = None
) -> None:
    """``user`` went through its method and the session ended with Terminate."""
    server.wait_closed(session, TIMEOUT)
    server.check()
    assert session.user == user
    assert session.authenticator is not None
    assert session.authenticator.authenticated
    assert session.auth_error is None
    assert session.saw_terminate
    assert session.conn.phase is ConnectionPhase.TERMINATED
    if tls is not None:
        assert (session.direct_tls is not None) is tls
        assert (session.tls_certificate is not None) is tls
    first = FIRST_REQUEST.get(user)
    if first is not None:
        assert type(_sent(session, *FIRST_REQUEST.values())[0]) is first
    if first is AuthenticationSASL:
        # The server's signature, then AuthenticationOk, in that order.
        kinds = [type(m) for m in session.log.sent]
        ok = kinds.index(AuthenticationOk)
        assert kinds[ok - 3 : ok] == [
            AuthenticationSASL,
            AuthenticationSASLContinue,
            AuthenticationSASLFinal,
        ]
        assert _offered(session) == (
            [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] if session.tls_certificate else [SCRAM_SHA_256]
        )


def _failure_message(user: str) -> str:
    return f'password authentication failed for user "{user}"'


def _assert_rejected(server: FakeServer, user: str) -> FakeSession:
    """The last session ended with PostgreSQL's FATAL 28P01 for ``user``."""
    session = server.accepted[-1]
    server.wait_closed(session, TIMEOUT)
    server.check()
    assert session.user == user
    assert session.conn.phase is ConnectionPhase.FAILED
    assert session.auth_error is not None
    assert session.auth_error.sqlstate == "28P01"
    assert session.log.sent[-1] == ErrorResponse(
        fields={"S": "FATAL", "V": "FATAL", "C": "28P01", "M": _failure_message(user)}
    )
    assert not _sent(session, AuthenticationOk)
    return session


def _psycopg_select_1(dsn: str) -> tuple[int, bool]:
    """Connect, run ``select 1``; (backend pid, ssl in use)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        return conn.info.backend_pid, conn.pgconn.ssl_in_use


# --------------------------------------------------------------------------
# libpq through psycopg


def test_libpq_scram_without_channel_binding(server: FakeServer, tls: ServerTLS) -> None:
    over_tls = server.tls is not None
    params = _libpq_tls(tls) if over_tls else {}
    pid, ssl_in_use = _psycopg_select_1(
        _dsn(server, "scram_user", channel_binding="disable", **params)
    )
    assert ssl_in_use is over_tls
    session = server.session(pid)
    _assert_authenticated(server, session, "scram_user", tls=over_tls)
    assert _mechanism(session) == SCRAM_SHA_256
    assert _gs2_flag(session) == b"n"


@pytest.mark.parametrize("channel_binding", ["prefer", "require"])
def test_libpq_scram_plus_after_sslrequest(
    tls_server: FakeServer, tls: ServerTLS, channel_binding: str
) -> None:
    pid, ssl_in_use = _psycopg_select_1(
        _dsn(tls_server, "scram_user", channel_binding=channel_binding, **_libpq_tls(tls))
    )
    assert ssl_in_use
    session = tls_server.session(pid)
    _assert_authenticated(tls_server, session, "scram_user", tls=True)
    assert session.direct_tls is False
    assert [type(m) for m in session.log.received[:2]] == [SSLRequest, StartupMessage]
    assert session.alpn_protocol == "postgresql"  # libpq 17+ asks for it always
    assert _mechanism(session) == SCRAM_SHA_256_PLUS
    assert _gs2_flag(session) == b"p=tls-server-end-point"


@pytest.mark.parametrize("sslmode", ["require", "verify-full"])
def test_libpq_scram_plus_direct_ssl(tls_server: FakeServer, tls: ServerTLS, sslmode: str) -> None:
    dsn = _dsn(
        tls_server,
        "scram_user",
        channel_binding="require",
        sslnegotiation="direct",
        **_libpq_tls(tls, sslmode),
    )
    pid, ssl_in_use = _psycopg_select_1(dsn)
    assert ssl_in_use
    session = tls_server.session(pid)
    _assert_authenticated(tls_server, session, "scram_user", tls=True)
    assert session.direct_tls is True
    assert session.alpn_protocol == "postgresql"
    first, startup = session.log.received[:2]
    # The decoder handed over the ClientHello it had read: a TLS handshake record.
    assert isinstance(first, DirectSSLHandshake)
    assert first.data[:1] == b"\x16"
    assert isinstance(startup, StartupMessage)
    assert _mechanism(session) == SCRAM_SHA_256_PLUS


@pytest.mark.parametrize("user", ["md5_user", "password_user", "md5_scram_user", "trust_user"])
def test_libpq_password_methods(server: FakeServer, tls: ServerTLS, user: str) -> None:
    over_tls = server.tls is not None
    params = _libpq_tls(tls) if over_tls else {}
    pid, _ = _psycopg_select_1(_dsn(server, user, **params))
    session = server.session(pid)
    _assert_authenticated(server, session, user, tls=over_tls)
    if user in ("md5_user", "password_user"):
        assert len(_received(session, PasswordMessage)) == 1
    if user == "md5_scram_user":  # channel_binding=prefer: -PLUS over TLS
        assert _mechanism(session) == (SCRAM_SHA_256_PLUS if over_tls else SCRAM_SHA_256)
    if user == "trust_user":
        assert _sent(session, AuthenticationMessage) == [AuthenticationOk()]


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "password_user", "md5_scram_user"])
def test_libpq_wrong_password(server: FakeServer, tls: ServerTLS, user: str) -> None:
    params = _libpq_tls(tls) if server.tls is not None else {}
    with pytest.raises(psycopg.OperationalError, match=re.escape(_failure_message(user))):
        psycopg.connect(_dsn(server, user, "wrong", **params))
    session = _assert_rejected(server, user)
    if FIRST_REQUEST[user] is AuthenticationSASL:
        # The proof was checked: the exchange got as far as SASLResponse.
        assert len(_received(session, SASLResponse)) == 1


@pytest.mark.parametrize("method", ["scram-sha-256", "md5", "password"])
def test_libpq_unknown_user_fails_like_wrong_password(method: AuthMethod) -> None:
    """Same questions, same FATAL 28P01, same message but for the name; for
    SCRAM also the same salt on every attempt (a fresh one would tell)."""
    auth = PygwireAuth({"alice": Role(method, "s3cret")}, default_method=method)
    traces = {}
    salts = []
    with FakeServer(auth) as server:
        for user in ("alice", "ghost", "ghost"):
            with pytest.raises(psycopg.OperationalError) as failure:
                psycopg.connect(_dsn(server, user, "wrong"))
            assert _failure_message(user) in str(failure.value)
            session = _assert_rejected(server, user)
            sent = [type(m) for m in session.log.sent]
            received = [type(m) for m in session.log.received]
            text = str(failure.value).replace(f'"{user}"', '"?"')
            traces[user] = (sent, received, text)
            for m in _sent(session, AuthenticationSASLContinue):
                assert isinstance(m, AuthenticationSASLContinue)
                salts.append(m.data.split(b",")[1])
    assert traces["ghost"] == traces["alice"]
    if method == "scram-sha-256":
        assert traces["alice"][0][:2] == [AuthenticationSASL, AuthenticationSASLContinue]
        assert len(salts) == 3
        assert salts[1] == salts[2]  # the unknown user's mock salt is stable


def test_libpq_require_auth(plain_server: FakeServer) -> None:
    pid, _ = _psycopg_select_1(_dsn(plain_server, "scram_user", require_auth="scram-sha-256"))
    _assert_authenticated(plain_server, plain_server.session(pid), "scram_user")
    # libpq refuses another method before sending any password material.
    refused = 'authentication method requirement "scram-sha-256" failed'
    with pytest.raises(psycopg.OperationalError, match=refused):
        psycopg.connect(_dsn(plain_server, "md5_user", require_auth="scram-sha-256"))
    session = plain_server.accepted[-1]
    plain_server.wait_closed(session, TIMEOUT)
    assert _sent(session, AuthenticationMD5Password)
    assert not _received(session, PasswordMessage)
    assert session.auth_error is None  # the client gave up, not the server


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "trust_user"])
def test_libpq_channel_binding_require_without_tls(plain_server: FakeServer, user: str) -> None:
    """No TLS, no -PLUS: libpq must refuse, whatever the server asks."""
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(_dsn(plain_server, user, channel_binding="require"))
    session = plain_server.accepted[-1]
    plain_server.wait_closed(session, TIMEOUT)
    plain_server.check()
    assert session.auth_error is None  # refused on the client's side
    assert not _received(session, PasswordMessage, SASLInitialResponse)
    if user == "scram_user":
        assert _offered(session) == [SCRAM_SHA_256]


# --------------------------------------------------------------------------
# asyncpg


async def _asyncpg_select_1(server: FakeServer, user: str, password: str, **kwargs: Any) -> int:
    conn = await asyncpg.connect(
        host=server.host,
        port=server.port,
        user=user,
        password=password,
        database="postgres",
        timeout=TIMEOUT,
        **kwargs,
    )
    try:
        assert await conn.fetchval("select 1") == 1
        pid: int = conn.get_server_pid()
    finally:
        await conn.close(timeout=TIMEOUT)
    return pid


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "password_user"])
def test_asyncpg_plain(plain_server: FakeServer, user: str) -> None:
    pid = asyncio.run(_asyncpg_select_1(plain_server, user, PASSWORDS[user], ssl=False))
    _assert_authenticated(plain_server, plain_server.session(pid), user, tls=False)


@pytest.mark.parametrize("direct_tls", [False, True])
def test_asyncpg_scram_over_tls(tls_server: FakeServer, tls: ServerTLS, direct_tls: bool) -> None:
    """asyncpg has no channel binding: plain SCRAM ("n", not "y") over TLS."""
    context = _client_context(tls)
    if direct_tls:
        context.set_alpn_protocols(["postgresql"])
    pid = asyncio.run(
        _asyncpg_select_1(tls_server, "scram_user", "scram-pw", ssl=context, direct_tls=direct_tls)
    )
    session = tls_server.session(pid)
    _assert_authenticated(tls_server, session, "scram_user", tls=True)
    assert session.direct_tls is direct_tls
    assert _mechanism(session) == SCRAM_SHA_256
    assert _gs2_flag(session) == b"n"


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "password_user", "ghost"])
def test_asyncpg_wrong_password(plain_server: FakeServer, user: str) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError) as failure:
        asyncio.run(_asyncpg_select_1(plain_server, user, "wrong", ssl=False))
    assert failure.value.sqlstate == "28P01"
    assert str(failure.value) == _failure_message(user)
    _assert_rejected(plain_server, user)


# --------------------------------------------------------------------------
# pg8000 (SCRAM through the scramp package, with channel binding over TLS)


def _pg8000_select_1(server: FakeServer, user: str, password: str, ssl_context: Any) -> None:
    conn = pg8000.native.Connection(
        user,
        host=server.host,
        port=server.port,
        database="postgres",
        password=password,
        ssl_context=ssl_context,
        timeout=TIMEOUT,
    )
    try:
        assert conn.run("select 1") == [[1]]
    finally:
        conn.close()


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "password_user"])
def test_pg8000_plain(plain_server: FakeServer, user: str) -> None:
    _pg8000_select_1(plain_server, user, PASSWORDS[user], ssl_context=False)
    session = plain_server.accepted[-1]
    _assert_authenticated(plain_server, session, user, tls=False)
    if user == "scram_user":
        assert _mechanism(session) == SCRAM_SHA_256


def test_pg8000_scram_plus(tls_server: FakeServer, tls: ServerTLS) -> None:
    _pg8000_select_1(tls_server, "scram_user", "scram-pw", ssl_context=_client_context(tls))
    session = tls_server.accepted[-1]
    _assert_authenticated(tls_server, session, "scram_user", tls=True)
    assert _mechanism(session) == SCRAM_SHA_256_PLUS
    assert _gs2_flag(session) == b"p=tls-server-end-point"


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "password_user", "ghost"])
def test_pg8000_wrong_password(server: FakeServer, tls: ServerTLS, user: str) -> None:
    context = _client_context(tls) if server.tls is not None else False
    with pytest.raises(pg8000.native.DatabaseError) as failure:
        _pg8000_select_1(server, user, "wrong", ssl_context=context)
    fields = failure.value.args[0]
    assert (fields["S"], fields["C"], fields["M"]) == ("FATAL", "28P01", _failure_message(user))
    _assert_rejected(server, user)


# --------------------------------------------------------------------------
# pygwire's own client (pygwire.client)


@pytest.mark.parametrize("direct_tls", [False, True])
def test_pygwire_client_scram_plus(
    tls_server: FakeServer, tls: ServerTLS, direct_tls: bool
) -> None:
    client = SocketClient.connect(
        tls_server.host,
        tls_server.port,
        "scram_user",
        password="scram-pw",
        tls=_client_context(tls),
        direct_tls=direct_tls,
        channel_binding="require",
    )
    try:
        assert client.tls_certificate == tls.der
        assert isinstance(client.startup_messages[-1], ReadyForQuery)
        assert client.backend_key is not None
        pid = client.backend_key.process_id
        assert any(isinstance(m, DataRow) for m in client.query("select 1"))
    finally:
        client.close()
    session = tls_server.session(pid)
    _assert_authenticated(tls_server, session, "scram_user", tls=True)
    assert session.direct_tls is direct_tls
    assert _mechanism(session) == SCRAM_SHA_256_PLUS
    # Both sides bound the same certificate.
    assert session.tls_certificate == client.tls_certificate


@pytest.mark.parametrize("user", ["scram_user", "ghost"])
def test_pygwire_client_wrong_password(tls_server: FakeServer, tls: ServerTLS, user: str) -> None:
    with pytest.raises(ServerError) as failure:
        SocketClient.connect(
            tls_server.host,
            tls_server.port,
            user,
            password="wrong",
            tls=_client_context(tls),
            channel_binding="require",
        )
    assert failure.value.error.code == "28P01"
    assert failure.value.error.message == _failure_message(user)
    _assert_rejected(tls_server, user)


def test_pygwire_client_channel_binding_require_without_tls(plain_server: FakeServer) -> None:
    with pytest.raises(AuthenticationError, match="channel binding is required") as failure:
        SocketClient.connect(
            plain_server.host,
            plain_server.port,
            "scram_user",
            password="scram-pw",
            channel_binding="require",
        )
    assert failure.value.sqlstate == "28000"
    session = plain_server.accepted[-1]
    plain_server.wait_closed(session, TIMEOUT)
    assert session.auth_error is None
    assert not _received(session, SASLInitialResponse)


def test_direct_ssl_without_alpn_is_refused(tls_server: FakeServer, tls: ServerTLS) -> None:
    """As PostgreSQL: a direct-SSL client must ask for ALPN postgresql."""
    context = _client_context(tls)
    with (
        socket.create_connection((tls_server.host, tls_server.port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=tls_server.host) as sock,
    ):
        assert sock.selected_alpn_protocol() is None
        assert sock.recv(1) == b""  # closed before any startup
    session = tls_server.accepted[-1]
    tls_server.wait_closed(session, TIMEOUT)
    assert session.startup is None
    assert session.direct_tls is None


# --------------------------------------------------------------------------
# A SCRAM client written out here (RFC 5802 by hand), for what no driver sends


class _RawClient:
    """A FrontendConnection on a socket, one message at a time."""

    def __init__(self, server: FakeServer) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        self.conn = FrontendConnection()

    def send(self, msg: PGMessage) -> None:
        self.sock.sendall(self.conn.send(msg))

    def next(self) -> PGMessage:
        data = b""
        while True:
            for msg in self.conn.receive(data):
                return msg
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


@pytest.mark.parametrize(
    ("bare_tail", "accepted"),
    [("", True), (",x=ext", True), (",x=ext,y=", True), (",x", False), (",1=ext", False)],
    ids=["none", "one", "two", "not-an-attribute", "not-a-letter"],
)
def test_scram_client_first_extensions(
    plain_server: FakeServer, bare_tail: str, accepted: bool
) -> None:
    """RFC 5802: optional extensions after the client nonce are ignored (so
    does PostgreSQL); anything else there is malformed (08P01)."""
    client = _RawClient(plain_server)
    try:
        client.send(StartupMessage(params={"user": "scram_user", "database": "postgres"}))
        assert isinstance(client.next(), AuthenticationSASL)
        bare = f"n=,r=clientnonce{bare_tail}"
        client.send(SASLInitialResponse(mechanism=SCRAM_SHA_256, data=b"n,," + bare.encode()))
        reply = client.next()
        if not accepted:
            assert isinstance(reply, ErrorResponse)
            assert (reply.severity, reply.code) == ("FATAL", "08P01")
            return
        assert isinstance(reply, AuthenticationSASLContinue)
        server_first = reply.data.decode()
        attrs = dict(part.split("=", 1) for part in server_first.split(","))
        assert attrs["r"].startswith("clientnonce")
        salted = hashlib.pbkdf2_hmac(
            "sha256", b"scram-pw", base64.b64decode(attrs["s"]), int(attrs["i"])
        )
        client_key = _hmac(salted, b"Client Key")
        final_bare = f"c={base64.b64encode(b'n,,').decode()},r={attrs['r']}"
        auth_message = f"{bare},{server_first},{final_bare}".encode()
        signature = _hmac(hashlib.sha256(client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        client.send(
            SASLResponse(data=f"{final_bare},p={base64.b64encode(proof).decode()}".encode())
        )
        final = client.next()
        assert isinstance(final, AuthenticationSASLFinal)
        server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        assert final.data == b"v=" + base64.b64encode(server_signature)
        assert client.next() == AuthenticationOk()
        while not isinstance(client.next(), ReadyForQuery):
            pass
        client.send(Terminate())
    finally:
        client.sock.close()
    session = plain_server.accepted[-1]
    _assert_authenticated(plain_server, session, "scram_user", tls=False)
