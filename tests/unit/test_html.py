"""pygwire.cli.html: the sequence-diagram page, read back as a browser would.

Pages are parsed with the standard library's HTML parser into a small
tree, and the tests count elements and read their attributes and text:
arrows, collapsed runs of DataRow and CopyData, pipelines, redaction,
escaping of hostile text, caps, directions, and the atomic write.
"""

from __future__ import annotations

import os
import re
import threading
import tracemalloc
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pygwire import BackendMessageDecoder, ConnectionPhase, EncodingError
from pygwire.cli.html import ConnectionRecorder, SessionDiagram, summarize
from pygwire.constants import StartupRequestCode, TransactionStatus
from pygwire.messages import (
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    BackendKeyData,
    Bind,
    BindComplete,
    CancelRequest,
    Close,
    CommandComplete,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    DataRow,
    Describe,
    ErrorResponse,
    Execute,
    FieldDescription,
    Flush,
    GSSEncResponse,
    GSSResponse,
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
)
from strategies import ALL_MESSAGE_CLASSES, any_message

# -- reading a page back -----------------------------------------------------------------

_VOID = frozenset({"meta", "link", "img", "br", "input", "hr", "source", "area", "base", "wbr"})


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def walk(self) -> list[Node]:
        found = [self]
        for child in self.children:
            found += child.walk()
        return found

    def find(self, cls: str) -> list[Node]:
        return [n for n in self.walk() if cls in n.classes]

    def text(self) -> str:
        return "".join(self.texts) + "".join(c.text() for c in self.children)

    def get(self, name: str) -> str:
        value = self.attrs.get(name)
        assert value is not None, (self.tag, name)
        return value


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.declarations: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        # Text goes to a child node so that it keeps its place among elements.
        self.stack[-1].children.append(Node("#text", {}, texts=[data]))

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)


def parse(page: str) -> Node:
    tree = _Tree()
    tree.feed(page)
    tree.close()
    assert [n.tag for n in tree.stack] == ["#document"], "unclosed elements"
    return tree.root


def arrows(page: str | Node) -> list[Node]:
    root = parse(page) if isinstance(page, str) else page
    return root.find("arrow")


# Every tag and attribute the page may contain; anything else came from input.
ALLOWED_TAGS = {
    "#document", "#text", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2",
    "p", "span", "section", "dl", "dt", "dd", "div", "small", "b", "i",
}  # fmt: skip
ALLOWED_ATTRS = {
    "lang", "charset", "http-equiv", "content", "name", "class", "id", "data-conn",
    "data-kind", "data-count", "data-size", "data-src", "data-dst", "data-messages",
    "data-dropped", "data-left-out",
}  # fmt: skip


def assert_only_own_markup(root: Node) -> None:
    for node in root.walk():
        assert node.tag in ALLOWED_TAGS, node.tag
        assert set(node.attrs) <= ALLOWED_ATTRS, (node.tag, node.attrs)
    assert len([n for n in root.walk() if n.tag == "style"]) == 1
    assert len([n for n in root.walk() if n.tag == "title"]) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self, ms: float = 1.0) -> float:
        self.now += ms / 1000
        return self.now


def send(conn: ConnectionRecorder, src: str, dst: str, *msgs: object, at: Clock) -> None:
    for msg in msgs:
        try:
            size = len(msg.to_wire()) if isinstance(msg, PGMessage) else 0
        except EncodingError:  # a message made by hand that the wire could not carry
            size = 0
        conn.message(src, dst, msg, size, at=at())


# -- arrows, labels, directions --------------------------------------------------------


