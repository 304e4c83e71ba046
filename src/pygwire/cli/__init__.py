"""The ``pygwire`` command: I/O layers built on the public API.

``pygwire proxy`` (:mod:`.proxy`) relays, validates, traces and records
PostgreSQL connections; ``pygwire decode`` (:mod:`.decode`) prints a
recording or a libpq trace as a trace; :mod:`.html` draws sequence
diagrams.  The library itself never imports this package.

Every error a user can cause (a port in use, an unreadable certificate, a
bad users file) is one line on standard error, naming the cause, and exit
status 1; usage errors exit with 2, as argparse does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ..exceptions import PygwireError
from .decode import DecodeOptions, decode
from .proxy import ProxyOptions, ProxyServer, load_users, os_reason

__all__ = ["main"]


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pygwire", description="PostgreSQL wire protocol tools built on pygwire."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "proxy",
        help="relay, validate, trace and record PostgreSQL connections",
        description="Relay PostgreSQL connections, validating every message; forwards "
        "the original bytes.",
    )
    p.add_argument("--listen", type=_address, default=("127.0.0.1", 6432), metavar="HOST:PORT")
    p.add_argument("--upstream", type=_address, required=True, metavar="HOST:PORT")
    p.add_argument(
        "--trace",
        metavar="FILE|DIR/|-",
        help="libpq-format trace: one file per connection in a directory (libpq's exact "
        "format), or all connections in one FILE or on standard output (-), each line "
        "starting with the connection's number and a tab",
    )
    p.add_argument("--no-timestamps", action="store_true", help="trace without timestamps")
    p.add_argument("--regress", action="store_true", help="trace in libpq's regress mode")
    p.add_argument(
        "--show-passwords", action="store_true", help="trace passwords and SASL data as sent"
    )
    p.add_argument("--html", type=Path, metavar="FILE", help="write sequence diagrams at exit")
    p.add_argument("--record", type=Path, metavar="DIR", help="record each connection's bytes")
    p.add_argument("--strict", action="store_true", help="drop a client on a protocol violation")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="terminate TLS from clients")
    p.add_argument("--tls-key", type=Path, metavar="FILE")
    p.add_argument(
        "--upstream-tls",
        choices=["disable", "require", "verify-ca", "verify-full"],
        default="disable",
        help="TLS to the server, as libpq's sslmode",
    )
    p.add_argument("--upstream-ca", type=Path, metavar="FILE", help="root certificate")
    p.add_argument(
        "--client-auth",
        choices=["auto", "trust", "password", "md5", "scram-sha-256"],
        help="authentication-proxy mode: authenticate clients here (auto, the default "
        "with --users: MD5 for users with an md5 secret, else SCRAM-SHA-256)",
    )
    p.add_argument(
        "--users",
        type=Path,
        metavar="FILE",
        help='users file: lines of "name" "secret" (PostgreSQL verifiers or passwords)',
    )
    p.add_argument(
        "--upstream-user",
        metavar="NAME",
        help="log in upstream as this user (password from PYGWIRE_UPSTREAM_PASSWORD)",
    )
    p.add_argument(
        "--upstream-channel-binding",
        choices=["disable", "prefer", "require"],
        default="prefer",
    )
    p.add_argument("--max-connections", type=int, default=1000, metavar="N")
    p.add_argument("-q", "--quiet", action="store_true", help="log only problems")
    p.set_defaults(run=_run_proxy)

    d = sub.add_parser(
        "decode",
        help="print a recording or a libpq trace as a trace",
        description="Print a recording (pygwire proxy --record) or a libpq trace file "
        "as a libpq-format trace.",
    )
    d.add_argument("file", type=Path)
    d.add_argument("--no-timestamps", action="store_true")
    d.add_argument("--regress", action="store_true")
    d.add_argument("--show-passwords", action="store_true")
    d.add_argument("--html", type=Path, metavar="FILE", help="also draw sequence diagrams")
    d.set_defaults(run=_run_decode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pygwire`` command; the exit status."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


def _fail(command: str, text: str) -> int:
    print(f"pygwire {command}: {text}", file=sys.stderr)
    return 1


def _run_decode(args: argparse.Namespace) -> int:
    options = DecodeOptions(
        timestamps=not args.no_timestamps,
        regress=args.regress,
        show_passwords=args.show_passwords,
        html=args.html,
    )
    try:
        problems = decode(args.file, sys.stdout, options)
    except OSError as exc:
        return _fail("decode", f"cannot read {args.file}: {os_reason(exc)}")
    except ValueError as exc:
        return _fail("decode", f"{args.file}: {exc}")
    for problem in problems:
        print(f"pygwire decode: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _proxy_options(args: argparse.Namespace) -> ProxyOptions:
    users: dict[str, str] = {}
    if args.users is not None:
        try:
            users = load_users(args.users)
        except OSError as exc:
            raise _Usage(f"cannot read --users {args.users}: {os_reason(exc)}") from None
        except ValueError as exc:
            raise _Usage(f"bad --users file: {exc}") from None
        if args.client_auth is None:
            args.client_auth = "auto"
    if args.client_auth not in (None, "trust") and not users:
        raise _Usage(f"--client-auth {args.client_auth} needs --users FILE")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise _Usage("--tls-cert and --tls-key go together")
    return ProxyOptions(
        listen_host=args.listen[0],
        listen_port=args.listen[1],
        upstream_host=args.upstream[0],
        upstream_port=args.upstream[1],
        strict=args.strict,
        trace=args.trace,
        trace_timestamps=not args.no_timestamps,
        trace_regress=args.regress,
        show_passwords=args.show_passwords,
        html=args.html,
        record=args.record,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        upstream_tls=args.upstream_tls,
        upstream_ca=args.upstream_ca,
        client_auth=args.client_auth,
        users=users,
        upstream_user=args.upstream_user,
        upstream_password=os.environ.get("PYGWIRE_UPSTREAM_PASSWORD"),
        upstream_channel_binding=args.upstream_channel_binding,
        max_connections=args.max_connections,
    )


class _Usage(Exception):
    pass


def _run_proxy(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if args.quiet else logging.INFO,
        format="pygwire proxy: %(message)s",
    )
    try:
        options = _proxy_options(args)
        server = ProxyServer(options)
    except _Usage as exc:
        return _fail("proxy", str(exc))
    except (PygwireError, OSError) as exc:
        return _fail("proxy", str(exc))
    try:
        return asyncio.run(_serve(server))
    except KeyboardInterrupt:
        return 130


async def _serve(server: ProxyServer) -> int:
    opts = server.options
    try:
        await server.start()
    except OSError as exc:
        return _fail(
            "proxy",
            f"cannot listen on {opts.listen_host}:{opts.listen_port}: {os_reason(exc)}",
        )
    # Said even with --quiet: the port is news when the command chose it.
    print(
        f"pygwire proxy: listening on {opts.listen_host}:{server.port}, "
        f"upstream {opts.upstream_host}:{opts.upstream_port}",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    return 0
