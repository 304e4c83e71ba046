"""pygwire._aio: how the asyncio layers (the proxy, the server toolkit)
receive bytes."""

from __future__ import annotations

import asyncio

from pygwire._aio import READ_SIZE, TLSProtocol


class _Collect(TLSProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[bytes] = []

    def _received(self, data: bytes) -> None:
        self.got.append(data)

    def _ended(self, exc: Exception | None = None) -> None:
        pass

    def _fail(self, exc: Exception) -> None:
        raise AssertionError(exc)


def test_receives_into_one_buffer_and_hands_out_copies() -> None:
    """asyncio fills the buffer get_buffer returns and reports how much
    arrived; each connection gets its own bytes, unchanged by what the next
    receive writes into the same buffer."""
    a, b = _Collect(), _Collect()
    assert isinstance(a, asyncio.BufferedProtocol)
    for proto, data in ((a, b"Q\0\0\0\x0dselect 1\0"), (b, b"X\0\0\0\x04"), (a, b"x" * READ_SIZE)):
        buf = proto.get_buffer(-1)
        assert len(buf) >= READ_SIZE
        buf[: len(data)] = data
        proto.buffer_updated(len(data))
    assert a.got == [b"Q\0\0\0\x0dselect 1\0", b"x" * READ_SIZE]
    assert b.got == [b"X\0\0\0\x04"]
    assert all(type(chunk) is bytes for chunk in a.got + b.got)


def test_over_a_real_socket() -> None:
    """The event loop drives the protocol: bytes sent arrive whole, in order."""

    async def run() -> list[bytes]:
        loop = asyncio.get_running_loop()
        received = _Collect()
        server = await loop.create_server(lambda: received, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = bytes(range(256)) * 4096  # 1 MiB: several receives
        writer.write(payload)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(200):
            if sum(map(len, received.got)) >= len(payload):
                break
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()
        assert b"".join(received.got) == payload
        return received.got

    assert len(asyncio.run(run())) >= 1