def test_one_arrow_per_message_with_direction_kind_size_and_time() -> None:
    diagram = SessionDiagram(title="t")
    conn = diagram.connection(client="127.0.0.1:50123", server="127.0.0.1:5432")
    query = Query(query_string="select 1")
    conn.message("client", "server", query, len(query.to_wire()), at=10.0)
    conn.message("server", "client", CommandComplete(tag="SELECT 1"), 14, at=10.0015)
    conn.message("client", "proxy", PasswordMessage(password="pw"), 8, at=10.002)
    conn.message("proxy", "server", StartupMessage(params={"user": "u"}), 17, at=10.003)
    conn.message("server", "proxy", AuthenticationOk(), 9, at=10.004)
    conn.message("proxy", "client", ReadyForQuery(), 6, at=10.005)
    found = arrows(diagram.render())
    assert [a.get("data-kind") for a in found] == [
        "Query",
        "CommandComplete",
        "PasswordMessage",
        "StartupMessage",
        "AuthenticationOk",
        "ReadyForQuery",
    ]
    assert [(a.get("data-src"), a.get("data-dst")) for a in found] == [
        ("client", "server"),
        ("server", "client"),
        ("client", "proxy"),
        ("proxy", "server"),
        ("server", "proxy"),
        ("proxy", "client"),
    ]
    # Arrowheads point towards the receiving lane: left to right towards the server.
    assert ["ltr" in a.classes for a in found] == [True, False, True, True, False, False]
    assert ["rtl" in a.classes for a in found] == [False, True, False, False, True, True]
    assert ["from-client" in a.classes for a in found] == [True, False, True, False, False, False]
    assert ["to-client" in a.classes for a in found] == [False, True, False, False, False, True]
    # Forwarded messages span the three lanes and cross the proxy's.
    spans = [[c for c in a.classes if c.startswith("span-")] for a in found]
    assert spans == [["span-cs"], ["span-cs"], ["span-cp"], ["span-ps"], ["span-ps"], ["span-cp"]]
    assert [len(a.find("via")) for a in found] == [1, 1, 0, 0, 0, 0]
    assert ["own" in a.classes for a in found] == [False, False, True, True, True, True]
    assert found[0].get("data-size") == str(len(query.to_wire())) == "14"
    assert all(a.get("data-count") == "1" for a in found)
    times = [a.find("t")[0].text() for a in found]
    assert times == ["+0.000 ms", "+1.500 ms", "+2.000 ms", "+3.000 ms", "+4.000 ms", "+5.000 ms"]
    label = found[0].find("label")[0].text()
    assert label == "Query select 1 14 B"


def test_header_counts_messages_and_bytes_each_way() -> None:
    diagram = SessionDiagram()
    clock = Clock()
    conn = diagram.connection(client="10.1.2.3:999", server="db:5432", started=0.0)
    for _ in range(3):
        conn.message("client", "server", Sync(), 5, at=clock())
    conn.message("client", "proxy", Flush(), 5, at=clock())
    for _ in range(4):
        conn.message("server", "client", DataRow(columns=[b"x"]), 100, at=clock())
    conn.message("proxy", "client", ReadyForQuery(), 6, at=clock(10))
    conn.close(at=clock(), reason="client closed")
    section = parse(diagram.render()).find("conn")[0]
    assert section.get("data-conn") == "1"
    stats = {
        dt.text(): dd.text()
        for pair in section.find("stats")[0].children
        for dt, dd in [pair.children]
    }
    assert stats["client"] == "10.1.2.3:999"
    assert stats["server"] == "db:5432"
    assert stats["to server"] == "4 messages, 20 B"
    assert stats["to client"] == "5 messages, 406 B"
    assert stats["duration"] == "18.000 ms"  # the first Sync at +1 ms, the close at +19 ms
    assert stats["state"] == "closed: client closed"
    assert re.fullmatch(r"19(69|70)-\d\d-\d\d \d\d:\d\d:\d\d\.000", stats["started"])
    closing = section.find("close")
    assert len(closing) == 1
    assert closing[0].text().endswith("closed: client closed")


