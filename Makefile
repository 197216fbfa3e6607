# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv themselves; everything else here is for iteration.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint bench tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[train,device,mqtt,dev]"
	touch $(STAMP)

## tools: system tools the tests need (installed with apt-get when missing)
tools:
	bash scripts/ensure-tools.sh

## lint: ruff over the whole tree
lint: $(STAMP)
	$(BIN)/ruff check .

## test: full suite (the CI command)
test: $(STAMP) tools lint
	$(BIN)/pytest $(PYTEST_ARGS)

## test-fast: the quick subset for iteration (no training, no slow subprocess tests)
test-fast: $(STAMP) lint
	$(BIN)/pytest -m "not slow" -x -q $(PYTEST_ARGS)

## bench: speed benchmarks (ratios against references measured in the same run)
bench: $(STAMP)
	$(BIN)/python benchmarks/nms.py
	$(BIN)/python benchmarks/pipeline.py

## demo: the main job end to end, on generated data
demo: $(STAMP)
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache runs
