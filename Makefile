# Two commands on a fresh machine: `make demo` (main job) and `make test` (whole suite).
# GPU users: `make demo TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>"`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# pytest-xdist worker processes for `make test` (auto: one per core; 0: the whole suite in one process).
PYTEST_WORKERS ?= auto
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[all,dev,peers,cripser]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/framework demo

test: $(STAMP)
	WANDB_MODE=disabled $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python scripts/bench_framework.py
	$(BIN)/python scripts/bench_muon.py

lint: $(STAMP)
	$(BIN)/ruff check framework plugins scripts tests examples
	$(BIN)/ruff format --check framework plugins scripts tests examples

clean:
	rm -rf $(VENV) runs
