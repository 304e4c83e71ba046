"""The sequence-diagram page as a browser sees it: headless Chromium.

A realistic run (TLS, SCRAM, a simple query with rows, an extended-query
pipeline with an error, COPY both ways, a notice, a notification, and a
second connection that the proxy authenticates itself) is rendered by
:mod:`pygwire.cli.html`, opened in Debian's Chromium, screenshotted and
dumped as a DOM: the page must load without a console message, lay out
to the window's size, and hold exactly the arrows recorded.

``PYGWIRE_UPDATE_SCREENSHOT=1`` also copies the screenshot to
``docs/images/session.png`` (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from peers import chromium, png_size
from pygwire.cli.html import ConnectionRecorder, SessionDiagram
from pygwire.constants import TransactionStatus
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    Bind,
    BindComplete,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    ErrorResponse,
    Execute,
    FieldDescription,
    NoticeResponse,
    NotificationResponse,
    ParameterStatus,
    Parse,
    ParseComplete,
    PasswordMessage,
    PGMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    SSLResponse,
    StartupMessage,
    Sync,
    Terminate,
)

ROOT = Path(__file__).resolve().parents[2]
README_IMAGE = ROOT / "docs" / "images" / "session.png"
WIDTH, HEIGHT = 1280, 2000
TIMEOUT = 120  # seconds for one Chromium run; a cold start takes a few


class _Clock:
    """Monotonic-looking times, a little apart, as a proxy would record them."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self, step_ms: float = 0.05) -> float:
        self.now += step_ms / 1000
        return self.now


def _send(
    conn: ConnectionRecorder,
    clock: _Clock,
    src: str,
    dst: str,
    *msgs: PGMessage,
    step: float = 0.05,
) -> None:
    # ``step`` (ms) is the pause before the first message; the rest follow
    # at once, as messages of one network read do.
    for i, msg in enumerate(msgs):
        conn.message(src, dst, msg, len(msg.to_wire()), at=clock(step if i == 0 else 0.01))


