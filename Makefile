# The two commands: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PYTEST := $(PY) -m pytest
# Two workers (pytest-xdist): each gets its own databases, live servers and engine pools.
# --dist loadscope sends a whole module to one worker, so that a module-scoped fixture (a browser
# server, a Spark session, a sandbox engine) is built once, not once per worker. Modules are
# handed out longest first (tests/module_durations.json, refreshed with .ci/module_durations.py),
# so that no long module ends the run alone on one worker while the other idles.
# -rs prints every skip's reason: a real part that is absent (Redis/Celery, S3, Spark, PostgreSQL,
# Chromium) shows up as a plain "SKIPPED ... (set REQUIRE_X=1 to make this a failure)" line.
PYTEST_ARGS ?= -q -m "not slow" -n 2 --dist loadscope -rfEs
TRANSLATIONS := market/translations

.PHONY: demo test test-sqlite test-postgres test-browser install compile-translations i18n lint bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed compile-translations

compile-translations: $(VENV)/.installed
	@$(PY) -c "from market.translations.sync import compile_mo; compile_mo()"

# `make demo PORT=5100 ROWS=500`: where it serves, and how many demo enterprises it seeds.
PORT ?= 5000
ROWS ?= 2000
demo: install
	$(VENV)/bin/market demo --port $(PORT) --rows $(ROWS)

# SQLite always (every test); PostgreSQL when it answers (required under REQUIRE_POSTGRES=1),
# where only the tests that touch the database run: those using a database fixture (app,
# client, runner, live_app, database_url, migrated_template, live, demo_database: DB_FIXTURES in
# tests/conftest.py). A test without one (pricing, sandbox policy, pipeline, i18n files...) gives
# the same result on either database and is deselected there, after running in the SQLite pass;
# the browser suite when Chromium is installed (required under REQUIRE_BROWSER=1);
# tests/scale: Celery workers on Redis (REQUIRE_CELERY=1), S3Storage on moto's server
# (REQUIRE_S3=1), the Spark engine with `pip install -e '.[spark]'` and Java (REQUIRE_SPARK=1).
test: install
	@echo "== test suite on SQLite =="
	MARKET_TEST_DB=sqlite $(PYTEST) $(PYTEST_ARGS)
	@if $(PY) tests/pg.py check; then \
		echo "== test suite on PostgreSQL ($${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}): the tests that touch the database =="; \
		MARKET_TEST_DB=postgres $(PYTEST) $(PYTEST_ARGS) || exit 1; \
	elif [ "$${REQUIRE_POSTGRES:-0}" = "1" ]; then \
		echo "FAILED: REQUIRE_POSTGRES=1 but PostgreSQL is not reachable"; exit 1; \
	else \
		echo "SKIPPED: the PostgreSQL run (no server at $${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}); set TEST_POSTGRES_URL or start PostgreSQL to run it"; \
	fi

# Extract strings, merge translations (incl. translations/pending/*.json), compile.
i18n: $(VENV)/.installed
	$(PY) -m market.translations.sync

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check market pricing sandbox licenses tests bench

clean:
	rm -rf $(VENV) .pytest_cache test-output
