# ClinAIOps — two commands do all the set-up: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clinaiops_test
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install system-deps services demo demo-reset serve lint test test-sqlite bench clean

help:
	@echo "make demo        build the demo (SQLite, eager Celery) and serve it on 127.0.0.1:$(PORT)"
	@echo "make demo-reset  throw the demo database away and build it again"
	@echo "make test        linters, then the whole suite on PostgreSQL"
	@echo "make test-sqlite the suite on SQLite"
	@echo "make bench       benchmarks, printed as ratios against baselines"

# Debian libraries WeasyPrint needs (Pango/HarfBuzz); installed only if missing and only as root.
system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing WeasyPrint's system libraries"; \
	    apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b >/dev/null; \
	  else echo "WeasyPrint needs: sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b"; fi; \
	fi
	@# Debian's Chromium drives the browser tests (Playwright's own browser download does not work offline).
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Chromium for the browser tests"; \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need: sudo apt-get install chromium"; fi; \
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
	@$(PY) manage.py demo_logins
	@echo "serving on http://127.0.0.1:$(PORT)/  (portal)  and  http://127.0.0.1:$(PORT)/api/v1/  (patient API); Ctrl-C stops"
	@$(VENV)/bin/gunicorn clinaiops.wsgi --bind 127.0.0.1:$(PORT) --workers 2 --access-logfile - --log-level warning

demo-reset:
	rm -rf var/clinaiops.sqlite3 var/artifacts var/.demo-built
	$(MAKE) demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=clinaiops.settings.test $(VENV)/bin/mypy

test: install services lint
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(VENV)/bin/pytest

test-sqlite: install
	DATABASE_URL=sqlite:///$(CURDIR)/var/test.sqlite3 $(VENV)/bin/pytest

# Evidently (the drift baseline) does not import with pandas 3, so it lives in a bench-only environment.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q 'evidently==0.7.23' 'pandas<3' numpy scipy
	@touch $@

bench: install services $(BENCH_VENV)/.installed
	$(PY) bench/scoring_bench.py
	$(BENCH_VENV)/bin/python bench/drift_bench.py
	$(PY) bench/audit_bench.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) var .pytest_cache .mypy_cache .ruff_cache
