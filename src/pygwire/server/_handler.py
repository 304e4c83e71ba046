"""The part of a server its author writes: a :class:`Handler` per session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..messages import FrontendMessage
from ._builtins import NOT_BUILTIN, run_builtin
from ._errors import SQLError, SQLState
from ._results import Description, Outcome, Statement

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["Handler"]


class Handler:
    """What a server does with a client's statements; one instance per session.

    Subclass it and override :meth:`query` (and, for clients that prepare
    statements before binding them, :meth:`describe`); every other method
    has a default that does what a small server needs.  Methods run on the
    server's event loop; a slow one should ``await`` (``asyncio.to_thread``
    for blocking work), and is cancelled when the client cancels its
    statement.  ``self.session`` is the :class:`Session` it serves.

    The layers, from the least code to full control:

    * :meth:`query` gets each statement the session does not answer itself,
      with its parameters as Python values, and returns a :class:`Result`,
      a command tag, ``None``, :class:`CopyIn` or :class:`CopyOut`;
    * :meth:`execute` gets every statement; by default it answers the
      built-in ones (transactions, SET/SHOW/RESET, DISCARD, DEALLOCATE,
      LISTEN/NOTIFY, DECLARE/FETCH/MOVE/CLOSE) and passes the rest to
      :meth:`query`;
    * :meth:`message` sees every client message after the startup, before
      the session acts on it, and may answer it itself with
      ``self.session.send(...)``.
    """

    #: True: :meth:`begin` and :meth:`commit` (or :meth:`rollback`, after an
    #: error) also mark PostgreSQL's implicit transaction blocks, so that
    #: the statements of one Query string, or of an extended-query batch up
    #: to its Sync (a pipeline), succeed or fail together.  A lone
    #: statement of a Query runs outside any block.  ``BEGIN`` inside an
    #: implicit block makes it the explicit one (no second :meth:`begin`).
    #: False (the default): the hooks hear of explicit blocks only.
    implicit_transactions: bool = False
    #: True: :meth:`describe` runs at Parse, as PostgreSQL analyses a
    #: statement there, so a statement it refuses fails at Parse (some
    #: drivers, pg8000 among them, expect errors there).  False (the
    #: default): at the first Describe or Bind that needs it.
    describe_at_parse: bool = False
    #: True: SET takes any client_encoding, DateStyle and IntervalStyle, for
    #: a handler that writes values in them itself.  False (the default):
    #: only what the value codecs write (UTF8, ISO, postgres); another value
    #: fails with 22023, as the client would misread the values.
    any_settings: bool = False

    def __init__(self, session: Session) -> None:
        self.session = session

    async def startup(self) -> None:
        """Called once the client is authenticated, before ReadyForQuery.

        Set parameters with ``self.session.set_parameter`` here; raising
        :class:`SQLError` refuses the session (it is sent as FATAL).
        """

    async def query(self, sql: str, params: Sequence[object]) -> Outcome:
        """Run one statement; ``params`` are the values of ``$1``, ``$2``, ...

        Raise :class:`SQLError` for a statement that fails.  The default
        refuses every statement (0A000).
        """
        raise SQLError(SQLState.FEATURE_NOT_SUPPORTED, f"statement not supported: {sql[:60]}")

    async def describe(self, sql: str, param_types: Sequence[int]) -> Description | None:
        """The parameter types and result columns of ``sql``, without running it.

        The extended query protocol asks for them (Describe); asyncpg and
        pg8000 describe every statement before they bind it.  ``param_types``
        are the types the client gave (0 where it gave none).  Return None
        when unknown: then a portal is described by running its statement
        (its columns come from the result); a statement is described by
        running it with every parameter NULL if it is a SELECT, VALUES or
        TABLE (override this where running one has effects), else as
        returning no rows.  Built-in statements describe themselves.
        """
        return None

    async def execute(self, statement: Statement) -> Outcome:
        """Run any statement: the built-in ones here, the others by :meth:`query`."""
        outcome = await run_builtin(self, statement)
        if outcome is not NOT_BUILTIN:
            return outcome
        return await self.query(statement.sql, statement.params)

    async def begin(self) -> None:
        """A transaction block starts (BEGIN, START TRANSACTION)."""

    async def commit(self) -> None:
        """The transaction block commits (COMMIT, END)."""

    async def rollback(self) -> None:
        """The transaction block is rolled back (ROLLBACK, ABORT, or COMMIT
        of a failed transaction)."""

    async def message(self, msg: FrontendMessage) -> bool:
        """See a client message first; return True if it was handled here
        (the answers then are this method's to send).  Default: False."""
        return False

    async def close(self) -> None:
        """The session has ended (whatever the reason); release resources."""
