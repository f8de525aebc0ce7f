"""Benchmark: one NeuMF training epoch on ml-100k, the seeds' data pipeline versus the course's.

Side by side in one run, on the full MovieLens-100K (leave-one-out training set, 4 negatives
per positive, NeuMF with 32-dimensional GMF embeddings and the (64, 32, 16, 8) tower, Adam (fused),
BCE with logits), every pipeline trained by the same ``recs_course.training.fit`` so that only
the data side differs:

(0)   seed 004's NeuMF pipeline as written (``get_train_instance``): a pandas merge that copies
      each user's negative-item list onto every rating, ``random.sample`` per rating, an
      ``itertuples`` loop, a ``Dataset`` that builds three tensors per sample and
      ``DataLoader(batch_size=256, shuffle=True, num_workers=2)``: the issue's baseline;
(i)   a leaner seed-style pipeline: negatives drawn with a Python loop over the ratings (one
      ``randrange`` and a set lookup per draw), the same ``Dataset`` and
      ``DataLoader(batch_size=256, shuffle=True)`` without workers (a stricter baseline);
(ii)  the course: ``pointwise_instances`` (vectorised, exact) and ``Batches`` at batch 256;
(iii) the course at its default batch size (2048, learning rate scaled up).

An epoch is timed from the drawing of its negatives to its last optimiser step. Two more
lines time the model steps alone (batches prepared beforehand) at batch 256 and at the default
batch: the floor of any pipeline. ``--profile N`` then shows where a step's time goes
(``torch.profiler`` over N steps of ``fit`` at both batch sizes, self CPU time per operator).
Finally NeuMF is trained for the same number of epochs at batch 256 and at the
default batch and HR@10 / NDCG@10 on the leave-one-out test items (100 sampled negatives)
are compared (mean of two seeds), to show that the large batch costs no accuracy.

Run:  python -m benchmarks.bench_neumf_epoch [--threads 1] [--repeats 3]
Writes benchmarks/results/neumf_epoch.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.common import machine_line, write_json
from recs_course.data import (
    Batches,
    IdEncoder,
    InstanceBatches,
    NegativeSampler,
    leave_one_out,
    load_movielens,
    pointwise_instances,
    ranking_candidates,
)
from recs_course.evaluation import evaluate_sampled
from recs_course.models import NeuMF
from recs_course.training import fit, seed_everything

SEED_BATCH, SEED_LR = 256, 1e-3  # the seeds' NeuMF settings
COURSE_BATCH, COURSE_LR = 2048, 3e-3  # the course's default for NeuMF
N_NEG = 4


class SeedStyleDataset(Dataset):
    """The seeds' dataset: Python lists in, three tensors built per sample."""

    def __init__(self, users: list[int], items: list[int], labels: list[float]):
        self.users, self.items, self.labels = users, items, labels

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, idx):
        return (
            torch.tensor(self.users[idx], dtype=torch.long),
            torch.tensor(self.items[idx], dtype=torch.long),
            torch.tensor(self.labels[idx], dtype=torch.float),
        )


def seed_style_loader(users, items, user_set, n_items: int, rng: random.Random) -> DataLoader:
    """One epoch of the seeds' pipeline: a loop per rating, a set lookup per negative."""
    out_u, out_i, out_y = [], [], []
    for u, i in zip(users, items, strict=True):
        out_u.append(u)
        out_i.append(i)
        out_y.append(1.0)
        seen = user_set[u]
        for _ in range(N_NEG):
            j = rng.randrange(n_items)
            while j in seen:
                j = rng.randrange(n_items)
            out_u.append(u)
            out_i.append(j)
            out_y.append(0.0)
    return DataLoader(SeedStyleDataset(out_u, out_i, out_y), batch_size=SEED_BATCH, shuffle=True)


def seed_faithful_loader(train_ratings, negatives, rng: random.Random) -> DataLoader:
    """One epoch built as seed 004's NeuMF ``get_train_instance`` does, step for step.

    A pandas merge that copies each user's set of negative items onto every rating,
    ``random.sample`` of 4 of them per rating (from a list: Python 3.11's ``random.sample`` no
    longer takes a set, the one change made), an ``itertuples`` loop appending to lists, and a
    ``DataLoader(num_workers=2)`` over a dataset that builds three tensors per sample.
    """
    df = pd.merge(train_ratings, negatives[["user_id", "negative_items"]], on="user_id")
    df["negatives"] = df["negative_items"].apply(lambda x: rng.sample(x, N_NEG))
    out_u, out_i, out_y = [], [], []
    for row in df.itertuples():
        out_u.append(int(row.user_id))
        out_i.append(int(row.item_id))
        out_y.append(float(row.rating))
        for k in range(N_NEG):
            out_u.append(int(row.user_id))
            out_i.append(int(row.negatives[k]))
            out_y.append(0.0)
    return DataLoader(
        SeedStyleDataset(out_u, out_i, out_y), batch_size=SEED_BATCH, shuffle=True, num_workers=2
    )


