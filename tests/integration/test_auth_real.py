"""pygwire.auth's client against a real PostgreSQL 18, and its verifiers
against libpq: every method the server offers, with and without TLS."""

from __future__ import annotations

import ssl

import psycopg
import pytest
from harness.postgres import USERS, PostgresServer

from pygwire import AuthenticationError
from pygwire.auth import SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramVerifier
from pygwire.client import ServerError, SocketClient
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationSASL,
    DataRow,
    PGMessage,
    SASLInitialResponse,
)

METHODS = {
    "scram_user": AuthenticationSASL,
    "md5_user": AuthenticationMD5Password,
    "password_user": AuthenticationCleartextPassword,
}


def _tls(server: PostgresServer) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.ssl_cert_file))
    ctx.check_hostname = False  # the self-signed certificate names localhost
    return ctx


class Recorder(SocketClient):
    """Keeps what the client sent, to see which mechanism it chose."""

    sent: list[PGMessage]

    def send(self, msg: PGMessage) -> bytes:
        self.__dict__.setdefault("sent", []).append(msg)
        return super().send(msg)


def _mechanism(client: SocketClient) -> str:
    (first,) = [m for m in client.sent if isinstance(m, SASLInitialResponse)]  # type: ignore[attr-defined]
    return first.mechanism


@pytest.mark.parametrize("user", METHODS)
def test_each_method(pg18: PostgresServer, user: str) -> None:
    client = SocketClient.connect(pg18.host, pg18.port, user, password=USERS[user])
    assert isinstance(client.startup_messages[0], METHODS[user])
    rows = [m for m in client.query("select current_user") if isinstance(m, DataRow)]
    assert rows == [DataRow(columns=[user.encode()])]
    client.close()


@pytest.mark.parametrize("user", METHODS)
def test_wrong_password_is_28p01(pg18: PostgresServer, user: str) -> None:
    with pytest.raises(ServerError) as info:
        SocketClient.connect(pg18.host, pg18.port, user, password="not-the-password")
    assert info.value.error.code == "28P01"


@pytest.mark.parametrize("direct", [False, True], ids=["sslrequest", "direct-ssl"])
def test_scram_plus_over_tls(pg18_ssl: PostgresServer, direct: bool) -> None:
    client = Recorder.connect(
        pg18_ssl.host,
        pg18_ssl.port,
        "scram_user",
        password=USERS["scram_user"],
        tls=_tls(pg18_ssl),
        direct_tls=direct,
        channel_binding="require",
    )
    sasl = client.startup_messages[0]
    assert isinstance(sasl, AuthenticationSASL)
    assert SCRAM_SHA_256_PLUS in sasl.mechanisms  # the server offers it over TLS
    assert _mechanism(client) == SCRAM_SHA_256_PLUS
    assert client.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()")[1] == DataRow(
        columns=[b"t"]
    )
    client.close()


def test_scram_without_binding_over_tls(pg18_ssl: PostgresServer) -> None:
    client = Recorder.connect(
        pg18_ssl.host,
        pg18_ssl.port,
        "scram_user",
        password=USERS["scram_user"],
        tls=_tls(pg18_ssl),
        channel_binding="disable",
    )
    assert _mechanism(client) == SCRAM_SHA_256
    client.close()


def test_require_refuses_plain_connection(pg18: PostgresServer) -> None:
    """Without TLS the server cannot offer -PLUS: nothing may be sent."""
    with pytest.raises(AuthenticationError, match="channel binding is required"):
        Recorder.connect(
            pg18.host, pg18.port, "scram_user", password="x", channel_binding="require"
        )


def test_require_refuses_md5_over_tls(pg18_ssl: PostgresServer) -> None:
    with pytest.raises(AuthenticationError, match="refusing to send password material"):
        SocketClient.connect(
            pg18_ssl.host,
            pg18_ssl.port,
            "md5_user",
            password=USERS["md5_user"],
            tls=_tls(pg18_ssl),
            channel_binding="require",
        )


def test_generated_verifier_lets_libpq_log_in() -> None:
    verifier = ScramVerifier.from_password("verifier-pw ünïcode", iterations=5000)
    text = str(verifier)
    assert text.startswith("SCRAM-SHA-256$5000:")
    hba = ["host all verifier_user 127.0.0.1/32 scram-sha-256"]
    with PostgresServer(18, extra_hba=hba) as server:
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f"create role verifier_user login password '{text}'")
            stored = admin.execute(
                "select rolpassword from pg_authid where rolname = 'verifier_user'"
            ).fetchone()
        assert stored == (text,)  # the server kept our verifier as it is
        dsn = f"host={server.host} port={server.port} dbname=postgres user=verifier_user"
        with psycopg.connect(
            dsn + " password='verifier-pw ünïcode' require_auth=scram-sha-256"
        ) as c:
            assert c.execute("select current_user").fetchone() == ("verifier_user",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn + " password=wrong require_auth=scram-sha-256")
