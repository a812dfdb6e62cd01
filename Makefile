# Set-up is part of every target: a fresh clone needs only `make serve` or `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test test-slow bench bench-api lint format clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "nextitem needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/nextitem serve

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python -m pytest -m bench -s

# Load benchmark of the service (wrk, one worker, Redis): a GRU4Rec on the diginetica catalog.
BENCH_API_MODELS ?= runs/bench-api/models
bench-api: $(STAMP)
	@test -f $(BENCH_API_MODELS)/CURRENT || $(BIN)/nextitem train gru4rec --dataset diginetica \
		--params layers=100 --out $(BENCH_API_MODELS) --activate
	$(BIN)/nextitem bench api --model-dir $(BENCH_API_MODELS) --json runs/bench-api/result.json

lint: $(STAMP)
	$(BIN)/ruff check app models training tests
	$(BIN)/ruff format --check app models training tests

format: $(STAMP)
	$(BIN)/ruff check --fix app models training tests
	$(BIN)/ruff format app models training tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
