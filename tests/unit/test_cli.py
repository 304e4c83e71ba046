"""The command's offline parts: users files, recordings, decoding, arguments."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from pygwire.cli import main
from pygwire.cli.decode import DecodeOptions, PrefixedLines, decode
from pygwire.cli.proxy import load_users, method_for
from pygwire.cli.recording import MAGIC, Recording, RecordingWriter
from pygwire.constants import MessageDirection
from pygwire.messages import (
    AuthenticationOk,
    CommandComplete,
    Query,
    ReadyForQuery,
    StartupMessage,
)


def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(
        '; comment\n# another\n\n"alice" "SCRAM-SHA-256$4096:c2FsdA==$a:b"\n'
        '  "o""brien"   "pw with ""quotes"""  \n'
    )
    assert load_users(path) == {
        "alice": "SCRAM-SHA-256$4096:c2FsdA==$a:b",
        'o"brien': 'pw with "quotes"',
    }


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("alice secret", "unquoted field at column 1"),
        ('"alice" "secret', "unterminated quoted field"),
        ('"alice"', "expected two quoted fields"),
        ('"a" "b" "c"', "expected two quoted fields"),
    ],
)
def test_users_file_errors_name_the_line(tmp_path: Path, line: str, error: str) -> None:
    path = tmp_path / "users"
    path.write_text(f'"ok" "fine"\n{line}\n')
    with pytest.raises(ValueError, match=f"users:2: {error}"):
        load_users(path)


def test_method_for_each_secret() -> None:
    assert method_for("md5" + "0" * 32) == "md5"
    assert method_for("SCRAM-SHA-256$4096:c2FsdA==$a:b") == "scram-sha-256"
    assert method_for("md5 is not a hash") == "scram-sha-256"  # a plain password
    assert method_for(None) == "scram-sha-256"


def _record(path: Path, chunks: list[tuple[MessageDirection, bytes, float]]) -> None:
    writer = RecordingWriter(path.open("wb"), wall_start=1_700_000_000.0, clock_start=100.0)
    for sender, data, at in chunks:
        writer.add(sender, data, at)
    writer.close()


F, B = MessageDirection.FRONTEND, MessageDirection.BACKEND
SESSION = [
    (F, StartupMessage(params={"user": "u"}).to_wire(), 100.0),
    (B, AuthenticationOk().to_wire() + ReadyForQuery().to_wire()[:2], 100.5),
    (B, ReadyForQuery().to_wire()[2:], 100.6),
    (F, Query("select 1").to_wire(), 101.0),
    (B, CommandComplete(tag="SELECT 1").to_wire() + ReadyForQuery().to_wire(), 101.25),
]


def test_recording_layout(tmp_path: Path) -> None:
    """The bytes as the module's documentation lays them out."""
    path = tmp_path / "r"
    _record(path, SESSION[:1])
    data = path.read_bytes()
    assert data[: len(MAGIC)] == b"PGWIRE-REC 1\n"
    assert struct.unpack_from("!d", data, len(MAGIC)) == (1_700_000_000.0,)
    sender, offset, length = struct.unpack_from("!cdI", data, len(MAGIC) + 8)
    assert (sender, offset, length) == (b"F", 0.0, len(SESSION[0][1]))
    recording = Recording.read(path)
    assert [(c.sender, c.data) for c in recording.chunks] == [(F, SESSION[0][1])]


def test_a_recording_cut_short_reads_to_its_last_whole_chunk(tmp_path: Path) -> None:
    path = tmp_path / "r"
    _record(path, SESSION)
    whole = path.read_bytes()
    cut = Recording.parse(whole[:-3])
    assert len(cut.chunks) == len(SESSION) - 1
    with pytest.raises(ValueError, match="bad magic"):
        Recording.parse(b"PGWIRE-REC 2\n" + whole[len(MAGIC) :])
    bad = bytearray(whole)
    bad[len(MAGIC) + 8] = ord("X")
    with pytest.raises(ValueError, match="sender byte"):
        Recording.parse(bytes(bad))


