# The two set-up commands of the README:
#   make demo   build -> publish -> serve -> load -> train -> build iter2 -> export, on the embedded defaults
#   make test   the test suite
# Both create .venv on first use: torch==2.13.0 (the CPU wheel) first, then everything else pinned
# by constraints-cpu.txt so nothing pulls a CUDA torch.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints-cpu.txt | sha1sum | cut -c1-12)
DEMO_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: install test demo lint bench clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints-cpu.txt -e ".[dev,ray]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/savi demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# One table: decode, build (pairs/s, time outside model calls, peak RSS at 50 and 200 videos), publish +
# load of 24,000 pairs. BENCH_ARGS=--quick for a one-minute smoke run.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) benchmarks/run_all.py --json runs/bench.json --markdown runs/bench.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
