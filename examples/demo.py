"""pygwire on a real server: start PostgreSQL 18, talk to it, stop it.

Run with ``make demo``.  An embedded PostgreSQL 18 starts on a free
loopback port; a client built on pygwire's FrontendConnection over a plain
socket authenticates with SCRAM-SHA-256, runs a simple query, a pipelined extended
query and a COPY in both directions, and every message that crosses the
wire is printed as pygwire decoded or encoded it.  The server is stopped
whatever happens.
"""

from __future__ import annotations

import struct
import sys

from harness.postgres import USERS, PostgresServer

from pygwire.client import SocketClient
from pygwire.messages import (
    Bind,
    CopyData,
    CopyDone,
    CopyInResponse,
    Describe,
    Execute,
    Parse,
    PGMessage,
    Query,
    ReadyForQuery,
    Sync,
)


def show(arrow: str, msg: PGMessage) -> None:
    """One line per message: direction, then the message's repr (cut if long)."""
    text = repr(msg)
    if len(text) > 116:
        text = text[:113] + "..."
    print(f"  {arrow} {text}")


def section(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    print("Starting an embedded PostgreSQL 18 ...")
    with PostgresServer(18) as server:
        print(f"PostgreSQL {server.version} listening on {server.host}:{server.port}")

        section("startup and SCRAM-SHA-256 authentication (pygwire.auth)")
        user = "scram_user"
        client = SocketClient.connect(
            server.host, server.port, user, password=USERS[user], trace=show
        )
        try:
            section("simple query")
            client.query("select 42 as answer, 'hello' as greeting; select now() > '2000-01-01'")

            section("pipelined extended query: three Parse/Bind/Execute/Sync groups at once")
            for n in (1, 2, 3):
                client.send_all(
                    [
                        Parse(query="select $1::int4 * 10", param_types=[23]),
                        Bind(param_formats=[1], param_values=[struct.pack("!i", n)]),
                        Describe(kind="P"),
                        Execute(),
                        Sync(),
                    ]
                )
            print(f"  (pending Syncs: {client.pending_syncs})")
            client.messages_until(ReadyForQuery, count=3)
            print(f"  (pending Syncs: {client.pending_syncs}, phase {client.phase.name})")

            section("COPY FROM STDIN, then COPY TO STDOUT")
            client.query("create temp table fruit (id int, name text)")
            client.send(Query(query_string="copy fruit from stdin"))
            client.messages_until(CopyInResponse)
            client.send_all([CopyData(data=b"1\tapple\n2\tpear\n"), CopyDone()])
            client.messages_until(ReadyForQuery)
            client.query("copy fruit to stdout")
        finally:
            section("goodbye")
            client.close()
    print("\nServer stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
