# The two set-up commands (README.md): `make run` and `make test`. Each creates its venv on first use.
#   .venv          development: editable install of src/ (the pure-Python book) with the dev extras
#   .venv-compiled the same project installed with the compiled book and the dev extras (tests, benchmarks)
#   .venv-run      `make run`: the runtime only (no dev extras), the compiled book
PYTHON ?= python3
PORT ?= 8000
ARGS ?=
# Build of the order book in non-editable installs (setup.py): auto (mypyc when a C compiler is
# available, else the pure source with a warning), compiled (or fail) or pure.
MANTICORE_BUILD ?= auto

VENV := .venv
BIN := $(VENV)/bin
COMPILED := .venv-compiled
RUN_VENV := .venv-run
ALL_SOURCES := pyproject.toml setup.py $(shell find src -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*')
SAY_BUILD := import manticore_orderbook as m; \
	print('order book build:', 'compiled (mypyc)' if m.COMPILED else 'PURE PYTHON (not compiled)')

.PHONY: run demo test lint bench bench-quick clean compiled test-compiled

# An editable install always holds the pure-Python book (setup.py): edits to src/ run as they are.
$(BIN)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	MANTICORE_BUILD=pure $(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The runtime only, installed (not editable) with the compiled book; pip prints each step. The build
# takes about a minute the first time (mypyc and the C compiler).
$(RUN_VENV)/.installed: $(ALL_SOURCES)
	@echo "make run: creating $(RUN_VENV) (runtime dependencies only)"
	$(PYTHON) -m venv $(RUN_VENV)
	$(RUN_VENV)/bin/pip install --progress-bar on --upgrade pip
	@echo "make run: installing manticore; compiling the order book with mypyc (MANTICORE_BUILD=$(MANTICORE_BUILD)), about a minute"
	rm -rf build
	MANTICORE_BUILD=$(MANTICORE_BUILD) $(RUN_VENV)/bin/pip install --progress-bar on .
	$(RUN_VENV)/bin/python -c "$(SAY_BUILD)"
	touch $@

# The exchange server on its embedded SQLite store, http://127.0.0.1:$(PORT) (data in ./manticore-data),
# in local demo mode: demo users alice/bob and simulated traders, so the web page shows a live market.
# `make run PORT=8001`, `make run ARGS="--data-dir /tmp/m"`.
run: $(RUN_VENV)/.installed
	@$(RUN_VENV)/bin/python -c "$(SAY_BUILD)"
	$(RUN_VENV)/bin/manticore serve --demo --port $(PORT) $(ARGS)

demo: $(BIN)/.installed
	$(BIN)/python -m manticore_orderbook.demo

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks setup.py
	$(BIN)/ruff format --check src tests benchmarks setup.py
	$(BIN)/mypy

test: lint test-compiled
	$(BIN)/python -m pytest

# The same order book source compiled with mypyc, installed (not editable) in its own venv. Rebuilt when
# any source changes, not only the book's: its installed copies of the other packages (matching, risk,
# storage, api) are what benchmarks of the compiled build run.
$(COMPILED)/.installed: $(ALL_SOURCES)
	$(PYTHON) -m venv $(COMPILED)
	$(COMPILED)/bin/pip install --quiet --upgrade pip
	rm -rf build
	MANTICORE_BUILD=compiled $(COMPILED)/bin/pip install --quiet '.[dev]'
	touch $@

compiled: $(COMPILED)/.installed

test-compiled: compiled
	MANTICORE_EXPECT_COMPILED=1 $(COMPILED)/bin/python -m pytest -p no:cacheprovider -q -m "not pure_only" \
		tests/orderbook tests/risk

# Full benchmark run (~15 min): writes docs/benchmarks.md and docs/benchmarks.png. Measures the
# pure-Python build (.venv) and the mypyc build (.venv-compiled) against the competitors, whose
# virtualenvs (benchmarks/.venvs/) are created and installed on first use.
bench: $(BIN)/.installed compiled
	$(BIN)/python -m benchmarks.run

# Smoke run (about a minute): small sizes, one repeat, report under benchmarks/.build/quick/.
bench-quick: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(COMPILED) $(RUN_VENV) build .mypy_cache .pytest_cache .ruff_cache .hypothesis
	find src -name '*.so' -delete

# Server benchmark (issue 17; ~10 min): raw ASGI and bare FastAPI references beside `manticore serve`
# (signed, crossing, --no-auth, WebSocket), wrk + paced client, 3 interleaved repeats. The servers run
# in .venv-run (the compiled book, as `make run`); the harness and clients in .venv. Options:
# `make bench-server SERVER_BENCH_ARGS="--quick"`; see `python -m benchmarks.server --help`.
SERVER_BENCH_ARGS ?=
.PHONY: bench-server bench-server-profile
bench-server: $(BIN)/.installed $(RUN_VENV)/.installed
	$(BIN)/python -m benchmarks.server --python $(RUN_VENV)/bin/python $(SERVER_BENCH_ARGS)

# Cluster benchmark (issue 18 point 5; ~6-7 min): embedded `manticore serve`, 1 whole shard + 1 gateway
# and an account shard + M market shards + G gateways (G/M = 1/1, 2/2, 4/4) on a private nats-server,
# orders spread over 4 markets, 3 interleaved repeats, then the failover time (leader killed with
# kill -9 under load). Options: `make bench-cluster CLUSTER_BENCH_ARGS="--quick"`; see
# `python -m benchmarks.cluster --help`.
CLUSTER_BENCH_ARGS ?=
.PHONY: bench-cluster
bench-cluster: $(BIN)/.installed $(RUN_VENV)/.installed
	$(BIN)/python -m benchmarks.cluster --python $(RUN_VENV)/bin/python $(CLUSTER_BENCH_ARGS)

# CPU per request of `manticore serve` by layer (yappi, in .venv-compiled: the compiled book that
# `make run` serves).
bench-server-profile: compiled
	$(COMPILED)/bin/python -m benchmarks.server_profile $(SERVER_BENCH_ARGS)
