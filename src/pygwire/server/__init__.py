"""A PostgreSQL-protocol server toolkit on asyncio: write the handler, nothing else.

The smallest server (``examples/smallest_server.py``; ``psql -h 127.0.0.1
-p 5433 -c "select now()"`` talks to it)::

    import datetime
    from collections.abc import Sequence

    from pygwire.server import Handler, Result, Server, SQLError, SQLState


    class Hello(Handler):  # answers now(), echoes a parameter, greets in two rows
        async def query(self, sql: str, params: Sequence[object]) -> Result:
            text = sql.lower()
            if text == "select now()":
                return Result(["now"], [(datetime.datetime.now(datetime.UTC),)])
            if text.startswith("select $1"):  # a parameter, sent back with its type
                return Result(["echo"], [(params[0],)])
            if text.startswith("select"):
                return Result(["word", "n"], [("hello", 1), ("world", 2)])
            raise SQLError(SQLState.SYNTAX_ERROR, f"cannot run: {sql}")


    if __name__ == "__main__":
        Server(Hello).run("127.0.0.1", 5433)

One :class:`Server` accepts clients and runs one :class:`Session` per
connection: TLS (after SSLRequest, or direct SSL with ALPN ``postgresql``),
protocol 3.0 and 3.2 (with NegotiateProtocolVersion), authentication
against a user store (trust, password, md5, SCRAM-SHA-256 and -PLUS), the
usual ParameterStatus set, BackendKeyData and cancel requests, simple and
extended queries (statements split by PostgreSQL's lexical rules,
prepared statements and portals, row limits, pipelining, skip-until-Sync),
transactions with their I/T/E status, COPY both ways, notices and
notifications, and limits (connections, timeouts, message size,
backpressure, graceful shutdown).  Every message both ways passes a strict
:class:`~pygwire.BackendConnection`.

The :class:`Handler` is the server's own part, one per session: its
:meth:`~Handler.query` returns a :class:`Result` (values are encoded by
their column types with :mod:`pygwire.types`), a command tag, or a
:class:`CopyIn`/:class:`CopyOut`; :meth:`~Handler.describe` tells clients
that prepare statements (asyncpg, pg8000) what a statement takes and
returns; a :class:`SQLError` becomes an ErrorResponse.
"""

from ._copy import CopyReader, binary_header, binary_row, text_row
from ._errors import SQLError, SQLState
from ._handler import Handler
from ._portal import Portal
from ._results import (
    Column,
    CopyIn,
    CopyOut,
    Description,
    Outcome,
    Result,
    Row,
    Rows,
    Statement,
)
from ._server import (
    DEFAULT_PARAMETERS,
    HandlerFactory,
    Role,
    Server,
    ServerThread,
    Users,
    UserStore,
)
from ._session import REPORTED_PARAMETERS, Session

__all__ = [
    "DEFAULT_PARAMETERS",
    "REPORTED_PARAMETERS",
    "Column",
    "CopyIn",
    "CopyOut",
    "CopyReader",
    "Description",
    "Handler",
    "HandlerFactory",
    "Outcome",
    "Portal",
    "Result",
    "Role",
    "Row",
    "Rows",
    "SQLError",
    "SQLState",
    "Server",
    "ServerThread",
    "Session",
    "Statement",
    "UserStore",
    "Users",
    "binary_header",
    "binary_row",
    "text_row",
]
