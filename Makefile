# Two entry points: `make demo` (the example shop) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs clean

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
	@if [ "$$CI" = "true" ]; then DJANGO_TRYON_TEST_DB=postgres $(BIN)/python -m pytest; fi
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) docs/_build example_project/var
