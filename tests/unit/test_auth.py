"""pygwire.auth checked against the RFCs and PostgreSQL's behaviour.

Where the expected values come from:

* RFC 7677 section 3: the SCRAM-SHA-256 example exchange, byte for byte;
* RFC 4013 section 3: the SASLprep examples;
* RFC 5929 section 4.1: which hash tls-server-end-point uses (the
  certificate's signature hash, SHA-256 in place of MD5 and SHA-1);
* PostgreSQL's documentation: the MD5 formula
  ``concat('md5', md5(concat(md5(concat(password, username)), salt)))``,
  the ``SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`` secret
  format, SASLprep with a raw-bytes fallback, MD5 users with a SCRAM
  secret switched to SCRAM;
* PostgreSQL's server (auth-scram.c, as PostgreSQL 18 answers): the
  SQLSTATE and message of each refusal, 16-byte mock salts that are stable
  per user name, 4096 iterations.

Keys, proofs and signatures that are not printed in an RFC are computed
here by a small reference implementation written from the formulas of
RFC 5802 section 3 with ``hmac`` and ``hashlib.sha256`` only (Hi() is
spelled out, not taken from ``hashlib.pbkdf2_hmac``).  That reference is
itself checked against the RFC 7677 example first.  Certificates are made
with the ``openssl`` command; their DER bytes are hashed here directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget import examples
from pygwire import AuthenticationError
from pygwire.auth import (
    SCRAM_SHA_256,
    SCRAM_SHA_256_PLUS,
    CertificateError,
    ChannelBinding,
    ClientAuthenticator,
    ScramClient,
    ScramServer,
    ScramVerifier,
    ServerAuthenticator,
    md5_password,
    md5_stored,
    prepare_password,
    saslprep,
    tls_server_end_point,
    verify_cleartext,
    verify_md5,
)
from pygwire.auth.saslprep import SASLprepError
from pygwire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationMessage,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendMessage,
    PasswordMessage,
    SASLInitialResponse,
    SASLResponse,
)

BOTH = [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]

# ---------------------------------------------------------------------------
# RFC 7677 section 3, verbatim.

RFC_PASSWORD = "pencil"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_ITERATIONS = 4096
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"  # the part the server appends
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

# ---------------------------------------------------------------------------
# Reference SCRAM-SHA-256, from RFC 5802 section 3 (independent of pygwire).


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def ref_hi(password: bytes, salt: bytes, iterations: int) -> bytes:
    """Hi(str, salt, i) = U1 XOR U2 XOR ... XOR Ui, U1 = HMAC(str, salt + INT(1))."""
    u = _hmac(password, salt + b"\x00\x00\x00\x01")
    result = u
    for _ in range(iterations - 1):
        u = _hmac(password, u)
        result = _xor(result, u)
    return result


@dataclass(frozen=True)
class RefKeys:
    client_key: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, password: bytes, salt: bytes, iterations: int) -> RefKeys:
        salted = ref_hi(password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        return cls(
            client_key=client_key,
            stored_key=hashlib.sha256(client_key).digest(),
            server_key=_hmac(salted, b"Server Key"),
        )

    def proof(self, auth_message: bytes) -> bytes:
        """ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)."""
        return _xor(self.client_key, _hmac(self.stored_key, auth_message))

    def server_signature(self, auth_message: bytes) -> bytes:
        return _hmac(self.server_key, auth_message)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


RFC_KEYS = RefKeys.derive(RFC_PASSWORD.encode(), RFC_SALT, RFC_ITERATIONS)


def test_reference_implementation_reproduces_rfc7677() -> None:
    """The test's own SCRAM code gives the RFC's proof and server signature."""
    client_final_without_proof = RFC_CLIENT_FINAL.rpartition(b",p=")[0]
    auth_message = b",".join([RFC_CLIENT_FIRST[3:], RFC_SERVER_FIRST, client_final_without_proof])
    proof = RFC_KEYS.proof(auth_message)
    assert client_final_without_proof + b",p=" + b64(proof).encode() == RFC_CLIENT_FINAL
    assert b"v=" + b64(RFC_KEYS.server_signature(auth_message)).encode() == RFC_SERVER_FINAL


# ---------------------------------------------------------------------------
# 1. Known answers: verifier, RFC 7677 exchange, SASLprep, MD5, secret format.


def test_verifier_from_password_matches_rfc_formulas() -> None:
    verifier = ScramVerifier.from_password(
        password=RFC_PASSWORD, salt=RFC_SALT, iterations=RFC_ITERATIONS
    )
    assert verifier.salt == RFC_SALT
    assert verifier.iterations == RFC_ITERATIONS
    assert verifier.stored_key == RFC_KEYS.stored_key
    assert verifier.server_key == RFC_KEYS.server_key
    assert str(verifier) == (
        f"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=="
        f"${b64(RFC_KEYS.stored_key)}:{b64(RFC_KEYS.server_key)}"
    )


@pytest.mark.parametrize("as_text", [False, True], ids=["verifier", "secret-string"])
def test_server_reproduces_rfc7677_exchange(as_text: bool) -> None:
    """Fed the RFC's client messages (user name "user"), the server answers
    with the RFC's server messages, byte for byte."""
    verifier = ScramVerifier.from_password(RFC_PASSWORD, salt=RFC_SALT, iterations=4096)
    server = ScramServer(
        str(verifier) if as_text else verifier, user="user", nonce=RFC_SERVER_NONCE
    )
    assert server.mechanisms == [SCRAM_SHA_256]
    assert server.server_first(SCRAM_SHA_256, RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert server.server_final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL


def test_client_against_rfc7677_server_first() -> None:
    """The client sends PostgreSQL's empty user name, so its AuthMessage (and
    proof) differ from the RFC's; everything else is the RFC's exchange."""
    client = ScramClient(RFC_PASSWORD, [SCRAM_SHA_256], nonce=RFC_CLIENT_NONCE)
    assert client.mechanism == SCRAM_SHA_256
    assert client.client_first() == b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"
    final = client.client_final(RFC_SERVER_FIRST)
    without_proof, _, proof = final.rpartition(b",p=")
    assert without_proof == RFC_CLIENT_FINAL.rpartition(b",p=")[0]
    auth_message = b",".join([b"n=,r=rOprNGfwEbeRWgbNEkqO", RFC_SERVER_FIRST, without_proof])
    assert proof == b64(RFC_KEYS.proof(auth_message)).encode()
    assert not client.done
    client.verify_server_final(b"v=" + b64(RFC_KEYS.server_signature(auth_message)).encode())
    assert client.done


def test_client_and_server_exchange_with_rfc7677_parameters() -> None:
    verifier = ScramVerifier.from_password(RFC_PASSWORD, salt=RFC_SALT, iterations=4096)
    server = ScramServer(verifier, user="user", nonce=RFC_SERVER_NONCE)
    client = ScramClient(RFC_PASSWORD, server.mechanisms, nonce=RFC_CLIENT_NONCE)
    server_first = server.server_first(client.mechanism, client.client_first())
    assert server_first == RFC_SERVER_FIRST  # the user name is not part of it
    client.verify_server_final(server.server_final(client.client_final(server_first)))
    assert client.done


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("I\u00adX", "IX"),  # SOFT HYPHEN mapped to nothing
        ("user", "user"),  # no transformation
        ("USER", "USER"),  # case preserved, will not match #2
        ("\u00aa", "a"),  # output is NFKC, input in ISO 8859-1
        ("\u2168", "IX"),  # output is NFKC, will match #1
    ],
    ids=["soft-hyphen", "user", "USER", "ordinal-a", "roman-nine"],
)
def test_saslprep_rfc4013_examples(given_: str, expected: str) -> None:
    assert saslprep(given_) == expected


