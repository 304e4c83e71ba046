"""The state model against what PostgreSQL 18 really answers.

Hypothesis draws pipelines of frontend messages as clients may send them
without waiting for answers: valid and failing SQL, Flush without Sync, a
Query between extended-query messages, Describe and Close of statements
and portals (existing or not), portals read with a row limit, transaction
control, COPY in both directions (with the COPY input sometimes pipelined
blindly behind the command).  Each pipeline goes to a fresh session of the
embedded PostgreSQL 18 in one write; every message the server answers is
fed to a strict FrontendConnection.  The model must accept every real
answer and end where the server is: nothing outstanding, no pending Sync,
the transaction status of the last ReadyForQuery.

PostgreSQL ends the session with a FATAL error when COPY FROM STDIN reads
a message that is not COPY input ("protocol synchronization was lost");
the model must then have failed with it.

The client answers each CopyInResponse (COPY data, then CopyDone or
CopyFail, then a Sync, since COPY swallows any Sync sent before), and ends
the pipeline with a Sync.  The exchange is over when the model says nothing
is outstanding and the server then stays silent for a moment: an answer the
model thought complete too early would show up as a violation, one it
waits for in vain as a timeout.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from harness.postgres import PostgresServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pygwire import ConnectionPhase, FrontendConnection
from pygwire.messages import (
    AuthenticationOk,
    Bind,
    Close,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    Describe,
    ErrorResponse,
    Execute,
    Flush,
    Parse,
    PGMessage,
    Query,
    ReadyForQuery,
    StartupMessage,
    Sync,
)

STATEMENTS = ["", "s1", "s2"]
PORTALS = ["", "p1", "p2"]
SQL = [
    "select 1",
    "select $1::int4 + 1",
    "select generate_series(1, 5)",
    "select 1/0",  # fails when executed
    "select * from no_such_table",  # fails when parsed
    "insert into pipe_t values (7)",
    "begin",
    "commit",
    "copy pipe_t from stdin",
    "copy pipe_t to stdout",
    "",  # the empty query
]
QUERIES = [
    "select 1",
    "select 1; select 2",
    "select bogus",
    "begin",
    "commit",
    "rollback",
    "",
    "copy pipe_t from stdin",
    "copy (select 1) to stdout",
    "insert into pipe_t values (1); select 1/0",
]


def _bind(portal: str, statement: str, with_param: bool) -> Bind:
    return Bind(portal=portal, statement=statement, param_values=[b"41"] if with_param else [])


MESSAGES = st.one_of(
    st.builds(Parse, statement=st.sampled_from(STATEMENTS), query=st.sampled_from(SQL)),
    st.builds(
        _bind,
        portal=st.sampled_from(PORTALS),
        statement=st.sampled_from(STATEMENTS),
        with_param=st.booleans(),
    ),
    st.builds(Describe, kind=st.sampled_from("SP"), name=st.sampled_from(STATEMENTS)),
    st.builds(Execute, portal=st.sampled_from(PORTALS), max_rows=st.sampled_from([0, 0, 1, 2])),
    st.builds(Close, kind=st.sampled_from("SP"), name=st.sampled_from(PORTALS)),
    st.just(Sync()),
    st.just(Flush()),
    st.builds(Query, query_string=st.sampled_from(QUERIES)),
    # COPY input pipelined blindly: taken by a COPY if one is reading, else ignored.
    st.just(CopyData(data=b"5\n")),
    st.just(CopyDone()),
)

#: How long the server must stay silent once the model expects nothing more.
QUIET = 0.1


class _Session:
    """One strict FrontendConnection over a socket to the server."""

    def __init__(self, server: PostgresServer) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=5)
        self.conn = FrontendConnection()
        self.received: list[PGMessage] = []
        self.send(StartupMessage(params={"user": "trust_user", "database": "postgres"}))
        self.drain()
        assert any(isinstance(m, AuthenticationOk) for m in self.received)

    def send(self, *msgs: PGMessage) -> None:
        self.sock.sendall(b"".join(self.conn.send(m) for m in msgs))

    def messages(self) -> Iterator[PGMessage]:
        """Every message the server sends until the model has nothing
        outstanding and the server stays quiet, or it closes the connection
        after a FATAL error (which the model must have seen)."""
        conn = self.conn
        while conn.phase is not ConnectionPhase.FAILED:
            settled = conn.phase is ConnectionPhase.READY and not conn.pending_syncs
            self.sock.settimeout(QUIET if settled else 5)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if settled:
                    return
                raise
            if not data:
                raise AssertionError(f"server closed the connection; got {self.received[-5:]}")
            for msg in conn.receive(data):
                self.received.append(msg)
                yield msg

    def drain(self) -> None:
        for _ in self.messages():
            pass

    def close(self) -> None:
        self.sock.close()


def _run(server: PostgresServer, pipeline: list[PGMessage], fail_copy: bool) -> _Session:
    session = _Session(server)
    session.send(*pipeline, Sync())
    for msg in session.messages():
        if isinstance(msg, CopyInResponse):
            if fail_copy:
                session.send(CopyFail(error_message="no thanks"), Sync())
            else:
                session.send(CopyData(data=b"1\n2\n"), CopyDone(), Sync())
    return session


@pytest.fixture(scope="module")
def server(pg18: PostgresServer) -> PostgresServer:
    session = _Session(pg18)
    session.send(Query(query_string="create table if not exists pipe_t (i int)"))
    session.drain()
    session.close()
    return pg18


@settings(
    max_examples=int(os.environ.get("PYGWIRE_PIPELINE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pipeline=st.lists(MESSAGES, min_size=1, max_size=14), fail_copy=st.booleans())
def test_the_model_accepts_every_real_answer(
    server: PostgresServer, pipeline: list[PGMessage], fail_copy: bool
) -> None:
    session = _run(server, pipeline, fail_copy)
    try:
        conn = session.conn
        if conn.phase is ConnectionPhase.FAILED:
            last = session.received[-1]
            assert isinstance(last, ErrorResponse)
            assert last.fields["V"] == "FATAL"
            return
        last_status = next(m for m in reversed(session.received) if isinstance(m, ReadyForQuery))
        assert conn.outstanding == ()
        assert conn.pending_syncs == 0
        assert conn.phase is ConnectionPhase.READY
        assert conn.transaction_status is last_status.status
    finally:
        session.close()


def test_a_pipeline_with_everything(server: PostgresServer) -> None:
    """One hand-written pipeline through every rule at once, as a reference."""
    pipeline: list[PGMessage] = [
        Parse(statement="s1", query="select generate_series(1, 5)"),
        Describe(kind="S", name="s1"),
        Bind(portal="p1", statement="s1"),
        Describe(kind="P", name="p1"),
        Execute(portal="p1", max_rows=2),
        Flush(),
        Query(query_string="select 1"),  # between extended messages, before Sync
        Execute(portal="p1", max_rows=0),
        Parse(query="select * from no_such_table"),  # fails: skip to Sync
        Bind(),
        Execute(),
        Sync(),
        Query(query_string="copy pipe_t from stdin"),
        CopyData(data=b"9\n"),  # pipelined blindly, read by the COPY
        CopyDone(),
        Close(kind="S", name="s1"),
        Sync(),
    ]
    session = _run(server, pipeline, fail_copy=False)
    try:
        assert session.conn.outstanding == ()
        assert session.conn.is_idle
    finally:
        session.close()
