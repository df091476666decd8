# ClinAIOps — two commands do all the set-up: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clinaiops_test
# pytest-xdist workers for `make test`/`make test-sqlite` ("auto": one a core). Each worker has its own test
# database (pytest-django suffixes it _gw0, _gw1, …); 0 runs the suite in this process.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist worksteal)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install system-deps services demo demo-reset serve lint test test-sqlite fuzz-api bench bench-quick clean

help:
	@echo "make demo        build the demo (SQLite, eager Celery) and serve it on 127.0.0.1:$(PORT)"
	@echo "make demo-reset  throw the demo database away and build it again"
	@echo "make test        linters, then the whole suite on PostgreSQL"
	@echo "make test-sqlite the suite on SQLite"
	@echo "make fuzz-api    schemathesis against the live API (every operation, 100 examples each, --checks all)"
	@echo "make soak        the safety-invariant state machine at 10x CI's size, printing what it covered"
	@echo "make bench       benchmarks, printed as ratios against baselines"
	@echo "make bench-quick a reduced bench, under 5 minutes once its seed database exists"

# Debian libraries WeasyPrint needs (Pango/HarfBuzz), and poppler-utils, whose pdftoppm turns the compliance PDFs
# into PNG pages in the tests; installed only if missing and only as root.
system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0 || ! command -v pdftoppm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing WeasyPrint's system libraries and poppler-utils"; \
	    apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b poppler-utils >/dev/null; \
	  else echo "WeasyPrint and the PDF tests need: sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b poppler-utils"; fi; \
	fi
	@# Debian's Chromium drives the browser tests (Playwright's own browser download does not work offline).
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Chromium for the browser tests"; \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need: sudo apt-get install chromium"; fi; \
	fi
	@# wrk drives the web benches at 16 connections (make bench).
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing wrk for the benches"; \
	    apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else echo "the benches need: sudo apt-get install wrk"; fi; \
	fi
	@# promtool checks and unit-tests the alerting rules (tests/ops). It is taken out of Debian's prometheus package
	@# into var/tools rather than installing the package, which would start a Prometheus server.
	@if [ ! -x var/tools/promtool ] && ! command -v promtool >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then echo "extracting promtool from Debian's prometheus package into var/tools"; \
	    tmp=$$(mktemp -d) && chmod 755 $$tmp && cd $$tmp && \
	    { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; } && \
	    dpkg-deb -x prometheus_*.deb x && cd $(CURDIR) && mkdir -p var/tools && cp $$tmp/x/usr/bin/promtool var/tools/; \
	    cd $(CURDIR); rm -rf $$tmp; \
	  else echo "the alerting-rule tests use promtool when present (Debian package prometheus)"; fi; \
	fi

$(VENV)/.installed: pyproject.toml
	@echo "creating $(VENV) with $(PYTHON) and installing (first time takes a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

install: system-deps $(VENV)/.installed

# Starts PostgreSQL, RabbitMQ and Redis when they are installed here but not running.
services:
	@bash .ci/services

demo: install
	@if [ ! -f var/.demo-built ]; then \
	  $(PY) manage.py demo_build && touch var/.demo-built; \
	else echo "demo already built (make demo-reset to rebuild)"; fi
	@# A demo built before an upgrade gets the new migrations and the shared cache's table (clinaiops/core/apps.py).
	@$(PY) manage.py migrate --verbosity 0
	@$(PY) manage.py demo_logins
	@echo "serving on http://127.0.0.1:$(PORT)/  (portal)  and  http://127.0.0.1:$(PORT)/api/v1/  (patient API); Ctrl-C stops"
	@# Celery beat runs the schedule (escalation sweep every ALERT_ESCALATION_SWEEP_SECONDS, checkpoints, sweepers);
	@# with the demo's eager Celery each task runs inside the beat process. It stops when the server does.
	@$(VENV)/bin/celery -A clinaiops beat --schedule var/celerybeat-schedule --loglevel warning & beat=$$!; \
	  trap 'kill $$beat 2>/dev/null' EXIT; \
	  $(VENV)/bin/gunicorn -c python:clinaiops.gunicorn_config clinaiops.wsgi --bind 127.0.0.1:$(PORT) --workers 2 --log-level warning

demo-reset:
	rm -rf var/clinaiops.sqlite3 var/artifacts var/demo-evidence var/.demo-built
	$(MAKE) demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=clinaiops.settings.test $(VENV)/bin/mypy

test: install services lint
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(VENV)/bin/pytest $(PYTEST_PARALLEL) --durations=15
	$(PY) .ci/schemathesis.py

# schemathesis against the live app (issue 12, .ci/schemathesis.py): gunicorn on a fresh PostgreSQL database, every
# operation of /api/v1/schema/ with 100 examples each (FUZZ_MAX_EXAMPLES) and --checks all. Prints the counts; fails
# on a server error, a response its schema does not allow, an undocumented status or any other failed check (the
# acceptance checks are printed, not failing: see the script).
fuzz-api: install services
	$(PY) .ci/schemathesis.py

test-sqlite: install
	DATABASE_URL=sqlite:///$(CURDIR)/var/test.sqlite3 $(VENV)/bin/pytest $(PYTEST_PARALLEL) --durations=15

# Evidently (the drift baseline) does not import with pandas 3, so it lives in a bench-only environment.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q 'evidently==0.7.23' 'pandas<3' numpy scipy
	@touch $@

# Every bench, each figure beside its baseline from the same run, in databases and a RabbitMQ vhost of its own
# (bench/run.py, bench/README.md); JSON under bench/results/.
bench: install services system-deps $(BENCH_VENV)/.installed
	$(PY) bench/run.py --drift-python $(BENCH_VENV)/bin/python
	$(PY) bench/bench_portal_pages.py

bench-quick: install services system-deps $(BENCH_VENV)/.installed
	$(PY) bench/run.py --quick --drift-python $(BENCH_VENV)/bin/python

# The ledger's append through a private pgbouncer in transaction mode (docs/scaling.md); needs Debian's pgbouncer.
.PHONY: bench-pgbouncer
bench-pgbouncer: install services
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { echo "needs: apt-get install pgbouncer"; exit 1; }
	$(PY) bench/pgbouncer_ledger.py

# The safety state machine (tests/properties/test_safety_machine.py) at ten times CI's size (100,000 simulated
# patient-days); prints what it covered (patients, patient-days, readings, crises, decisions, swaps, stops).
.PHONY: soak
soak: install services
	SAFETY_SOAK=1 DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(VENV)/bin/pytest \
	  tests/properties/test_safety_machine.py -q -s --durations=1

clean:
	rm -rf $(VENV) $(BENCH_VENV) var .pytest_cache .mypy_cache .ruff_cache
