"""The seams between pygwire's modules, and its public surface.

* No module imports another module's private names, nor reaches into one
  through an imported module (``codec._thing``): modules talk through
  their public interfaces (a private *module*, such as the hot-path
  ``_hotpath``, is fine; its names are its interface).
* Every exception pygwire defines derives from PygwireError.
* No private type appears in a public signature.
* ``type: ignore`` stays rare in src, and each one says why.
* Observers see every message, in both directions, with its wire size.
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

import pygwire
from pygwire import (
    BackendConnection,
    BackendMessageDecoder,
    ConnectionPhase,
    FrontendConnection,
    MessageDirection,
    ProtocolError,
    ProxyConnection,
    PygwireError,
)
from pygwire import messages as m

SRC = Path(pygwire.__file__).parent
MODULES = sorted(SRC.rglob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    current = _module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    imported_modules: set[str] = set()
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(current, node, path.name == "__init__.py")
            if not source.startswith("pygwire"):
                continue
            for alias in node.names:
                target = SRC.parent / f"{source}.{alias.name}".replace(".", "/")
                # A private module is a module, not a name inside one.
                is_module = target.with_suffix(".py").exists() or target.is_dir()
                if alias.name.startswith("_") and source != current and not is_module:
                    problems.append(f"from {source} import {alias.name}")
                imported_modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            problems.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    assert problems == []


def _public_names() -> list[tuple[str, object]]:
    found = []
    for module_name in (
        "pygwire",
        "pygwire.messages",
        "pygwire.codec",
        "pygwire.connection",
        "pygwire.state_machine",
        "pygwire.exceptions",
        "pygwire.constants",
        "pygwire.auth",
        "pygwire.trace",
        "pygwire.types",
        "pygwire.sql",
    ):
        module = __import__(module_name, fromlist=["__all__"])
        found += [(f"{module_name}.{n}", getattr(module, n)) for n in module.__all__]
    return found


def test_every_exception_derives_from_pygwire_error() -> None:
    exceptions = [
        (name, obj)
        for name, obj in _public_names()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    assert exceptions
    for name, exc in exceptions:
        assert issubclass(exc, PygwireError), name


def test_no_private_type_in_a_public_signature() -> None:
    problems = []
    for name, obj in _public_names():
        targets = [obj]
        if inspect.isclass(obj):
            targets = [
                member
                for attr, member in vars(obj).items()
                if not attr.startswith("_")
                and (inspect.isfunction(member) or isinstance(member, property))
            ]
            targets = [t.fget if isinstance(t, property) else t for t in targets]
        for target in targets:
            if not callable(target):
                continue
            try:
                hints = typing.get_type_hints(target)
            except (NameError, TypeError):
                continue
            for hint in hints.values():
                for part in _parts(hint):
                    if getattr(part, "__name__", "x").startswith("_") and part is not type(None):
                        problems.append(f"{name}: {part!r}")
    assert problems == []


def _parts(hint: object) -> list[object]:
    out = [hint]
    for arg in typing.get_args(hint):
        out += _parts(arg)
    origin = typing.get_origin(hint)
    return [*out, origin] if origin is not None else out


def test_type_ignores_are_few_and_say_why() -> None:
    lines = [
        (path, line)
        for path in MODULES
        for line in path.read_text().splitlines()
        if "type: ignore" in line
    ]
    assert len(lines) <= 5, lines
    for path, line in lines:
        assert line.split("type: ignore", 1)[1].count("#") >= 1, (path, line)


# -- observers ---------------------------------------------------------------------------

STARTUP = m.StartupMessage(params={"user": "u"})
SERVER = [
    m.AuthenticationOk(),
    m.ParameterStatus(name="server_version", value="18.6"),
    m.BackendKeyData(process_id=1, secret_key=b"\0\0\0\1"),
    m.ReadyForQuery(),
]
QUERY = m.Query(query_string="select 1")
RESULT = [
    m.RowDescription(fields=[m.FieldDescription(name="x", type_oid=23)]),
    m.DataRow(columns=[b"1"]),
    m.CommandComplete(tag="SELECT 1"),
    m.ReadyForQuery(),
]


def test_a_connection_tells_observers_every_message_with_its_size() -> None:
    F, B = MessageDirection.FRONTEND, MessageDirection.BACKEND
    seen: list[tuple[MessageDirection, str, int]] = []
    client = FrontendConnection()
    client.observe(lambda sender, msg, size: seen.append((sender, type(msg).__name__, size)))
    client.send(STARTUP)
    list(client.receive(b"".join(msg.to_wire() for msg in SERVER)))
    client.send(QUERY)
    list(client.receive(b"".join(msg.to_wire() for msg in RESULT)))  # rows included
    expected = [(F, "StartupMessage", len(STARTUP.to_wire()))]
    expected += [(B, type(msg).__name__, len(msg.to_wire())) for msg in SERVER]
    expected += [(F, "Query", len(QUERY.to_wire()))]
    expected += [(B, type(msg).__name__, len(msg.to_wire())) for msg in RESULT]
    assert seen == expected
    assert client.phase is ConnectionPhase.READY


def test_a_server_side_connection_tells_observers_too() -> None:
    seen: list[tuple[MessageDirection, str]] = []
    server = BackendConnection()
    server.observe(lambda sender, msg, size: seen.append((sender, type(msg).__name__)))
    list(server.receive(STARTUP.to_wire()))
    for msg in SERVER:
        server.send(msg)
    assert [name for _, name in seen] == ["StartupMessage", *(type(x).__name__ for x in SERVER)]
    assert seen[0][0] is MessageDirection.FRONTEND
    assert {sender for sender, _ in seen[1:]} == {MessageDirection.BACKEND}


def test_a_proxy_tells_observers_both_directions_in_order() -> None:
    seen: list[tuple[MessageDirection, str, int]] = []
    proxy = ProxyConnection()
    proxy.observe(lambda sender, msg, size: seen.append((sender, type(msg).__name__, size)))
    out = proxy.forward_from_client(STARTUP.to_wire())
    out += proxy.forward_from_server(b"".join(msg.to_wire() for msg in SERVER))
    out += proxy.forward_from_client(QUERY.to_wire())
    out += proxy.forward_from_server(b"".join(msg.to_wire() for msg in RESULT))
    messages = [STARTUP, *SERVER, QUERY, *RESULT]
    assert [name for _, name, _ in seen] == [type(msg).__name__ for msg in messages]
    assert [size for _, _, size in seen] == [len(msg.to_wire()) for msg in messages]
    assert out == b"".join(msg.to_wire() for msg in messages)


WIRE = [STARTUP.to_wire(), *(x.to_wire() for x in SERVER), QUERY.to_wire()]
WIRE += [x.to_wire() for x in RESULT]
_F, _B = MessageDirection.FRONTEND, MessageDirection.BACKEND
SENDERS = [_F, *[_B] * len(SERVER), _F, *[_B] * len(RESULT)]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_a_proxy_hands_wire_observers_each_message_s_own_bytes(step: int) -> None:
    """Fed in pieces of ``step`` bytes (messages split anywhere), the bytes
    handed out are exactly each message's, in order."""
    seen: list[tuple[MessageDirection, bytes]] = []
    proxy = ProxyConnection()
    proxy.observe_wire(lambda sender, msg, wire: seen.append((sender, wire)))
    for sender, data in (
        ("F", WIRE[0]),
        ("B", b"".join(WIRE[1:5])),
        ("F", WIRE[5]),
        ("B", b"".join(WIRE[6:])),
    ):
        forward = proxy.forward_from_client if sender == "F" else proxy.forward_from_server
        for at in range(0, len(data), step):
            forward(data[at : at + step])
    assert [wire for _, wire in seen] == WIRE
    assert [direction for direction, _ in seen] == SENDERS


