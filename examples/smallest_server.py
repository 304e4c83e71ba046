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