def test_decode_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "r"
    _record(path, SESSION)
    out = io.StringIO()
    assert decode(path, out, DecodeOptions(timestamps=False)) == []
    assert out.getvalue() == (
        # Int32 length, Int32 version, "user\0u\0", the final NUL: 16.
        'F\t16\tStartupMessage\t 3 0 "user" "u"\n'
        "B\t8\tAuthenticationOk\n"
        "B\t5\tReadyForQuery\t I\n"
        'F\t13\tQuery\t "select 1"\n'
        'B\t13\tCommandComplete\t "SELECT 1"\n'
        "B\t5\tReadyForQuery\t I\n"
    )


def test_decode_stops_at_bytes_that_do_not_frame(tmp_path: Path) -> None:
    path = tmp_path / "r"
    _record(path, [*SESSION[:3], (F, b"Q\xff\xff\xff\xff", 102.0)])
    out = io.StringIO()
    problems = decode(path, out, DecodeOptions(timestamps=False))
    assert len(problems) == 1
    assert "stopped at 2.000000s" in problems[0]
    assert out.getvalue().count("\n") == 3  # what came before is printed


def test_decode_a_trace_with_connection_numbers(tmp_path: Path) -> None:
    text = (
        '1\tF\t13\tQuery\t "select 1"\n2\tF\t13\tQuery\t "select 2"\n1\tB\t5\tReadyForQuery\t I\n'
    )
    path = tmp_path / "t"
    path.write_text(text)
    out = io.StringIO()
    assert decode(path, out, DecodeOptions(timestamps=False)) == []
    # Grouped by connection, each connection's lines in order.
    assert out.getvalue() == (
        '1\tF\t13\tQuery\t "select 1"\n1\tB\t5\tReadyForQuery\t I\n2\tF\t13\tQuery\t "select 2"\n'
    )
    path.write_text("1\tnot a trace line\n")
    problems = decode(path, io.StringIO(), DecodeOptions())
    assert len(problems) == 1
    assert "(connection 1)" in problems[0]


def test_decode_keeps_a_trace_s_own_time_column_or_its_absence(tmp_path: Path) -> None:
    """The lines below are libpq's, with and without PQTRACE_SUPPRESS_TIMESTAMPS."""
    bare = 'F\t13\tQuery\t "select 1"\nB\t5\tReadyForQuery\t I\n'
    stamped = "".join(
        f"2026-12-02 04:31:07.{i:06d}\t{line}\n" for i, line in enumerate(bare.splitlines())
    )
    path = tmp_path / "t"
    for text, options, expected in (
        (bare, DecodeOptions(), bare),  # no time invented
        (stamped, DecodeOptions(), stamped),  # the session's own times
        (stamped, DecodeOptions(timestamps=False), bare),
    ):
        path.write_text(text)
        out = io.StringIO()
        assert decode(path, out, options) == []
        assert out.getvalue() == expected


def test_prefixed_lines() -> None:
    out = io.StringIO()
    sink = PrefixedLines(out, "7\t")
    sink.write("a\nb\n")
    sink.flush()
    assert out.getvalue() == "7\ta\n7\tb\n"


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["proxy", "--upstream", "nowhere"])
    assert info.value.code == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert main(["proxy", "--upstream", "127.0.0.1:1", "--client-auth", "md5"]) == 1
    assert capsys.readouterr().err == "pygwire proxy: --client-auth md5 needs --users FILE\n"
    assert main(["proxy", "--upstream", "127.0.0.1:1", "--tls-cert", "x"]) == 1
    assert capsys.readouterr().err == "pygwire proxy: --tls-cert and --tls-key go together\n"
    assert main(["decode", str(tmp_path / "missing")]) == 1
    assert "cannot read" in capsys.readouterr().err