def test_connections_are_numbered_in_order_of_creation() -> None:
    diagram = SessionDiagram()
    made = [diagram.connection(client=f"c{i}", server="s") for i in range(3)]
    assert [c.number for c in made] == [1, 2, 3]
    sections = parse(diagram.render()).find("conn")
    assert [s.get("data-conn") for s in sections] == ["1", "2", "3"]
    assert [s.find("head")[0].text() for s in sections] == ["clientc0", "clientc1", "clientc2"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Query(query_string="select 1"), "select 1"),
        (
            Parse(statement="s1", query="select $1", param_types=[23]),
            '"s1": select $1 (1 parameter type)',
        ),
        (Parse(query="select 2"), "unnamed: select 2"),
        (
            Bind(portal="p", statement="s1", param_values=[b"1", None]),
            'portal "p" from statement "s1", 2 parameters',
        ),
        (Execute(portal="p", max_rows=100), 'portal "p", max_rows 100'),
        (Execute(), "portal unnamed, all rows"),
        (Describe(kind="S", name="s1"), 'statement "s1"'),
        (Close(kind="P", name=""), "portal unnamed"),
        (CommandComplete(tag="INSERT 0 5"), "INSERT 0 5"),
        (ReadyForQuery(status=TransactionStatus.IN_TRANSACTION), "T (in transaction)"),
        (ReadyForQuery(status=TransactionStatus.ERROR_TRANSACTION), "E (failed transaction)"),
        (
            ErrorResponse(fields={"S": "ERROR", "C": "42P01", "M": 'relation "x" does not exist'}),
            'ERROR 42P01: relation "x" does not exist',
        ),
        (
            NoticeResponse(fields={"S": "AVIS", "V": "NOTICE", "C": "00000", "M": "m"}),
            "NOTICE 00000: m",
        ),
        (ParameterStatus(name="TimeZone", value="UTC"), "TimeZone=UTC"),
        (
            RowDescription(fields=[FieldDescription(name="a"), FieldDescription(name="b")]),
            "2 columns: a, b",
        ),
        (DataRow(columns=[b"1", None, b"x"]), "3 columns"),
        (AuthenticationSASL(mechanisms=["SCRAM-SHA-256"]), "SCRAM-SHA-256"),
        (AuthenticationSASLContinue(data=b"r=abc,s=salt,i=4096"), "19 B of data"),
        (BackendKeyData(process_id=4242, secret_key=b"\1\2\3\4"), "pid 4242"),
        (CancelRequest(process_id=4242, secret_key=b"\1\2\3\4"), "pid 4242"),
        (
            StartupMessage(
                params={"user": "alice", "database": "db", "options": "-c x=y"},
                protocol_version=StartupRequestCode.V3_2,
            ),
            "user=alice database=db protocol 3.2 +1 parameter",
        ),
        (
            NotificationResponse(process_id=7, channel="jobs", payload="42"),
            "channel jobs: 42 (pid 7)",
        ),
        (CopyData(data=b"x" * 1500), "1.5 kB of data"),
        (CopyInResponse(overall_format=1, col_formats=[1, 1]), "binary, 2 columns"),
        (CopyFail(error_message="aborted"), "aborted"),
        (SSLResponse.SUPPORTED, "S (accepted)"),
        (SSLResponse.NOT_SUPPORTED, "N (refused)"),
        (SSLRequest(), ""),
        (Sync(), ""),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, PGMessage) else None,
)
def test_labels_show_the_key_fields(message: PGMessage, expected: str) -> None:
    assert summarize(message) == expected
    diagram = SessionDiagram()
    send(diagram.connection(client="c", server="s"), "client", "server", message, at=Clock())
    (arrow,) = arrows(diagram.render())
    assert arrow.get("data-kind") == type(message).__name__
    details = arrow.find("detail")
    assert (details[0].text() if details else "") == expected


def test_a_query_label_is_cut_to_about_80_characters_on_one_line() -> None:
    text = "select " + ",\n\t ".join(f"column_{i}" for i in range(100)) + " from t"
    label = summarize(Query(query_string=text))
    assert len(label) == 80
    assert label.startswith("select column_0, column_1, column_2")
    assert label.endswith("\u2026")
    assert "\n" not in label
    assert "\t" not in label


