#!/usr/bin/env bash
# Create .venv-recbole/, a separate virtual environment holding RecBole 1.2.1,
# the reference implementation that `python -m benchmarks.recbole_run` runs for
# `python -m benchmarks.peers` to compare the course package against (the
# benchmarks modules it imports need the standard library only, pandas for the
# split files, and recbole).  Usage (from anywhere):
#
#     bash benchmarks/recbole_env.sh            # create or update
#     bash benchmarks/recbole_env.sh --fresh    # delete and re-create
#
# Why the pins (RecBole 1.2.1 was released in 2023 and is not maintained for
# the newer stack):
#   * torch==2.13.0   the CPU wheel on local disk; never ask for a bare
#                     `torch`, which pulls several GB of CUDA packages.
#   * scipy<1.12      LightGCN/NGCF build their graph with
#                     scipy.sparse.dok_matrix._update, gone from SciPy 1.12.
#   * numpy<2         SciPy 1.11 wheels are built against NumPy 1.x.
#   * pandas<3        RecBole fills NaNs with chained `df[col].fillna(...,
#                     inplace=True)`, a silent no-op under pandas 3's
#                     copy-on-write.
#   * setuptools>=77.0.3,<81  torch 2.13 needs >=77.0.3; <81 keeps
#                     pkg_resources (removed in 81) for older tensorboard
#                     releases.  Nothing installed here imports it today.
#   * recbole --no-deps: its metadata pins ray (only its quick-start/tuning
#     helpers import it) and exact old colorlog/colorama; we install the real
#     run-time dependencies by hand and leave ray out.  recbole_run.py
#     therefore never imports recbole.quick_start.
# At run time also set TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (torch>=2.6 loads
# checkpoints with weights_only=True, and RecBole's saved checkpoints hold
# its Config object); recbole_run.py sets it itself.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-recbole"
PYTHON="${PYTHON:-python3}"

if [[ "${1:-}" == "--fresh" ]]; then
    rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# torch alone first, so nothing else can pull a CUDA build.  The setuptools pin goes
# into every install: torch 2.13 needs setuptools>=77.0.3 and, asked alone, pip would
# replace the venv's setuptools 65 by the newest release (84 at the time of writing).
SETUPTOOLS="setuptools>=77.0.3,<81"
"${PIP[@]}" "$SETUPTOOLS" wheel "torch==2.13.0"

# RecBole's real run-time dependencies (everything in its metadata but ray),
# with torch held at the version just installed.
"${PIP[@]}" "$SETUPTOOLS" "torch==2.13.0" \
    "numpy<2" "pandas<3" "scipy<1.12" \
    "scikit-learn" "tqdm" "pyyaml" \
    "colorlog==4.7.2" "colorama==0.4.4" \
    "tensorboard" "texttable" "tabulate" "psutil" "thop" "plotly"
"${PIP[@]}" --no-deps "recbole==1.2.1"

"$VENV/bin/python" - <<'EOF'
import os
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
import numpy, pandas, scipy, setuptools, torch
import recbole
from recbole.config import Config  # noqa: F401  (checks the import chain)
from recbole.trainer import Trainer  # noqa: F401
print(f"recbole {recbole.__version__}  torch {torch.__version__}  numpy {numpy.__version__}"
      f"  pandas {pandas.__version__}  scipy {scipy.__version__}"
      f"  setuptools {setuptools.__version__}")
EOF