def test_wire_observers_follow_take_in_the_middle_of_a_chunk() -> None:
    """A reader that takes each message's bytes as it goes (and one that
    hands the rest of the stream elsewhere) still sees the right bytes."""
    seen: list[bytes] = []
    proxy = ProxyConnection()
    proxy.observe_wire(lambda sender, msg, wire: seen.append(wire))
    for _ in proxy.from_client(WIRE[0]):
        assert proxy.take_from_client() == WIRE[0]
    server = b"".join(WIRE[1:5])
    for msg in proxy.from_server(server):
        raw = proxy.take_from_server()
        assert raw == seen[-1]
        if isinstance(msg, m.ParameterStatus):
            break  # the rest is read as the stream goes on
    assert proxy.take_unread_from_server() == b"".join(WIRE[3:5])
    list(proxy.from_server(b"".join(WIRE[3:5])))
    assert seen == WIRE[:5]


def test_feed_and_read_is_feed_then_read_all() -> None:
    """A proxy's one call per chunk gives what the two calls give: the same
    messages, the same bytes kept for later, the same refusals."""
    stream = b"".join(WIRE[1:5])
    for cut in range(len(stream) + 1):
        one, two = BackendMessageDecoder(), BackendMessageDecoder()
        one.phase = two.phase = ConnectionPhase.AUTHENTICATING
        got = one.feed_and_read(stream[:cut]) + one.feed_and_read(stream[cut:])
        two.feed(stream[:cut])
        first = two.read_all()
        two.feed(stream[cut:])
        assert got == first + two.read_all()
        assert one.buffered == two.buffered == 0
    decoder = BackendMessageDecoder()
    with pytest.raises(TypeError):
        decoder.feed_and_read(5)  # type: ignore[arg-type]  # bytes(5) is not a message
    decoder.phase = ConnectionPhase.READY
    assert decoder.feed_and_read(bytearray(WIRE[-1])) == [RESULT[-1]]
    with pytest.raises(ProtocolError):
        decoder.feed_and_read(b"Z\x00\x00\x00\x02")  # a length word below 4
    with pytest.raises(ProtocolError):
        decoder.feed_and_read(b"")  # the error stays