# -- redaction ---------------------------------------------------------------------------


def test_passwords_and_authentication_tokens_are_redacted() -> None:
    secrets = [
        PasswordMessage(password="hunter2-password"),
        PasswordMessage(password=b"bytes-password\xff"),
        SASLInitialResponse(mechanism="SCRAM-SHA-256", data=b"n,,n=,r=client-nonce-secret"),
        SASLResponse(data=b"c=biws,r=nonce,p=client-proof-secret"),
        GSSResponse(data=b"gss-token-secret"),
    ]
    diagram = SessionDiagram()
    send(diagram.connection(client="c", server="s"), "client", "server", *secrets, at=Clock())
    page = diagram.render()
    found = arrows(page)
    assert [a.find("detail")[0].text() for a in found] == ["[redacted]"] * len(secrets)
    for needle in ("hunter2", "bytes-password", "client-nonce", "client-proof", "gss-token"):
        assert needle not in page
    # The sizes stay: they say a password went by without saying which.
    assert [a.get("data-size") for a in found] == [str(len(m.to_wire())) for m in secrets]


# -- hostile text ------------------------------------------------------------------------

HOSTILE = (
    "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    "<style>body{display:none}</style>\"'><!-- &amp; &#60; --></div></section>"
)


def test_nothing_from_a_message_can_add_markup() -> None:
    diagram = SessionDiagram(title=HOSTILE)
    conn = diagram.connection(client=HOSTILE, server=HOSTILE)
    clock = Clock()
    msgs: list[PGMessage] = [
        Query(query_string=HOSTILE),
        Parse(statement=HOSTILE, query=HOSTILE),
        Bind(portal=HOSTILE, statement=HOSTILE),
        Describe(kind="S", name=HOSTILE),
        ErrorResponse(fields={"S": HOSTILE, "C": HOSTILE, "M": HOSTILE}),
        NoticeResponse(fields={"S": "NOTICE", "M": HOSTILE}),
        ParameterStatus(name=HOSTILE, value=HOSTILE),
        RowDescription(fields=[FieldDescription(name=HOSTILE)]),
        NotificationResponse(channel=HOSTILE, payload=HOSTILE),
        CommandComplete(tag=HOSTILE),
        CopyFail(error_message=HOSTILE),
        StartupMessage(params={"user": HOSTILE, "database": HOSTILE}),
    ]
    send(conn, "client", "server", *msgs, at=clock)
    conn.note(HOSTILE, at=clock(), kind="error")
    conn.close(at=clock(), reason=HOSTILE)
    page = diagram.render()
    root = parse(page)
    assert_only_own_markup(root)
    for node in root.walk():
        assert not any(name.startswith("on") for name in node.attrs)
    found = arrows(root)
    assert len(found) == len(msgs)
    # The text is all there, as text: the parser gives back what was sent.
    assert found[0].find("detail")[0].text() == HOSTILE[:79].rstrip() + "\u2026"
    assert root.find("note")[0].find("box")[0].text() == HOSTILE
    title = next(n for n in root.walk() if n.tag == "title")
    assert title.text() == HOSTILE
    assert "</script>" not in page
    assert "<img" not in page


@given(text=st.text(alphabet=st.sampled_from("<>&\"'/=abc \n\x00\u202e"), max_size=60))
def test_any_text_stays_text(text: str) -> None:
    diagram = SessionDiagram(title=text)
    conn = diagram.connection(client=text, server=text)
    send(conn, "client", "server", Query(query_string=text), at=Clock())
    conn.note(text, at=200.0)
    root = parse(diagram.render())
    assert_only_own_markup(root)
    assert len(arrows(root)) == 1


