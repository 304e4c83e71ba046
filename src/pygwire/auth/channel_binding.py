"""tls-server-end-point channel binding data (RFC 5929, section 4).

The binding data is a hash of the server's DER certificate, made with the
hash function of the certificate's signature algorithm, except that MD5
and SHA-1 are replaced by SHA-256.  The standard library's ``ssl`` module
hands out the DER bytes (``getpeercert(binary_form=True)`` on a client,
``ssl.PEM_cert_to_DER_cert`` for a server's own file) but does not parse
them, so the few DER structures needed to find the signature algorithm are
read here.
"""

from __future__ import annotations

import hashlib

from ..exceptions import PygwireError

__all__ = ["CertificateError", "signature_algorithm", "tls_server_end_point"]


class CertificateError(PygwireError, ValueError):
    """The certificate cannot be parsed, or its signature hash is unsupported."""


# Signature algorithm OID (dotted) -> hash for tls-server-end-point.
_SIGNATURE_HASHES = {
    "1.2.840.113549.1.1.4": "sha256",  # md5WithRSAEncryption: MD5 -> SHA-256
    "1.2.840.113549.1.1.5": "sha256",  # sha1WithRSAEncryption: SHA-1 -> SHA-256
    "1.2.840.113549.1.1.11": "sha256",  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": "sha384",  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13": "sha512",  # sha512WithRSAEncryption
    "1.2.840.113549.1.1.14": "sha224",  # sha224WithRSAEncryption
    "1.2.840.10045.4.1": "sha256",  # ecdsa-with-SHA1: SHA-1 -> SHA-256
    "1.2.840.10045.4.3.1": "sha224",  # ecdsa-with-SHA224
    "1.2.840.10045.4.3.2": "sha256",  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": "sha384",  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4": "sha512",  # ecdsa-with-SHA512
    "1.2.840.10040.4.3": "sha256",  # dsa-with-sha1: SHA-1 -> SHA-256
    "2.16.840.1.101.3.4.3.2": "sha256",  # dsa-with-sha256
}


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """Read a DER tag and length at ``pos``: (tag, content start, content end)."""
    if pos + 2 > len(der):
        raise CertificateError("truncated DER")
    tag = der[pos]
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(der):
            raise CertificateError("unsupported DER length")
        length = int.from_bytes(der[pos : pos + n], "big")
        pos += n
    if pos + length > len(der):
        raise CertificateError("truncated DER")
    return tag, pos, pos + length


def _oid(content: bytes) -> str:
    if not content:
        raise CertificateError("empty OID")
    parts = [*divmod(content[0], 40)] if content[0] < 80 else [2, content[0] - 80]
    value = 0
    for b in content[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def signature_algorithm(der: bytes) -> str:
    """The dotted OID of a DER certificate's signatureAlgorithm."""
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    tag, start, _ = _tlv(der, 0)
    if tag != 0x30:
        raise CertificateError("not a DER certificate")
    tag, _, tbs_end = _tlv(der, start)  # tbsCertificate
    tag, alg_start, _ = _tlv(der, tbs_end)  # AlgorithmIdentifier SEQUENCE
    if tag != 0x30:
        raise CertificateError("no signature algorithm")
    tag, oid_start, oid_end = _tlv(der, alg_start)
    if tag != 0x06:
        raise CertificateError("no signature algorithm OID")
    return _oid(der[oid_start:oid_end])


def tls_server_end_point(der_certificate: bytes) -> bytes:
    """Channel binding data for ``der_certificate`` (the server's leaf)."""
    oid = signature_algorithm(der_certificate)
    name = _SIGNATURE_HASHES.get(oid)
    if name is None:
        # RSASSA-PSS, Ed25519 and friends have no single hash to use; like
        # PostgreSQL, refuse rather than guess.
        raise CertificateError(f"no tls-server-end-point hash for signature algorithm {oid}")
    return hashlib.new(name, der_certificate).digest()
