# U-Net segmentation workshop. Every target sets itself up: it creates .venv if missing and
# installs requirements.txt (quick when nothing changed), then acts.
#
#   make run     execute both workshop notebooks headless into build/ and print a summary
#   make test    unit tests + every notebook executed by nbval (quick mode)
#   make lab     JupyterLab on notebooks/
#   make slides  build the offline slide deck into build/slides/
#   make bench   benchmarks (writes a table; see benchmarks/RESULTS.md)
#   make gpu-check   time and score everything on a GPU; writes benchmarks/RESULTS-gpu.md
#   make test-all    the tests on all three CI stacks, as CI runs them (.ci/run)

PYTHON ?= python3
VENV   ?= .venv
# The requirements to install: requirements.txt (Colab's GPU/CPU runtime), requirements-jax.txt
# (Colab's TPU runtime: Keras on JAX, no TensorFlow) or requirements-latest.txt (the newest release
# of everything); one venv each (see test-all).
REQS   ?= requirements.txt
# Colab's Python (3.13) where this machine has it (on PATH or under pyenv), else python3.
COLAB_PYTHON ?= $(or $(firstword $(foreach c,python3.13 $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13),\
  $(shell $(c) -c 'import sys; assert sys.version_info[:2] == (3, 13); print("$(c)")' 2>/dev/null))),python3)
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install graphviz slides-deps run test test-all colab-python lab slides bench gpu-check gpu-carry clean

install: $(STAMP)

$(STAMP): requirements.txt $(REQS) pyproject.toml
	@test -x $(PY) || { echo "== creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "== installing $(REQS) into $(VENV) (about 2 minutes the first time)"
	$(PY) -m pip install --quiet --upgrade -r $(REQS)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@# the export extra (bioimageio.core: `python -m helpers export` and its tests), resolved with the pins
	$(PY) -m pip install --quiet --no-build-isolation -r $(REQS) -e '.[export]'
	@# a stack without TensorFlow (requirements-jax.txt, as Colab's TPU runtime) must stay without it
	@if ! grep -qi '^tensorflow' $(REQS) && $(PY) -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorflow") is None)'; then \
	  echo "$(VENV) has TensorFlow, which $(REQS) does not list: remove $(VENV) and run again" >&2; exit 1; fi
	@$(MAKE) --no-print-directory graphviz
	@touch $(STAMP)

# Graphviz draws the architecture plot (keras.utils.plot_model). It is a system package:
# installed here where we can; everything degrades to a short note where it is missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) \
	      || echo "note: could not install graphviz; architecture plots will be skipped"; \
	  else echo "note: graphviz is not installed (e.g. 'sudo apt-get install graphviz' or 'brew install graphviz'); architecture plots will be skipped"; fi; }

run: $(STAMP)
	$(PY) -m helpers run-notebooks --out build

# reveal.js for the offline deck, fetched once from the npm registry into build/cache.
slides-deps: $(STAMP)
	@$(PY) slides/build.py --fetch-only || echo "note: could not fetch reveal.js; the offline slide-build test will be skipped"

test: $(STAMP) slides-deps
	@UNET_QUICK=1 $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=900 -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "FAILED: pytest collected no tests" >&2; exit 1; fi; exit $$status

# The three stacks CI runs (.ci/run), each in its own cached venv: Colab's GPU/CPU runtime (pins, on
# Python 3.13 where there is one); the newest releases (upgraded on every run, so Colab's next upgrade
# breaks here first); Colab's TPU runtime (Python 3.13, JAX, no TensorFlow). KERAS_BACKEND stays unset,
# as on Colab: helpers chooses the backend.
test-all:
	bash .ci/run

colab-python:
	@echo $(COLAB_PYTHON)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

slides: $(STAMP)
	$(PY) slides/build.py --out build/slides

bench: $(STAMP)
	$(PY) -m benchmarks

# GPU check (benchmarks/gpu.py). On a lent GPU machine, which has no network and its own Python with
# JAX, prepare here with `make gpu-carry` (data and the few wheels it lacks into .devdata/, git-ignored),
# carry .devdata there, and run: make gpu-check GPU_PY=python3 UNET_DATA_DIR=.devdata/isbi2012
GPU_PY ?=
GPU_ARGS ?=
gpu-check:
ifeq ($(GPU_PY),)
	@$(MAKE) --no-print-directory install
	$(PY) -m benchmarks.gpu $(GPU_ARGS)
else
	$(GPU_PY) -m benchmarks.gpu $(GPU_ARGS)
endif

gpu-carry: $(STAMP)
	$(PY) -m benchmarks.carry .devdata

clean:
	rm -rf build .pytest_cache