def test_control_and_invisible_characters_are_shown_as_escapes() -> None:
    text = "a\x00b\x1b[31mc\u202ed\u200be\ud800f\x85"
    label = summarize(Query(query_string=text))
    assert label == "a\\x00b\\x1b[31mc\\u202ed\\u200be\\ud800f\\x85"
    diagram = SessionDiagram(title=text)
    conn = diagram.connection(client="c", server="s")
    conn.note(text, at=1.0)
    send(conn, "client", "server", Query(query_string=text), at=Clock())
    page = diagram.render()
    page.encode("utf-8")  # a lone surrogate would make this raise
    assert "\x1b" not in page
    assert "\u202e" not in page


# -- collapsing runs ---------------------------------------------------------------------


def test_a_run_of_data_rows_is_one_arrow_with_its_count_and_size() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    send(conn, "client", "server", Query(query_string="select"), at=clock)
    rows = [DataRow(columns=[b"x" * (i % 50)]) for i in range(1234)]
    sizes = [len(r.to_wire()) for r in rows]
    for row, size in zip(rows, sizes, strict=True):
        conn.message("server", "client", row, size, at=clock(0.01))
    send(conn, "server", "client", CommandComplete(tag="SELECT 1234"), at=clock)
    found = arrows(diagram.render())
    assert [a.get("data-kind") for a in found] == ["Query", "DataRow", "CommandComplete"]
    run = found[1]
    assert run.get("data-count") == "1234"
    assert run.get("data-size") == str(sum(sizes))
    # 1234 rows of 11 bytes (type, length, count, column length) and 0 to 49 of value
    assert sum(sizes) == 1234 * 11 + 24 * sum(range(50)) + sum(range(34)) == 43_535
    assert run.find("label")[0].text().startswith("DataRow x 1234 (44 kB)")
    assert run.find("t")[0].text() == "+0.010 ms"  # where the run started
    assert "over 12.330 ms" in run.find("meta")[0].text()


def test_runs_break_on_direction_kind_and_notes() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    data = CopyData(data=b"1234")  # 9 bytes on the wire
    for _ in range(3):
        send(conn, "client", "server", data, at=clock)
    for _ in range(2):
        send(conn, "server", "client", data, at=clock)
    conn.note("half way", at=clock())
    for _ in range(4):
        send(conn, "server", "client", data, at=clock)
    send(conn, "server", "client", DataRow(columns=[]), DataRow(columns=[]), at=clock)
    send(conn, "server", "proxy", data, data, at=clock)
    send(conn, "client", "server", CopyDone(), at=clock)
    send(conn, "client", "server", data, at=clock)
    found = arrows(diagram.render())
    assert [(a.get("data-kind"), a.get("data-count"), a.get("data-src")) for a in found] == [
        ("CopyData", "3", "client"),
        ("CopyData", "2", "server"),
        ("CopyData", "4", "server"),
        ("DataRow", "2", "server"),
        ("CopyData", "2", "server"),
        ("CopyDone", "1", "client"),
        ("CopyData", "1", "client"),
    ]
    assert [a.get("data-size") for a in found] == ["27", "18", "36", "14", "18", "5", "9"]
    assert found[-1].find("detail")[0].text() == "4 B of data"


def test_recording_a_long_result_keeps_no_message() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    rows = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(rows):
            # A fresh row each time: keeping them would cost ~200 bytes each.
            conn.message("server", "client", DataRow(columns=[b"v" * 64, b"%d" % i]), 80, at=i)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown
    (run,) = arrows(diagram.render())
    assert run.get("data-count") == str(rows)


# -- pipelines ---------------------------------------------------------------------------


def _pipeline_messages() -> list[PGMessage]:
    return [
        Parse(statement="s", query="select $1"),
        Bind(statement="s", param_values=[b"1"]),
        Describe(kind="P"),
        Execute(),
        Sync(),
        Parse(query="select 2"),
        Bind(),
        Execute(),
        Sync(),
    ]


def test_extended_query_messages_up_to_sync_are_grouped() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    send(conn, "client", "server", *_pipeline_messages(), at=clock)
    send(conn, "server", "client", ParseComplete(), BindComplete(), at=clock)
    send(conn, "client", "server", Sync(), at=clock)  # alone: nothing to group
    send(conn, "client", "server", Parse(), Flush(), at=clock)  # no Sync yet
    send(conn, "server", "client", ParseComplete(), at=clock)
    send(conn, "client", "server", Bind(), Execute(), Sync(), at=clock)
    root = parse(diagram.render())
    groups = root.find("pipeline")
    assert [g.get("data-messages") for g in groups] == ["5", "4", "2", "3"]
    assert [[a.get("data-kind") for a in arrows(g)] for g in groups] == [
        ["Parse", "Bind", "Describe", "Execute", "Sync"],
        ["Parse", "Bind", "Execute", "Sync"],
        ["Parse", "Flush"],
        ["Bind", "Execute", "Sync"],
    ]
    assert [g.find("pl-label")[0].text() for g in groups] == [
        "pipeline: 5 messages",
        "pipeline: 4 messages",
        "pipeline: 2 messages",
        "pipeline: 3 messages",
    ]
    assert len(arrows(root)) == 9 + 2 + 1 + 2 + 1 + 3


def test_a_query_or_a_note_ends_a_pipeline() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    send(conn, "client", "server", Parse(), Bind(), Query(query_string="x"), Execute(), at=clock)
    conn.note("between", at=clock())
    send(conn, "client", "server", Sync(), Parse(), at=clock)
    send(conn, "client", "proxy", Bind(), Sync(), at=clock)  # another pair of lanes
    root = parse(diagram.render())
    assert [g.get("data-messages") for g in root.find("pipeline")] == ["2", "2"]
    assert [[a.get("data-dst") for a in arrows(g)] for g in root.find("pipeline")] == [
        ["server", "server"],
        ["proxy", "proxy"],
    ]


# -- highlights --------------------------------------------------------------------------


def test_errors_notices_and_error_notes_are_highlighted() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    send(conn, "server", "client", ErrorResponse(fields={"S": "ERROR", "M": "bad"}), at=clock)
    send(conn, "server", "client", NoticeResponse(fields={"S": "NOTICE", "M": "hm"}), at=clock)
    send(conn, "server", "client", CommandComplete(), at=clock)
    conn.note("TLS established (TLSv1.3)", at=clock())
    conn.note("protocol violation: unexpected DataRow", at=clock(), kind="error")
    root = parse(diagram.render())
    found = arrows(root)
    assert ["error" in a.classes for a in found] == [True, False, False]
    assert ["notice" in a.classes for a in found] == [False, True, False]
    notes = [n for n in root.find("note") if "close" not in n.classes]
    assert [("error" in n.classes, "info" in n.classes) for n in notes] == [
        (False, True),
        (True, False),
    ]
    assert notes[1].text().endswith("protocol violation: unexpected DataRow")


# -- caps --------------------------------------------------------------------------------


def test_arrows_per_connection_are_capped_and_the_rest_counted() -> None:
    diagram = SessionDiagram(max_arrows=10)
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    for i in range(25):
        send(conn, "client", "server", Query(query_string=f"q{i}"), at=clock)
    conn.note("dropped too", at=clock())
    conn.close(at=clock(), reason="done")
    root = parse(diagram.render())
    found = arrows(root)
    assert [a.find("detail")[0].text() for a in found] == [f"q{i}" for i in range(10)]
    (dropped,) = root.find("dropped")
    assert dropped.get("data-dropped") == "15"
    assert dropped.text() == "\u2026 15 more messages and 1 more note not drawn"
    stats = root.find("stats")[0].text()
    assert "25 messages" in stats  # the header counts everything
    assert len(root.find("close")) == 1  # the end is always drawn


def test_a_run_after_the_cap_is_not_joined_to_an_earlier_one() -> None:
    diagram = SessionDiagram(max_arrows=2)
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    send(conn, "client", "server", Query(query_string="q"), at=clock)
    send(conn, "server", "client", DataRow(), DataRow(), at=clock)  # one arrow, the second
    send(conn, "server", "client", CommandComplete(), at=clock)  # dropped
    send(conn, "server", "client", DataRow(), at=clock)  # dropped, not part of the run
    root = parse(diagram.render())
    assert [a.get("data-count") for a in arrows(root)] == ["1", "2"]
    assert root.find("dropped")[0].get("data-dropped") == "2"


def test_arrows_in_the_whole_diagram_are_capped() -> None:
    diagram = SessionDiagram(max_total_arrows=5)
    clock = Clock()
    for _ in range(3):
        conn = diagram.connection(client="c", server="s")
        send(conn, "client", "server", Sync(), Sync(), at=clock)
    root = parse(diagram.render())
    assert [len(arrows(s)) for s in root.find("conn")] == [2, 2, 1]
    assert [d.get("data-dropped") for d in root.find("dropped")] == ["1"]


def test_connections_are_capped_and_the_rest_counted() -> None:
    diagram = SessionDiagram(max_connections=3)
    clock = Clock()
    made = [diagram.connection(client=f"c{i}", server="s") for i in range(5)]
    for conn in made:
        send(conn, "client", "server", Sync(), at=clock)
        conn.note("n", at=clock())
        conn.close(at=clock())
    assert [c.drawn for c in made] == [True, True, True, False, False]
    assert [c.number for c in made] == [1, 2, 3, 4, 5]
    assert diagram.connections_left_out == 2
    root = parse(diagram.render())
    assert [s.get("data-conn") for s in root.find("conn")] == ["1", "2", "3"]
    assert len(arrows(root)) == 3
    (left_out,) = root.find("left-out")
    assert left_out.get("data-left-out") == "2"
    assert "2 more connections not drawn" in left_out.text()
    assert "5 connections" in root.find("summary")[0].text()


# -- robustness --------------------------------------------------------------------------


# The one-byte answers are enums: a member, not a call.
ONE_BYTE_ANSWERS: dict[type, PGMessage] = {
    SSLResponse: SSLResponse.SUPPORTED,
    GSSEncResponse: GSSEncResponse.NOT_SUPPORTED,
}


def test_every_message_class_is_drawn() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    clock = Clock()
    for cls in ALL_MESSAGE_CLASSES:
        message = ONE_BYTE_ANSWERS.get(cls) or cls()
        conn.message("client", "server", message, 10, at=clock())
        conn.note("-", at=clock())  # keeps CopyData and DataRow from joining a run
    found = arrows(diagram.render())
    assert [a.get("data-kind") for a in found] == [c.__name__ for c in ALL_MESSAGE_CLASSES]


@given(messages=st.lists(any_message(), max_size=12), lanes=st.data())
def test_any_messages_render(messages: list[PGMessage], lanes: st.DataObject) -> None:
    pairs: list[tuple[str, str]] = [
        ("client", "server"),
        ("server", "client"),
        ("client", "proxy"),
        ("proxy", "client"),
        ("proxy", "server"),
        ("server", "proxy"),
    ]
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    for i, message in enumerate(messages):
        src, dst = lanes.draw(st.sampled_from(pairs))
        conn.message(src, dst, message, len(message.to_wire()), at=float(i))
    root = parse(diagram.render())
    assert_only_own_markup(root)
    found = arrows(root)
    assert sum(int(a.get("data-count")) for a in found) == len(messages)


