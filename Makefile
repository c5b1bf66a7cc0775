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
EXTRAS ?= torch,pysindy,operon,notebooks,docs,sweep,dev
comma  := ,
SUDO   := $(shell command -v sudo 2>/dev/null)

.PHONY: venv install demo test test-all test-browser notebooks docs bench bench-quick clean

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

# The report rendered in headless Chromium (Debian's package); make test skips this test
# when /usr/bin/chromium is missing.
test-browser: install
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium chromium-driver; } || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }
	$(BIN)/python -m pytest -q -m browser tests/test_report_browser.py

# The examples/ notebooks top to bottom; SYMQP_EXAMPLES_QUICK=1 (the default here) runs them
# at reduced sizes in seconds, SYMQP_EXAMPLES_QUICK=0 at full size in minutes.
SYMQP_EXAMPLES_QUICK ?= 1
# Generated kernels are shared with the test run (tests/conftest.py uses .symqp_cache).
KERNELS := SYMQP_CACHE_DIR=$(CURDIR)/.symqp_cache
notebooks: install
	$(KERNELS) SYMQP_EXAMPLES_QUICK=$(SYMQP_EXAMPLES_QUICK) $(BIN)/python -m pytest -q -m notebooks tests/test_notebooks.py

# The documentation site in docs/_build/html: API reference from the docstrings and the
# notebooks, executed at SYMQP_EXAMPLES_QUICK size; any warning is an error.
docs: install
	rm -rf docs/_build docs/api/generated
	$(KERNELS) SYMQP_EXAMPLES_QUICK=$(SYMQP_EXAMPLES_QUICK) $(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

bench: install
	$(BIN)/python benchmarks/run.py

bench-quick: install
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/api/generated
