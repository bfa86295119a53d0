# Paradarum — everyday commands. `make run` and `make test` set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# What serving needs (make run), and the test toolchain on top of it (everything else).
RUNTIME := $(VENV)/.runtime
STAMP   := $(VENV)/.installed

.PHONY: run test install lint typecheck bench screenshots wordpress-plugin clean

$(RUNTIME): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# make run HOST=0.0.0.0 PORT=8080 (or PARADARUM_HOST / PARADARUM_PORT; default 127.0.0.1:8000)
run: $(RUNTIME)
	$(BIN)/paradarum serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# On every core (pytest-xdist). The outage test stops only a PostgreSQL of its own (initdb
# into a temporary directory): the machine's PostgreSQL keeps running throughout.
# loadgroup: the tests of an xdist_group run on one worker (one WordPress stack per module).
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench client integrations
	$(BIN)/ruff format --check src tests bench client integrations

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

screenshots: $(STAMP)   # the panel pictures in docs/, from a throwaway server
	$(BIN)/python -m tests.browser.screenshots --out docs

# The WordPress plugin as WordPress uploads it (Plugins → Add New → Upload Plugin).
wordpress-plugin:
	$(PYTHON) integrations/wordpress/build.py dist/paradarum-wordpress.zip

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
