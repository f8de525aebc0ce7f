# One-command entry points. Each target does its own set-up in a local virtual environment.
#   make test   -- lint + unit tests (+ chapters on shrunk data once they exist)
#   make book   -- build the whole book, every chapter executed on the full ml-100k on CPU
#   make bench  -- benchmarks (not part of the tests)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The pinned CPU build of torch is installed first so that the package's own range
# (torch>=2.2) is already satisfied and pip never pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup test lint unit chapters book bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test,book]"
	# Offline mirror of MovieLens-100K (the data files of RecBole's wheel, read without importing it).
	$(BIN)/python -m pip install -q --no-deps "recbole==1.2.1"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check recs_course tests benchmarks

# Chapters, the book and the browser run with no progress bars and the course's thread count.
export RECS_COURSE_PROGRESS = 0
NBVAL_QUICK := RECS_COURSE_QUICK=1

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not notebooks and not browser" -n 2 --durations=5

# Every chapter on shrunk data: papermill with QUICK=True (figures read back and checked),
# then nbval on the paired notebooks in quick mode.
chapters: $(STAMP)
	$(BIN)/python -m pytest -q -m notebooks -n 2 --durations=0 tests/test_chapters.py
	$(NBVAL_QUICK) $(BIN)/python -m pytest -q -n 2 --nbval-lax -p no:randomly book/

test: lint unit chapters

book: $(STAMP)
	set -eo pipefail; $(BIN)/jupyter-book build . -W --keep-going

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sampling.py
	$(BIN)/python benchmarks/bench_evaluation.py

clean:
	rm -rf _build .pytest_cache .ruff_cache
