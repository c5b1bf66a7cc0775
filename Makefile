# Two commands on a fresh machine:
#   make demo   - create .venv, install, run Example 1 of the paper end to end
#   make test   - create .venv, install with test extras, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU wheel of this machine kind through a constraints file;
# pyproject itself only asks for a compatible range.
CONSTRAINTS := constraints.txt
PIP    := $(BIN)/python -m pip
EXTRAS ?= torch,pysindy,operon,dev
comma  := ,

.PHONY: venv install demo test test-all bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-$(subst $(comma),-,$(EXTRAS)): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

demo: install
	$(BIN)/symqp demo

test: install
	$(BIN)/python -m pytest -q -n 2 tests

test-all: install
	$(BIN)/python -m pytest -q -n 2 -m "" tests

bench: install
	$(BIN)/python benchmarks/run.py

bench-quick: install
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
