"""Benchmark: one graph propagation per evaluation (``Recommender.scoring_pass``) vs one per batch.

``evaluate_full`` runs inside ``with model.scoring_pass():``. NGCF and LightGCN override it so
that the propagation is computed once, at the first ``score_all``, and reused for every batch of
users; the base class's block does nothing, and then every ``score_all`` call propagates the
whole graph again. This script times ``evaluate_full`` on MovieLens-100K (per-user chronological
80/20 split, as in chapter 7) for both models, with the pass (the models as shipped) and without
it (``scoring_pass`` replaced by the base class's no-op), side by side in one run, interleaved
repeat by repeat, at the default number of users per batch and at smaller ones. The models are
untrained (timings do not depend on the weights); the metrics of both paths are checked equal.

    python -m benchmarks.bench_scoring_pass --threads 1

prints a table and writes JSON (``--output``, default ``benchmarks/results/scoring_pass.json``).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, machine_line, write_json
from recs_course.data import (
    IdEncoder,
    chronological_split,
    interaction_matrix,
    load_movielens,
    synthetic_ratings,
)
from recs_course.evaluation import evaluate_full
from recs_course.models import NGCF, LightGCN, Recommender

MODELS = {
    "LightGCN": lambda u, i, nu, ni: LightGCN.from_interactions(u, i, nu, ni, dim=64, n_layers=3),
    "NGCF": lambda u, i, nu, ni: NGCF.from_interactions(
        u, i, nu, ni, dim=64, layer_dims=(64, 64, 64), node_dropout=0.0, message_dropout=0.1
    ),
}


def data(dataset: str):
    if dataset == "ml-1m-shape":  # ML-1M's numbers of users, items and ratings, generated
        ratings = synthetic_ratings(n_users=6040, n_items=3706, n_ratings=1_000_209, seed=0).ratings
    else:
        ratings = load_movielens(dataset).ratings
    train_raw, test_raw = chronological_split(ratings, test_size=0.2, per_user=True)
    encoder = IdEncoder().fit(train_raw)
    train = encoder.transform(train_raw)
    test = encoder.transform(test_raw, unknown="drop")
    n_users, n_items = encoder.n_users, encoder.n_items
    train_csr = interaction_matrix(train, n_users, n_items, values="ones")
    test_csr = interaction_matrix(test, n_users, n_items, values="ones")
    return train, train_csr, test_csr, n_users, n_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", default="ml-100k", help="a MovieLens name, or ml-1m-shape (synthetic)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median)")
    parser.add_argument(
        "--users-per-batch",
        type=int,
        nargs="*",
        default=[128],
        help="users per score_all call besides evaluate_full's default (default: 128)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "scoring_pass.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train, train_csr, test_csr, n_users, n_items = data(args.dataset)
    u, i = train["user_id"].to_numpy(), train["item_id"].to_numpy()
    batch_name = "users_per_batch"
    batch_default = inspect.signature(evaluate_full).parameters[batch_name].default
    sizes = [None, *args.users_per_batch]  # None: evaluate_full's default
    n_eval = int((test_csr.getnnz(axis=1) > 0).sum())
    print(
        f"{args.dataset}: {n_users} users ({n_eval} with a test item), {n_items} items; "
        f"torch {torch.__version__}, threads={torch.get_num_threads()}; machine: {machine_line()}"
    )
    header = (
        f"{'model':<9} {'users/batch':>13} {'batches':>7} {'propagations':>13} "
        f"{'with pass ms':>13} {'without ms':>11} {'speed-up':>8}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name, build in MODELS.items():
        torch.manual_seed(0)
        model = build(u, i, n_users, n_items)
        calls: list[int] = []
        propagate = model.propagate

        def counted(propagate=propagate, calls=calls):
            calls.append(1)
            return propagate()

        model.propagate = counted
        cls = type(model)
        shipped = cls.scoring_pass
        for size in sizes:
            kwargs = {} if size is None else {batch_name: size}
            per_batch = batch_default if size is None else size
            n_batches = -(-n_eval // per_batch)
            times: dict[str, list[float]] = {"with": [], "without": []}
            counts: dict[str, int] = {}
            results = {}
            for repeat in range(args.repeats + 1):  # the first round warms up
                # alternate which path goes first, so neither always runs on a warm cache
                for path in ("with", "without")[:: 1 if repeat % 2 else -1]:
                    cls.scoring_pass = shipped if path == "with" else Recommender.scoring_pass
                    try:
                        del calls[:]
                        start = time.perf_counter()
                        results[path] = evaluate_full(
                            model, train_csr, test_csr, ks=(20,), **kwargs
                        )
                        elapsed = time.perf_counter() - start
                    finally:
                        cls.scoring_pass = shipped
                    counts[path] = len(calls)
                    if repeat:
                        times[path].append(elapsed)
            if dict(results["with"]) != dict(results["without"]):
                raise AssertionError(f"{name}: metrics differ with and without the pass")
            with_ms = 1e3 * statistics.median(times["with"])
            without_ms = 1e3 * statistics.median(times["without"])
            label = f"{per_batch}" + (" (default)" if size is None else "")
            print(
                f"{name:<9} {label:>13} {n_batches:>7} "
                f"{counts['with']:>6} / {counts['without']:<4} "
                f"{with_ms:>13.1f} {without_ms:>11.1f} {without_ms / with_ms:>7.2f}x"
            )
            rows.append(
                {
                    "model": name,
                    "users_per_batch": per_batch,
                    "default": size is None,
                    "batches": n_batches,
                    "propagations_with_pass": counts["with"],
                    "propagations_without_pass": counts["without"],
                    "ms_with_pass": round(with_ms, 2),
                    "ms_without_pass": round(without_ms, 2),
                }
            )
    payload = {
        "dataset": args.dataset,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": machine_line(),
        "repeats": args.repeats,
        "rows": rows,
    }
    write_json(args.output, payload)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
