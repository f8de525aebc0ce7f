"""Benchmark: one epoch of pointwise training instances (positives + 4 negatives each).

Compares, on the full ml-100k, ``recs_course.data.pointwise_instances`` (vectorised, exact)
with the per-rating Python loop most tutorials write::

    for u, i in ratings:
        append (u, i, 1)
        for _ in range(4):
            j = random item; while j in user_set[u]: j = random item
            append (u, j, 0)

Both produce tensors. The user -> set-of-items dictionary of the loop and the
``NegativeSampler`` of the vectorised version are built once, outside the timed epoch (as they
would be in training); the vectorised time from scratch (sampler built inside) is reported
too. The four take turns in every repeat (the numpy-per-draw loop in every other one, the
vectorised versions five calls each), so a change of the machine's load hits them alike; the
medians are compared. Also times ``load_movielens`` from the cache.

Run:  python -m benchmarks.bench_sampling [--threads 1] [--repeats 5]
Writes benchmarks/results/sampling.json.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_line, write_json
from recs_course.data import IdEncoder, NegativeSampler, load_movielens, pointwise_instances


def python_loop(users: list[int], items: list[int], n_items: int, n_neg: int, user_set, draw):
    """The tutorial version: one Python iteration per rating, a set lookup per draw.

    ``draw(n)`` returns a random item in ``[0, n)``: ``random.Random.randrange`` (the fastest
    pure-Python draw, the main baseline) or a NumPy call per draw (what tutorials often write).
    """
    out_u, out_i, out_y = [], [], []
    for u, i in zip(users, items, strict=True):
        out_u.append(u)
        out_i.append(i)
        out_y.append(1.0)
        seen = user_set[u]
        for _ in range(n_neg):
            j = draw(n_items)
            while j in seen:
                j = draw(n_items)
            out_u.append(u)
            out_i.append(j)
            out_y.append(0.0)
    return (
        torch.tensor(out_u, dtype=torch.int64),
        torch.tensor(out_i, dtype=torch.int64),
        torch.tensor(out_y, dtype=torch.float32),
    )


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def interleaved_times(
    fns: dict, repeats: int, every: dict | None = None, calls: dict | None = None
) -> dict[str, list[float]]:
    """Seconds of each call of ``fns[name]()``, the functions taking turns in every repeat, so
    that a change of the machine's load hits them all alike (a shared machine's load moves by
    more than the differences measured). ``every[name] = k`` runs ``name`` in one repeat of
    ``k`` only (the slow baselines); ``calls[name] = c`` calls it ``c`` times in a row in each
    repeat (the fast ones: a few milliseconds are noisy), each call timed."""
    every, calls = every or {}, calls or {}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for rep in range(repeats):
        for name, fn in fns.items():
            if rep % every.get(name, 1):
                continue
            for _ in range(calls.get(name, 1)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each")
    parser.add_argument("--n-neg", type=int, default=4, help="negatives per positive")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "sampling.json",
    )
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be at least 1")

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads = {torch.get_num_threads()}")

    ml = load_movielens(args.dataset)  # fills the cache if needed
    load_s, _ = median_time(lambda: load_movielens(args.dataset), args.repeats)
    cached = load_movielens(args.dataset)
    print(f"load_movielens({args.dataset!r}) from {cached.source}: {load_s * 1e3:.1f} ms (median)")

    enc = IdEncoder().fit(ml.ratings)
    r = enc.transform(ml.ratings)
    n_items = enc.n_items
    users = r["user_id"].tolist()
    items = r["item_id"].tolist()
    user_set = defaultdict(set)
    for u, i in zip(users, items, strict=True):
        user_set[u].add(i)
    sampler = NegativeSampler.from_ratings(r, n_items)
    g = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    np_rng = np.random.default_rng(0)

    all_times = interleaved_times(
        {
            "python_loop": lambda: python_loop(
                users, items, n_items, args.n_neg, user_set, rng.randrange
            ),
            "python_loop_numpy_draw": lambda: python_loop(
                users, items, n_items, args.n_neg, user_set, lambda n: int(np_rng.integers(n))
            ),
            "prebuilt": lambda: pointwise_instances(
                r, n_items, args.n_neg, generator=g, positives=sampler
            ),
            "scratch": lambda: pointwise_instances(r, n_items, args.n_neg, generator=g),
        },
        args.repeats,
        every={"python_loop_numpy_draw": 2},  # about 3x slower than the main baseline
        calls={"prebuilt": 5, "scratch": 5},
    )
    loop_all, np_loop_all = all_times["python_loop"], all_times["python_loop_numpy_draw"]
    vec_all, scratch_all = all_times["prebuilt"], all_times["scratch"]
    loop_s, np_loop_s, vec_s, scratch_s = (
        statistics.median(t) for t in (loop_all, np_loop_all, vec_all, scratch_all)
    )
    n_inst = len(r) * (1 + args.n_neg)
    print(f"{args.dataset}: {len(r)} ratings -> {n_inst} instances ({args.n_neg} negatives each)")
    print(f"  python loop, random.randrange : {loop_s:8.3f} s   (baseline)")
    print(f"  python loop, numpy per draw   : {np_loop_s:8.3f} s")
    print(f"  vectorised (prebuilt sampler) : {vec_s:8.4f} s   {loop_s / vec_s:6.0f}x faster")
    print(
        f"  vectorised (from scratch)     : {scratch_s:8.4f} s   {loop_s / scratch_s:6.0f}x faster"
    )
    print(
        f"  (vs the numpy-per-draw loop: {np_loop_s / vec_s:.0f}x / {np_loop_s / scratch_s:.0f}x)"
    )

    result = {
        "benchmark": "one epoch of pointwise instances, vectorised vs Python loop",
        "command": " ".join(
            ["python -m benchmarks.bench_sampling", *(sys.argv[1:] if argv is None else argv)]
        ),
        "dataset": args.dataset,
        "dataset_source": cached.source,
        "n_ratings": len(r),
        "n_instances": n_inst,
        "n_neg": args.n_neg,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "load_cached_s": load_s,
        "python_loop_s": loop_s,
        "python_loop_numpy_draw_s": np_loop_s,
        "vectorised_prebuilt_s": vec_s,
        "vectorised_scratch_s": scratch_s,
        "speedup_prebuilt": loop_s / vec_s,
        "speedup_scratch": loop_s / scratch_s,
        "speedup_prebuilt_vs_numpy_draw_loop": np_loop_s / vec_s,
        "all_times_s": {
            "python_loop": loop_all,
            "python_loop_numpy_draw": np_loop_all,
            "prebuilt": vec_all,
            "scratch": scratch_all,
        },
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": machine_line(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    write_json(args.output, result)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
