# sngan-edu: every target installs what it needs into .venv first (idempotent).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0
# `python -m pytest` puts the repository root on sys.path, so `-p tools.nbval_facts` (the facts
# plugin, tests/notebook_facts/) is found.
NBVAL := pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p tools.nbval_facts \
	--nbval-cell-timeout 1200 -p no:cacheprovider
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb notebooks/appendix_*.ipynb instructor/exercises/*.ipynb))

.PHONY: help setup demo check test unit nbval nbval-probe lint lab notebooks constraints clean

help:
	@echo "make demo   - set up .venv and run the notebook series headless into runs/<date-time>/"
	@echo "make check  - ruff and the fast unit tests (those not marked slow)"
	@echo "make test   - set up .venv, run every unit test (slow ones too) and pytest --nbval on every notebook, in parallel"
	@echo "make unit / make nbval - the same two halves one after the other, in one process"
	@echo "make lab    - open JupyterLab on the course"
	@echo "make notebooks - re-execute notebooks in place (refresh stored outputs)"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,keras]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sngan_edu.course.demo

# make test: every unit test and every notebook in one pytest run over up to four processes
# (pytest-xdist; two on a 2-core machine). --dist loadfile keeps a notebook's cells, and then its
# facts, in one process and one kernel. The longest notebooks are listed first so that they
# start first; the rest fill the other process. OMP_NUM_THREADS=1: one torch thread per process
# (runs cap their cpu_threads by it), so that the processes do not fight over the cores.
XDIST := -n auto --maxprocesses 4 --dist loadfile
LONGEST := notebooks/05_sngan_training.ipynb notebooks/07_conditional_sngan.ipynb \
	notebooks/06_hyperparameter_robustness.ipynb
test: $(STAMP)
	rm -rf $(NOTEBOOK_RUNS)
	OMP_NUM_THREADS=1 $(BIN)/python -m $(NBVAL) $(XDIST) $(LONGEST) $(filter-out $(LONGEST),$(NOTEBOOKS)) \
		tests --ignore=tests/browser

# The fast tier while editing: ruff, then the unit tests not marked slow (tests/conftest.py marks
# the slow ones: wheel, DDP, compile, papermill, benchmark scripts, long training runs).
check: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST) -m "not slow" tests \
		--ignore=tests/browser

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests --ignore=tests/browser

# Notebooks 05 and 07 refuse to train into a folder that holds a finished run
# (resume/overwrite): their default out_dirs are these scratch folders, cleared before the
# notebooks are executed.
NOTEBOOK_RUNS := runs/05_sngan_training runs/07_conditional_sngan

nbval: $(STAMP)
	rm -rf $(NOTEBOOK_RUNS)
	$(BIN)/python -m $(NBVAL) $(NOTEBOOKS)

# nbval on other CPU kernels, both of which must pass: torch/MKL/oneDNN forced onto AVX2 kernels,
# then torch's default (non-vectorized) ones. A cell whose stored output changes here would also
# change on a CPU of another type (e.g. in CI), so it must print robust facts instead.
# One probe or one notebook: make nbval-probe PROBES=default NOTEBOOKS=notebooks/01_....ipynb
PROBE_ENV_avx2 := ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
PROBE_ENV_default := ATEN_CPU_CAPABILITY=default
PROBES ?= avx2 default
nbval-probe: $(STAMP)
	$(foreach probe,$(PROBES),rm -rf $(NOTEBOOK_RUNS) && echo "nbval-probe: $(probe) kernels" && \
		$(PROBE_ENV_$(probe)) $(BIN)/python -m $(NBVAL) $(NOTEBOOKS) &&) true

lint: $(STAMP)
	$(BIN)/ruff check sngan_edu tests benchmarks notebooks instructor tools

# sngan-edu lab: JupyterLab with the course's defaults (sngan_edu/assets/jupyter/, no news
# pop-up), here on notebooks/ itself (elsewhere it copies the notebooks into a folder first).
lab: $(STAMP)
	$(BIN)/sngan-edu lab notebooks

# Re-execute notebooks in place so their stored outputs match the code (then commit them).
# One notebook: make notebooks NOTEBOOKS=notebooks/01_svd_vs_power_iteration.ipynb
notebooks: $(STAMP)
	rm -rf $(NOTEBOOK_RUNS)
	$(BIN)/python tools/execute_notebooks.py $(NOTEBOOKS)
	$(BIN)/python -m sngan_edu.course.student --force

constraints: $(STAMP)
	{ echo "# Exact versions the stored notebook outputs were produced with. Regenerate: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt

clean:
	rm -rf runs student test-artifacts .pytest_cache

# Robustness sweep (notebook 06's stored study, updated in sngan_edu/assets/studies/): notebook
# 05's run for settings A-F x {sn, none}.
.PHONY: sweep
sweep: $(STAMP)
	$(BIN)/sngan-edu sweep --jobs 2 --update-stored

# Student copies of the exercise notebooks (notebooks/exercises/, generated from instructor/exercises/).
.PHONY: student
student: $(STAMP)
	$(BIN)/python -m sngan_edu.course.student --force

# End-to-end test in headless Chromium (installs Debian's chromium once; CI runs as root).
.PHONY: test-browser
test-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser
