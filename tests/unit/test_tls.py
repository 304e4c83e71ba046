"""TLSEndpoint: two endpoints moving bytes between them, no socket.

The handshake and records are Python's ``ssl`` (OpenSSL); what is checked
here is the sans-I/O wrapping: bytes already read can start a handshake,
plaintext sent early waits for it, ALPN is enforced when asked, channel
binding data is the hash of the server's certificate, and every failure
is a TLSError.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest
from harness.postgres import make_self_signed_certificate

from pygwire import PygwireError
from pygwire.tls import ALPN_POSTGRESQL, TLSEndpoint, TLSError, client_context, server_context


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_certificate(tmp_path_factory.mktemp("tls"))


def _pump(a: TLSEndpoint, b: TLSEndpoint) -> tuple[bytes, bytes]:
    """Move ciphertext both ways until neither side has any; the plaintext
    each side received."""
    got_a = got_b = b""
    for _ in range(20):
        out_a, out_b = a.outgoing(), b.outgoing()
        if not out_a and not out_b:
            break
        if out_a:
            got_b += b.receive(out_a)
        if out_b:
            got_a += a.receive(out_b)
    return got_a, got_b


def _pair(
    cert: tuple[Path, Path], *, alpn: tuple[str, ...] = (ALPN_POSTGRESQL,), require: bool = False
) -> tuple[TLSEndpoint, TLSEndpoint]:
    server = TLSEndpoint(
        server_context(*cert),
        server_side=True,
        require_alpn=ALPN_POSTGRESQL if require else None,
    )
    client = TLSEndpoint(
        client_context(verify="full", cafile=cert[0], alpn=alpn),
        server_side=False,
        server_hostname="localhost",
    )
    return server, client


def test_handshake_and_data_both_ways(cert: tuple[Path, Path]) -> None:
    server, client = _pair(cert)
    client.send(b"early")  # held until the handshake is done
    client.start()
    assert not client.handshake_done
    got_server, got_client = _pump(server, client)
    assert server.handshake_done
    assert client.handshake_done
    assert got_server == b"early"
    assert got_client == b""
    assert server.alpn_protocol == client.alpn_protocol == ALPN_POSTGRESQL
    assert server.version in ("TLSv1.2", "TLSv1.3")
    server.send(b"S" * 100_000)  # more than one record
    got_server, got_client = _pump(server, client)
    assert got_client == b"S" * 100_000


def test_bytes_already_read_start_the_handshake(cert: tuple[Path, Path]) -> None:
    """A direct-SSL server gets the ClientHello in pieces it already read."""
    server, client = _pair(cert, require=True)
    client.start()
    hello = client.outgoing()
    assert hello[0] == 0x16  # a TLS handshake record
    assert server.receive(hello[:5]) == b""
    assert server.receive(hello[5:]) == b""
    assert server.outgoing()[0] == 0x16  # the ServerHello
    assert not server.handshake_done


def test_channel_binding_is_the_certificate_hash(cert: tuple[Path, Path]) -> None:
    server, client = _pair(cert)
    client.start()
    _pump(server, client)
    der = ssl.PEM_cert_to_DER_cert(cert[0].read_text())
    assert client.peer_certificate() == der
    # The harness signs with SHA-256, so tls-server-end-point is SHA-256.
    assert client.channel_binding() == hashlib.sha256(der).digest()


def test_direct_ssl_requires_alpn(cert: tuple[Path, Path]) -> None:
    server, client = _pair(cert, alpn=(), require=True)
    client.start()
    with pytest.raises(TLSError, match="ALPN 'postgresql'"):
        _pump(server, client)


def test_an_untrusted_certificate_is_a_tls_error(cert: tuple[Path, Path], tmp_path: Path) -> None:
    other, _ = make_self_signed_certificate(tmp_path)
    server = TLSEndpoint(server_context(*cert), server_side=True)
    client = TLSEndpoint(
        client_context(verify="ca", cafile=other), server_side=False, server_hostname="localhost"
    )
    client.start()
    with pytest.raises(TLSError, match="CERTIFICATE_VERIFY_FAILED") as info:
        _pump(server, client)
    assert isinstance(info.value, PygwireError)


def test_a_corrupted_record_is_a_tls_error(cert: tuple[Path, Path]) -> None:
    server, client = _pair(cert)
    client.start()
    _pump(server, client)
    client.send(b"hello")
    record = bytearray(client.outgoing())
    record[-1] ^= 0xFF
    with pytest.raises(TLSError):
        server.receive(bytes(record))


def test_close_and_end_of_stream(cert: tuple[Path, Path]) -> None:
    server, client = _pair(cert)
    client.start()
    _pump(server, client)
    client.close()
    assert server.receive(client.outgoing()) == b""
    assert server.closed
    other_server, other_client = _pair(cert)
    other_client.start()
    _pump(other_server, other_client)
    assert other_server.receive(b"") == b""  # the stream ended without close_notify
    assert other_server.closed


def test_a_stream_that_ends_during_the_handshake(cert: tuple[Path, Path]) -> None:
    server, _ = _pair(cert)
    with pytest.raises(TLSError, match="closed the connection during the TLS handshake"):
        server.receive(b"")


def test_unreadable_files_are_tls_errors(cert: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(TLSError, match="cannot load certificate"):
        server_context(tmp_path / "missing.crt", cert[1])
    with pytest.raises(TLSError, match="cannot load root certificate"):
        client_context(cafile=tmp_path / "missing.crt")
