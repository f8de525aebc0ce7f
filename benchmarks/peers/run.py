"""A run of some sections of ``benchmarks.peers``, merged into ``peers.json``, then rendered.

Imported by ``__main__`` once the thread count is in the environment (it imports torch).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import command_line, write_json
from benchmarks.peers.explicit import run_explicit
from benchmarks.peers.ranking import run_ranking
from benchmarks.peers.report import render
from benchmarks.peers.scaling import run_scaling
from benchmarks.peers.shared import log
from benchmarks.peers.speed import run_speed
from recs_course.data import load_movielens, subsample_users


def rounded(obj, digits=5):
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rounded(v, digits) for v in obj]
    if isinstance(obj, float | np.floating):
        return round(float(obj), digits)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def machine(threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def load_ratings(quick: bool, seed: int) -> pd.DataFrame:
    ratings = load_movielens("ml-100k").ratings
    if quick:
        ratings = subsample_users(ratings, n_users=150, seed=seed)
    return ratings


def run(args, out_dir: Path, argv: list[str]) -> int:
    """Run ``args.only``'s sections; merge them into ``out_dir/peers.json`` and render it."""
    torch.set_num_threads(args.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "peers.json"
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    if report.get("quick") is not None and report.get("quick") != args.quick:
        report = {}  # never mix a smoke run's sections with a full run's
    command = command_line("peers", argv)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ratings = load_ratings(args.quick, args.seed)
    cap = 2 if args.quick else None
    now: dict = {}
    with tempfile.TemporaryDirectory(prefix="peers_") as tmp_name:
        tmp = Path(tmp_name)
        for sub in ("speed_explicit", "speed_ranking"):
            (tmp / sub).mkdir()
        started = time.perf_counter()
        if "explicit" in args.only:
            now["explicit"] = run_explicit(args, ratings, tmp, epochs_cap=cap)
        if "ranking" in args.only:
            now["ranking"] = run_ranking(args, ratings, tmp, epochs_cap=cap)
        if "speed" in args.only:
            now["speed"] = run_speed(args, ratings, tmp, now, report)
        if "scaling" in args.only:
            now["scaling"] = {"results": run_scaling(args)}
        elapsed = time.perf_counter() - started
    # re-read: another run may have written other sections meanwhile
    if json_path.exists():
        latest = json.loads(json_path.read_text())
        if latest.get("quick") == args.quick:
            report = latest
    for section, value in now.items():
        value.update(command=command, created=created)
        report[section] = rounded(value)
    report.update(
        quick=args.quick,
        machine=machine(args.threads),
        last_run={
            "command": command,
            "created": created,
            "sections": args.only,
            "elapsed_s": round(elapsed, 1),
        },
    )
    write_json(json_path, report, indent=1, allow_nan=False)
    written = render(report, out_dir)
    log(f"wrote {json_path}, {', '.join(written)} in {elapsed:.0f} s")
    return 0
