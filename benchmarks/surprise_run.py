"""scikit-surprise's SVD and SVD++ on a rating split written by ``benchmarks.peers``.

Runs inside the separate environment made by ``benchmarks/surprise_env.sh``, from the
repository root; ``benchmarks.peers`` calls it as a subprocess::

    .venv-surprise/bin/python -m benchmarks.surprise_run --ratings SPLIT.tsv --out OUT.json \
        [--models SVD SVDpp] [--tasks split cv] [--epochs 20] [--threads 1] \
        [--seeds 0 1 2] [--params JSON] [--predictions DIR]

``SPLIT.tsv`` holds one rating per line with the columns ``user_id``, ``item_id``, ``rating``,
``holdout`` (1: test row of the split, 0: training row; any other value: neither, a row left
out) and ``fold`` (0..K-1: the test fold of K-fold cross-validation; needed by the ``cv`` task
only), so surprise sees exactly the rows the course package sees. ``--seeds`` fits the split once
per ``random_state`` (``split_runs`` in the JSON; ``split`` is the first seed's); ``--params``
(JSON, ``{"SVD": {"n_factors": 64}}``) overrides surprise's defaults model by model;
``--predictions DIR`` writes each split fit's predictions of the test rows, in file order, to
``DIR/<model>_seed<seed>.npy`` (float64), for the course's evaluator. Each fit is timed
(``fit_s``, and ``fit_s / n_epochs`` as the time per epoch: surprise's SGD epochs all cost the
same) and so is ``algo.test`` on the held-out rows (``test_s``), in wall-clock and process CPU
seconds (``*_cpu_s``). Predictions are surprise's
defaults: clipped to the rating scale, the global mean for unknown users or items (its
``default_prediction``).
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from benchmarks.common import Clock, argument_parser, set_thread_env, write_json


def parse_args(argv=None):
    p = argument_parser("surprise_run", __doc__)
    p.add_argument("--ratings", required=True, help="tab-separated split file (see above)")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--models", nargs="+", default=["SVD", "SVDpp"], choices=["SVD", "SVDpp"])
    p.add_argument("--tasks", nargs="+", default=["split", "cv"], choices=["split", "cv"])
    p.add_argument("--epochs", type=int, default=20, help="SGD epochs (surprise's default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", help="random_state of each split fit (--seed)")
    p.add_argument("--params", default="{}", help='JSON overrides: {"SVD": {"n_factors": 64}}')
    p.add_argument("--predictions", help="directory for the test predictions of the split fits")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    try:
        args.params = json.loads(args.params)
    except ValueError as exc:
        p.error(f"--params is not JSON: {exc}")
    if not isinstance(args.params, dict) or not all(
        k in ("SVD", "SVDpp") and isinstance(v, dict) for k, v in args.params.items()
    ):
        p.error("--params maps SVD / SVDpp to a dict of their keyword arguments")
    args.seeds = args.seeds or [args.seed]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    set_thread_env(args.threads)
    import numpy as np
    import pandas as pd
    import surprise
    from surprise import SVD, Dataset, Reader, SVDpp, accuracy

    df = pd.read_csv(args.ratings, sep="\t")
    needed = {"user_id", "item_id", "rating", "holdout"} | (
        {"fold"} if "cv" in args.tasks else set()
    )
    missing = needed - set(df.columns)
    if missing:
        raise SystemExit(f"{args.ratings} lacks the columns {sorted(missing)}")
    reader = Reader(rating_scale=(float(df["rating"].min()), float(df["rating"].max())))
    # surprise's defaults; SVD++ has 20 factors by default, SVD 100.
    params = {
        "SVD": {"n_factors": 100, "n_epochs": args.epochs, "lr_all": 0.005, "reg_all": 0.02},
        "SVDpp": {"n_factors": 20, "n_epochs": args.epochs, "lr_all": 0.007, "reg_all": 0.02},
    }
    for name, extra in args.params.items():
        params[name] = {**params[name], **extra}
    classes = {"SVD": SVD, "SVDpp": SVDpp}

    def run(name: str, train: pd.DataFrame, test: pd.DataFrame, seed: int, save=None) -> dict:
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
        algo = classes[name](random_state=seed, **params[name])
        with Clock() as fit_clock:
            algo.fit(trainset)
        with Clock() as test_clock:
            predictions = algo.test(testset)
        epochs = params[name]["n_epochs"]
        if save is not None:
            np.save(save, np.array([p.est for p in predictions], dtype=np.float64))
        return {
            "seed": seed,
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
            runs = []
            for seed in args.seeds:
                print(f"[surprise] {name} split, seed {seed} ...", file=sys.stderr, flush=True)
                save = None
                if args.predictions:
                    Path(args.predictions).mkdir(parents=True, exist_ok=True)
                    save = Path(args.predictions) / f"{name}_seed{seed}.npy"
                runs.append(run(name, df[df["holdout"] == 0], df[df["holdout"] == 1], seed, save))
            out["split"] = runs[0]
            if len(args.seeds) > 1:
                out["split_runs"] = runs
        if "cv" in args.tasks:
            folds = []
            for k in sorted(df["fold"].unique()):
                print(f"[surprise] {name} fold {k} ...", file=sys.stderr, flush=True)
                folds.append(run(name, df[df["fold"] != k], df[df["fold"] == k], args.seeds[0]))
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
        "seed": args.seeds[0],
        "seeds": args.seeds,
        "models": results,
    }
    write_json(args.out, report, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
