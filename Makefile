# rsi_rl: every target sets up .venv itself (through `make install`) and reuses it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pinned versions for this project's own set-up; torch==2.13.0 is the local CPU wheel
CONSTRAINTS := requirements/constraints.txt

.PHONY: install demo test test-all lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev,wandb,launchers,ray,slurm]"
	touch $(STAMP)

## demo: a short research campaign on digits_mlp by the shipped learned acquisition agent
## (policies/acquisition/acquisition.npz, trained on landscape tasks only: a transfer; docs/agents.md)
demo: install
	$(BIN)/rsi-rl search task=digits_mlp agent=acquisition budget=20 seed=0

## test: the fast suite, on two workers (pytest-xdist; a test module stays on one worker)
test: install
	$(BIN)/python -m pytest -m "not slow" -q -n 2 --dist loadfile

## test-all: the fast suite plus the slow end-to-end tests (what CI runs)
test-all: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check rsi_rl envs tests scripts
	$(BIN)/ruff format --check rsi_rl envs tests scripts
	$(BIN)/mypy rsi_rl

format: install
	$(BIN)/ruff format rsi_rl envs tests scripts
	$(BIN)/ruff check --fix rsi_rl envs tests scripts

## bench: framework overhead and env throughput (figures go to docs/benchmarks.md)
bench: install
	$(BIN)/python scripts/bench_overhead.py

clean:
	rm -rf $(VENV) runs outputs multirun .pytest_cache .mypy_cache .ruff_cache
