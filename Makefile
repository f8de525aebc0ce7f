# One-command entry points. Each target does its own set-up in a local virtual environment.
#   make test   -- lint + unit tests + chapters on shrunk data + quick book build + browser check
#   make book   -- build the whole book, every chapter executed on the full ml-100k on CPU
#   make book-quick / make browser -- the last two steps of `make test` on their own
#   make bench  -- benchmarks (not part of the tests)
#   make test-oldest / make test-colab -- the unit tests and two chapters with the oldest versions
#                  pyproject.toml allows, or with the versions Colab ships (constraints/*.txt)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The pinned CPU build of torch is installed first so that the package's own range
# (torch>=2.2) is already satisfied and pip never pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Extra pip arguments for torch: where PyPI's torch is a CUDA build (GitHub's runners), use
#   make book TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: setup chromium test lint unit chapters book book-quick browser bench clean \
	test-oldest test-colab mpl-cache

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install -q -e ".[test,book,bench]"
	# Offline mirror of MovieLens-100K (the data files of RecBole's wheel, read without importing it).
	$(BIN)/python -m pip install -q --no-deps "recbole==1.2.1"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP) chromium

# The browser test drives Debian's chromium (never a downloaded browser build).
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; \
	elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "$(CHROMIUM) is missing: install Debian's chromium package as root" >&2; exit 1; fi; \
	$$SUDO apt-get update -q && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium

lint: $(STAMP)
	$(BIN)/ruff check recs_course tests benchmarks book

# Chapters, the book and the browser run with no progress bars and the course's thread count.
export RECS_COURSE_PROGRESS = 0
NBVAL_QUICK := RECS_COURSE_QUICK=1

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not notebooks and not browser" -n 2 --durations=5

# Every chapter on shrunk data: papermill with QUICK=True (figures read back and checked),
# then nbval on the paired notebooks in quick mode (--dist loadfile: a notebook's cells share one
# kernel, so they must all run on the same xdist worker).
chapters: $(STAMP)
	$(BIN)/python -m pytest -q -m notebooks -n 2 --durations=0 tests/test_chapters.py
	$(NBVAL_QUICK) $(BIN)/python -m pytest -q -n 2 --dist loadfile --nbval-lax -p no:randomly book/

test: lint unit chapters book-quick browser

# The book: Sphinx warnings are errors (-W), every problem is listed (--keep-going), and a
# chapter that fails fails the build (execute.raise_on_error in _config.yml). Executed chapters
# are cached in _build/.jupyter_cache: a rebuild with no change takes seconds, and the cache is
# emptied when recs_course changes (book/_ext/course_book.py). The log is kept in _build/.
# matplotlib builds its font cache on first use and, when that takes over 5 s, says so on stderr,
# which the strict build would count as a chapter's error: build it before the chapters run.
mpl-cache: $(STAMP)
	$(BIN)/python -c "import matplotlib.font_manager"

book: $(STAMP) mpl-cache
	mkdir -p _build
	set -eo pipefail; RECS_COURSE_QUICK=0 RECS_COURSE_SCALE_DATA=shaped \
		$(BIN)/jupyter-book build . -W --keep-going 2>&1 \
		| tee _build/book.log

# Quick build for the tests: every chapter shrinks itself (RECS_COURSE_QUICK=1) and is executed
# afresh (no cache), in a separate output folder so it never mixes with the full book.
QUICK_OUT := _build/quick
QUICK_HTML := $(QUICK_OUT)/_build/html
book-quick: $(STAMP) mpl-cache
	mkdir -p $(QUICK_OUT)
	set -eo pipefail; RECS_COURSE_QUICK=1 $(BIN)/jupyter-book build . --path-output $(QUICK_OUT) \
		--all -W --keep-going 2>&1 | tee $(QUICK_OUT)/book.log

# Every page of the quick build in headless chromium; screenshots land in _build/screenshots.
browser: $(STAMP) chromium
	RECS_COURSE_REQUIRE_BOOK=1 RECS_COURSE_BOOK_HTML=$(QUICK_HTML) CHROMIUM=$(CHROMIUM) \
		$(BIN)/python -m pytest -q -m browser tests/test_book.py

# The benchmarks are a package, `benchmarks`, each run as a module from the repository root.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_sampling
	$(BIN)/python -m benchmarks.bench_evaluation
	$(BIN)/python -m benchmarks.bench_neumf_epoch
	$(BIN)/python -m benchmarks.bench_scoring_pass
	$(BIN)/python -m benchmarks.bench_sparse
	$(BIN)/python -m benchmarks.tune
	$(BIN)/python -m benchmarks.leaderboard
	$(BIN)/python -m benchmarks.tie_rule
	# the peers (scikit-surprise, RecBole) in their own environments, then the side-by-side runs
	bash benchmarks/surprise_env.sh
	bash benchmarks/recbole_env.sh
	$(BIN)/python -m benchmarks.quality
	$(BIN)/python -m benchmarks.peers

# The declared dependency ranges, tested: a fresh venv per environment with the pinned CPU torch,
# the package and its test extras under constraints/<env>.txt, then the unit tests and two
# chapters on shrunk data. oldest = pyproject's floors; colab = the versions Colab ships.
COMPAT_CHAPTERS ?= 01_rating_matrix or 07_ngcf
COMPAT_EXTRA_colab := ipywidgets  # Colab ships it (7.7.1): the widget bars are tested there
test-oldest test-colab: test-%:
	rm -rf $(VENV)-$*
	$(PYTHON) -m venv $(VENV)-$*
	$(VENV)-$*/bin/python -m pip install -q --upgrade pip
	$(VENV)-$*/bin/python -m pip install -q "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(VENV)-$*/bin/python -m pip install -q -c constraints/$*.txt -e ".[test]" $(COMPAT_EXTRA_$*)
	$(VENV)-$*/bin/python -m pip check
	$(VENV)-$*/bin/python -m pip install -q --no-deps "recbole==1.2.1"
	$(VENV)-$*/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(VENV)-$*/bin/python -c "import sys, numpy, pandas, scipy, sklearn, matplotlib, torch; \
		print('$*:', sys.version.split()[0], *(f'{m.__name__} {m.__version__}' for m in \
		(torch, numpy, pandas, scipy, sklearn, matplotlib)), sep=' | ')"
	$(VENV)-$*/bin/python -m pytest -q -m "not notebooks and not browser" -n 2 -p no:cacheprovider
	$(VENV)-$*/bin/python -m pytest -q -m notebooks -n 2 -p no:cacheprovider \
		tests/test_chapters.py -k "$(COMPAT_CHAPTERS)"

clean:
	rm -rf _build .pytest_cache .ruff_cache
