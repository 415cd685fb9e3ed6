# Two entry points: `make demo` (the example shop) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs bench chaos backends-report precheck-bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[redis,engine,sandbox]" --group test --group docs
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python example_project/manage.py migrate --noinput
	$(BIN)/python example_project/manage.py shop_seed
	SHOP_DEBUG=$${SHOP_DEBUG:-1} $(BIN)/python example_project/manage.py tryon_demo --addrport 127.0.0.1:8000

test: $(STAMP)
	$(BIN)/python -m pytest
	@if [ "$$CI" = "true" ]; then DJANGO_TRYON_TEST_DB=postgres $(BIN)/python -m pytest -m "not load"; fi
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

# The compatibility matrix (noxfile.py, docs/testing.rst): Django 4.2, 5.2 and 6.0, each with the oldest
# supported DRF, Celery and the rest (constraints/oldest.txt) and with the latest, on Python 3.10-3.13.
.PHONY: matrix
matrix: $(STAMP)
	$(BIN)/python -m pip install --quiet --group matrix
	$(BIN)/nox

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) docs/_build example_project/var
