# Set-up is part of every target: a fresh clone needs only `make serve` or `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test test-slow test-faults bench bench-api bench-swap bench-gru4rec bench-cf \
	bench-multi-interest bench-sasrec-recbole lint format clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "nextitem needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/nextitem-server serve

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The fault and conformance suite: the service held to its OpenAPI spec over thousands of
# generated requests (a new seed each run), and whatever else is marked `faults`.
test-faults: $(STAMP)
	$(BIN)/python -m pytest -m faults

# The pytest benchmarks (marker `bench`): our GRU4Rec step against a sparse baseline, CF against
# Surprise's fit times. Every benchmark wants an otherwise idle machine (tests/bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m pytest -m bench -s

# Load benchmark of the service (wrk, one worker, Redis): a GRU4Rec on the diginetica catalog.
BENCH_API_MODELS ?= runs/bench-api/models
bench-api: $(STAMP)
	@test -f $(BENCH_API_MODELS)/CURRENT || $(BIN)/nextitem train gru4rec --dataset diginetica \
		--params layers=100 --out $(BENCH_API_MODELS) --activate
	$(BIN)/python -m tests.bench.api --model-dir $(BENCH_API_MODELS) --json runs/bench-api/result.json

# A retrain and its hot swap under load (Redis, serve + worker): runs/bench-swap/<run>/.
bench-swap: $(STAMP)
	$(BIN)/python -m tests.bench.swap --out runs/bench-swap

# GRU4Rec training events/s beside the matrix-product ceiling of its step.
BENCH_GRU4REC_DATASET ?= diginetica
BENCH_GRU4REC_PARAMS ?= diginetica_bprmax_shared_best
bench-gru4rec: $(STAMP)
	$(BIN)/python -m tests.bench.gru4rec_speed --dataset $(BENCH_GRU4REC_DATASET) \
		--params $(BENCH_GRU4REC_PARAMS) --json runs/bench-gru4rec/result.json

# Our CF models beside scikit-surprise (the `bench` extra) on the five ml-100k folds.
bench-cf: $(STAMP)
	@$(BIN)/python -c 'import surprise' 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m tests.bench.cf_surprise --dataset ml-100k --folds u1..u5 \
		--json runs/bench-cf/result.json --plot runs/bench-cf/result.png

# Multi-interest training and serving speed by number of interests (ComiRec-SA on ml-1m).
bench-multi-interest: $(STAMP)
	$(BIN)/python -m tests.bench.multi_interest --model comirec-sa --dataset ml-1m \
		--json runs/bench-multi-interest/result.json

# Our SASRec beside RecBole 1.2.1's on Amazon Beauty (same split, sizes and loss). RecBole
# lives in an environment of its own (RECBOLE_VENV), made here when missing: it needs numpy < 2.
RECBOLE_VENV ?= runs/recbole-venv
RECBOLE_EPOCHS ?= 200
bench-sasrec-recbole: $(STAMP)
	@test -x $(RECBOLE_VENV)/bin/python || ($(PYTHON) -m venv $(RECBOLE_VENV) && \
		$(RECBOLE_VENV)/bin/pip install --quiet torch==2.13.0 recbole==1.2.1 'numpy<2' \
		'pandas<2.2' 'scipy<1.14' 'setuptools<70')
	$(BIN)/python -m tests.bench.sasrec_recbole --recbole-python $(RECBOLE_VENV)/bin/python \
		--recbole-epochs $(RECBOLE_EPOCHS) --json runs/bench-sasrec-recbole/result.json

lint: $(STAMP)
	$(BIN)/ruff check app models training tests
	$(BIN)/ruff format --check app models training tests

format: $(STAMP)
	$(BIN)/ruff check --fix app models training tests
	$(BIN)/ruff format app models training tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