def conversation() -> tuple[SessionDiagram, int]:
    """The run drawn in the README, and how many arrows it must show."""
    diagram = SessionDiagram(title="pygwire proxy 127.0.0.1:6432 -> 127.0.0.1:5432")
    clock = _Clock()
    c: str = "client"
    s: str = "server"
    expected = 0

    one = diagram.connection(client="127.0.0.1:50123", server="127.0.0.1:5432")
    _send(one, clock, c, s, SSLRequest())
    _send(one, clock, s, c, SSLResponse.SUPPORTED)
    one.note("TLS established (TLSv1.3, TLS_AES_256_GCM_SHA384)", at=clock())
    expected += 2
    _send(
        one,
        clock,
        c,
        s,
        StartupMessage(params={"user": "alice", "database": "shop", "application_name": "psql"}),
    )
    _send(one, clock, s, c, AuthenticationSASL(mechanisms=["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))
    _send(
        one,
        clock,
        c,
        s,
        SASLInitialResponse(mechanism="SCRAM-SHA-256", data=b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"),
    )
    _send(one, clock, s, c, AuthenticationSASLContinue(data=b"r=rOprNGfw...,s=W22Z,i=4096"))
    _send(one, clock, c, s, SASLResponse(data=b"c=biws,r=rOprNGfw...,p=dHzbZapW"))
    _send(one, clock, s, c, AuthenticationSASLFinal(data=b"v=6rriTRBi23WpRR"), AuthenticationOk())
    expected += 7
    params = [("server_version", "18.1"), ("client_encoding", "UTF8"), ("TimeZone", "UTC")]
    _send(one, clock, s, c, *(ParameterStatus(name=k, value=v) for k, v in params))
    _send(one, clock, s, c, BackendKeyData(process_id=41872, secret_key=b"\x01\x02\x03\x04"))
    _send(one, clock, s, c, ReadyForQuery(status=TransactionStatus.IDLE))
    expected += 5

    # A simple query whose 250 rows are one arrow.
    _send(
        one,
        clock,
        c,
        s,
        Query(query_string="SELECT id, name, email FROM customers WHERE created > now() - '7d'"),
        step=900,
    )
    columns = [FieldDescription(name=n, type_oid=25) for n in ("id", "name", "email")]
    _send(one, clock, s, c, RowDescription(fields=columns), step=1.2)
    for i in range(250):
        _send(one, clock, s, c, DataRow(columns=[str(i).encode(), b"Ann", b"ann@example.com"]))
    _send(one, clock, s, c, CommandComplete(tag="SELECT 250"), ReadyForQuery())
    expected += 1 + 1 + 1 + 2

    # An extended-query pipeline: two Syncs, the second statement fails.
    _send(
        one,
        clock,
        c,
        s,
        Parse(statement="get_order", query="SELECT * FROM orders WHERE id = $1", param_types=[23]),
        Bind(statement="get_order", param_values=[b"42"]),
        Describe(kind="P", name=""),
        Execute(max_rows=0),
        Sync(),
        Parse(query="INSERT INTO orders (id) VALUES ($1)"),
        Bind(param_values=[b"42"]),
        Execute(),
        Sync(),
        step=700,
    )
    _send(one, clock, s, c, ParseComplete(), BindComplete(), step=2)
    _send(one, clock, s, c, RowDescription(fields=columns[:2]), DataRow(columns=[b"42", b"x"]))
    _send(one, clock, s, c, CommandComplete(tag="SELECT 1"), ReadyForQuery(), ParseComplete())
    _send(one, clock, s, c, BindComplete())
    error = {
        "S": "ERROR",
        "V": "ERROR",
        "C": "23505",
        "M": 'duplicate key value violates unique constraint "orders_pkey"',
        "D": "Key (id)=(42) already exists.",
    }
    _send(one, clock, s, c, ErrorResponse(fields=error), ReadyForQuery())
    expected += 9 + 2 + 2 + 3 + 1 + 2

    # A notice before a result.
    _send(one, clock, c, s, Query(query_string="DROP TABLE IF EXISTS staging"), step=1500)
    notice = {"S": "NOTICE", "V": "NOTICE", "C": "00000", "M": 'table "staging" does not exist'}
    _send(one, clock, s, c, NoticeResponse(fields=notice), CommandComplete(tag="DROP TABLE"))
    _send(one, clock, s, c, ReadyForQuery())
    expected += 4

    # COPY in: 120 CopyData messages from the client are one arrow.
    _send(one, clock, c, s, Query(query_string="COPY staging FROM STDIN"), step=400)
    _send(one, clock, s, c, CopyInResponse(overall_format=0, col_formats=[0, 0]))
    for i in range(120):
        _send(one, clock, c, s, CopyData(data=f"{i}\tline {i}\n".encode()))
    _send(one, clock, c, s, CopyDone())
    _send(one, clock, s, c, CommandComplete(tag="COPY 120"), ReadyForQuery())
    expected += 1 + 1 + 1 + 1 + 2

    # COPY out: 30 CopyData messages from the server.
    _send(one, clock, c, s, Query(query_string="COPY (SELECT * FROM staging) TO STDOUT"))
    _send(one, clock, s, c, CopyOutResponse(overall_format=0, col_formats=[0, 0]))
    for i in range(30):
        _send(one, clock, s, c, CopyData(data=f"{i}\tline {i}\n".encode()))
    _send(one, clock, s, c, CopyDone(), CommandComplete(tag="COPY 30"), ReadyForQuery())
    expected += 1 + 1 + 1 + 3

    _send(one, clock, s, c, NotificationResponse(process_id=41900, channel="orders", payload="42"))
    _send(one, clock, c, s, Terminate(), step=300)
    expected += 2
    one.close(at=clock(), reason="client closed")

    # The proxy authenticates the client itself, then logs in upstream.
    two = diagram.connection(client="10.0.0.7:41822", server="127.0.0.1:5432")
    p: str = "proxy"
    _send(two, clock, c, p, StartupMessage(params={"user": "bob", "database": "shop"}), step=50)
    _send(two, clock, p, c, AuthenticationCleartextPassword())
    _send(two, clock, c, p, PasswordMessage(password="hunter2"))
    _send(two, clock, p, s, StartupMessage(params={"user": "bob", "database": "shop"}))
    _send(two, clock, s, p, AuthenticationMD5Password(salt=b"\x9a\x1b\x00\x7f"))
    _send(two, clock, p, s, PasswordMessage(password="md5a3556571e93b0d20722ba62be61e8c2d"))
    _send(
        two,
        clock,
        s,
        p,
        ErrorResponse(
            fields={"S": "FATAL", "C": "28P01", "M": 'password authentication failed for "bob"'}
        ),
    )
    two.note('upstream refused: password authentication failed for "bob"', at=clock(), kind="error")
    _send(
        two,
        clock,
        p,
        c,
        ErrorResponse(fields={"S": "FATAL", "C": "08006", "M": "server login failed"}),
    )
    expected += 8
    two.close(at=clock(), reason="server login failed")
    return diagram, expected


def _run_chromium(tmp_path: Path, page: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        *mode,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def _console_lines(stderr: str) -> list[str]:
    # Chromium logs what a page prints to its console, and uncaught errors,
    # as "...:INFO:CONSOLE:<line>] "<text>", source: <url> (<line>)".
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


class _ArrowCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.arrows: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "arrow" in (found.get("class") or "").split():
            self.arrows.append(found)


def test_the_console_check_sees_a_page_error(tmp_path: Path) -> None:
    # The check below means something only if a broken page fails it.
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>throw new Error('deliberate')</script>")
    result = _run_chromium(tmp_path, page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert any("deliberate" in line for line in _console_lines(result.stderr))


def test_chromium_renders_the_diagram(tmp_path: Path) -> None:
    diagram, expected = conversation()
    page = tmp_path / "session.html"
    diagram.write(page)

    shot = tmp_path / "session.png"
    size = f"--window-size={WIDTH},{HEIGHT}"
    result = _run_chromium(tmp_path, page, f"--screenshot={shot}", size)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    data = shot.read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT)
    assert len(data) > 60_000, "a blank or nearly blank screenshot"
    if os.environ.get("PYGWIRE_UPDATE_SCREENSHOT") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_IMAGE)

    result = _run_chromium(tmp_path, page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    counter = _ArrowCounter()
    counter.feed(result.stdout)
    assert expected == 64  # counted by hand from the sections above
    assert len(counter.arrows) == expected
    runs = sorted(int(a["data-count"] or 0) for a in counter.arrows if a["data-count"] != "1")
    assert runs == [30, 120, 250]
    kinds = {a["data-kind"] for a in counter.arrows}
    assert {"ErrorResponse", "NoticeResponse", "PasswordMessage", "CopyData"} <= kinds
    assert "hunter2" not in result.stdout
