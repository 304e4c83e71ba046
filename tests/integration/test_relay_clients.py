"""Real clients through the strict, validating relay, as they really talk.

The traffic of asyncpg, psql, pgbench and node-postgres goes through
:class:`relay.Relay` (one strict ProxyConnection per connection) to
PostgreSQL 18.  Each client must get its real answers (checked here), the
model must refuse nothing (the relay records any StateMachineError, and
:meth:`Relay.check` raises it) and every connection must end TERMINATED.
psycopg's and pg8000's flows are in ``test_relay.py``.

Several of these sequences were refused by the phase table of pygwire 0.3:
asyncpg's ``prepare()`` then ``execute()`` (a Query after an unsynced Parse,
Describe and Flush), ``copy_records_to_table()``, and pipelines that send
the next command before the last one is answered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import asyncpg
import pytest
from harness.postgres import PostgresServer

from peers import NODE_SESSION, node_session, run_tool
from pygwire import ConnectionPhase
from pygwire.messages import CancelRequest, CopyData, Flush, Parse, Query
from relay import Relay

TIMEOUT = 10.0


@pytest.fixture
def relay(pg18: PostgresServer) -> Iterator[Relay]:
    with Relay(pg18.host, pg18.port) as r:
        yield r
    r.check()
    for session in r.sessions:
        session.wait_closed(TIMEOUT)
        assert session.phase is ConnectionPhase.TERMINATED, session.from_client[-3:]


def _env(relay: Relay, user: str = "trust_user") -> dict[str, str]:
    return {
        "PGHOST": relay.host,
        "PGPORT": str(relay.port),
        "PGUSER": user,
        "PGDATABASE": "postgres",
    }


def test_asyncpg(relay: Relay) -> None:
    async def flow() -> None:
        conn = await asyncpg.connect(
            host=relay.host, port=relay.port, user="trust_user", database="postgres",
            ssl=False, timeout=TIMEOUT,
        )  # fmt: skip
        try:
            # Parse, Describe, Flush; then a simple Query before any Sync.
            stmt = await conn.prepare("select 1")
            assert await conn.execute("select 2") == "SELECT 1"
            assert await stmt.fetchval() == 1
            await conn.execute("create temp table a_t (i int, t text)")
            assert await conn.copy_records_to_table("a_t", records=[(1, "a"), (2, "b")]) == (
                "COPY 2"
            )
            await conn.executemany("insert into a_t values ($1, $2)", [(3, "c"), (4, "d")])
            async with conn.transaction():
                rows = [r["i"] async for r in conn.cursor("select i from a_t order by i")]
            assert rows == [1, 2, 3, 4]

            async def failing_transaction() -> None:
                async with conn.transaction():
                    await conn.execute("insert into a_t values (5, 'e')")
                    await conn.fetchval("select 1/0")

            with pytest.raises(asyncpg.DivisionByZeroError):
                await failing_transaction()
            assert await conn.fetchval("select count(*) from a_t") == 4
            # A timeout: asyncpg cancels the query over a second connection.
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetch("select pg_sleep(10)", timeout=0.5)
            assert await conn.fetchval("select $1::int4 + 1", 41) == 42
        finally:
            await conn.close(timeout=TIMEOUT)

    asyncio.run(flow())
    sent = [m for s in relay.sessions for m in s.from_client]
    assert any(isinstance(m, CancelRequest) for m in sent)
    assert any(isinstance(m, CopyData) for m in sent)
    # The sequence the phase table refused: a Query right after Parse + Flush.
    kinds = [type(m) for s in relay.sessions for m in s.from_client]
    assert any(
        kinds[i] is Flush and kinds[i + 1] is Query and Parse in kinds[max(0, i - 3) : i]
        for i in range(len(kinds) - 1)
    )


PSQL_SCRIPT = r"""
create temp table psql_t (i int, t text);
\startpipeline
select $1 \bind 'val1' \sendpipeline
select $1, $2 \bind 'val2' 'val3' \sendpipeline
\syncpipeline
select 1/0 \bind \sendpipeline
select $1 \bind 'skipped' \sendpipeline
\endpipeline
\copy psql_t from stdin
1	one
2	two
\.
\copy psql_t to stdout
\set FETCH_COUNT 3
select n from generate_series(1, 7) as n;
"""


def test_psql_pipeline_copy_and_fetch_count(relay: Relay) -> None:
    result = run_tool(
        "psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=0", "-f", "-"], _env(relay),
        stdin=PSQL_SCRIPT,
    )  # fmt: skip
    out = result.stdout
    assert "val1" in out
    assert "val2|val3" in out
    assert "skipped" not in out  # after the error the server skipped to Sync
    assert "division by zero" in result.stderr
    assert "1\tone\n2\ttwo" in out
    assert re.search(r"^1\n2\n3\n4\n5\n6\n7$", out, re.MULTILINE)


@pytest.fixture(scope="module")
def pgbench_db(pg18: PostgresServer) -> PostgresServer:
    """pgbench's tables, created through a relay too (COPY FROM STDIN)."""
    with Relay(pg18.host, pg18.port) as relay:
        run_tool("pgbench", ["-i", "-q", "-s", "1"], _env(relay))
    relay.check()
    return pg18


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench(relay: Relay, pgbench_db: PostgresServer, mode: str) -> None:
    result = run_tool("pgbench", ["-n", "-c", "4", "-j", "2", "-T", "3", "-M", mode], _env(relay))
    done = int(re.search(r"number of transactions actually processed: (\d+)", result.stdout)[1])  # type: ignore[index]
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    assert done > 0
    assert failed is not None
    assert failed[1] == "0"
    assert len(relay.sessions) >= 4  # and one that reads the scale first


def test_node_postgres(relay: Relay) -> None:
    assert node_session(_env(relay)) == NODE_SESSION
