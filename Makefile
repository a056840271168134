# The two set-up commands (README.md): `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

COMPILED := .venv-compiled
.PHONY: run demo test lint bench bench-quick clean compiled test-compiled

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The exchange server on its embedded SQLite store, http://127.0.0.1:8000 (data in ./manticore-data),
# in local demo mode: demo users alice/bob and simulated traders, so the web page shows a live market.
run: $(BIN)/.installed
	$(BIN)/manticore serve --demo

demo: $(BIN)/.installed
	$(BIN)/python -m manticore_orderbook.demo

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint test-compiled
	$(BIN)/python -m pytest

# The same order book source compiled with mypyc, installed (not editable) in its own venv.
$(COMPILED)/.installed: pyproject.toml setup.py $(wildcard src/manticore_orderbook/*.py)
	$(PYTHON) -m venv $(COMPILED)
	$(COMPILED)/bin/pip install --quiet --upgrade pip
	$(COMPILED)/bin/pip install --quiet '.[dev]' setuptools==80.9.0 wheel==0.48.0
	rm -rf build
	MANTICORE_MYPYC=1 $(COMPILED)/bin/pip install --quiet --no-build-isolation --force-reinstall --no-deps .
	touch $@

compiled: $(COMPILED)/.installed

test-compiled: compiled
	MANTICORE_EXPECT_COMPILED=1 $(COMPILED)/bin/python -m pytest -p no:cacheprovider -q -m "not pure_only" \
		tests/orderbook

# Full benchmark run (~8 min): writes docs/benchmarks.md and docs/benchmarks.png. Measures the
# pure-Python build (.venv) and the mypyc build (.venv-compiled) against the competitors, whose
# virtualenvs (benchmarks/.venvs/) are created and installed on first use.
bench: $(BIN)/.installed compiled
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m benchmarks.run

# Smoke run (well under a minute): small sizes, one repeat, report under benchmarks/.build/quick/.
bench-quick: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(COMPILED) build .mypy_cache .pytest_cache .ruff_cache .hypothesis
