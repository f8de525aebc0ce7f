"""Benchmark: reading MovieLens-25M's ratings.csv: the course's strict loader against plain pandas.

Writes files in ML-25M's format (``ratings.csv`` and ``movies.csv``, headers, quoting and number
formats as GroupLens ships them) from ``movielens_shaped("ml-25m")``, ``--ratings`` ratings
(default the full 25,000,095), into a temporary folder, then measures, each in a fresh
subprocess, the wall time of the call and the process's peak RSS (and its RSS after the
imports, before the call):

- ``loader_data_home``: ``load_movielens("ml-25m", data_home=folder)`` with ``RECS_COURSE_DATA``
  at an empty folder: the strict parse of both files. Loads from ``data_home`` are never cached
  (by design), so the parsed cache is measured on the next two, the path of a real first load:
- ``loader_archive_cold``: the files zipped as GroupLens ships them (``ml-25m/ratings.csv``
  in ``ml-25m.zip``, deflated) in an empty cache: ``load_movielens("ml-25m", download=False)``
  hashes the zip (SHA-256), parses it and writes ``ml-25m.parsed.npz``. The subprocess points
  ``REGISTRY["ml-25m"]`` at this zip's hash (a synthetic archive is not the official one).
- ``loader_cache``: the same load again: from the parsed cache.
- ``pandas_c``: ``pd.read_csv(ratings.csv, engine="c", dtype=...)``, ratings only, no checks.
- ``pandas_pyarrow``: the same with ``engine="pyarrow"`` (multithreaded).
- ``pyarrow_native``: ``pyarrow.csv.read_csv`` with the column types, then ``to_pandas()``:
  what a loader built on pyarrow would call (pandas' pyarrow engine converts the dtypes after
  the read, which costs more than the read itself).

The two pyarrow cases are optional: measured only where ``import pyarrow`` works in the
subprocess (``pip install pyarrow``, or ``--pyarrow-path DIR``: a folder holding it that only
these subprocesses see, e.g. ``pip install --target DIR pyarrow``).

Also measured, in its own subprocess: the generation (``movielens_shaped``: time, peak RSS)
and the skew statistics of the generated ratings, next to the real ML-25M's.

Run:  python -m benchmarks.bench_parse [--ratings 25000095] [--repeats 1] [--pyarrow-path DIR]
      [--keep DIR] [--output benchmarks/results/parse.json]
Writes benchmarks/results/parse.json (atomically). The full size needs about 2 GB of disk in
the temporary folder and takes a few minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from benchmarks.common import REPO, RESULTS, argument_parser, command_line, machine_line, write_json

FULL = 25_000_095
CASES = (
    "loader_data_home",
    "loader_archive_cold",
    "loader_cache",
    "pandas_c",
    "pandas_pyarrow",
    "pyarrow_native",
)
PYARROW_CASES = ("pandas_pyarrow", "pyarrow_native")
RATINGS_HEADER = ["userId", "movieId", "rating", "timestamp"]
RATINGS_DTYPES = {"userId": "int64", "movieId": "int64", "rating": "float32", "timestamp": "int64"}

# The real ML-25M, for comparison (GroupLens's README and the files; item Gini from LensKit's
# data description, codex.lenskit.org/movielens/ML25M).
REAL_ML25M = {
    "users": 162_541,
    "ratings": 25_000_095,
    "items_rated": 59_047,
    "user_min": 20,
    "user_median": 71,
    "user_mean": 153.81,
    "user_max": 32_202,
    "item_mean": 423.39,
    "item_max": 81_491,
    "item_gini": 0.942,
    "rating_mean": 3.534,
    "rating_mode": 4.0,
}


# --------------------------------------------------------------------------------------------
# Files in ML-25M's format


def write_ml25m_files(ml, folder: Path) -> dict[str, int]:
    """Write ``ml`` (a ``MovieLens`` in the course's schema) as ML-25M's ``ratings.csv`` and
    ``movies.csv`` in ``folder``; returns each file's size in bytes.

    As GroupLens writes them: UTF-8, ``\\n`` line ends, the headers ``userId,movieId,rating,
    timestamp`` and ``movieId,title,genres``, ratings with one decimal (``3.5``, ``4.0``),
    titles ``Title (1995)`` (the year in the title, none where it is missing), quoted where they
    hold a comma or a quote (``"American President, The (1995)"``), genres joined by ``|``,
    ``(no genres listed)`` for none. Rows in the frames' order.
    """
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ml.ratings.to_csv(
        folder / "ratings.csv",
        index=False,
        header=RATINGS_HEADER,
        float_format="%.1f",
        lineterminator="\n",
        chunksize=1_000_000,
    )
    items = ml.items
    year = items["year"].astype("string")
    title = (items["title"].astype(str) + " (" + year + ")").fillna(items["title"].astype(str))
    genres = pd.Series(
        ["|".join(g) if len(g) else "(no genres listed)" for g in items["genres"]], dtype=object
    )
    pd.DataFrame({"movieId": items["item_id"], "title": title, "genres": genres}).to_csv(
        folder / "movies.csv", index=False, lineterminator="\n", encoding="utf-8"
    )
    return {name: (folder / name).stat().st_size for name in ("ratings.csv", "movies.csv")}


def zip_like_grouplens(folder: Path, path: Path) -> None:
    """``ml-25m.zip`` holding ``ml-25m/ratings.csv`` and ``ml-25m/movies.csv``, deflated."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ("ratings.csv", "movies.csv"):
            zf.write(folder / name, f"ml-25m/{name}")


# --------------------------------------------------------------------------------------------
# Statistics of the generated data


def shape_statistics(ratings, n_items: int) -> dict:
    """Per-user and per-item counts and the rating marginal of a ratings frame (vectorised)."""
    import numpy as np

    user = np.bincount(ratings["user_id"].to_numpy())
    user = user[user > 0]
    counts = np.bincount(ratings["item_id"].to_numpy(), minlength=n_items + 1)[1:]
    rated = np.sort(counts[counts > 0])
    total = rated.sum()
    n = len(rated)
    gini = float((2 * np.arange(1, n + 1) - n - 1) @ rated / (n * total))
    by_catalogue = np.sort(counts)[::-1]
    values, value_counts = np.unique(ratings["rating"].to_numpy(), return_counts=True)
    return {
        "users": int(len(user)),
        "ratings": int(len(ratings)),
        "items_rated": int(n),
        "user_min": int(user.min()),
        "user_median": float(np.median(user)),
        "user_mean": round(float(user.mean()), 2),
        "user_max": int(user.max()),
        "item_median": float(np.median(rated)),
        "item_mean": round(float(rated.mean()), 2),
        "item_max": int(rated[-1]),
        "item_max_share_of_users": round(float(rated[-1] / len(user)), 3),
        "item_gini": round(gini, 3),
        "items_under_5": round(float((rated < 5).mean()), 3),
        "items_under_10": round(float((rated < 10).mean()), 3),
        "items_with_one": round(float((rated == 1).mean()), 3),
        "top_1pct_catalogue_share": round(float(by_catalogue[: n_items // 100].sum() / total), 3),
        "top_10pct_catalogue_share": round(float(by_catalogue[: n_items // 10].sum() / total), 3),
        "rating_mean": round(float(ratings["rating"].mean()), 4),
        "rating_mode": float(values[np.argmax(value_counts)]),
        "rating_shares": {
            f"{v:.1f}": round(float(c / len(ratings)), 4)
            for v, c in zip(values, value_counts, strict=True)
        },
    }


# --------------------------------------------------------------------------------------------
# The measured calls, each run by a fresh subprocess (``--child CASE``)


def _rss_mb() -> float:
    """The resident set size now (``/proc/self/status``; the peak where it is not there)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_mb()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(case: str, folder: Path, cache: Path, fraction: float) -> dict:
    """Run one measured call in this (fresh) process and describe it."""
    import numpy as np  # noqa: F401 - imported before the clock starts, as by any user
    import pandas as pd

    from recs_course.data import movielens as mlmod

    out: dict = {}
    if case == "generate":
        from recs_course.data import movielens_shaped

        before = _rss_mb()
        t0 = time.perf_counter()
        ml = movielens_shaped("ml-25m", fraction=fraction, seed=0)
        out["wall_s"] = time.perf_counter() - t0
        out["rss_before_mb"], out["peak_rss_mb"] = before, _peak_mb()
        t0 = time.perf_counter()
        out["sizes_bytes"] = write_ml25m_files(ml, folder)
        out["write_s"] = time.perf_counter() - t0
        out["peak_rss_after_write_mb"] = _peak_mb()
        out["statistics"] = shape_statistics(ml.ratings, len(ml.items))
        return out
    if case == "loader_archive_cold" or case == "loader_cache":
        zip_path = cache / "ml-25m.zip"
        spec = mlmod.REGISTRY["ml-25m"]
        digest = json.loads((cache / "zip.json").read_text())["sha256"]
        mlmod.REGISTRY["ml-25m"] = mlmod.Archive(
            spec.url, zip_path.stat().st_size, digest, spec.files
        )
    if case in PYARROW_CASES:
        import pyarrow
        import pyarrow.csv

        out["pyarrow"] = pyarrow.__version__
        out["pyarrow_cpu_count"] = pyarrow.cpu_count()
    before = _rss_mb()
    t0 = time.perf_counter()
    if case == "loader_data_home":
        ml = mlmod.load_movielens("ml-25m", data_home=folder)
    elif case in ("loader_archive_cold", "loader_cache"):
        ml = mlmod.load_movielens("ml-25m", download=False)
    elif case == "pyarrow_native":
        types = {c: getattr(pyarrow, t)() for c, t in RATINGS_DTYPES.items()}
        options = pyarrow.csv.ConvertOptions(column_types=types)
        frame = pyarrow.csv.read_csv(folder / "ratings.csv", convert_options=options).to_pandas()
    else:
        frame = pd.read_csv(
            folder / "ratings.csv",
            engine="c" if case == "pandas_c" else "pyarrow",
            dtype=RATINGS_DTYPES,
        )
    out["wall_s"] = time.perf_counter() - t0
    out["rss_before_mb"], out["peak_rss_mb"] = before, _peak_mb()
    if case.startswith("loader"):
        out["source"] = ml.source
        out["rows"] = len(ml.ratings)
        out["items"] = len(ml.items)
        out["parsed_cache_written"] = (cache / "ml-25m.parsed.npz").is_file()
    else:
        out["rows"] = len(frame)
        out["dtypes"] = [str(t) for t in frame.dtypes]
    return out


def run_child(case: str, folder: Path, cache: Path, fraction: float, pyarrow_path: str | None):
    """``child(case)`` in a fresh interpreter; its result, plus the subprocess's own wall time
    (interpreter start and imports included). ``None`` when pyarrow is not importable there."""
    env = dict(os.environ, RECS_COURSE_DATA=str(cache), RECS_COURSE_PROGRESS="0")
    if case in PYARROW_CASES and pyarrow_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pyarrow_path, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "benchmarks.bench_parse", "--child", case]
    cmd += ["--folder", str(folder), "--cache", str(cache), "--fraction", repr(fraction)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        if case in PYARROW_CASES and "No module named 'pyarrow'" in proc.stderr:
            return None
        raise RuntimeError(f"{case} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = total
    return result


def summary(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    return {
        "wall_s": statistics.median(walls),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "rss_before_mb": statistics.median(r["rss_before_mb"] for r in runs),
        "all_wall_s": walls,
        "process_wall_s": [r["process_wall_s"] for r in runs],
        **{
            k: v
            for k, v in runs[-1].items()
            if k not in ("wall_s", "peak_rss_mb", "rss_before_mb", "process_wall_s")
        },
    }


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None):
    parser = argument_parser("bench_parse", __doc__)
    parser.add_argument("--ratings", type=int, default=FULL, help=f"rows of ratings.csv ({FULL})")
    parser.add_argument("--repeats", type=int, default=1, help="subprocesses per case (1)")
    parser.add_argument(
        "--pyarrow-path",
        default=None,
        help="a folder holding pyarrow, seen only by the pyarrow cases",
    )
    parser.add_argument("--keep", default=None, help="write the files here and keep them")
    parser.add_argument("--output", default=str(RESULTS / "parse.json"))
    parser.add_argument("--child", choices=("generate", *CASES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--fraction", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 20 <= args.ratings <= FULL:
        parser.error(f"--ratings must be between 20 and {FULL}, got {args.ratings}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def thread_counts() -> dict:
    """What may run in parallel: the CPUs, the BLAS variables; pandas' C parser and the loader
    are single-threaded, pyarrow's reader uses ``pyarrow.cpu_count()`` threads."""
    return {
        "os_cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        **{
            v: os.environ.get(v)
            for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        },
        "pandas_c_engine": 1,
        "recs_course_loader": 1,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = child(args.child, Path(args.folder), Path(args.cache), args.fraction)
        print(json.dumps(result))
        return 0

    from importlib import metadata

    import pandas as pd

    fraction = args.ratings / FULL
    with tempfile.TemporaryDirectory(prefix="bench_parse_") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp) / "ml-25m"
        cache = Path(tmp) / "cache"
        cache.mkdir()
        print(f"generating {args.ratings:,} ratings into {folder} ...", flush=True)
        generated = run_child("generate", folder, cache, fraction, None)
        print(
            f"  {generated['wall_s']:.1f} s, peak RSS {generated['peak_rss_mb']:.0f} MB; "
            f"files written in {generated['write_s']:.1f} s",
            flush=True,
        )
        t0 = time.perf_counter()
        zip_like_grouplens(folder, cache / "ml-25m.zip")
        zip_s = time.perf_counter() - t0
        digest = hashlib.sha256()
        with open(cache / "ml-25m.zip", "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        (cache / "zip.json").write_text(json.dumps({"sha256": digest.hexdigest()}))
        zip_size = (cache / "ml-25m.zip").stat().st_size

        results: dict = {}
        runs: dict[str, list[dict]] = {c: [] for c in CASES}
        for repeat in range(args.repeats):
            for case in CASES:
                if case == "loader_data_home":
                    data_cache = Path(tmp) / f"empty_{repeat}"
                    data_cache.mkdir()
                    res = run_child(case, folder, data_cache, fraction, None)
                    assert not any(data_cache.iterdir()), "a data_home load cached something"
                else:
                    if case == "loader_archive_cold":
                        (cache / "ml-25m.parsed.npz").unlink(missing_ok=True)
                    res = run_child(case, folder, cache, fraction, args.pyarrow_path)
                if res is None:
                    print(f"  {case}: pyarrow is not installed (optional): skipped", flush=True)
                    continue
                runs[case].append(res)
                print(
                    f"  {case}: {res['wall_s']:.2f} s, peak RSS {res['peak_rss_mb']:.0f} MB"
                    + (f" (source {res['source']})" if "source" in res else ""),
                    flush=True,
                )
        for case in CASES:
            results[case] = summary(runs[case]) if runs[case] else None
        parsed = cache / "ml-25m.parsed.npz"
        parsed_size = parsed.stat().st_size if parsed.exists() else None

    base = results["pandas_c"]["wall_s"]
    report = {
        "benchmark": "reading ML-25M's ratings.csv: load_movielens (strict, cached) vs pandas",
        "command": command_line("bench_parse", argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine_line(),
        "python": sys.version.split()[0],
        "pandas": pd.__version__,
        "recs_course": metadata.version("recs_course"),
        "threads": thread_counts(),
        "notes": [
            "Each case runs in a fresh subprocess; wall_s times the call only (imports done), "
            "peak_rss_mb is the subprocess's peak (imports included), rss_before_mb its RSS "
            "before the call; process_wall_s includes the interpreter start and the imports.",
            "loader_data_home parses the folder and caches nothing (by design); "
            "loader_archive_cold hashes, parses the zip and writes <name>.parsed.npz; "
            "loader_cache reads it back.",
            "pandas_c, pandas_pyarrow and pyarrow_native read ratings.csv only, without any of "
            "the loader's checks; the pyarrow cases are optional (measured only where pyarrow "
            "imports).",
            "ratings.csv is in the page cache for every case (written just before): cold-disk "
            "reads are not measured.",
        ],
        "ratings": generated["statistics"]["ratings"],
        "fraction": fraction,
        "files_bytes": {
            **generated["sizes_bytes"],
            "ml-25m.zip": zip_size,
            "ml-25m.parsed.npz": parsed_size,
        },
        "generate": {
            k: generated[k]
            for k in (
                "wall_s",
                "rss_before_mb",
                "peak_rss_mb",
                "write_s",
                "peak_rss_after_write_mb",
            )
        }
        | {"zip_s": zip_s},
        "statistics": generated["statistics"],
        "real_ml25m": REAL_ML25M,
        "results": results,
        "ratio_to_pandas_c": {
            case: (None if r is None else r["wall_s"] / base) for case, r in results.items()
        },
    }
    write_json(Path(args.output), report)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