@pytest.mark.parametrize(
    "given_",
    ["\u0007", "\u0627\u0031"],  # prohibited character; bidirectional check
    ids=["bell", "bidi"],
)
def test_saslprep_rfc4013_errors(given_: str) -> None:
    with pytest.raises(SASLprepError):
        saslprep(given_)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("pencil", b"pencil"),  # ASCII: used as is
        ("a\x07b", b"a\x07b"),  # ASCII is never SASLprepped, controls or not
        ("I\u00adX", b"IX"),  # valid UTF-8: SASLprep applies
        ("\u2168", b"IX"),
        ("\u00a0x", b" x"),  # non-ASCII space mapped to SPACE
        (b"\xff\xfepw", b"\xff\xfepw"),  # not UTF-8: raw bytes
        ("\ue000pw", b"\xee\x80\x80pw"),  # private use (prohibited): raw bytes
        ("\u00e9\u0007", b"\xc3\xa9\x07"),  # prohibited control: raw bytes
        ("\u0627\u0031", b"\xd8\xa71"),  # bidi violation: raw bytes
    ],
    ids=[
        "ascii",
        "ascii-control",
        "soft-hyphen",
        "roman-nine",
        "nbsp",
        "not-utf8",
        "private-use",
        "control-with-non-ascii",
        "bidi",
    ],
)
def test_prepare_password_postgresql_fallbacks(password: str | bytes, expected: bytes) -> None:
    assert prepare_password(password) == expected


@pytest.mark.parametrize(
    ("password", "prepared"),
    [("I\u00adX", b"IX"), (b"\xff\xfepw", b"\xff\xfepw"), ("\ue000pw", b"\xee\x80\x80pw")],
    ids=["saslprepped", "not-utf8", "prohibited"],
)
def test_verifier_keys_use_prepared_password(password: str | bytes, prepared: bytes) -> None:
    salt = b"0123456789abcdef"
    verifier = ScramVerifier.from_password(password, salt=salt, iterations=16)
    keys = RefKeys.derive(prepared, salt, 16)
    assert (verifier.stored_key, verifier.server_key) == (keys.stored_key, keys.server_key)


def pg_md5(password: bytes, user: bytes, salt: bytes) -> str:
    """concat('md5', md5(concat(md5(concat(password, username)), salt)))."""
    inner = hashlib.md5(password + user).hexdigest().encode("ascii")
    return "md5" + hashlib.md5(inner + salt).hexdigest()


def test_md5_password_matches_postgresql_formula() -> None:
    salt = b"\x01\xfe\x80\x00"
    assert md5_password("alice", "s3cret", salt) == pg_md5(b"s3cret", b"alice", salt)
    assert md5_password("bob", b"\xff\xfe", salt) == pg_md5(b"\xff\xfe", b"bob", salt)
    assert md5_stored("alice", "s3cret") == "md5" + hashlib.md5(b"s3cretalice").hexdigest()


def test_md5_verify_against_plain_and_md5_stored() -> None:
    salt = b"abcd"
    answer = pg_md5(b"s3cret", b"alice", salt)
    stored_md5 = "md5" + hashlib.md5(b"s3cretalice").hexdigest()
    assert verify_md5("s3cret", "alice", salt, answer)
    assert verify_md5(stored_md5, "alice", salt, answer)
    assert verify_md5(stored_md5, "alice", salt, answer.encode())
    assert not verify_md5(stored_md5, "alice", b"abce", answer)  # another salt
    assert not verify_md5(stored_md5, "alice", salt, pg_md5(b"wrong", b"alice", salt))
    scram = str(ScramVerifier.from_password("s3cret", iterations=16))
    assert not verify_md5(scram, "alice", salt, answer)  # a SCRAM secret cannot answer MD5


def test_client_authenticator_answers_md5_challenge() -> None:
    client = ClientAuthenticator("alice", "s3cret", channel_binding="disable")
    answer = client.handle(AuthenticationMD5Password(salt=b"\x00\x01\x02\x03"))
    assert answer == PasswordMessage(password=pg_md5(b"s3cret", b"alice", b"\x00\x01\x02\x03"))


_SECRET_FORMAT = re.compile(
    r"SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)"
)


def test_verifier_string_format_and_round_trip() -> None:
    verifier = ScramVerifier.from_password("s3cret", iterations=4096)
    match = _SECRET_FORMAT.fullmatch(str(verifier))
    assert match is not None
    assert int(match[1]) == 4096
    salt, stored, server = (base64.b64decode(g, validate=True) for g in match.groups()[1:])
    assert len(salt) == 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
    assert (salt, stored, server) == (verifier.salt, verifier.stored_key, verifier.server_key)
    assert ScramVerifier.parse(str(verifier)) == verifier
    assert str(ScramVerifier.parse(str(verifier))) == str(verifier)
    assert ScramVerifier.parse(str(verifier)).check_password("s3cret")
    assert not ScramVerifier.parse(str(verifier)).check_password("s3cres")


_KEY = b64(bytes(range(32)))
_SALT = b64(b"0123456789abcdef")


