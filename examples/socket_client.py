"""A blocking client in a few lines: pygwire.client.SocketClient.

    python -m examples.socket_client HOST PORT USER [PASSWORD]

connects, authenticates with whatever method the server asks for (SCRAM,
MD5, cleartext), runs one query and prints what came back.  For TLS pass
``tls=ssl.create_default_context(...)`` to :meth:`SocketClient.connect`.
"""

from __future__ import annotations

import sys

from pygwire.client import ServerError, SocketClient
from pygwire.messages import DataRow

__all__ = ["ServerError", "SocketClient", "main"]


def main(argv: list[str]) -> int:
    host, port, user, *rest = argv
    password = rest[0] if rest else None
    try:
        client = SocketClient.connect(host, int(port), user, password=password)
    except (OSError, ServerError) as exc:
        print(f"cannot connect: {exc}", file=sys.stderr)
        return 1
    try:
        for msg in client.query("select current_user, version()"):
            if isinstance(msg, DataRow):
                print([None if v is None else v.decode() for v in msg.columns])
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