def test_odd_messages_never_stop_the_page() -> None:
    decoder = BackendMessageDecoder(phase=ConnectionPhase.READY)
    # A row whose column length runs past its end: split (and refused) on first access.
    decoder.feed(b"D\x00\x00\x00\x0a\x00\x01\x00\x00\x00\x09")
    (bad_row,) = list(decoder)
    huge = "x" * 5_000_000
    odd: list[object] = [
        bad_row,
        Query(query_string=None),  # type: ignore[arg-type]  # made by hand, wrong type
        ParameterStatus(name=b"bytes", value=12),  # type: ignore[arg-type]  # ditto
        ErrorResponse(fields={}),
        RowDescription(fields=[FieldDescription(name=str(i)) for i in range(1600)]),
        Query(query_string=huge),
        NotificationResponse(channel=huge, payload=huge),
        object(),
    ]
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    send(conn, "server", "client", *odd, at=Clock())
    conn.note(huge, at=1.0)
    conn.close(at=float("nan"), reason=huge)
    page = diagram.render()
    assert len(page) < 40_000
    found = arrows(page)
    assert [a.get("data-kind") for a in found] == [type(m).__name__ for m in odd]
    details = [(a.find("detail") or [Node("x", {})])[0].text() for a in found]
    assert details[0] == "malformed row"
    assert details[1] == "None"
    assert details[2] == "b'bytes'=12"
    assert details[4].startswith("1,600 columns: 0, 1, 2")
    assert len(details[5]) == 80


def test_lanes_are_checked() -> None:
    conn = SessionDiagram().connection(client="c", server="s")
    with pytest.raises(ValueError, match="lanes"):
        conn.message("client", "database", Sync(), 5, at=0.0)
    with pytest.raises(ValueError, match="itself"):
        conn.message("proxy", "proxy", Sync(), 5, at=0.0)


def test_recording_from_two_threads_counts_every_row() -> None:
    diagram = SessionDiagram(max_arrows=20_000)  # even strict alternation stays under it
    conn = diagram.connection(client="c", server="s")

    def pump(src: str, dst: str) -> None:
        for i in range(5000):
            conn.message(src, dst, CopyData(data=b"x"), 6, at=float(i))

    threads = [
        threading.Thread(target=pump, args=("client", "server")),
        threading.Thread(target=pump, args=("server", "client")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = arrows(diagram.render())
    assert sum(int(a.get("data-count")) for a in found) == 10_000
    assert sum(int(a.get("data-size")) for a in found) == 60_000


def test_the_page_fetches_nothing_and_runs_nothing() -> None:
    diagram = SessionDiagram()
    send(diagram.connection(client="c", server="s"), "client", "server", Sync(), at=Clock())
    page = diagram.render()
    root = parse(page)
    assert_only_own_markup(root)
    assert not any(n.tag in {"script", "link", "img", "iframe"} for n in root.walk())
    (csp,) = [n for n in root.walk() if n.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp.get("content").startswith("default-src 'none';")
    style = next(n for n in root.walk() if n.tag == "style").text()
    for fetching in ("url(", "@import", "@font-face"):
        assert fetching not in style


# -- writing -----------------------------------------------------------------------------


def test_write_replaces_the_file_atomically(tmp_path: Path) -> None:
    diagram = SessionDiagram(title="first")
    target = tmp_path / "session.html"
    diagram.write(target)
    first = target.read_text(encoding="utf-8")
    assert parse(first).find("page")[0].text().startswith("first")
    assert os.listdir(tmp_path) == ["session.html"]
    assert target.stat().st_mode & 0o077 == 0  # query text: the owner's only

    diagram.title = "second"
    diagram.write(str(target))
    assert "<title>second</title>" in target.read_text(encoding="utf-8")
    assert os.listdir(tmp_path) == ["session.html"]


def test_a_failed_write_leaves_the_old_page_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "session.html"
    target.write_text("old page")

    def refuse(src: str, dst: str) -> None:
        assert Path(src).parent == tmp_path  # the temporary file sits next to the target
        assert Path(src).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        SessionDiagram().write(target)
    assert target.read_text() == "old page"
    assert os.listdir(tmp_path) == ["session.html"]


def test_the_duration_runs_to_the_last_row_of_a_run() -> None:
    diagram = SessionDiagram()
    conn = diagram.connection(client="c", server="s")
    conn.message("client", "server", Query(query_string="q"), 7, at=50.0)
    for i in range(1, 101):
        conn.message("server", "client", DataRow(), 7, at=50.0 + i / 1000)
    stats = parse(diagram.render()).find("stats")[0].text()
    assert "duration100.000 ms" in stats
    assert "to client100 messages, 700 B" in stats
