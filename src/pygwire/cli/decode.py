"""``pygwire decode``: a recording or a libpq trace, printed as a trace.

A recording (``pygwire proxy --record``) is replayed through a lax
:class:`~pygwire.ProxyConnection`, chunk by chunk as the proxy received
them, and every message is written in libpq's trace format, with the time
it was recorded.  A trace file (libpq's ``PQtrace`` output, or ``pygwire
proxy --trace``'s, whose lines start with a connection number) is read
back into messages and written again, so a trace can be checked, have its
timestamps dropped or its passwords redacted, or be drawn.  ``--html``
draws what was decoded as sequence diagrams.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import MessageDirection, ProtocolError, ProxyConnection
from ..messages import PGMessage
from ..trace import TextSink, Tracer, read_trace
from .html import SessionDiagram
from .recording import Recording, is_recording

__all__ = ["DecodeOptions", "PrefixedLines", "decode"]

#: ``pygwire proxy --trace`` writes interleaved connections as "N<TAB>line".
_PREFIXED = re.compile(r"(\d+)\t")


@dataclass
class DecodeOptions:
    """What ``pygwire decode`` was told."""

    timestamps: bool = True
    regress: bool = False
    show_passwords: bool = False
    html: Path | None = None


Emit = Callable[[MessageDirection, PGMessage, "int | None", "datetime | None"], None]


def decode(path: Path, out: TextSink, options: DecodeOptions) -> list[str]:
    """Print ``path`` as a trace to ``out``; the problems met, one line each
    (the rest of the file is still printed where it can be)."""
    diagram = SessionDiagram(title=f"pygwire decode {path.name}") if options.html else None
    tracer = Tracer(
        out,
        timestamps=options.timestamps,
        regress=options.regress,
        redact=not options.show_passwords,
    )
    if is_recording(path):
        problems = _decode_recording(path, tracer, diagram)
    else:
        problems = _decode_trace(path, out, options, diagram)
    if diagram is not None and options.html is not None:
        diagram.write(options.html)
    return problems


def _decode_recording(path: Path, tracer: Tracer, diagram: SessionDiagram | None) -> list[str]:
    recording = Recording.read(path)
    proxy = ProxyConnection(strict=False)
    now = [0.0]
    conn = diagram.connection(client="client", server="server") if diagram else None

    def observe(sender: MessageDirection, msg: PGMessage, size: int) -> None:
        when = recording.start + now[0]
        tracer.trace(sender, msg, size, timestamp=datetime.fromtimestamp(when))
        if conn is not None:
            forward = sender is MessageDirection.FRONTEND
            src, dst = ("client", "server") if forward else ("server", "client")
            conn.message(src=src, dst=dst, message=msg, size=size, at=now[0])

    proxy.observe(observe)
    for chunk in recording.chunks:
        now[0] = chunk.offset
        feed = (
            proxy.forward_from_client
            if chunk.sender is MessageDirection.FRONTEND
            else proxy.forward_from_server
        )
        try:
            feed(chunk.data)
        except ProtocolError as exc:
            return [f"{path}: stopped at {chunk.offset:.6f}s: {exc}"]
    if conn is not None:
        conn.close(at=now[0], reason="end of recording")
    return []


def _decode_trace(
    path: Path, out: TextSink, options: DecodeOptions, diagram: SessionDiagram | None
) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    groups: dict[str, list[str]] = {}
    for line in text.splitlines(keepends=True):
        match = _PREFIXED.match(line)
        key = match.group(1) if match else ""
        groups.setdefault(key, []).append(line[match.end() :] if match else line)
    problems: list[str] = []
    for key, lines in groups.items():
        try:
            entries = read_trace("".join(lines), regress=options.regress or None)
        except ValueError as exc:  # TraceFormatError names the line
            where = f"{path} (connection {key})" if key else str(path)
            problems.append(f"{where}: {exc}")
            continue
        start = entries[0].timestamp if entries else None
        tracer = Tracer(
            out if not key else PrefixedLines(out, f"{key}\t"),
            # A trace without times is printed without them: the time of
            # decoding would pass for the time of the session.
            timestamps=options.timestamps and start is not None,
            regress=options.regress,
            redact=not options.show_passwords,
        )
        conn = None
        if diagram is not None:
            conn = diagram.connection(client=f"connection {key or 1}", server="server")
        for entry in entries:
            tracer.trace(entry.direction, entry.message, entry.size, timestamp=entry.timestamp)
            if conn is not None:
                at = (entry.timestamp - start).total_seconds() if start and entry.timestamp else 0.0
                forward = entry.direction is MessageDirection.FRONTEND
                conn.message(
                    src="client" if forward else "server",
                    dst="server" if forward else "client",
                    message=entry.message,
                    size=entry.size or len(entry.message.to_wire()),
                    at=at,
                )
    return problems


class PrefixedLines:
    """A text sink that starts every line with ``prefix``: how ``pygwire
    proxy --trace FILE`` tells the connections of one file apart."""

    def __init__(self, out: TextSink, prefix: str) -> None:
        self.out = out
        self.prefix = prefix

    def write(self, text: str) -> int:
        """Write ``text`` with ``prefix`` before each of its lines."""
        if text:
            prefix = self.prefix
            # A line break followed by more text starts a line: prefix it.
            body = text[:-1].replace("\n", "\n" + prefix) + text[-1]
            self.out.write(prefix + body)
        return len(text)

    def flush(self) -> None:
        """Flush the underlying sink, if it can be flushed."""
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()
