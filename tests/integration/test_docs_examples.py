"""Every Python example of the documentation runs, and prints what it shows.

The pages' examples are read by :mod:`docs_examples` (its docstring and
docs/about.md give the conventions): each program runs in a fresh
interpreter against a PostgreSQL 18 started here, with TLS, whose users
the guides log in as through libpq's environment variables; each block
followed by an Output block must print that output.  Every program,
marked "not run" or not, must pass ``mypy --strict``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.postgres import PostgresServer

from docs_examples import ROOT, Program, matches, pages, parse_page, run_program, type_check

PROGRAMS: list[Program] = [program for page in pages() for program in parse_page(page)]

# The quick start's complete client logs in as postgres/postgres with MD5;
# the guides use scram_user, which may also stream replication and create
# publications.
SETUP_SQL = [
    "SET password_encryption = 'md5'",
    "ALTER ROLE postgres PASSWORD 'postgres'",
    "RESET password_encryption",
    "ALTER ROLE scram_user REPLICATION",
    # The replication guide creates a publication.
    "GRANT CREATE ON DATABASE postgres TO scram_user",
]
EXTRA_HBA = [
    "host    all          postgres       127.0.0.1/32     md5",
    "host    replication  scram_user     127.0.0.1/32     scram-sha-256",
]


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """PostgreSQL 18 with TLS, for the examples."""
    with PostgresServer(18, ssl=True, setup_sql=SETUP_SQL, extra_hba=EXTRA_HBA) as pg:
        yield pg


def environment(server: PostgresServer) -> dict[str, str]:
    """libpq's variables, as a user would set them for the examples."""
    return {
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "PGUSER": "scram_user",
        "PGPASSWORD": "scram_pw",
        "PGDATABASE": "postgres",
        "PGSSLROOTCERT": str(server.ssl_cert_file),
        "DOCS_EXAMPLES_LOCALHOST_5432": f"{server.host}:{server.port}",
    }


def test_the_pages_have_examples() -> None:
    assert len(PROGRAMS) >= 20
    pages_with_examples = {p.page.relative_to(ROOT).as_posix() for p in PROGRAMS}
    guides = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs/guides").glob("*.md"))
    assert len(guides) == 7
    for page in ("docs/index.md", "docs/quickstart.md", *guides):
        assert page in pages_with_examples
    # The contributing page includes CONTRIBUTING.md, whose templates are
    # type-checked but not run, each marked with its reason.
    templates = [b for p in PROGRAMS for b in p.blocks if b.page == ROOT / "CONTRIBUTING.md"]
    assert len(templates) >= 2
    assert all(b.not_run for b in templates)


@pytest.mark.parametrize(
    "program", [p for p in PROGRAMS if p.runs], ids=lambda p: p.where.removeprefix("docs/")
)
def test_example_runs(program: Program, server: PostgresServer, tmp_path: Path) -> None:
    results = run_program(program, environment(server), tmp_path)
    for result in results:
        assert result.error is None, f"{result.block.where}: the example failed:\n{result.error}"
        expected = result.block.output
        if expected is not None:
            assert matches(expected, result.output), (
                f"{result.block.where}: printed\n{result.output}\nbut the page shows\n{expected}"
            )
    assert len(results) == sum(b.not_run is None for b in program.blocks)


def test_every_example_type_checks(tmp_path: Path) -> None:
    assert type_check(PROGRAMS, tmp_path) == []
