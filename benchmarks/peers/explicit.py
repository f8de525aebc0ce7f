"""The ``explicit`` section: RMSE on ml-100k, one 80/20 split and K-fold cross-validation, the
course's models against surprise's SVD and SVD++ (``benchmarks.surprise_run``) on the same rows.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import Clock
from benchmarks.peers.shared import SURPRISE_PY, EpochTimer, log, need, run_peer
from recs_course.data import Batches, IdEncoder, random_split, to_tensors
from recs_course.evaluation import evaluate_ratings
from recs_course.models import EmbeddingMLP
from recs_course.protocols import Protocol
from recs_course.recipes import RECIPES
from recs_course.recipes import train as train_recipe
from recs_course.training import fit, seed_everything

# MF with biases and item AutoRec: the course's recipes, RECIPES["explicit/MF with biases"] and
# RECIPES["explicit/AutoRec"], trained by recs_course.recipes.train on each training part as on
# the explicit protocol: 10 % of it (drawn with seed + 1) is the validation part the recipe
# watches (MF keeps its best epoch; AutoRec stops early, then is refitted on the whole part).
# The embedding MLP has no recipe: AdamW with decoupled weight decay and a one-cycle schedule
# (fastai's recipe for collaborative filtering), seed 0. The test set never chooses anything.
RECIPE_MODELS = {"MF (biases)": "explicit/MF with biases", "AutoRec (item)": "explicit/AutoRec"}
EXPLICIT = {
    "MF (biases)": {"recipe": "recs_course.recipes.RECIPES['explicit/MF with biases']"},
    "EmbeddingMLP": {
        "model": lambda u, i: EmbeddingMLP(
            u, i, dim=50, hidden=(100,), dropout=0.1, embed_dropout=0.0, y_range=(0.5, 5.5)
        ),
        "lr": 5e-3,
        "weight_decay": 0.3,
        "epochs": 5,
        "batch_size": 256,
        "one_cycle": True,
    },
    "AutoRec (item)": {"recipe": "recs_course.recipes.RECIPES['explicit/AutoRec']"},
}
VALID = 0.1  # as recs_course.protocols.explicit_ratings: 10 % of a training part validates

NOTES = [
    "surprise clips its predictions to [1, 5]; the course's MF passes its score "
    "through a sigmoid scaled to (0.5, 5.5), the MLP to (1, 5), AutoRec clips to [1, 5].",
    "Users or items of a test fold absent from its training part: surprise predicts "
    "the global mean; the course's MF and MLP predict from untrained embeddings (near "
    "the biases' starting point), AutoRec the mean training rating.",
    "surprise's SVD: 100 factors, SVD++: 20 factors (their defaults), 20 SGD epochs.",
    "MF with biases and AutoRec: the course's recipes (recs_course.recipes.RECIPES), trained "
    "by recipes.train with 10 % of each training part as the validation part they watch (MF "
    "keeps its best epoch and trains on the other 90 %; AutoRec stops early, then is refitted "
    "on the whole part). surprise and the embedding MLP train on the whole part.",
]


class _EpochClock:
    """A validation evaluator that also times the epochs around it: an epoch's training runs
    from the end of the previous evaluation (or :meth:`start`) to this one's call."""

    def __init__(self, evaluate):
        self.evaluate_fn = evaluate
        self.train, self.eval = [], []
        self.start()

    def start(self) -> None:
        self._mark = (time.perf_counter(), time.process_time())

    def __call__(self, model, *, device=None):
        wall, cpu = self._mark
        self.train.append((time.perf_counter() - wall, time.process_time() - cpu))
        with Clock() as c:
            out = self.evaluate_fn(model, device=device)
        self.eval.append((c.wall, c.cpu))
        self.start()
        return out

    def summary(self) -> dict:
        def mean(pairs, k):
            return float(np.mean([p[k] for p in pairs])) if pairs else None

        return {
            "train_s_per_epoch": mean(self.train, 0),
            "train_cpu_s_per_epoch": mean(self.train, 1),
            "valid_s_per_eval": mean(self.eval, 0),
            "valid_cpu_s_per_eval": mean(self.eval, 1),
        }


def part_protocol(train: pd.DataFrame, test: pd.DataFrame, enc, seed: int):
    """A training part and its test part as an explicit protocol for ``recipes.train``:
    ``VALID`` of the part (drawn with ``seed + 1``) validates; ids are ``enc``'s (fitted on
    every rating, so no test row is dropped). Returns the protocol and its validation clock."""
    fit_part, valid = random_split(train, test_size=VALID, seed=seed + 1)

    def rating_metrics(frame):
        tensors = to_tensors(frame)
        return lambda model, *, device=None: evaluate_ratings(model, *tensors, device=device)

    clock = _EpochClock(rating_metrics(valid))
    protocol = Protocol(
        name="explicit",
        description=f"a training part of {len(train)} ratings, {VALID:.0%} of it validation",
        train=fit_part.reset_index(drop=True),
        valid=valid.reset_index(drop=True),
        test=test.reset_index(drop=True),
        n_users=enc.n_users,
        n_items=enc.n_items,
        encoder=enc,
        metrics=("RMSE", "MAE"),
        monitor="RMSE",
        higher_is_better=False,
        seed=seed,
        _evaluate={"valid": clock, "test": rating_metrics(test)},
    )
    return protocol, clock