def adam(model: NeuMF, lr: float) -> torch.optim.Adam:
    """Adam for every pipeline alike; the fused kernel (torch >= 2.4 on the CPU) halves the
    optimiser's share of a small model's step, which is most of the step at batch 256."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):  # older torch: the default implementation
        return torch.optim.Adam(model.parameters(), lr=lr)


def one_epoch(model: NeuMF, data, lr: float) -> float:
    """Seconds for one epoch of ``fit`` on ``data`` (an iterable, or a callable epoch -> iterable)."""
    optimizer = adam(model, lr)
    start = time.perf_counter()
    fit(model, data, "bce", optimizer, epochs=1, progress=False)
    return time.perf_counter() - start


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def profile_steps(model: NeuMF, batches: list, lr: float, top: int = 15) -> dict:
    """Where a step's time goes: ``torch.profiler`` over ``fit`` on ``batches`` (the first 20
    warm up, unprofiled).

    Returns the total self CPU time per step and the ``top`` operators by self CPU time (per
    step; ``Optimizer.step#Adam.step`` is the Python of ``Adam.step`` around its kernel). The
    profiler's own cost inflates the many small operators, so read shares, not absolute times.
    """
    from torch.profiler import ProfilerActivity, profile

    optimizer = adam(model, lr)
    warm_up, batches = batches[:20], batches[20:]
    fit(model, warm_up, "bce", optimizer, epochs=1, progress=False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(model, batches, "bce", optimizer, epochs=1, progress=False)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    n = len(batches)
    return {
        "steps": n,
        "self_cpu_us_per_step": total / n,
        "top": [
            {
                "op": e.key,
                "self_us_per_step": e.self_cpu_time_total / n,
                "calls_per_step": e.count / n,
                "share": e.self_cpu_time_total / total,
            }
            for e in events[:top]
        ],
    }


def main(argv: list[str] | None = None) -> dict:
    global COURSE_BATCH, COURSE_LR
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs of each pipeline")
    parser.add_argument(
        "--quality-epochs", type=int, default=6, help="epochs of the HR@10 comparison"
    )
    parser.add_argument(
        "--quality-seeds", type=int, default=2, help="seeds averaged in the HR@10 comparison"
    )
    parser.add_argument(
        "--batch", type=int, default=COURSE_BATCH, help="the course pipeline's large batch"
    )
    parser.add_argument("--lr", type=float, default=COURSE_LR, help="its learning rate")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="profile this many steps of fit at both batch sizes (0: no profile)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "neumf_epoch.json",
    )
    args = parser.parse_args(argv)
    COURSE_BATCH, COURSE_LR = args.batch, args.lr
    if min(args.threads, args.repeats, args.quality_epochs, args.quality_seeds) < 1:
        parser.error("--threads, --repeats, --quality-epochs and --quality-seeds must be >= 1")
    if args.profile < 0:
        parser.error("--profile must be >= 0")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads = {torch.get_num_threads()}")

    ml = load_movielens("ml-100k")
    enc = IdEncoder().fit(ml.ratings)  # the catalogue: every test item has an index
    train, test = (enc.transform(x) for x in leave_one_out(ml.ratings))
    n_users, n_items = enc.n_users, enc.n_items
    users = train["user_id"].tolist()
    items = train["item_id"].tolist()
    user_set = defaultdict(set)
    for u, i in zip(users, items, strict=True):  # built once, outside the timed epochs
        user_set[u].add(i)
    sampler = NegativeSampler.from_ratings(train, n_items, n_users=n_users)
    # The seed's per-user negative item lists, built once outside the timed epochs as it does.
    seed_train = train[["user_id", "item_id"]].assign(rating=1.0)
    pool = set(range(n_items))
    seed_negatives = pd.DataFrame(
        {"user_id": list(user_set), "negative_items": [list(pool - user_set[u]) for u in user_set]}
    )
    n_instances = len(train) * (1 + N_NEG)
    print(f"ml-100k: {len(train)} training ratings -> {n_instances} instances an epoch")

    def course_data(batch_size: int, g: torch.Generator) -> InstanceBatches:
        return InstanceBatches(train, n_items, "pointwise", n_neg=N_NEG, batch_size=batch_size,
                               generator=g, positives=sampler)

    times: dict[str, list[float]] = {
        "seed_faithful_256": [],
        "seed_256": [],
        "course_256": [],
        "course_default": [],
    }
    steps_only: list[float] = []
    steps_only_default: list[float] = []
    rng = random.Random(0)
    for rep in range(args.repeats):  # interleaved, so load changes hit every pipeline alike
        g = seed_everything(rep)
        times["seed_faithful_256"].append(
            one_epoch(
                NeuMF(n_users, n_items),
                lambda epoch: seed_faithful_loader(seed_train, seed_negatives, rng),
                SEED_LR,
            )
        )
        times["seed_256"].append(
            one_epoch(
                NeuMF(n_users, n_items),
                lambda epoch: seed_style_loader(users, items, user_set, n_items, rng),
                SEED_LR,
            )
        )
        times["course_256"].append(
            one_epoch(NeuMF(n_users, n_items), course_data(SEED_BATCH, g), SEED_LR)
        )
        times["course_default"].append(
            one_epoch(NeuMF(n_users, n_items), course_data(COURSE_BATCH, g), COURSE_LR)
        )
        instances = pointwise_instances(train, n_items, N_NEG, generator=g, positives=sampler)
        batches = list(Batches(*instances, batch_size=SEED_BATCH, generator=g))
        steps_only.append(one_epoch(NeuMF(n_users, n_items), batches, SEED_LR))
        batches = list(Batches(*instances, batch_size=COURSE_BATCH, generator=g))
        steps_only_default.append(one_epoch(NeuMF(n_users, n_items), batches, COURSE_LR))
        print(
            f"  repeat {rep + 1}: seed as written {times['seed_faithful_256'][-1]:.2f} s, "
            f"seed lean {times['seed_256'][-1]:.2f} s, course@256 "
            f"{times['course_256'][-1]:.2f} s, course@{COURSE_BATCH} "
            f"{times['course_default'][-1]:.2f} s, steps only@256 {steps_only[-1]:.2f} s, "
            f"@{COURSE_BATCH} {steps_only_default[-1]:.2f} s",
            flush=True,
        )
    med = {k: median(v) for k, v in times.items()}
    med_steps, med_steps_default = median(steps_only), median(steps_only_default)
    n_batches_256 = -(-n_instances // SEED_BATCH)
    n_batches_default = -(-n_instances // COURSE_BATCH)
    ratio_256 = med["seed_256"] / med["course_256"]
    ratio_default = med["seed_256"] / med["course_default"]
    ratio_faithful_256 = med["seed_faithful_256"] / med["course_256"]
    ratio_faithful_default = med["seed_faithful_256"] / med["course_default"]

    # Same number of epochs at both batch sizes: accuracy on the leave-one-out test items.
    test_users, candidates = ranking_candidates(
        test, n_items, n_neg=100, exclude=train, generator=0
    )
    quality = {}
    for name, batch_size, lr in (
        ("batch_256", SEED_BATCH, SEED_LR),
        (f"batch_{COURSE_BATCH}", COURSE_BATCH, COURSE_LR),
    ):
        runs = []
        for seed in range(args.quality_seeds):
            g = seed_everything(seed)
            model = NeuMF(n_users, n_items)
            start = time.perf_counter()
            fit(
                model,
                course_data(batch_size, g),
                "bce",
                adam(model, lr),
                epochs=args.quality_epochs,
                progress=False,
            )
            seconds = time.perf_counter() - start
            metrics = evaluate_sampled(model, test_users, candidates, ks=(10,))
            runs.append({"seed": seed, "train_s": seconds, **metrics})
        quality[name] = {
            "batch_size": batch_size,
            "lr": lr,
            "train_s": median([r["train_s"] for r in runs]),
            "HR@10": statistics.fmean(r["HR@10"] for r in runs),
            "NDCG@10": statistics.fmean(r["NDCG@10"] for r in runs),
            "runs": runs,
        }
    q_small, q_large = quality["batch_256"], quality[f"batch_{COURSE_BATCH}"]
    # HR@10 is a count of users over the same users: compare counts, not float means.
    n_test = len(test_users)
    no_loss = round(q_large["HR@10"] * n_test) >= round(q_small["HR@10"] * n_test)

    profiles = {}
    if args.profile:
        g = seed_everything(0)
        instances = pointwise_instances(train, n_items, N_NEG, generator=g, positives=sampler)
        for batch_size, lr in ((SEED_BATCH, SEED_LR), (COURSE_BATCH, COURSE_LR)):
            batches = list(Batches(*instances, batch_size=batch_size, generator=g))
            profiles[f"batch_{batch_size}"] = profile_steps(
                NeuMF(n_users, n_items), batches[: args.profile + 20], lr
            )

    print(f"\none epoch, median of {args.repeats} (threads = {torch.get_num_threads()}):")
    print(f"  seed 004 as written @256 (workers 2): {med['seed_faithful_256']:7.2f} s   (baseline)")
    print(f"  seed-style, lean loop @256          : {med['seed_256']:7.2f} s   (leaner baseline)")
    print(
        f"  course pipeline @256               : {med['course_256']:7.2f} s   "
        f"{ratio_faithful_256:5.1f}x / {ratio_256:4.1f}x faster than the two (aim >= 5x)"
    )
    print(
        f"  course pipeline @{COURSE_BATCH} (lr {COURSE_LR:g})   : {med['course_default']:7.2f} s   "
        f"{ratio_faithful_default:5.1f}x / {ratio_default:4.1f}x faster (aim >= 20x)"
    )
    print(
        f"  model steps alone @256             : {med_steps:7.2f} s   "
        f"({med_steps / n_batches_256 * 1e3:.2f} ms a batch)"
    )
    print(
        f"  model steps alone @{COURSE_BATCH}            : {med_steps_default:7.2f} s   "
        f"({med_steps_default / n_batches_default * 1e3:.2f} ms a batch)"
    )
    print(
        f"after {args.quality_epochs} epochs, mean of {args.quality_seeds} seeds "
        "(leave-one-out test, 100 sampled negatives):"
    )
    for name, q in quality.items():
        print(
            f"  {name:11} lr {q['lr']:g}: HR@10 {q['HR@10']:.4f}, NDCG@10 {q['NDCG@10']:.4f} "
            f"({q['train_s']:.1f} s)"
        )
    print(f"  HR@10 at batch {COURSE_BATCH} not lower than at 256: {'PASS' if no_loss else 'FAIL'}")
    for name, prof in profiles.items():
        print(
            f"where a step's time goes, {name} (torch.profiler, {prof['steps']} steps of fit, "
            f"self CPU {prof['self_cpu_us_per_step']:.0f} us a step with the profiler's cost):"
        )
        for row in prof["top"]:
            print(
                f"  {row['op'][:48]:48} {row['self_us_per_step']:8.1f} us  "
                f"{row['calls_per_step']:5.1f} calls  {row['share']:6.1%}"
            )

    result = {
        "benchmark": "one NeuMF training epoch on ml-100k: seed-style DataLoader vs the course",
        "command": " ".join(
            ["python -m benchmarks.bench_neumf_epoch", *(sys.argv[1:] if argv is None else argv)]
        ),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "n_train_ratings": len(train),
        "n_instances": n_instances,
        "n_neg": N_NEG,
        "model": "NeuMF(dim=32, layers=(64, 32, 16, 8), dropout=0), Adam (fused), BCE with logits",
        "median_epoch_s": {
            **med,
            "model_steps_only_256": med_steps,
            "model_steps_only_default": med_steps_default,
        },
        "all_epoch_s": {
            **times,
            "model_steps_only_256": steps_only,
            "model_steps_only_default": steps_only_default,
        },
        "step_ms_per_batch_256": med_steps / n_batches_256 * 1e3,
        "step_ms_per_batch_default": med_steps_default / n_batches_default * 1e3,
        "speedup_vs_seed_as_written_at_256": ratio_faithful_256,
        "speedup_vs_seed_as_written_at_default": ratio_faithful_default,
        "speedup_at_256": ratio_256,
        "speedup_at_default": ratio_default,
        "default_batch_size": COURSE_BATCH,
        "default_lr": COURSE_LR,
        "targets": {
            # The baseline is the seed's pipeline as written; the lean loop is stricter.
            "speedup_vs_seed_at_256_ge_5": ratio_faithful_256 >= 5,
            "speedup_vs_seed_at_default_ge_20": ratio_faithful_default >= 20,
            "speedup_vs_lean_at_256_ge_5": ratio_256 >= 5,
            "speedup_vs_lean_at_default_ge_20": ratio_default >= 20,
            "hr10_default_not_lower": no_loss,
        },
        "quality_epochs": args.quality_epochs,
        "quality_seeds": args.quality_seeds,
        "quality": quality,
        "profile": profiles,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": machine_line(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    write_json(args.output, result)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
