# One command to run the demo, one to run the tests; each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml setup.py $(wildcard native/*.c native/*.h native/*.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[bench]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fastroute demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/cudasim

bench: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks --benchmark-columns=min,median,ops --benchmark-sort=name

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks
