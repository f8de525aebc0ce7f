"""Helpers shared by every benchmark, the course's side and the peers' alike.

Standard library only: the peers' runners (``benchmarks.recbole_run``, ``benchmarks.surprise_run``)
run in their own environments, without ``recs_course`` (nor, for the surprise one, torch), and
import this module too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
# The thread pools of numpy's and torch's BLAS back ends (read once, when they are loaded).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``): ratios
    differ between CPUs, so every result names its own."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    """One line naming the machine, e.g. ``Linux x86_64, AMD EPYC 7B13, 2 logical CPUs``."""
    return f"{platform.system()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} logical CPUs"


def write_json(path: Path, obj: Any, indent: int = 2, **dumps_kw: Any) -> None:
    """Write ``obj`` as JSON atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=indent, **dumps_kw) + "\n")
    os.replace(tmp, path)


def command_line(module: str, argv: list[str] | None = None) -> str:
    """How this run was started, for the results: ``python -m benchmarks.<module> ARGS``."""
    return " ".join([f"python -m benchmarks.{module}", *(sys.argv[1:] if argv is None else argv)])


def argument_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``python -m benchmarks.<module>``, described by ``doc``'s first paragraph."""
    return argparse.ArgumentParser(
        prog=f"python -m benchmarks.{module}", description=doc.split("\n\n")[0]
    )


def comma_list(parser: argparse.ArgumentParser, value: str, choices: Sequence[str]) -> list[str]:
    """The names of a comma-separated ``--only`` value, each one of ``choices``, in its order."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names or any(n not in choices for n in names):
        parser.error(f"--only takes a comma-separated subset of {','.join(choices)}, got {value!r}")
    return names


def set_thread_env(threads: int, env: dict | None = None) -> dict:
    """Put ``threads`` in the BLAS thread variables of ``env`` (``os.environ`` by default).

    Only effective before numpy or torch is imported by the process that reads ``env``.
    """
    env = os.environ if env is None else env
    for var in THREAD_VARS:
        env[var] = str(threads)
    return env


class Clock:
    """Wall and process CPU seconds of a block: ``with Clock() as c: ...; c.wall, c.cpu``."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> bool:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        return False


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or ``None`` when either is missing or ``b`` is not positive."""
    return None if a is None or b is None or b <= 0 else a / b
