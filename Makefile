# Two entry points: `make demo` (the example shop) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench chaos backends-report precheck-bench funnel-bench wheel-test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[redis,engine,sandbox]" --group test --group docs --group lint
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python example_project/manage.py migrate --noinput
	$(BIN)/python example_project/manage.py shop_seed
	SHOP_DEBUG=$${SHOP_DEBUG:-1} $(BIN)/python example_project/manage.py tryon_demo --addrport 127.0.0.1:8000

# Lint and types; `make test` runs them first, so CI does too (versions pinned in the `lint` group).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy django_tryon

test: $(STAMP) lint
	$(BIN)/python -m django makemigrations --check --dry-run --settings=tests.settings
	$(BIN)/python example_project/manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest
	@if [ "$$CI" = "true" ]; then DJANGO_TRYON_TEST_DB=postgres $(BIN)/python -m pytest -m "not load"; fi
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory wheel-test; fi
	@if [ "$$CI" = "true" ]; then $(MAKE) matrix; fi
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The dispatcher under load and under failure (PostgreSQL on 127.0.0.1:5432, redis-server on the PATH);
# figures in docs/performance.rst. The last line of each is one JSON object.
bench: $(STAMP)
	$(BIN)/python scripts/bench.py

chaos: $(STAMP)
	$(BIN)/python scripts/chaos.py

# Every HTTP backend against the sandbox on the real photos of ../shared/images (docs/performance.rst).
backends-report: $(STAMP)
	$(BIN)/python scripts/backends_report.py

# The time the person check (TRYON["PERSON_CHECK"]) adds per request at 1024 px: median and p95 (docs/settings.rst).
precheck-bench: $(STAMP)
	$(BIN)/python scripts/precheck_bench.py

# The time funnel analytics adds to a request, after it and in a worker: median and p95 (docs/analytics.rst).
funnel-bench: $(STAMP)
	$(BIN)/python scripts/funnel_bench.py

# The wheel users install: sdist and wheel built, twine-checked and their contents checked, the wheel
# installed (not editable) in a fresh venv and a named subset of the suite run against it
# (scripts/test_wheel.py; needs the package index). `make test` runs it under CI=true.
wheel-test: $(STAMP)
	$(BIN)/python scripts/test_wheel.py

# The compatibility matrix (noxfile.py, docs/testing.rst): Django 4.2, 5.2 and 6.0, each with the oldest
# supported DRF, Celery and the rest (constraints/oldest.txt) and with the latest, on Python 3.10-3.13.
.PHONY: matrix
matrix: $(STAMP)
	$(BIN)/python -m pip install --quiet --group matrix
	$(BIN)/nox

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .nox docs/_build example_project/var
