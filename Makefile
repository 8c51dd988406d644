# Everything runs from a local virtualenv that `make` creates on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the demo: a throwaway Synapse, the bridge and sample accounts (ARGS="--data-dir demo-data").
demo: $(STAMP)
	$(BIN)/lms-bridge demo $(ARGS)

## Run the test suite (ARGS="-k something" to narrow it).
test: $(STAMP)
	$(BIN)/pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Run the benchmarks (they print tables; see bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m bench.transactions $(ARGS)
	$(BIN)/python -m bench.startup $(ARGS)
	$(BIN)/python -m bench.roster $(ARGS)
	$(BIN)/python -m bench.conversations $(ARGS)
	$(BIN)/python -m bench.live_streams
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.contact_info

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
