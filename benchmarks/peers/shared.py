"""What the sections of ``benchmarks.peers`` share: the peers' subprocesses, the course side's
epoch timing, and the implicit models' sizes (RecBole's settings, ``benchmarks.recbole_settings``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, Clock, set_thread_env

SURPRISE_PY = REPO / ".venv-surprise" / "bin" / "python"
RECBOLE_PY = REPO / ".venv-recbole" / "bin" / "python"
ENV_SCRIPTS = {SURPRISE_PY: "surprise_env.sh", RECBOLE_PY: "recbole_env.sh"}

NCF_BATCH, NCF_NEG, FULL_BATCH = 256, 4, 2048
TOWER = (64, 64, 32, 16, 8)  # RecBole: 32 + 32 embedding -> hidden [64, 32, 16, 8]


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def need(python: Path) -> None:
    """Stop, saying what to run, when a peer's environment is missing."""
    if not python.exists():
        raise SystemExit(
            f"{python.relative_to(REPO)} is missing: run `bash benchmarks/{ENV_SCRIPTS[python]}` "
            "first"
        )


def run_peer(python: Path, module: str, args: list[str], out_file: Path, threads: int) -> dict:
    """``python -m benchmarks.<module> ARGS`` in a peer's environment, with ``threads`` threads;
    returns the JSON it wrote to ``out_file``."""
    need(python)
    cmd = [str(python), "-m", f"benchmarks.{module}", *args]
    log(f"{module}: " + " ".join(cmd[1:]))
    env = set_thread_env(threads, dict(os.environ))
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # RecBole's checkpoints pickle its Config
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    return json.loads(out_file.read_text())


class EpochTimer:
    """The batches of ``data`` for ``fit``, timing each part of an epoch; ``evaluate`` for its
    ``evaluate=``.

    An epoch's training runs from the start of its pass over ``data`` to the call of
    ``evaluate``; ``data_s`` is the part spent before its first batch (for
    ``InstanceBatches``: drawing the epoch's instances and shuffling them).
    """

    def __init__(self, data: Iterable, evaluate: Callable | None = None):
        self.data, self.evaluate_fn = data, evaluate
        self.train, self.data_times, self.eval = [], [], []
        self._start = None

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator:
        self._start = (time.perf_counter(), time.process_time())
        with Clock() as c:
            batches = iter(self.data)
            first = next(batches, None)
        self.data_times.append((c.wall, c.cpu))
        if first is not None:
            yield first
            yield from batches

    def evaluate(self, model) -> dict:
        wall, cpu = self._start
        self.train.append((time.perf_counter() - wall, time.process_time() - cpu))
        with Clock() as c:
            out = self.evaluate_fn(model) if self.evaluate_fn else {}
        self.eval.append((c.wall, c.cpu))
        return out

    @staticmethod
    def _mean(pairs, k):
        return float(np.mean([p[k] for p in pairs])) if pairs else None

    def summary(self) -> dict:
        out = {
            "train_s_per_epoch": self._mean(self.train, 0),
            "train_cpu_s_per_epoch": self._mean(self.train, 1),
            "data_s_per_epoch": self._mean(self.data_times, 0),
            "data_cpu_s_per_epoch": self._mean(self.data_times, 1),
        }
        if self.evaluate_fn is not None:
            out["valid_s_per_eval"] = self._mean(self.eval, 0)
            out["valid_cpu_s_per_eval"] = self._mean(self.eval, 1)
        return out
