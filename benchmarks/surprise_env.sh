#!/usr/bin/env bash
# Create .venv-surprise/, a separate virtual environment holding scikit-surprise 1.1.5,
# the explicit-rating peer that `python -m benchmarks.peers` compares the course package
# against (through `python -m benchmarks.surprise_run`, which imports benchmarks.common: the
# standard library only, no recs_course).  Usage (from anywhere):
#
#     bash benchmarks/surprise_env.sh            # create or update
#     bash benchmarks/surprise_env.sh --fresh    # delete and re-create
#
# Why the pins:
#   * scikit-surprise==1.1.5  the cp311 manylinux wheel on PyPI (no compiler needed).
#   * numpy<2                 surprise's Cython extensions were built against the NumPy 1.x
#                             ABI in earlier releases; 1.26 is the safe choice for every
#                             1.1.x wheel and costs nothing here.
#   * pandas<3                only used by benchmarks/surprise_run.py to read the split files.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-surprise"
PYTHON="${PYTHON:-python3}"

if [[ "${1:-}" == "--fresh" ]]; then
    rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --only-binary=:all: \
    "scikit-surprise==1.1.5" "numpy<2" "pandas<3"

"$VENV/bin/python" - <<'PY'
import numpy, pandas, surprise
from surprise import SVD, SVDpp  # noqa: F401  (checks the compiled extensions load)
print(f"surprise {surprise.__version__}  numpy {numpy.__version__}  pandas {pandas.__version__}")
PY
