"""scikit-surprise's SVD and SVD++ on a rating split written by ``benchmarks.peers``.

Runs inside the separate environment made by ``benchmarks/surprise_env.sh``, from the
repository root; ``benchmarks.peers`` calls it as a subprocess::

    .venv-surprise/bin/python -m benchmarks.surprise_run --ratings SPLIT.tsv --out OUT.json \
        [--models SVD SVDpp] [--tasks split cv] [--epochs 20] [--threads 1]

``SPLIT.tsv`` holds one rating per line with the columns ``user_id``, ``item_id``, ``rating``,
``holdout`` (1: test row of the 80/20 split) and ``fold`` (0..K-1: the test fold of K-fold
cross-validation), so surprise sees exactly the rows the course package sees. Each fit is timed
(``fit_s``, and ``fit_s / n_epochs`` as the time per epoch: surprise's SGD epochs all cost the
same) and so is ``algo.test`` on the held-out rows (``test_s``), in wall-clock and process CPU
seconds (``*_cpu_s``). Predictions are surprise's
defaults: clipped to the rating scale, the global mean for unknown users or items (its
``default_prediction``).
"""

from __future__ import annotations

import platform
import sys

from benchmarks.common import Clock, argument_parser, set_thread_env, write_json


def parse_args(argv=None):
    p = argument_parser("surprise_run", __doc__)
    p.add_argument("--ratings", required=True, help="tab-separated split file (see above)")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--models", nargs="+", default=["SVD", "SVDpp"], choices=["SVD", "SVDpp"])
    p.add_argument("--tasks", nargs="+", default=["split", "cv"], choices=["split", "cv"])
    p.add_argument("--epochs", type=int, default=20, help="SGD epochs (surprise's default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_thread_env(args.threads)
    import numpy as np
    import pandas as pd
    import surprise
    from surprise import SVD, Dataset, Reader, SVDpp, accuracy

    df = pd.read_csv(args.ratings, sep="\t")
    missing = {"user_id", "item_id", "rating", "holdout", "fold"} - set(df.columns)
    if missing:
        raise SystemExit(f"{args.ratings} lacks the columns {sorted(missing)}")
    reader = Reader(rating_scale=(float(df["rating"].min()), float(df["rating"].max())))
    # surprise's defaults; SVD++ has 20 factors by default, SVD 100.
    params = {
        "SVD": {"n_factors": 100, "n_epochs": args.epochs, "lr_all": 0.005, "reg_all": 0.02},
        "SVDpp": {"n_factors": 20, "n_epochs": args.epochs, "lr_all": 0.007, "reg_all": 0.02},
    }
    classes = {"SVD": SVD, "SVDpp": SVDpp}

    def run(name: str, train: pd.DataFrame, test: pd.DataFrame) -> dict:
        trainset = Dataset.load_from_df(
            train[["user_id", "item_id", "rating"]], reader
        ).build_full_trainset()
        testset = list(
            zip(
                test["user_id"].tolist(),
                test["item_id"].tolist(),
                test["rating"].tolist(),
                strict=True,
            )
        )
        algo = classes[name](random_state=args.seed, **params[name])
        with Clock() as fit_clock:
            algo.fit(trainset)
        with Clock() as test_clock:
            predictions = algo.test(testset)
        epochs = params[name]["n_epochs"]
        return {
            "RMSE": float(accuracy.rmse(predictions, verbose=False)),
            "MAE": float(accuracy.mae(predictions, verbose=False)),
            "fit_s": round(fit_clock.wall, 4),
            "train_s_per_epoch": round(fit_clock.wall / epochs, 4),
            "train_cpu_s_per_epoch": round(fit_clock.cpu / epochs, 4),
            "test_s": round(test_clock.wall, 4),
            "test_cpu_s": round(test_clock.cpu, 4),
            "n_test": len(testset),
        }

    results: dict = {}
    for name in args.models:
        out: dict = {"params": params[name]}
        if "split" in args.tasks:
            print(f"[surprise] {name} 80/20 ...", file=sys.stderr, flush=True)
            out["split"] = run(name, df[df["holdout"] == 0], df[df["holdout"] == 1])
        if "cv" in args.tasks:
            folds = []
            for k in sorted(df["fold"].unique()):
                print(f"[surprise] {name} fold {k} ...", file=sys.stderr, flush=True)
                folds.append(run(name, df[df["fold"] != k], df[df["fold"] == k]))
            rmses = np.array([f["RMSE"] for f in folds])
            out["cv"] = {
                "RMSE_mean": float(rmses.mean()),
                "RMSE_std": float(rmses.std(ddof=1)) if len(rmses) > 1 else 0.0,
                "folds": folds,
            }
        results[name] = out

    report = {
        "versions": {
            "surprise": surprise.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "python": platform.python_version(),
        },
        "threads": args.threads,
        "seed": args.seed,
        "models": results,
    }
    write_json(args.out, report, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
