"""The tracer's shortcut for Bind and DataRow against its walk.

:func:`pygwire.trace._fast_fields` prints the fields of the two messages
a traced session formats afresh most often; the walk (:class:`_Walk` with
the formatters libpq's ``fe-trace.c`` order gives) is the reference, held
to libpq's own traces by the integration tests.  On valid messages, and
on the same bytes damaged (flipped, truncated, lengthened, with wrong
counts), the shortcut must print exactly what the walk prints, or step
aside (``None``) where the walk would not consume the body exactly.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire import messages as m
from pygwire.trace import _fast_fields, _Short, _Style, _t_bind, _t_data_row, _Walk
from strategies import STRATEGIES

FUZZ = settings(
    max_examples=examples(int(os.environ.get("PYGWIRE_FUZZ_EXAMPLES", "300"))),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def walked(wire: bytes, bind: bool) -> str | None:
    """What the walk prints for the body, if it consumes it exactly."""
    w = _Walk(wire, 5)
    try:
        (_t_bind if bind else _t_data_row)(w, _Style(False, True, len(wire) - 1, None))
    except _Short:
        return None
    return "".join(w.out) if w.pos == len(wire) else None


@st.composite
def damaged(draw: st.DrawFn, wire: bytes) -> bytes:
    body = bytearray(wire[5:])
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "grow", "set"]))
        if kind == "flip" and body:
            at = draw(st.integers(0, len(body) - 1))
            body[at] = draw(st.integers(0, 255))
        elif kind == "cut" and body:
            del body[draw(st.integers(0, len(body) - 1)) :]
        elif kind == "grow":
            body += draw(st.binary(min_size=1, max_size=6))
        elif kind == "set" and len(body) >= 2:  # a count or length word out of step
            at = draw(st.integers(0, len(body) - 2))
            body[at : at + 2] = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x7f\xff"]))
    return wire[:1] + (len(body) + 4).to_bytes(4, "big") + bytes(body)


@FUZZ
@given(st.one_of(STRATEGIES[m.Bind], STRATEGIES[m.DataRow]), st.data())
def test_the_shortcut_prints_what_the_walk_prints(msg: m.PGMessage, data: st.DataObject) -> None:
    bind = isinstance(msg, m.Bind)
    wire = msg.to_wire()
    assert _fast_fields(wire, bind) == walked(wire, bind) is not None  # valid: never aside
    bad = data.draw(damaged(wire))
    fast = _fast_fields(bad, bind)
    assert fast is None or fast == walked(bad, bind)
