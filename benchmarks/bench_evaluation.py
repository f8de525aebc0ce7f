"""Benchmark of recs_course.evaluation against a per-user Python loop.

Set-up of MovieLens-100K's shape: 943 users, 1682 items, a random train/test split of 80,000 /
20,000 distinct interactions, and a random MF-like model (64-dimensional user and item
embeddings; ``score_all`` is one matmul). Timed, side by side with a brute-force reference that
scores one user at a time and ranks with ``numpy.argsort``:

* ``evaluate_full``: all users with a test item, every item ranked, training items masked;
* ``evaluate_sampled``: one held-out test item per user among 100 sampled negatives.

The reference's metric values are compared with the library's (random float scores: no ties).

    python -m benchmarks.bench_evaluation --threads 1

writes ``benchmarks/results/evaluation.json``.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from benchmarks.common import RESULTS, argument_parser, write_json
from recs_course.evaluation import evaluate_full, evaluate_sampled

N_USERS, N_ITEMS, DIM = 943, 1682, 64
N_TRAIN, N_TEST, N_NEG = 80_000, 20_000, 100
FULL_KS, SAMPLED_KS = (10, 20), (10,)


class RandomMF(nn.Module):
    """Dot product of random user and item embeddings."""

    def __init__(self, n_users: int, n_items: int, dim: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.user = nn.Parameter(torch.randn(n_users, dim, generator=g) / math.sqrt(dim))
        self.item = nn.Parameter(torch.randn(n_items, dim, generator=g))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user[users] * self.item[items]).sum(-1)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.user[users] @ self.item.T


def make_data(seed: int):
    rng = np.random.default_rng(seed)
    flat = rng.choice(N_USERS * N_ITEMS, N_TRAIN + N_TEST, replace=False)
    users, items = np.divmod(flat, N_ITEMS)
    ones = np.ones(flat.size, dtype=np.float32)

    def csr(sl: slice) -> sp.csr_matrix:
        return sp.csr_matrix((ones[sl], (users[sl], items[sl])), shape=(N_USERS, N_ITEMS))

    train, test = csr(slice(0, N_TRAIN)), csr(slice(N_TRAIN, None))
    # sampled protocol: one test item per user, then 100 negatives outside train and test
    seen = (train + test).toarray() > 0
    eval_users = np.flatnonzero(np.diff(test.indptr) > 0)
    candidates = np.empty((eval_users.size, 1 + N_NEG), dtype=np.int64)
    for row, u in enumerate(eval_users):  # set-up only
        candidates[row, 0] = rng.choice(test[u].indices)
        candidates[row, 1:] = rng.choice(np.flatnonzero(~seen[u]), N_NEG, replace=False)
    return train, test, torch.from_numpy(eval_users), torch.from_numpy(candidates)


def reference_full(model: RandomMF, train: sp.csr_matrix, test: sp.csr_matrix) -> dict[str, float]:
    """One user at a time: score, mask the training items, numpy argsort, metrics by definition."""
    values: dict[str, list[float]] = {}
    with torch.no_grad():
        for u in range(N_USERS):
            test_items = test[u].indices
            if test_items.size == 0:
                continue
            s = model.score_all(torch.tensor([u]))[0].numpy().astype(np.float64)
            s[train[u].indices] = -np.inf
            order = np.argsort(-s, kind="stable")
            is_test = np.isin(order, test_items)
            for k in FULL_KS:
                hits = is_test[:k]
                dcg = float((hits / np.log2(np.arange(2, k + 2))).sum())
                idcg = float((1 / np.log2(np.arange(2, min(test_items.size, k) + 2))).sum())
                values.setdefault(f"recall@{k}", []).append(hits.sum() / test_items.size)
                values.setdefault(f"NDCG@{k}", []).append(dcg / idcg)
                values.setdefault(f"precision@{k}", []).append(hits.sum() / k)
                values.setdefault(f"HR@{k}", []).append(float(hits.any()))
    return {key: float(np.mean(v)) for key, v in values.items()}


def reference_sampled(
    model: RandomMF, users: torch.Tensor, candidates: torch.Tensor
) -> dict[str, float]:
    """One user at a time: score its 101 candidates, numpy argsort, rank of column 0."""
    hr, ndcg = [], []
    with torch.no_grad():
        for u, cand in zip(users.tolist(), candidates, strict=True):
            s = model(torch.full((cand.numel(),), u), cand).numpy()
            rank = int(np.flatnonzero(np.argsort(-s, kind="stable") == 0)[0]) + 1
            hr.append(float(rank <= 10))
            ndcg.append(1 / math.log2(rank + 1) if rank <= 10 else 0.0)
    return {"HR@10": float(np.mean(hr)), "NDCG@10": float(np.mean(ndcg))}


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median and best wall time (seconds) over ``repeats`` calls after one warm-up call."""
    result = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(min(times)), result


def main() -> None:
    parser = argument_parser("bench_evaluation", __doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS / "evaluation.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test, users, candidates = make_data(args.seed)
    model = RandomMF(N_USERS, N_ITEMS, DIM, args.seed)
    full_metrics = ("recall", "ndcg", "precision", "hr")

    rows = {}
    med, best, lib = timed(
        lambda: evaluate_full(model, train, test, ks=FULL_KS, metrics=full_metrics), args.repeats
    )
    ref_med, ref_best, ref = timed(lambda: reference_full(model, train, test), args.repeats)
    rows["evaluate_full"] = (med, best, ref_med, ref_best, lib, ref)
    med, best, lib = timed(
        lambda: evaluate_sampled(model, users, candidates, ks=SAMPLED_KS, metrics=("hr", "ndcg")),
        args.repeats,
    )
    ref_med, ref_best, ref = timed(
        lambda: reference_sampled(model, users, candidates), args.repeats
    )
    rows["evaluate_sampled"] = (med, best, ref_med, ref_best, lib, ref)

    print(
        f"torch {torch.__version__}, threads={torch.get_num_threads()}, "
        f"{N_USERS} users x {N_ITEMS} items, train {train.nnz}, test {test.nnz}, "
        f"{users.numel()} users evaluated, {1 + N_NEG} sampled candidates"
    )
    print(
        f"{'protocol':18} {'library (s)':>12} {'per-user loop (s)':>18} {'speed-up':>9} {'max |diff|':>11}"
    )
    report = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "n_users": N_USERS,
        "n_items": N_ITEMS,
        "train_nnz": int(train.nnz),
        "test_nnz": int(test.nnz),
        "n_candidates": 1 + N_NEG,
        "repeats": args.repeats,
        "results": {},
    }
    for name, (med, best, ref_med, ref_best, lib, ref) in rows.items():
        diff = max(abs(lib[key] - ref[key]) for key in ref)
        print(f"{name:18} {med:12.4f} {ref_med:18.4f} {ref_med / med:8.1f}x {diff:11.2e}")
        report["results"][name] = {
            "median_s": med,
            "best_s": best,
            "reference_median_s": ref_med,
            "reference_best_s": ref_best,
            "speedup": ref_med / med,
            "max_abs_diff": diff,
            "metrics": lib,
        }
    write_json(args.output, report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