@pytest.mark.parametrize(
    "text",
    [
        f"SCRAM-SHA-1$4096:{_SALT}${_KEY}:{_KEY}",
        f"scram-sha-256$4096:{_SALT}${_KEY}:{_KEY}",
        f"md5$4096:{_SALT}${_KEY}:{_KEY}",
        f"SCRAM-SHA-256$4096:!!!!${_KEY}:{_KEY}",
        f"SCRAM-SHA-256$4096:{_SALT}$not base64!:{_KEY}",
        f"SCRAM-SHA-256$4096:{_SALT}${_KEY}:{_KEY[:-2]}",
        f"SCRAM-SHA-256$4096:{_SALT}${b64(bytes(31))}:{_KEY}",
        f"SCRAM-SHA-256$4096:{_SALT}${_KEY}:{b64(bytes(33))}",
        f"SCRAM-SHA-256$0:{_SALT}${_KEY}:{_KEY}",
        f"SCRAM-SHA-256$-1:{_SALT}${_KEY}:{_KEY}",
        f"SCRAM-SHA-256$abc:{_SALT}${_KEY}:{_KEY}",
        f"SCRAM-SHA-256$:{_SALT}${_KEY}:{_KEY}",
        f"SCRAM-SHA-256$\uff14\uff10\uff19\uff16:{_SALT}${_KEY}:{_KEY}",  # fullwidth 4096
        f"SCRAM-SHA-256$4096:{_SALT}${_KEY}",
        f"SCRAM-SHA-256$4096${_KEY}:{_KEY}",
        f"SCRAM-SHA-256$4096:{_SALT}${_KEY}:{_KEY}$",
        "",
    ],
    ids=[
        "sha1-mechanism",
        "lowercase-mechanism",
        "md5-mechanism",
        "bad-salt-base64",
        "bad-stored-key-base64",
        "unpadded-server-key",
        "stored-key-31-bytes",
        "server-key-33-bytes",
        "iterations-0",
        "iterations-negative",
        "iterations-abc",
        "iterations-empty",
        "iterations-fullwidth-digits",
        "no-server-key",
        "no-salt",
        "trailing-dollar",
        "empty",
    ],
)
def test_verifier_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not a SCRAM-SHA-256 verifier"):
        ScramVerifier.parse(text)


# ---------------------------------------------------------------------------
# 2. Channel binding (tls-server-end-point) with openssl-made certificates.


@dataclass(frozen=True)
class CertSpec:
    key: str  # which key signs
    digest: str | None  # openssl's -<digest> option (None for Ed25519)
    signature: str  # how `openssl x509 -text` names the signature algorithm
    rfc5929_hash: str | None  # RFC 5929 4.1: MD5/SHA-1 -> SHA-256, else the same


CERT_SPECS = {
    "rsa-sha256": CertSpec("rsa", "sha256", "sha256WithRSAEncryption", "sha256"),
    "rsa-sha384": CertSpec("rsa", "sha384", "sha384WithRSAEncryption", "sha384"),
    "rsa-sha512": CertSpec("rsa", "sha512", "sha512WithRSAEncryption", "sha512"),
    "rsa-sha224": CertSpec("rsa", "sha224", "sha224WithRSAEncryption", "sha224"),
    "rsa-sha1": CertSpec("rsa", "sha1", "sha1WithRSAEncryption", "sha256"),
    "rsa-md5": CertSpec("rsa", "md5", "md5WithRSAEncryption", "sha256"),
    "ecdsa-p256-sha256": CertSpec("p256", "sha256", "ecdsa-with-SHA256", "sha256"),
    "ecdsa-p384-sha384": CertSpec("p384", "sha384", "ecdsa-with-SHA384", "sha384"),
    "ecdsa-p256-sha1": CertSpec("p256", "sha1", "ecdsa-with-SHA1", "sha256"),
    "ed25519": CertSpec("ed25519", None, "ED25519", None),
}
KEY_OPTIONS = {
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "ed25519": ["-algorithm", "ED25519"],
}


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make test certificates")
    return subprocess.run([openssl, *args], capture_output=True, check=False, timeout=60)


