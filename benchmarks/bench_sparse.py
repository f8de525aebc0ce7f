"""Benchmark: MF with sparse embedding gradients (several optimizers in ``fit``) versus dense Adam.

Side by side in one run, interleaved (each repeat runs every variant once, in a rotated order),
on one thread, the same ``MF(dim, biases=True, y_range=(0.5, 5.5))`` from the same initial
weights, on the same shuffled batches, trained by ``recs_course.training.fit`` for the same
number of epochs with MSE plus a per-batch L2 on the rows of the batch (``--l2``; the classic
regulariser of SGD matrix factorisation, which keeps the gradients sparse where
``weight_decay`` would not, and which SparseAdam lacks anyway):

- ``dense Adam``: ``MF(...)`` and one ``Adam`` on every parameter (the course's default);
- ``SparseAdam + Adam``: ``MF(..., sparse=True)``; ``SparseAdam`` on the four embedding tables
  (user and item factors, user and item biases: all get sparse gradients) and ``Adam`` on the
  global bias, the only dense parameter;
- ``Adagrad + Adam``: the same with ``Adagrad`` on the tables (its own, larger rate).

Data: MovieLens-100K (``load_movielens("ml-100k")``, offline from the mirror) and synthetic
ratings of MovieLens-1M's shape (``synthetic_ratings(6040, 3706, 1_000_209)``), each split at
random 80/20 (``random_split(seed=0)``). The rates and ``--l2`` were picked once on ml-100k so
that no variant overfits in 10 epochs (all three reach the same test RMSE there); they are not
tuned per variant or per data set.

Reported per data set and variant: the median time of a training epoch (all epochs of all
repeats; ``History.records[i]["time"]``, training only: no ``evaluate``), its ratio to dense
Adam, the last epoch's training loss and the test RMSE after the last epoch (mean over repeats;
the repeats differ only in timing, the numbers are deterministic on one thread).

Run:  python -m benchmarks.bench_sparse [--epochs 10] [--repeats 3] [--datasets ml-100k,ml-1m-shape]
      [--batch-size 1024] [--ml1m-ratings 1000209]  (smaller values to shorten it)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads its thread pools
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("RECS_COURSE_PROGRESS", "0")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from benchmarks.common import RESULTS, machine_line, write_json  # noqa: E402
from recs_course.data import (  # noqa: E402
    Batches,
    IdEncoder,
    load_movielens,
    random_split,
    synthetic_ratings,
    to_tensors,
)
from recs_course.evaluation import evaluate_ratings  # noqa: E402
from recs_course.models import MF  # noqa: E402
from recs_course.training import fit, seed_everything  # noqa: E402

Y_RANGE = (0.5, 5.5)
SEED = 0


def tables(model: MF) -> list[torch.nn.Parameter]:
    """The embedding tables: factors and biases (sparse gradients with ``sparse=True``)."""
    return [
        model.user_embedding.weight,
        model.item_embedding.weight,
        model.user_bias.weight,
        model.item_bias.weight,
    ]


def dense_adam(n_users: int, n_items: int, args: argparse.Namespace):
    model = MF(n_users, n_items, dim=args.dim, y_range=Y_RANGE)
    return model, torch.optim.Adam(model.parameters(), lr=args.lr)


def sparse_adam(n_users: int, n_items: int, args: argparse.Namespace):
    model = MF(n_users, n_items, dim=args.dim, y_range=Y_RANGE, sparse=True)
    return model, [
        torch.optim.SparseAdam(tables(model), lr=args.lr),
        torch.optim.Adam([model.global_bias], lr=args.lr),
    ]


def sparse_adagrad(n_users: int, n_items: int, args: argparse.Namespace):
    model = MF(n_users, n_items, dim=args.dim, y_range=Y_RANGE, sparse=True)
    return model, [
        torch.optim.Adagrad(tables(model), lr=args.adagrad_lr),
        torch.optim.Adam([model.global_bias], lr=args.lr),
    ]


VARIANTS: dict[str, Callable] = {
    "dense Adam": dense_adam,
    "SparseAdam + Adam": sparse_adam,
    "Adagrad + Adam": sparse_adagrad,
}


def load(name: str, args: argparse.Namespace):
    if name == "ml-100k":
        ratings = load_movielens("ml-100k").ratings
    elif name == "ml-1m-shape":  # synthetic, ML-1M's numbers
        ratings = synthetic_ratings(
            n_users=6040, n_items=3706, n_ratings=args.ml1m_ratings, seed=SEED
        ).ratings
    else:
        raise SystemExit(f"unknown data set {name!r}: use ml-100k or ml-1m-shape")
    encoder = IdEncoder().fit(ratings)
    encoded = encoder.transform(ratings)
    train, test = random_split(encoded, test_size=0.2, seed=SEED)
    return encoder.n_users, encoder.n_items, to_tensors(train), to_tensors(test), len(ratings)


def l2_mse(l2: float) -> Callable:
    """MSE plus ``l2`` times the mean squared norm of the batch's rows (factors and biases):
    the per-batch L2 of SGD matrix factorisation, which touches only the rows of the batch and
    so keeps the gradients sparse (``weight_decay`` would not, and SparseAdam has none)."""

    def loss(model: MF, batch) -> torch.Tensor:
        users, items, ratings = batch
        error = torch.nn.functional.mse_loss(model(users, items), ratings)
        if not l2:
            return error
        rows = (
            model.user_embedding(users).square().sum(-1)
            + model.item_embedding(items).square().sum(-1)
            + model.user_bias(users).squeeze(-1).square()
            + model.item_bias(items).squeeze(-1).square()
        )
        return error + l2 * rows.mean()

    return loss


def run_once(variant: str, data, args: argparse.Namespace) -> dict[str, object]:
    n_users, n_items, train_t, test_t, _ = data
    seed_everything(SEED)  # the same initial weights for every variant
    model, optimizer = VARIANTS[variant](n_users, n_items, args)
    batches = Batches(*train_t, batch_size=args.batch_size, generator=SEED)
    history = fit(model, batches, l2_mse(args.l2), optimizer, epochs=args.epochs, progress=False)
    return {
        "times": [r["time"] for r in history.records],
        "loss": history.records[-1]["loss"],
        "rmse": evaluate_ratings(model, *test_t)["RMSE"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", default="ml-100k,ml-1m-shape")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's and SparseAdam's rate")
    parser.add_argument("--adagrad-lr", type=float, default=0.05)
    parser.add_argument("--l2", type=float, default=0.1, help="per-batch L2 of the rows")
    parser.add_argument("--ml1m-ratings", type=int, default=1_000_209)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS / "sparse.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Sparse invariant checks")  # Adagrad's, torch's

    print(f"command: python -m benchmarks.bench_sparse {' '.join(argv or sys.argv[1:])}")
    print(f"machine: {machine_line()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")  # fmt: skip
    rows: list[dict[str, object]] = []
    print(
        f"MF dim={args.dim}, batch {args.batch_size}, {args.epochs} epochs, {args.repeats} "
        f"interleaved repeats; Adam/SparseAdam lr {args.lr:g}, Adagrad lr {args.adagrad_lr:g}"
    )
    names = list(VARIANTS)
    header = (
        f"{'data':<8} {'variant':<18} {'s/epoch':>8} {'min-max':>13} {'vs dense':>8} "
        f"{'train loss':>10} {'test RMSE':>9}"
    )
    for dataset in args.datasets.split(","):
        data = load(dataset, args)
        results: dict[str, list[dict]] = defaultdict(list)
        for repeat in range(args.repeats):
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            for variant in order:
                results[variant].append(run_once(variant, data, args))
        n_users, n_items, train_t, _, n_ratings = data
        print(
            f"\n{dataset}: {n_users} users, {n_items} items, {n_ratings:,} ratings "
            f"({len(train_t[0]):,} for training)"
        )
        print(header)
        dense_time = None
        for variant in names:
            times = [t for run in results[variant] for t in run["times"]]
            median = statistics.median(times)
            dense_time = dense_time or median
            loss = statistics.mean(run["loss"] for run in results[variant])
            rmse = statistics.mean(run["rmse"] for run in results[variant])
            spread = f"{min(times):.3f}-{max(times):.3f}"
            print(
                f"{dataset:<8} {variant:<18} {median:8.3f} {spread:>13} "
                f"{median / dense_time:8.2f} {loss:10.4f} {rmse:9.4f}"
            )
            rows.append({"data": dataset, "variant": variant, "s_per_epoch": median,
                         "min": min(times), "max": max(times), "vs_dense": median / dense_time,
                         "train_loss": loss, "test_rmse": rmse})
    write_json(args.output, {"command": f"python -m benchmarks.bench_sparse {' '.join(argv or sys.argv[1:])}",
                             "machine": machine_line(), "torch": torch.__version__,
                             "threads": torch.get_num_threads(), "args": vars(args) | {"output": str(args.output)},
                             "rows": rows})
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