def fit_mlp(cfg: dict, train: pd.DataFrame, enc, epochs: int):
    """The embedding MLP trained on ``train`` for ``epochs`` epochs: ``(model, timer)``."""
    g = seed_everything(0)
    model = cfg["model"](enc.n_users, enc.n_items)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]
    )
    batches = Batches(*to_tensors(train), batch_size=cfg["batch_size"], generator=g)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg["lr"], total_steps=epochs * len(batches)
    )
    timer = EpochTimer(batches, None)
    fit(
        model,
        timer,
        "mse",
        optimizer,
        epochs=epochs,
        scheduler=scheduler,
        evaluate=timer.evaluate,
        progress=False,
    )
    return model, timer


def train_explicit(name, cfg, train: pd.DataFrame, test: pd.DataFrame, enc, epochs_cap, seed):
    """Train ``name`` on ``train`` with its recipe, then predict ``test``."""
    out = {}
    if name in RECIPE_MODELS:
        recipe = RECIPES[RECIPE_MODELS[name]]
        protocol, clock = part_protocol(train, test, enc, seed)
        epochs = recipe.epochs if epochs_cap is None else min(recipe.epochs, epochs_cap)
        clock.start()
        trained = train_recipe(recipe, protocol, seed=0, epochs=epochs)
        model, history = trained.model, trained.history
        timing = clock.summary()
        epochs = history.best_epoch or history.epochs
        out["selection"] = {
            "train": len(protocol.train),
            "valid": len(protocol.valid),
            "epochs_run": history.epochs,
            "best_epoch": history.best_epoch,
            "valid_RMSE": history.best["RMSE"] if history.best else None,
            "refit": recipe.refit,
            "s": trained.seconds,
        }
    else:
        epochs = cfg["epochs"] if epochs_cap is None else min(cfg["epochs"], epochs_cap)
        model, timer = fit_mlp(cfg, train, enc, epochs)
        timing = timer.summary()
    with Clock() as c:
        metrics = evaluate_ratings(model, *to_tensors(test))
    return {
        **metrics,
        **timing,
        "epochs": epochs,
        "test_s": c.wall,
        "test_cpu_s": c.cpu,
        "n_test": len(test),
        **out,
    }


def write_split(ratings: pd.DataFrame, e: pd.DataFrame, enc, test, fold, path: Path) -> None:
    """The file surprise reads: raw ids, and the course's own rows for test and folds."""
    holdout = np.zeros(len(e), dtype=np.int64)
    key = e["user_id"].to_numpy() * enc.n_items + e["item_id"].to_numpy()
    holdout[np.isin(key, test["user_id"].to_numpy() * enc.n_items + test["item_id"].to_numpy())] = 1
    ratings[["user_id", "item_id", "rating"]].assign(holdout=holdout, fold=fold).to_csv(
        path, sep="\t", index=False
    )


def run_explicit(args, ratings: pd.DataFrame, tmp: Path, epochs_cap=None, cv=True) -> dict:
    need(SURPRISE_PY)
    enc = IdEncoder().fit(ratings)
    e = enc.transform(ratings)
    train, test = random_split(e, test_size=0.2, seed=args.seed)
    # K folds: a random permutation cut into K parts
    rng = np.random.default_rng(args.seed)
    fold = np.empty(len(e), dtype=np.int64)
    fold[rng.permutation(len(e))] = np.arange(len(e)) % args.folds
    split_file, out_file = tmp / "explicit_split.tsv", tmp / "surprise.json"
    write_split(ratings, e, enc, test, fold, split_file)
    peer_epochs = 20 if epochs_cap is None else min(20, epochs_cap)
    peer = run_peer(
        SURPRISE_PY,
        "surprise_run",
        ["--ratings", str(split_file), "--out", str(out_file), "--epochs", str(peer_epochs)]
        + ["--threads", str(args.threads), "--seed", str(args.seed)]
        + ["--tasks", *(["split", "cv"] if cv else ["split"])],
        out_file,
        args.threads,
    )

    course = {}
    for name, cfg in EXPLICIT.items():
        log(f"course {name}: 80/20")
        result = {"split": train_explicit(name, cfg, train, test, enc, epochs_cap, args.seed)}
        log(f"    RMSE {result['split']['RMSE']:.4f} after {result['split']['epochs']} epochs")
        if cv:
            folds = []
            for k in range(args.folds):
                log(f"course {name}: fold {k + 1}/{args.folds}")
                folds.append(
                    train_explicit(
                        name, cfg, e[fold != k], e[fold == k], enc, epochs_cap, args.seed
                    )
                )
            rmses = np.array([f["RMSE"] for f in folds])
            result["cv"] = {
                "RMSE_mean": float(rmses.mean()),
                "RMSE_std": float(rmses.std(ddof=1)),
                "folds": folds,
            }
        result["params"] = {k: v for k, v in cfg.items() if k != "model"}
        if name in RECIPE_MODELS:
            result["params"].update(RECIPES[RECIPE_MODELS[name]].summary())
        course[name] = result
    return {
        "data": {
            "ratings": len(e),
            "users": enc.n_users,
            "items": enc.n_items,
            "train": len(train),
            "test": len(test),
            "folds": args.folds if cv else None,
        },
        "course": course,
        "surprise": peer["models"],
        "surprise_versions": peer["versions"],
        "notes": NOTES,
    }
