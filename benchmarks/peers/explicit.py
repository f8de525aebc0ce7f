"""The ``explicit`` section: RMSE on ml-100k, one 80/20 split and K-fold cross-validation, the
course's models against surprise's SVD and SVD++ (``benchmarks.surprise_run``) on the same rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import Clock
from benchmarks.peers.shared import SURPRISE_PY, EpochTimer, log, need, run_peer
from benchmarks.quality import AUTOREC_PARAMS, MF_PARAMS, autorec_and_optimizer, mf_and_optimizer
from recs_course.data import Batches, IdEncoder, random_split, to_tensors
from recs_course.evaluation import evaluate_ratings
from recs_course.models import EmbeddingMLP
from recs_course.training import fit, seed_everything

# MF with biases and item AutoRec: the course's defaults, the very dicts benchmarks/quality.py
# trains with (MF: AdamW, weight decay on the embeddings only, one-cycle schedule, fixed epochs;
# AutoRec: Adam with an L2 penalty, epochs picked on a validation part of the training data
# with early stopping, then refitted on all of it). The embedding MLP has no quality.py recipe:
# AdamW with decoupled weight decay and a one-cycle schedule (fastai's recipe for collaborative
# filtering), its weight decay and epochs picked on a 10 % validation part of the 80 % training
# set, seed 1. The test set never chooses anything.
EXPLICIT = {
    "MF (biases)": {"recipe": "benchmarks/quality.py MF_PARAMS", **MF_PARAMS},
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
    "AutoRec (item)": {"recipe": "benchmarks/quality.py AUTOREC_PARAMS", **AUTOREC_PARAMS},
}
AUTOREC_VALID = 0.1  # as quality.explicit_split: 10 % of the training part picks the epochs

NOTES = [
    "surprise clips its predictions to [1, 5]; the course's MF passes its score "
    "through a sigmoid scaled to (0.5, 5.5), the MLP to (1, 5), AutoRec clips to [1, 5].",
    "Users or items of a test fold absent from its training part: surprise predicts "
    "the global mean; the course's MF and MLP predict from untrained embeddings (near "
    "the biases' starting point), AutoRec the mean training rating.",
    "surprise's SVD: 100 factors, SVD++: 20 factors (their defaults), 20 SGD epochs.",
    "MF with biases and AutoRec: benchmarks/quality.py's MF_PARAMS / AUTOREC_PARAMS. "
    "quality.py's MF keeps 10 % of its training ratings aside for a validation curve; "
    "here MF trains on all of them (its epochs are fixed). AutoRec's epochs are picked "
    "on 10 % of each training part (early stopping), then it is refitted on all of it.",
]


def fit_explicit(name: str, cfg: dict, train: pd.DataFrame, enc, epochs: int, valid=None):
    """Build ``name`` and train it on ``train`` for ``epochs`` epochs, or, with ``valid``, for
    at most ``epochs`` with early stopping on its RMSE. Returns ``(model, history, timer)``."""
    g = seed_everything(0)
    n_users, n_items = enc.n_users, enc.n_items
    if name == "AutoRec (item)":  # as quality.run_autorec
        model, optimizer = autorec_and_optimizer(train, n_users, n_items, cfg)
        loss, data, one_cycle = "masked_mse", (torch.arange(model.n_rows),), False
    elif name == "MF (biases)":  # as quality.run_mf
        model, optimizer = mf_and_optimizer(n_users, n_items, cfg)
        loss, data, one_cycle = "mse", to_tensors(train), True
    else:
        model = cfg["model"](n_users, n_items)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]
        )
        loss, data, one_cycle = "mse", to_tensors(train), cfg["one_cycle"]
    batches = Batches(*data, batch_size=cfg["batch_size"], generator=g)
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg["lr"], total_steps=epochs * len(batches)
        )
        if one_cycle
        else None
    )
    timer = EpochTimer(
        batches, None if valid is None else lambda m: evaluate_ratings(m, *to_tensors(valid))
    )
    history = fit(
        model,
        timer,
        loss,
        optimizer,
        epochs=epochs,
        scheduler=scheduler,
        evaluate=timer.evaluate,
        monitor=None if valid is None else "RMSE",
        patience=None if valid is None else cfg["patience"],
        progress=False,
    )
    return model, history, timer


def train_explicit(name, cfg, train: pd.DataFrame, test: pd.DataFrame, enc, epochs_cap, seed):
    """Train ``name`` on ``train`` with its recipe, then predict ``test``."""
    out = {}
    if "max_epochs" in cfg:  # AutoRec: quality.py's epoch selection, then a refit on all of train
        part, valid = random_split(train, test_size=AUTOREC_VALID, seed=seed + 1)
        cap = cfg["max_epochs"] if epochs_cap is None else min(cfg["max_epochs"], epochs_cap)
        with Clock() as sel:
            _, history, _ = fit_explicit(name, cfg, part, enc, cap, valid=valid)
        epochs = history.best_epoch
        out["selection"] = {
            "train": len(part),
            "valid": len(valid),
            "epochs_run": history.epochs,
            "best_epoch": epochs,
            "valid_RMSE": history.best["RMSE"],
            "s": sel.wall,
            "cpu_s": sel.cpu,
        }
    else:
        epochs = cfg["epochs"] if epochs_cap is None else min(cfg["epochs"], epochs_cap)
    model, _, timer = fit_explicit(name, cfg, train, enc, epochs)
    with Clock() as c:
        metrics = evaluate_ratings(model, *to_tensors(test))
    return {
        **metrics,
        **timer.summary(),
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