class CertFactory:
    """Makes each certificate once per session; keys are shared per type."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: dict[str, Path] = {}
        self._certs: dict[str, bytes] = {}

    def _key(self, kind: str) -> Path:
        if kind not in self._keys:
            path = self.directory / f"{kind}.key"
            result = _openssl("genpkey", *KEY_OPTIONS[kind], "-out", str(path))
            assert result.returncode == 0, result.stderr.decode()
            self._keys[kind] = path
        return self._keys[kind]

    def der(self, name: str) -> bytes:
        if name not in self._certs:
            spec = CERT_SPECS[name]
            out = self.directory / f"{name}.der"
            args = ["req", "-new", "-x509", "-key", str(self._key(spec.key))]
            args += ["-subj", f"/CN={name}", "-days", "2", "-outform", "DER", "-out", str(out)]
            if spec.digest is not None:
                args.append(f"-{spec.digest}")
            result = _openssl(*args)
            if result.returncode != 0 and spec.digest in ("sha1", "md5"):
                # Only the legacy digests may be refused by a hardened
                # OpenSSL configuration; every other certificate must build.
                pytest.skip(f"openssl refuses to sign with {spec.digest}: {result.stderr!r}")
            assert result.returncode == 0, result.stderr.decode()
            text = _openssl("x509", "-inform", "DER", "-in", str(out), "-noout", "-text")
            found = re.search(rb"Signature Algorithm: (\S+)", text.stdout)
            assert found is not None
            assert found[1].decode() == spec.signature
            self._certs[name] = out.read_bytes()
        return self._certs[name]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(tmp_path_factory.mktemp("certs"))


HASHED_CERTS = [name for name, spec in CERT_SPECS.items() if spec.rfc5929_hash]


@pytest.mark.parametrize("name", HASHED_CERTS)
def test_tls_server_end_point_uses_rfc5929_hash(certs: CertFactory, name: str) -> None:
    der = certs.der(name)
    expected = CERT_SPECS[name].rfc5929_hash
    assert expected is not None
    assert tls_server_end_point(der) == hashlib.new(expected, der).digest()


def test_tls_server_end_point_refuses_ed25519(certs: CertFactory) -> None:
    with pytest.raises(CertificateError):
        tls_server_end_point(certs.der("ed25519"))


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x04\x03abc", b"\x30\x82\xff\xff" + bytes(8)])
def test_tls_server_end_point_refuses_non_certificates(der: bytes) -> None:
    with pytest.raises(CertificateError):
        tls_server_end_point(der)


@pytest.mark.parametrize("name", ["rsa-sha256", "rsa-sha384", "ecdsa-p384-sha384", "rsa-sha1"])
def test_scram_plus_exchange_same_certificate(certs: CertFactory, name: str) -> None:
    der = certs.der(name)
    verifier = ScramVerifier.from_password("s3cret", iterations=16)
    server = ScramServer(verifier, user="alice", tls_certificate=der)
    assert server.mechanisms == [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
    client = ScramClient(
        "s3cret",
        server.mechanisms,
        channel_binding="require",
        tls_certificate=der,
        min_iterations=1,
    )
    assert client.mechanism == SCRAM_SHA_256_PLUS
    first = client.client_first()
    assert first.startswith(b"p=tls-server-end-point,,n=,r=")
    final = client.client_final(server.server_first(client.mechanism, first))
    # c= carries the gs2 header and the RFC 5929 hash of the certificate.
    hash_name = CERT_SPECS[name].rfc5929_hash
    assert hash_name is not None
    cbind = b"p=tls-server-end-point,," + hashlib.new(hash_name, der).digest()
    assert final.startswith(b"c=" + b64(cbind).encode() + b",r=")
    client.verify_server_final(server.server_final(final))
    assert client.done


def test_scram_plus_exchange_different_certificate_fails(certs: CertFactory) -> None:
    verifier = ScramVerifier.from_password("s3cret", iterations=16)
    server = ScramServer(verifier, user="alice", tls_certificate=certs.der("rsa-sha256"))
    client = ScramClient(
        "s3cret",
        server.mechanisms,
        channel_binding="require",
        tls_certificate=certs.der("ecdsa-p256-sha256"),  # what a man in the middle shows
        min_iterations=1,
    )
    final = client.client_final(server.server_first(client.mechanism, client.client_first()))
    with pytest.raises(AuthenticationError, match="channel binding check failed") as exc:
        server.server_final(final)
    assert exc.value.sqlstate == "28000"


def run_exchange(client: ClientAuthenticator, server: ServerAuthenticator) -> list[str]:
    """Pass messages both ways until done; return the backend message names."""
    seen: list[str] = []
    pending: list[BackendMessage] = server.start()
    while pending:
        msg = pending.pop(0)
        seen.append(type(msg).__name__)
        assert isinstance(msg, AuthenticationMessage)
        answer = client.handle(msg)
        if answer is not None:
            pending.extend(server.handle(answer))
    assert client.authenticated
    assert server.authenticated
    return seen


SCRAM_FLOW = [
    "AuthenticationSASL",
    "AuthenticationSASLContinue",
    "AuthenticationSASLFinal",
    "AuthenticationOk",
]


@pytest.mark.parametrize("mode", ["disable", "prefer", "require"])
def test_authenticators_scram_over_tls(certs: CertFactory, mode: ChannelBinding) -> None:
    der = certs.der("rsa-sha256")
    stored = str(ScramVerifier.from_password("s3cret", iterations=16))
    server = ServerAuthenticator("scram-sha-256", "alice", stored, tls_certificate=der)
    client = ClientAuthenticator(
        "alice", "s3cret", channel_binding=mode, tls_certificate=der, min_iterations=1
    )
    assert run_exchange(client, server) == SCRAM_FLOW
    assert client.scram is not None
    expected = SCRAM_SHA_256 if mode == "disable" else SCRAM_SHA_256_PLUS
    assert client.scram.mechanism == expected


# ---------------------------------------------------------------------------
# 3a. Hostile servers: the client refuses.

NONCE = "clientNONCEclientNONCE"
SALT_B64 = b64(b"0123456789abcdef")


def new_client() -> ScramClient:
    return ScramClient(
        "s3cret", [SCRAM_SHA_256], nonce=NONCE, min_iterations=1, channel_binding="disable"
    )


def refuse_server_first(message: str) -> None:
    """The client rejects ``message`` as a malformed server-first (08P01)."""
    client = new_client()
    client.client_first()
    with pytest.raises(AuthenticationError) as exc:
        client.client_final(message.encode())
    assert exc.value.sqlstate == "08P01"


def test_client_refuses_nonce_with_another_prefix() -> None:
    refuse_server_first(f"r=X{NONCE[1:]}serverpart,s={SALT_B64},i=4096")


def test_client_refuses_nonce_not_starting_with_ours() -> None:
    refuse_server_first(f"r=serverpart{NONCE},s={SALT_B64},i=4096")


def test_client_refuses_nonce_equal_to_ours() -> None:
    refuse_server_first(f"r={NONCE},s={SALT_B64},i=4096")


def test_client_refuses_truncated_nonce() -> None:
    refuse_server_first(f"r={NONCE[:-1]},s={SALT_B64},i=4096")


@pytest.mark.parametrize(
    "iterations",
    ["0", "-1", "abc", "", "99999999999", "4096x", " 4096", "\u0664\u0660\u0669\u0666"],
)
def test_client_refuses_bad_iteration_count(iterations: str) -> None:
    start = time.perf_counter()
    refuse_server_first(f"r={NONCE}srv,s={SALT_B64},i={iterations}")
    assert time.perf_counter() - start < 1.0


def test_client_refuses_iterations_above_maximum_without_hashing() -> None:
    # The default ceiling is 10,000,000; deriving keys that far takes seconds.
    client = ScramClient("s3cret", [SCRAM_SHA_256], nonce=NONCE)
    start = time.perf_counter()
    with pytest.raises(AuthenticationError, match="above the maximum"):
        client.client_final(f"r={NONCE}srv,s={SALT_B64},i=10000001".encode())
    assert time.perf_counter() - start < 1.0


def test_client_refuses_iterations_below_minimum() -> None:
    client = ScramClient("s3cret", [SCRAM_SHA_256], nonce=NONCE, min_iterations=4096)
    with pytest.raises(AuthenticationError, match="below the minimum"):
        client.client_final(f"r={NONCE}srv,s={SALT_B64},i=4095".encode())


@pytest.mark.parametrize("salt", ["!!!!", "QUJDRA", "QUJDRA=", "QU JD", "QUJD\u00e9"])
def test_client_refuses_bad_salt_base64(salt: str) -> None:
    refuse_server_first(f"r={NONCE}srv,s={salt},i=4096")


def test_client_accepts_short_valid_salt() -> None:
    # Control for the refusals above: "QUJD" (b"ABC") is valid base64.
    assert new_client().client_final(f"r={NONCE}srv,s=QUJD,i=1".encode()).startswith(b"c=")


def test_client_refuses_empty_salt() -> None:
    refuse_server_first(f"r={NONCE}srv,s=,i=4096")


@pytest.mark.parametrize(
    "message",
    [
        f"r={NONCE}srv,s={SALT_B64}",
        f"r={NONCE}srv,i=4096",
        f"s={SALT_B64},i=4096",
        f"s={SALT_B64},r={NONCE}srv,i=4096",
        f"r={NONCE}srv,i=4096,s={SALT_B64}",
        f"r={NONCE}srv,s={SALT_B64},i=4096,",
        "",
    ],
    ids=["no-i", "no-s", "no-r", "s-before-r", "i-before-s", "trailing-comma", "empty"],
)
def test_client_refuses_missing_or_reordered_attributes(message: str) -> None:
    refuse_server_first(message)


def test_client_refuses_mandatory_extension() -> None:
    refuse_server_first(f"m=must-understand,r={NONCE}srv,s={SALT_B64},i=4096")


def test_client_refuses_trailing_extension() -> None:
    refuse_server_first(f"r={NONCE}srv,s={SALT_B64},i=4096,x=ext")


@pytest.mark.parametrize("field", ["salt", "nonce"])
def test_client_refuses_64k_attribute_quickly(field: str) -> None:
    # A valid-looking message with a 64 KiB value and the largest allowed
    # iteration count: deriving keys from it would take seconds.
    big = "A" * 65536
    if field == "salt":
        message = f"r={NONCE}srv,s={big},i=9999999"
    else:
        message = f"r={NONCE}{big},s={SALT_B64},i=9999999"
    start = time.perf_counter()
    refuse_server_first(message)
    assert time.perf_counter() - start < 1.0


def started_client() -> tuple[ScramClient, bytes]:
    """A client past server-first against a real server; and its server-final."""
    verifier = ScramVerifier.from_password("s3cret", iterations=16)
    server = ScramServer(verifier, user="alice")
    client = ScramClient("s3cret", server.mechanisms, min_iterations=1)
    final = client.client_final(server.server_first(client.mechanism, client.client_first()))
    return client, server.server_final(final)


@pytest.mark.parametrize("size", [31, 33, 0])
def test_client_refuses_server_signature_of_wrong_length(size: int) -> None:
    client, genuine = started_client()
    signature = base64.b64decode(genuine[2:])
    forged = (signature * 2)[:size]
    with pytest.raises(AuthenticationError, match="signature is wrong"):
        client.verify_server_final(b"v=" + b64(forged).encode())
    assert not client.done


def test_client_refuses_wrong_server_signature() -> None:
    client, genuine = started_client()
    signature = bytearray(base64.b64decode(genuine[2:]))
    signature[-1] ^= 1
    with pytest.raises(AuthenticationError, match="signature is wrong"):
        client.verify_server_final(b"v=" + b64(bytes(signature)).encode())
    assert not client.done
    client.verify_server_final(genuine)  # control: the genuine one passes
    assert client.done


@pytest.mark.parametrize("value", [b"v=not*base64", b"v=AAA", b"w=AAAA", b"", b"v="])
def test_client_refuses_malformed_server_final(value: bytes) -> None:
    client, _ = started_client()
    with pytest.raises(AuthenticationError) as exc:
        client.verify_server_final(value)
    assert exc.value.sqlstate == "08P01"
    assert not client.done


def test_client_surfaces_server_error_text() -> None:
    client, _ = started_client()
    with pytest.raises(AuthenticationError, match="invalid-proof"):
        client.verify_server_final(b"e=invalid-proof")
    assert not client.done


def test_client_refuses_server_final_before_server_first() -> None:
    client = new_client()
    client.client_first()
    with pytest.raises(AuthenticationError, match="before server-first"):
        client.verify_server_final(b"v=" + b64(bytes(32)).encode())
    assert not client.done


def test_client_refuses_second_server_first() -> None:
    client = new_client()
    message = f"r={NONCE}srv,s={SALT_B64},i=1".encode()
    client.client_final(message)
    with pytest.raises(AuthenticationError, match="twice"):
        client.client_final(message)


# ClientAuthenticator policies.


def require_client(der: bytes | None) -> ClientAuthenticator:
    return ClientAuthenticator(
        "alice", "s3cret", channel_binding="require", tls_certificate=der, min_iterations=1
    )


def test_require_refuses_plain_scram_over_tls(certs: CertFactory) -> None:
    client = require_client(certs.der("rsa-sha256"))
    with pytest.raises(AuthenticationError, match="channel binding is required") as exc:
        client.handle(AuthenticationSASL(mechanisms=[SCRAM_SHA_256]))
    assert exc.value.sqlstate == "28000"


def test_require_refuses_cleartext(certs: CertFactory) -> None:
    client = require_client(certs.der("rsa-sha256"))
    with pytest.raises(AuthenticationError, match="refusing to send password") as exc:
        client.handle(AuthenticationCleartextPassword())
    assert exc.value.sqlstate == "28000"


def test_require_refuses_md5(certs: CertFactory) -> None:
    client = require_client(certs.der("rsa-sha256"))
    with pytest.raises(AuthenticationError, match="refusing to send password") as exc:
        client.handle(AuthenticationMD5Password(salt=b"abcd"))
    assert exc.value.sqlstate == "28000"


def test_require_refuses_ok_without_sasl(certs: CertFactory) -> None:
    client = require_client(certs.der("rsa-sha256"))
    with pytest.raises(AuthenticationError, match="without it") as exc:
        client.handle(AuthenticationOk())
    assert exc.value.sqlstate == "28000"
    assert not client.authenticated


def test_require_refuses_without_tls_certificate() -> None:
    client = require_client(None)
    with pytest.raises(AuthenticationError, match="TLS") as exc:
        client.handle(AuthenticationSASL(mechanisms=BOTH))
    assert exc.value.sqlstate == "28000"


def test_require_with_ed25519_certificate_fails(certs: CertFactory) -> None:
    client = require_client(certs.der("ed25519"))
    with pytest.raises(AuthenticationError, match="cannot bind"):
        client.handle(AuthenticationSASL(mechanisms=BOTH))


@pytest.mark.parametrize("mode", ["disable", "prefer", "require"])
@pytest.mark.parametrize("after", ["SASL", "SASLContinue"])
def test_ok_in_the_middle_of_scram_is_refused(
    certs: CertFactory, mode: ChannelBinding, after: str
) -> None:
    der = certs.der("rsa-sha256")
    server = ScramServer(ScramVerifier.from_password("s3cret", iterations=16), tls_certificate=der)
    client = ClientAuthenticator(
        "alice", "s3cret", channel_binding=mode, tls_certificate=der, min_iterations=1
    )
    first = client.handle(AuthenticationSASL(mechanisms=server.mechanisms))
    assert isinstance(first, SASLInitialResponse)
    if after == "SASLContinue":
        assert first.data is not None
        challenge = server.server_first(first.mechanism, first.data)
        assert isinstance(client.handle(AuthenticationSASLContinue(data=challenge)), SASLResponse)
    with pytest.raises(AuthenticationError, match="before the SCRAM exchange completed") as exc:
        client.handle(AuthenticationOk())
    assert exc.value.sqlstate == "08P01"
    assert not client.authenticated


def test_client_refuses_sasl_final_without_sasl() -> None:
    client = ClientAuthenticator("alice", "s3cret")
    with pytest.raises(AuthenticationError):
        client.handle(AuthenticationSASLFinal(data=b"v=" + b64(bytes(32)).encode()))


def test_client_refuses_restarted_sasl() -> None:
    client = ClientAuthenticator("alice", "s3cret", min_iterations=1)
    client.handle(AuthenticationSASL(mechanisms=[SCRAM_SHA_256]))
    with pytest.raises(AuthenticationError, match="restarted"):
        client.handle(AuthenticationSASL(mechanisms=[SCRAM_SHA_256]))


# ---------------------------------------------------------------------------
# 3b. Hostile clients: the server refuses, with PostgreSQL's SQLSTATE.

VERIFIER = ScramVerifier.from_password("s3cret", salt=b"0123456789abcdef", iterations=16)


def refuse_client_first(
    mechanism: str, message: bytes, *, tls: bytes | None = None
) -> AuthenticationError:
    server = ScramServer(VERIFIER, user="alice", tls_certificate=tls)
    with pytest.raises(AuthenticationError) as exc:
        server.server_first(mechanism, message)
    return exc.value


def test_server_detects_downgrade_y_over_tls(certs: CertFactory) -> None:
    der = certs.der("rsa-sha256")
    # A man in the middle removed -PLUS from the offer; the client, able to
    # bind, says so with "y".
    client = ScramClient("s3cret", [SCRAM_SHA_256], tls_certificate=der, min_iterations=1)
    assert client.client_first().startswith(b"y,,")
    error = refuse_client_first(SCRAM_SHA_256, client.client_first(), tls=der)
    assert error.sqlstate == "28000"
    assert "downgrade" in error.message


def test_server_accepts_y_without_tls() -> None:
    server = ScramServer(VERIFIER, user="alice")
    first = b"y,,n=,r=" + NONCE.encode()  # a client on TLS to a TLS-less server
    server_first = server.server_first(SCRAM_SHA_256, first)
    nonce = server_first.split(b",")[0]
    without_proof = b"c=" + b64(b"y,,").encode() + b"," + nonce
    auth_message = b",".join([first[3:], server_first, without_proof])
    keys = RefKeys.derive(b"s3cret", VERIFIER.salt, VERIFIER.iterations)
    proof = b64(keys.proof(auth_message)).encode()
    answer = server.server_final(without_proof + b",p=" + proof)
    assert answer == b"v=" + b64(keys.server_signature(auth_message)).encode()


def test_server_refuses_binding_with_plain_mechanism(certs: CertFactory) -> None:
    error = refuse_client_first(
        SCRAM_SHA_256, b"p=tls-server-end-point,,n=,r=abc", tls=certs.der("rsa-sha256")
    )
    assert error.sqlstate == "08P01"


def test_server_refuses_plus_mechanism_with_flag_n(certs: CertFactory) -> None:
    error = refuse_client_first(SCRAM_SHA_256_PLUS, b"n,,n=,r=abc", tls=certs.der("rsa-sha256"))
    assert error.sqlstate == "08P01"


def test_server_refuses_plus_mechanism_with_flag_y(certs: CertFactory) -> None:
    error = refuse_client_first(SCRAM_SHA_256_PLUS, b"y,,n=,r=abc", tls=certs.der("rsa-sha256"))
    assert error.sqlstate == "08P01"


def test_server_refuses_plus_mechanism_without_tls() -> None:
    error = refuse_client_first(SCRAM_SHA_256_PLUS, b"p=tls-server-end-point,,n=,r=abc")
    assert error.sqlstate == "08P01"


def test_server_refuses_unknown_mechanism() -> None:
    error = refuse_client_first("SCRAM-SHA-1", b"n,,n=,r=abc")
    assert error.sqlstate == "08P01"


def test_server_refuses_tls_unique(certs: CertFactory) -> None:
    error = refuse_client_first(
        SCRAM_SHA_256_PLUS, b"p=tls-unique,,n=,r=abc", tls=certs.der("rsa-sha256")
    )
    assert error.sqlstate == "08P01"
    assert "tls-unique" in error.message


def test_server_refuses_authzid() -> None:
    # PostgreSQL: "client uses authorization identity, but it is not
    # supported", ERRCODE_FEATURE_NOT_SUPPORTED.
    error = refuse_client_first(SCRAM_SHA_256, b"n,a=someone,n=,r=abc")
    assert error.sqlstate == "0A000"
    assert "authorization identity" in error.message


def test_server_refuses_mandatory_extension() -> None:
    # PostgreSQL: "client requires an unsupported SCRAM extension", 0A000.
    error = refuse_client_first(SCRAM_SHA_256, b"n,,m=ext,n=,r=abc")
    assert error.sqlstate == "0A000"


@pytest.mark.parametrize(
    "message",
    [b"", b"n,,", b"n,,n=", b"n,,r=abc", b"n,,n=,r=", b"x,,n=,r=abc", b"n,,n=,r=a\x01b", b"n"],
    ids=["empty", "header-only", "no-nonce", "no-user", "empty-nonce", "bad-flag", "ctl", "n"],
)
def test_server_refuses_malformed_client_first(message: bytes) -> None:
    assert refuse_client_first(SCRAM_SHA_256, message).sqlstate == "08P01"


def test_server_refuses_missing_initial_response() -> None:
    server = ScramServer(VERIFIER, user="alice")
    with pytest.raises(AuthenticationError) as exc:
        server.server_first(SCRAM_SHA_256, None)
    assert exc.value.sqlstate == "08P01"


def test_server_refuses_oversize_client_first() -> None:
    start = time.perf_counter()
    error = refuse_client_first(SCRAM_SHA_256, b"n,,n=,r=" + b"A" * 65536)
    assert error.sqlstate == "08P01"
    assert time.perf_counter() - start < 1.0


@dataclass
class Exchange:
    """A server past server-first, and what an honest client would send."""

    server: ScramServer
    nonce: bytes
    cbind: bytes  # the gs2 header (+ binding data) the client sends in c=
    auth_prefix: bytes  # client-first-bare "," server-first ","
    keys: RefKeys

    def final(
        self,
        *,
        cbind: bytes | None = None,
        nonce: bytes | None = None,
        proof: bytes | None = None,
    ) -> bytes:
        without_proof = (
            b"c=" + b64(self.cbind if cbind is None else cbind).encode()
            + b",r=" + (self.nonce if nonce is None else nonce)
        )  # fmt: skip
        if proof is None:
            proof = self.keys.proof(self.auth_prefix + without_proof)
        return without_proof + b",p=" + b64(proof).encode()


def begin(
    *,
    verifier: ScramVerifier | str | None = VERIFIER,
    password: bytes = b"s3cret",
    user: str = "alice",
    tls: bytes | None = None,
    client_tls: bytes | None = None,
    mock_secret: bytes = b"",
) -> Exchange:
    server = ScramServer(verifier, user=user, tls_certificate=tls, mock_secret=mock_secret)
    if tls is None:
        mechanism, gs2 = SCRAM_SHA_256, b"n,,"
        cbind = gs2
    else:
        mechanism, gs2 = SCRAM_SHA_256_PLUS, b"p=tls-server-end-point,,"
        bound = client_tls if client_tls is not None else tls
        cbind = gs2 + hashlib.sha256(bound).digest()  # RSA/ECDSA-SHA256 certificates only
    bare = b"n=,r=" + NONCE.encode()
    server_first = server.server_first(mechanism, gs2 + bare)
    attrs = dict(a.split(b"=", 1) for a in server_first.split(b","))
    keys = RefKeys.derive(password, base64.b64decode(attrs[b"s"]), int(attrs[b"i"]))
    return Exchange(server, attrs[b"r"], cbind, bare + b"," + server_first + b",", keys)


def refuse_client_final(exchange: Exchange, message: bytes) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as exc:
        exchange.server.server_final(message)
    return exc.value


def test_honest_client_final_is_accepted() -> None:
    """Control for the refusals below: the reference client succeeds."""
    exchange = begin()
    final = exchange.final()
    without_proof = final.rpartition(b",p=")[0]
    signature = exchange.keys.server_signature(exchange.auth_prefix + without_proof)
    assert exchange.server.server_final(final) == b"v=" + b64(signature).encode()


def test_honest_plus_client_final_is_accepted(certs: CertFactory) -> None:
    exchange = begin(tls=certs.der("ecdsa-p256-sha256"))
    assert exchange.server.server_final(exchange.final()).startswith(b"v=")


def test_server_refuses_binding_to_another_certificate(certs: CertFactory) -> None:
    exchange = begin(tls=certs.der("rsa-sha256"), client_tls=certs.der("ecdsa-p256-sha256"))
    error = refuse_client_final(exchange, exchange.final())
    assert error.sqlstate == "28000"  # PostgreSQL: "SCRAM channel binding check failed"


def test_server_refuses_plus_final_without_binding_data(certs: CertFactory) -> None:
    exchange = begin(tls=certs.der("rsa-sha256"))
    error = refuse_client_final(exchange, exchange.final(cbind=b"p=tls-server-end-point,,"))
    assert error.sqlstate == "28000"


@pytest.mark.parametrize("cbind", [b"y,,", b"p=tls-server-end-point,,", b"n,a=x,", b""])
def test_server_refuses_c_not_repeating_gs2_header(cbind: bytes) -> None:
    exchange = begin()  # client-first said "n,,"
    assert refuse_client_final(exchange, exchange.final(cbind=cbind)).sqlstate == "08P01"


@pytest.mark.parametrize(
    "nonce_of",
    [
        lambda n: n[:-1],
        lambda n: n + b"x",
        lambda n: NONCE.encode(),
        lambda n: n[:-1] + (b"A" if n[-1:] != b"A" else b"B"),
    ],
    ids=["truncated", "extended", "client-part-only", "last-char-changed"],
)
def test_server_refuses_wrong_nonce_in_client_final(
    nonce_of: Callable[[bytes], bytes],
) -> None:
    exchange = begin()
    nonce = nonce_of(exchange.nonce)
    assert refuse_client_final(exchange, exchange.final(nonce=nonce)).sqlstate == "08P01"


@pytest.mark.parametrize("size", [31, 33, 0])
def test_server_refuses_proof_of_wrong_length(size: int) -> None:
    exchange = begin()
    error = refuse_client_final(exchange, exchange.final(proof=bytes(range(size))))
    assert error.sqlstate == "08P01"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda f: f.rpartition(b",p=")[0],
        lambda f: f.rpartition(b",p=")[0] + b",p=",
        lambda f: f.replace(b",p=", b",p=*"),
        lambda f: f + b",x=trailing",
        lambda f: f[f.index(b",r=") + 1 :],
        lambda f: b"",
    ],
    ids=["no-proof", "empty-proof", "proof-not-base64", "after-proof", "no-c", "empty"],
)
def test_server_refuses_malformed_client_final(mangle: Callable[[bytes], bytes]) -> None:
    exchange = begin()
    assert refuse_client_final(exchange, mangle(exchange.final())).sqlstate == "08P01"


def test_server_refuses_client_final_first() -> None:
    server = ScramServer(VERIFIER, user="alice")
    with pytest.raises(AuthenticationError, match="out of order") as exc:
        server.server_final(b"c=biws,r=abc,p=" + b64(bytes(32)).encode())
    assert exc.value.sqlstate == "08P01"


def test_server_refuses_second_client_first() -> None:
    exchange = begin()
    with pytest.raises(AuthenticationError, match="out of order"):
        exchange.server.server_first(SCRAM_SHA_256, b"n,,n=,r=" + NONCE.encode())


def test_server_refuses_replayed_client_final() -> None:
    exchange = begin()
    final = exchange.final()
    exchange.server.server_final(final)
    with pytest.raises(AuthenticationError, match="out of order"):
        exchange.server.server_final(final)


def test_server_does_not_accept_a_retry_after_failure() -> None:
    exchange = begin()
    refuse_client_final(exchange, exchange.final(proof=bytes(32)))
    with pytest.raises(AuthenticationError, match="out of order"):
        exchange.server.server_final(exchange.final())


WRONG_PASSWORD_TEXT = 'password authentication failed for user "alice"'


def test_server_wrong_password() -> None:
    exchange = begin(password=b"s3cres")
    error = refuse_client_final(exchange, exchange.final())
    assert error.sqlstate == "28P01"
    assert error.message == WRONG_PASSWORD_TEXT
    assert str(error) == WRONG_PASSWORD_TEXT


@pytest.mark.parametrize(
    "stored",
    [None, "md5" + "0" * 32, "plain-text-password", "SCRAM-SHA-256$broken"],
    ids=["no-user", "md5-secret", "plain-secret", "unparseable-secret"],
)
def test_server_unknown_user_fails_like_wrong_password(stored: str | None) -> None:
    # Same steps as a real user: the SASL offer, a server-first with a
    # 16-byte salt and 4096 iterations, then the wrong-password failure.
    exchange = begin(verifier=stored, mock_secret=b"cluster secret")
    assert exchange.server.mechanisms == [SCRAM_SHA_256]
    attrs = dict(a.split(b"=", 1) for a in exchange.auth_prefix.split(b",")[2:5])
    assert len(base64.b64decode(attrs[b"s"])) == 16
    assert attrs[b"i"] == b"4096"
    error = refuse_client_final(exchange, exchange.final())
    real = begin(password=b"wrong")
    reference = refuse_client_final(real, real.final())
    assert (error.sqlstate, error.message) == (reference.sqlstate, reference.message)
    assert (error.sqlstate, error.message) == ("28P01", WRONG_PASSWORD_TEXT)


def mock_salt(user: str, secret: bytes) -> bytes:
    server = ScramServer(None, user=user, mock_secret=secret)
    first = server.server_first(SCRAM_SHA_256, b"n,,n=,r=" + NONCE.encode())
    return dict(a.split(b"=", 1) for a in first.split(b","))[b"s"]


def test_unknown_user_salt_is_stable_per_user_name() -> None:
    assert mock_salt("ghost", b"k1") == mock_salt("ghost", b"k1")
    assert mock_salt("ghost", b"k1") != mock_salt("phantom", b"k1")
    assert mock_salt("ghost", b"k1") != mock_salt("ghost", b"k2")


def test_unknown_user_salt_is_stable_with_default_mock_secret() -> None:
    # Without an explicit secret, two attempts must still agree: a salt that
    # changes on every attempt tells an attacker that the user is unknown.
    assert mock_salt("ghost", b"") == mock_salt("ghost", b"")
    assert mock_salt("ghost", b"") != mock_salt("phantom", b"")


def test_unknown_user_through_server_authenticator() -> None:
    real = ServerAuthenticator("scram-sha-256", "alice", str(VERIFIER), mock_secret=b"k")
    ghost = ServerAuthenticator("scram-sha-256", "alice", None, mock_secret=b"k")
    assert real.start() == ghost.start()
    errors = []
    for server in (real, ghost):
        client = ClientAuthenticator("alice", "wrong", min_iterations=1)
        with pytest.raises(AuthenticationError) as exc:
            run_exchange(client, server)
        errors.append((exc.value.sqlstate, exc.value.message))
    assert errors == [("28P01", WRONG_PASSWORD_TEXT)] * 2


# ServerAuthenticator: methods and stored secrets.


def test_md5_method_with_scram_secret_switches_to_sasl() -> None:
    server = ServerAuthenticator("md5", "alice", str(VERIFIER))
    assert server.method == "scram-sha-256"
    assert server.start() == [AuthenticationSASL(mechanisms=[SCRAM_SHA_256])]
    client = ClientAuthenticator("alice", "s3cret", min_iterations=1)
    assert run_exchange(client, ServerAuthenticator("md5", "alice", str(VERIFIER))) == SCRAM_FLOW


@pytest.mark.parametrize(
    "stored",
    ["s3cret", "md5" + hashlib.md5(b"s3cretalice").hexdigest()],
    ids=["plain", "md5"],
)
def test_md5_method_exchange(stored: str) -> None:
    client = ClientAuthenticator("alice", "s3cret")
    flow = run_exchange(client, ServerAuthenticator("md5", "alice", stored))
    assert flow == ["AuthenticationMD5Password", "AuthenticationOk"]
    server = ServerAuthenticator("md5", "alice", stored)
    (challenge,) = server.start()
    assert isinstance(challenge, AuthenticationMD5Password)
    with pytest.raises(AuthenticationError) as exc:
        server.handle(PasswordMessage(password=pg_md5(b"wrong", b"alice", challenge.salt)))
    assert (exc.value.sqlstate, exc.value.message) == ("28P01", WRONG_PASSWORD_TEXT)


CLEARTEXT_SECRETS = {
    "plain": "s3cret",
    "md5": "md5" + hashlib.md5(b"s3cretalice").hexdigest(),
    "scram": str(VERIFIER),
}


@pytest.mark.parametrize("kind", CLEARTEXT_SECRETS)
def test_cleartext_method_accepts_right_password(kind: str) -> None:
    server = ServerAuthenticator("password", "alice", CLEARTEXT_SECRETS[kind])
    assert server.start() == [AuthenticationCleartextPassword()]
    assert server.handle(PasswordMessage(password="s3cret")) == [AuthenticationOk()]
    assert server.authenticated
    assert verify_cleartext(CLEARTEXT_SECRETS[kind], "alice", b"s3cret")


@pytest.mark.parametrize("kind", CLEARTEXT_SECRETS)
@pytest.mark.parametrize("wrong", ["s3cres", "", "S3CRET", "s3cret ", b"\xffs3cret"])
def test_cleartext_method_rejects_wrong_password(kind: str, wrong: str | bytes) -> None:
    server = ServerAuthenticator("password", "alice", CLEARTEXT_SECRETS[kind])
    server.start()
    with pytest.raises(AuthenticationError) as exc:
        server.handle(PasswordMessage(password=wrong))
    assert (exc.value.sqlstate, exc.value.message) == ("28P01", WRONG_PASSWORD_TEXT)
    assert not server.authenticated


def test_cleartext_md5_secret_is_not_a_password() -> None:
    # Sending the stored hash itself must not log in.
    stored = CLEARTEXT_SECRETS["md5"]
    server = ServerAuthenticator("password", "alice", stored)
    with pytest.raises(AuthenticationError):
        server.handle(PasswordMessage(password=stored))


def test_cleartext_unknown_user() -> None:
    server = ServerAuthenticator("password", "alice", None)
    assert server.start() == [AuthenticationCleartextPassword()]
    with pytest.raises(AuthenticationError) as exc:
        server.handle(PasswordMessage(password="anything"))
    assert (exc.value.sqlstate, exc.value.message) == ("28P01", WRONG_PASSWORD_TEXT)


def test_trust_method() -> None:
    server = ServerAuthenticator("trust", "alice", None)
    assert server.start() == [AuthenticationOk()]
    assert server.authenticated
    with pytest.raises(AuthenticationError):
        server.handle(PasswordMessage(password="x"))


@pytest.mark.parametrize(
    "msg",
    [
        SASLResponse(data=b"c=biws,r=x,p=" + b64(bytes(32)).encode()),
        PasswordMessage(password="s3cret"),
    ],
    ids=["sasl-response-first", "password-message"],
)
def test_scram_authenticator_refuses_out_of_order(msg: SASLResponse | PasswordMessage) -> None:
    server = ServerAuthenticator("scram-sha-256", "alice", str(VERIFIER))
    server.start()
    with pytest.raises(AuthenticationError) as exc:
        server.handle(msg)
    assert exc.value.sqlstate == "08P01"
    assert not server.authenticated


def test_scram_authenticator_refuses_handle_after_success() -> None:
    server = ServerAuthenticator("scram-sha-256", "alice", str(VERIFIER))
    run_exchange(ClientAuthenticator("alice", "s3cret", min_iterations=1), server)
    with pytest.raises(AuthenticationError, match="already complete"):
        server.handle(SASLResponse(data=b""))


# ---------------------------------------------------------------------------
# 4. Property: the right password always works, any other never does.


def scram_exchange(stored_password: str, given_password: str, iterations: int) -> None:
    verifier = ScramVerifier.from_password(stored_password, iterations=iterations)
    server = ScramServer(verifier, user="alice")
    client = ScramClient(given_password, server.mechanisms, min_iterations=1)
    final = client.client_final(server.server_first(client.mechanism, client.client_first()))
    client.verify_server_final(server.server_final(final))
    assert client.done


PROPERTY = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# PostgreSQL passwords are UTF-8 C strings: no NUL, no lone surrogate.  (With
# a NUL, "" and "\x00" would be the same HMAC key, which HMAC pads with zeros.)
PASSWORDS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@PROPERTY
@given(password=PASSWORDS, other=PASSWORDS, iterations=st.integers(1, 50))
def test_property_right_password_succeeds_others_fail(
    password: str, other: str, iterations: int
) -> None:
    scram_exchange(password, password, iterations)
    if prepare_password(other) == prepare_password(password):
        # Different strings that SASLprep makes equal (e.g. "I\u00adX" and
        # "IX") are the same password, by design.
        scram_exchange(password, other, iterations)
        return
    with pytest.raises(AuthenticationError) as exc:
        scram_exchange(password, other, iterations)
    assert exc.value.sqlstate == "28P01"


@PROPERTY
@given(password=st.text(min_size=1, max_size=40), iterations=st.integers(1, 50))
def test_property_near_miss_password_fails(password: str, iterations: int) -> None:
    # One appended ASCII letter is never removed by SASLprep.
    with pytest.raises(AuthenticationError) as exc:
        scram_exchange(password, password + "x", iterations)
    assert exc.value.sqlstate == "28P01"
