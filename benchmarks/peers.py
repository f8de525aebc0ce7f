"""The course package side by side with scikit-surprise and RecBole, in one run.

Run with the course's environment; the peers run in their own environments (made by
``benchmarks/surprise_env.sh`` and ``benchmarks/recbole_env.sh``) as subprocesses that read the
very split files this script writes::

    python benchmarks/peers.py                      # everything (about an hour on one thread)
    python benchmarks/peers.py --quick              # smoke run on 150 users, 2 epochs
    python benchmarks/peers.py --only explicit,speed
    python benchmarks/peers.py --render-only        # peers.md and the PNGs from peers.json

Sections (``--only``, comma-separated):

``explicit``  RMSE on the full ml-100k, one 80/20 random split and 5-fold cross-validation (the
              same rows for every library): the course's MF with biases, EmbeddingMLP and
              item-based AutoRec against surprise's SVD and SVD++ (``benchmarks/surprise_run.py``).
              MF and AutoRec follow the course's default recipes, ``MF_PARAMS`` and
              ``AUTOREC_PARAMS`` of ``benchmarks/quality.py`` (AutoRec's epoch count picked on
              10 % of each training part, then the model refitted on all of it).
``ranking``   Implicit feedback (every rating a positive). RecBole's NCF protocol: leave-one-out
              by time (latest rating -> test, second latest -> validation), the held-out item
              ranked among 100 sampled negatives, HR@10 / NDCG@10, for Pop, BPR-MF, GMF, MLP
              and NeuMF; and full ranking on a per-user chronological split (latest 20 % -> test,
              the 10 % before -> validation), recall@k / NDCG@k with training items masked, for
              BPR-MF, NGCF and LightGCN. The course's models and RecBole's
              (``benchmarks/recbole_run.py --split-dir``) get the same split files and the same
              hyper-parameters, epochs and early stopping on the validation metric.
``speed``     Training time per epoch and evaluation time of every model above as course / peer
              ratios, from the runs of this invocation (``--only speed`` alone runs the other two
              sections with at most 3 epochs and no cross-validation, for the timings only); and
              data preparation: the split, negative sampling of one epoch, the sampled-ranking
              candidates, the normalised adjacency, against RecBole's own.
``scaling``   The course's training time per epoch and evaluation time on synthetic data shaped
              like ml-100k (943 users, 1,682 items, 100,000 ratings) and like ml-1m (6,040 users,
              3,706 items, 1,000,209 ratings), from ``recs_course.data.synthetic_ratings``.

Every process runs with the same thread count (``--threads``, default 1: ``torch`` threads and
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` for the subprocesses).
Times are wall-clock seconds; the ratios use process CPU seconds, which on one thread equal the
wall time on an idle machine and are much less disturbed by other processes on a shared one
(both are in the JSON).

Writes ``benchmarks/results/peers.json`` (merged: a run of some sections keeps the others'
earlier results, each section with its own command and date), ``peers.md`` (the tables) and
``peers_speed.png`` / ``peers_scaling.png``. ``peers.md`` also shows the course's tuned ranking
results from ``benchmarks/results/quality.json`` (written by ``benchmarks/quality.py``) beside
the same-settings rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SURPRISE_PY = REPO / ".venv-surprise" / "bin" / "python"
RECBOLE_PY = REPO / ".venv-recbole" / "bin" / "python"
SECTIONS = ("explicit", "ranking", "speed", "scaling")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    p.add_argument("--quick", action="store_true", help="smoke run: 150 users, 2 epochs")
    p.add_argument("--threads", type=int, default=1, help="threads for every library (1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (5)")
    p.add_argument("--out-dir", default=str(RESULTS), help="where results are written")
    p.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing: rewrite peers.md and the PNGs from the stored peers.json",
    )
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown or not only:
        p.error(f"--only takes a comma-separated subset of {','.join(SECTIONS)}, got {args.only!r}")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.folds < 2:
        p.error("--folds must be at least 2")
    args.only = [s for s in SECTIONS if s in only]
    return args


# The thread count must be in the environment before torch is imported.
if __name__ == "__main__":
    _ARGS = parse_args()
    for _var in THREAD_VARS:
        os.environ[_var] = str(_ARGS.threads)
    os.environ["RECS_COURSE_THREADS"] = str(_ARGS.threads)
    os.environ["RECS_COURSE_PROGRESS"] = "0"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _common import write_json  # noqa: E402

from recs_course.data import (  # noqa: E402
    Batches,
    IdEncoder,
    NegativeSampler,
    chronological_split,
    interaction_matrix,
    leave_one_out,
    load_movielens,
    pairwise_instances,
    pointwise_instances,
    random_split,
    ranking_candidates,
    subsample_users,
    synthetic_ratings,
    to_tensors,
)
from recs_course.evaluation import evaluate_full, evaluate_ratings, evaluate_sampled  # noqa: E402
from recs_course.models import (  # noqa: E402
    GMF,
    MF,
    NCFMLP,
    NGCF,
    AutoRec,
    EmbeddingMLP,
    LightGCN,
    NeuMF,
    Popularity,
    normalized_adjacency,
)
from recs_course.training import fit, seed_everything  # noqa: E402


def _recbole_spec():
    """``recbole_run.py``'s model settings and protocols (stdlib-only at import time)."""
    spec = importlib.util.spec_from_file_location("recbole_run", REPO / "benchmarks/recbole_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RB = _recbole_spec()


def _quality_module():
    """``benchmarks/quality.py``: the course's default hyper-parameters (what the chapters use)."""
    spec = importlib.util.spec_from_file_location("quality", REPO / "benchmarks/quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


QUALITY = _quality_module()
QUALITY_JSON = RESULTS / "quality.json"

# ----------------------------------------------------------------------- hyper-parameters
# Explicit ratings. MF with biases and item AutoRec: the course's defaults, the very dicts
# benchmarks/quality.py trains with (MF: AdamW, weight decay on the embeddings only, one-cycle
# schedule, fixed epochs; AutoRec: Adam with an L2 penalty, epochs picked on a validation part
# of the training data with early stopping, then refitted on all of it). The embedding MLP has
# no quality.py recipe: AdamW with decoupled weight decay and a one-cycle schedule (fastai's
# recipe for collaborative filtering), its weight decay and epochs picked on a 10 % validation
# part of the 80 % training set, seed 1. The test set never chooses anything.
EXPLICIT = {
    "MF (biases)": {"recipe": "benchmarks/quality.py MF_PARAMS", **QUALITY.MF_PARAMS},
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
    "AutoRec (item)": {"recipe": "benchmarks/quality.py AUTOREC_PARAMS", **QUALITY.AUTOREC_PARAMS},
}
AUTOREC_VALID = 0.1  # as quality.explicit_split: 10 % of the training part picks the epochs

# Implicit ranking: the settings of recbole_run.py's MODELS, model by model.
NCF_BATCH, NCF_NEG, FULL_BATCH = 256, 4, 2048
TOWER = (64, 64, 32, 16, 8)  # RecBole: 32 + 32 embedding -> hidden [64, 32, 16, 8]
RANKING = {
    "ncf": {
        "Pop": {"kind": "pop"},
        "BPR": {"kind": "bpr", "model": lambda u, i, tr: MF(u, i, dim=32, biases=False)},
        "GMF": {"kind": "bce", "model": lambda u, i, tr: GMF(u, i, dim=32)},
        "MLP": {"kind": "bce", "model": lambda u, i, tr: NCFMLP(u, i, layers=TOWER)},
        "NeuMF": {"kind": "bce", "model": lambda u, i, tr: NeuMF(u, i, dim=32, layers=TOWER)},
    },
    "temporal": {
        "BPR": {"kind": "bpr", "model": lambda u, i, tr: MF(u, i, dim=64, biases=False)},
        # RecBole's NGCF defaults: hidden [64, 64, 64], no node dropout, message dropout 0.1.
        "NGCF": {
            "kind": "bpr",
            "model": lambda u, i, tr: NGCF.from_interactions(
                tr["user_id"].to_numpy(),
                tr["item_id"].to_numpy(),
                u,
                i,
                dim=64,
                layers=(64, 64, 64),
                node_dropout=0.0,
                message_dropout=0.1,
                reg=1e-5,
            ),
        },
        "LightGCN": {
            "kind": "bpr",
            "model": lambda u, i, tr: LightGCN.from_interactions(
                tr["user_id"].to_numpy(), tr["item_id"].to_numpy(), u, i, n_layers=3, reg=1e-5
            ),
        },
    },
}
PROTOCOL_KS = {"ncf": (10,), "temporal": (10, 20)}
PROTOCOL_METRICS = {"ncf": ("hr", "ndcg"), "temporal": ("recall", "ndcg")}

SCALING_SHAPES = {
    "ml-100k-like": (943, 1682, 100_000),
    "ml-1m-like": (6040, 3706, 1_000_209),
}


# ----------------------------------------------------------------------------- helpers
class Clock:
    """Wall and process CPU seconds of a block: ``with Clock() as c: ...; c.wall, c.cpu``."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        return False


class EpochTimer:
    """Wraps ``fit``'s ``train_data`` callable and ``evaluate`` to time each part of an epoch.

    An epoch's training runs from the call of ``train_data(epoch)`` (which draws the epoch's
    negatives) to the call of ``evaluate``; ``data_s`` is the part spent building the batches.
    """

    def __init__(self, make_batches, evaluate=None):
        self.make_batches, self.evaluate_fn = make_batches, evaluate
        self.train, self.data, self.eval = [], [], []
        self._start = None

    def train_data(self, epoch):
        self._start = (time.perf_counter(), time.process_time())
        with Clock() as c:
            batches = self.make_batches(epoch)
        self.data.append((c.wall, c.cpu))
        return batches

    def evaluate(self, model):
        wall, cpu = self._start
        self.train.append((time.perf_counter() - wall, time.process_time() - cpu))
        with Clock() as c:
            out = self.evaluate_fn(model) if self.evaluate_fn else {}
        self.eval.append((c.wall, c.cpu))
        return out

    @staticmethod
    def _mean(pairs, k):
        return float(np.mean([p[k] for p in pairs])) if pairs else None

    def summary(self) -> dict:
        out = {
            "train_s_per_epoch": self._mean(self.train, 0),
            "train_cpu_s_per_epoch": self._mean(self.train, 1),
            "data_s_per_epoch": self._mean(self.data, 0),
            "data_cpu_s_per_epoch": self._mean(self.data, 1),
        }
        if self.evaluate_fn is not None:
            out["valid_s_per_eval"] = self._mean(self.eval, 0)
            out["valid_cpu_s_per_eval"] = self._mean(self.eval, 1)
        return out


def tensor(values, dtype=torch.int64):
    return torch.as_tensor(np.array(values), dtype=dtype)


def rounded(obj, digits=5):
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rounded(v, digits) for v in obj]
    if isinstance(obj, float | np.floating):
        return round(float(obj), digits)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    return env


def need(python: Path, script: str) -> None:
    if not python.exists():
        raise SystemExit(
            f"{python.relative_to(REPO)} is missing: run `bash benchmarks/{script}` first"
        )


def machine(threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def load_ratings(quick: bool, seed: int) -> pd.DataFrame:
    ratings = load_movielens("ml-100k").ratings
    if quick:
        ratings = subsample_users(ratings, n_users=150, seed=seed)
    return ratings


# --------------------------------------------------------------------------- explicit
def explicit_columns(df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return to_tensors(df)


def fit_explicit(name: str, cfg: dict, train: pd.DataFrame, enc, epochs: int, valid=None):
    """Build ``name`` and train it on ``train`` for ``epochs`` epochs, or, with ``valid``, for
    at most ``epochs`` with early stopping on its RMSE. Returns ``(model, history, timer)``."""
    g = seed_everything(0)
    n_users, n_items = enc.n_users, enc.n_items
    if name == "AutoRec (item)":  # as quality.run_autorec
        model = AutoRec(
            n_users,
            n_items,
            interaction_matrix(train, n_users, n_items),
            hidden=cfg["hidden"],
            based="item",
            activation=cfg["activation"],
            dropout=cfg["dropout"],
            y_range=cfg["y_range"],
        )
        optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]
        )
        loss, data, one_cycle = "masked_mse", (torch.arange(model.n_rows),), False
    elif name == "MF (biases)":  # as quality.run_mf
        model = MF(n_users, n_items, dim=cfg["dim"], biases=True, y_range=cfg["y_range"])
        embeddings = [model.user_embedding.weight, model.item_embedding.weight]
        others = [w for key, w in model.named_parameters() if "embedding" not in key]
        optimizer = torch.optim.AdamW(
            [
                {"params": embeddings, "weight_decay": cfg["weight_decay"]},
                {"params": others, "weight_decay": 0.0},  # biases are not shrunk
            ],
            lr=cfg["lr"],
            betas=(0.9, 0.99),
        )
        loss, data, one_cycle = "mse", explicit_columns(train), True
    else:
        model = cfg["model"](n_users, n_items)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]
        )
        loss, data, one_cycle = "mse", explicit_columns(train), cfg["one_cycle"]

    def make(epoch):
        return Batches(*data, batch_size=cfg["batch_size"], generator=g)

    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg["lr"], total_steps=epochs * len(make(0))
        )
        if one_cycle
        else None
    )
    timer = EpochTimer(
        make, None if valid is None else lambda m: evaluate_ratings(m, *explicit_columns(valid))
    )
    history = fit(
        model,
        timer.train_data,
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
        metrics = evaluate_ratings(model, *explicit_columns(test))
    return {
        **metrics,
        **timer.summary(),
        "epochs": epochs,
        "test_s": c.wall,
        "test_cpu_s": c.cpu,
        "n_test": len(test),
        **out,
    }


def run_explicit(args, ratings: pd.DataFrame, tmp: Path, epochs_cap=None, cv=True) -> dict:
    need(SURPRISE_PY, "surprise_env.sh")
    enc = IdEncoder().fit(ratings)
    e = enc.transform(ratings)
    train, test = random_split(e, test_size=0.2, seed=args.seed)
    # K folds: a random permutation cut into K parts
    rng = np.random.default_rng(args.seed)
    fold = np.empty(len(e), dtype=np.int64)
    fold[rng.permutation(len(e))] = np.arange(len(e)) % args.folds
    # the split file the peer reads: raw ids, and the course's own rows for test/fold
    holdout = np.zeros(len(e), dtype=np.int64)
    key = e["user_id"].to_numpy() * enc.n_items + e["item_id"].to_numpy()
    holdout[np.isin(key, test["user_id"].to_numpy() * enc.n_items + test["item_id"].to_numpy())] = 1
    split_file = tmp / "explicit_split.tsv"
    ratings[["user_id", "item_id", "rating"]].assign(holdout=holdout, fold=fold).to_csv(
        split_file, sep="\t", index=False
    )
    peer_epochs = 20 if epochs_cap is None else min(20, epochs_cap)
    out_file = tmp / "surprise.json"
    cmd = [
        str(SURPRISE_PY),
        str(REPO / "benchmarks/surprise_run.py"),
        "--ratings",
        str(split_file),
        "--out",
        str(out_file),
        "--epochs",
        str(peer_epochs),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        "--tasks",
        *(["split", "cv"] if cv else ["split"]),
    ]
    log("surprise: " + " ".join(cmd[1:]))
    subprocess.run(cmd, check=True, env=child_env(args.threads), cwd=REPO)
    peer = json.loads(out_file.read_text())

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
        "notes": [
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
        ],
    }


# ---------------------------------------------------------------------------- ranking
def ranking_split(protocol: str, ratings: pd.DataFrame):
    """(train, valid, test) with raw ids, the same rows for the course and RecBole."""
    r = ratings[["user_id", "item_id", "rating", "timestamp"]]
    if protocol == "ncf":
        rest, test = leave_one_out(r)
        train, valid = leave_one_out(rest)
        text = "leave-one-out by time: latest -> test, second latest -> validation"
    else:
        rest, test = chronological_split(r, test_size=0.2, per_user=True)
        train, valid = chronological_split(rest, test_size=0.125, per_user=True)
        text = (
            "per-user chronological: latest 20% -> test, the 10% before (12.5% of the rest) "
            "-> validation"
        )
    return train, valid, test, text


def train_ranking(protocol, name, spec, data, epochs, patience, seed):
    """One course model under ``protocol``: fit with early stopping, then test."""
    n_users, n_items = data["n_users"], data["n_items"]
    train, ks, metrics = data["train"], PROTOCOL_KS[protocol], PROTOCOL_METRICS[protocol]
    monitor = f"NDCG@{ks[-1]}"
    seed_everything(seed)
    with Clock() as init:
        model = (
            Popularity(n_users, n_items)
            if spec["kind"] == "pop"
            else spec["model"](n_users, n_items, train)
        )
    if protocol == "ncf":

        def valid_eval(m):
            return evaluate_sampled(m, *data["valid_cand"], ks=ks, metrics=metrics)

        def test_eval(m):
            return evaluate_sampled(m, *data["test_cand"], ks=ks, metrics=metrics)
    else:

        def valid_eval(m):
            return evaluate_full(m, data["train_csr"], data["valid_csr"], ks=ks, metrics=metrics)

        def test_eval(m):
            return evaluate_full(m, data["seen_csr"], data["test_csr"], ks=ks, metrics=metrics)

    out = {"model_init_s": init.wall}
    if spec["kind"] == "pop":
        with Clock() as c:
            model.fit(tensor(train["user_id"]), tensor(train["item_id"]))
        with Clock() as v:
            valid_eval(model)
        out.update(
            train_s_per_epoch=c.wall,
            train_cpu_s_per_epoch=c.cpu,
            valid_s_per_eval=v.wall,
            valid_cpu_s_per_eval=v.cpu,
            epochs_run=1,
            best_epoch=1,
        )
    else:
        g = torch.Generator().manual_seed(seed)
        sampler = data["sampler"]
        batch = NCF_BATCH if protocol == "ncf" else FULL_BATCH
        if spec["kind"] == "bce":

            def make(epoch):
                u, i, y = pointwise_instances(
                    train, n_items, n_neg=NCF_NEG, generator=g, positives=sampler
                )
                return Batches(u, i, y, batch_size=batch, generator=g)
        else:

            def make(epoch):
                u, p, n = pairwise_instances(train, n_items, generator=g, positives=sampler)
                return Batches(u, p, n, batch_size=batch, generator=g)

        timer = EpochTimer(make, valid_eval)
        history = fit(
            model,
            timer.train_data,
            spec["kind"],
            torch.optim.Adam(model.parameters(), lr=1e-3),
            epochs=epochs,
            evaluate=timer.evaluate,
            monitor=monitor,
            mode="max",
            patience=patience,
            restore_best=True,
            progress=False,
        )
        out.update(timer.summary(), epochs_run=history.epochs, best_epoch=history.best_epoch)
    with Clock() as t:
        test = test_eval(model)
    out.update(test=test, test_eval_s=t.wall, test_eval_cpu_s=t.cpu)
    return out


def recbole_ranking(args, protocol, split_dir: Path, tmp: Path, epochs_cap=None) -> dict:
    need(RECBOLE_PY, "recbole_env.sh")
    out_file = tmp / f"recbole_{protocol}.json"
    cmd = [
        str(RECBOLE_PY),
        str(REPO / "benchmarks/recbole_run.py"),
        "--protocol",
        protocol,
        "--split-dir",
        str(split_dir),
        "--threads",
        str(args.threads),
        "--out",
        str(out_file),
    ]
    if epochs_cap is not None:
        cmd += ["--epochs", str(epochs_cap)]
    log("recbole: " + " ".join(cmd[1:]))
    subprocess.run(cmd, check=True, env=child_env(args.threads), cwd=REPO)
    report = json.loads(out_file.read_text())
    models = {}
    for name, m in report["models"].items():
        models[name] = {
            "test": m["test"],
            "epochs_run": m["epochs_run"],
            "best_epoch": None if m["best_epoch"] is None else m["best_epoch"] + 1,
            "train_s_per_epoch": m["train_s_per_epoch_mean"],
            "train_cpu_s_per_epoch": m.get("train_cpu_s_per_epoch_mean"),
            "valid_s_per_eval": m["valid_s_per_eval_mean"],
            "valid_cpu_s_per_eval": m.get("valid_cpu_s_per_eval_mean"),
            "test_eval_s": m["test_eval_s"],
            "test_eval_cpu_s": m.get("test_eval_cpu_s"),
            "prep_s": m.get("prep_s"),
            "model_init_s": m.get("model_init_s"),
            "config": m["resolved_config"],
        }
    return {"models": models, "versions": report["versions"], "notes": report["notes"]}


def run_ranking(args, ratings: pd.DataFrame, tmp: Path, epochs_cap=None) -> dict:
    enc = IdEncoder().fit(ratings)
    n_users, n_items = enc.n_users, enc.n_items
    result = {}
    for protocol in ("ncf", "temporal"):
        with Clock() as split_clock:
            train_raw, valid_raw, test_raw, text = ranking_split(protocol, ratings)
        split_dir = tmp / f"split_{protocol}"
        split_dir.mkdir()
        for part, df in (("train", train_raw), ("valid", valid_raw), ("test", test_raw)):
            df.to_csv(split_dir / f"{part}.tsv", sep="\t", index=False)
        train, valid, test = (enc.transform(x) for x in (train_raw, valid_raw, test_raw))
        data = {"n_users": n_users, "n_items": n_items, "train": train}
        prep = {"split_s": split_clock.wall}
        with Clock() as c:
            data["sampler"] = NegativeSampler.from_ratings(train, n_items)
        prep["negative_sampler_s"] = c.wall
        if protocol == "ncf":
            with Clock() as c:
                data["valid_cand"] = ranking_candidates(
                    pd.concat([train, test]), valid, n_items, n_neg=100, seed=args.seed
                )
                data["test_cand"] = ranking_candidates(
                    pd.concat([train, valid]), test, n_items, n_neg=100, seed=args.seed + 1
                )
            prep["candidates_s"] = c.wall
        else:
            with Clock() as c:
                data["train_csr"] = interaction_matrix(train, n_users, n_items, values="ones")
                data["valid_csr"] = interaction_matrix(valid, n_users, n_items, values="ones")
                data["test_csr"] = interaction_matrix(test, n_users, n_items, values="ones")
                data["seen_csr"] = data["train_csr"] + data["valid_csr"]
            prep["csr_s"] = c.wall
        spec = RB.PROTOCOLS[protocol]
        course = {}
        for name, model_spec in RANKING[protocol].items():
            epochs = RB.MODELS[protocol][name][1].get("epochs", spec["epochs"])
            if epochs_cap is not None:
                epochs = min(epochs, epochs_cap)
            log(f"course {protocol} {name}: up to {epochs} epochs")
            course[name] = train_ranking(
                protocol, name, model_spec, data, epochs, spec["stopping_step"], args.seed
            )
            log(f"    test {rounded(course[name]['test'], 4)}")
        result[protocol] = {
            "split": {
                "method": text,
                "rows": {"train": len(train), "valid": len(valid), "test": len(test)},
                "users": n_users,
                "items": n_items,
            },
            "course_prep": prep,
            "course": course,
            "recbole": recbole_ranking(args, protocol, split_dir, tmp, epochs_cap),
        }
    result["notes"] = [
        "Sampled ranking: the course ranks each held-out item among 100 distinct negatives "
        "drawn once (ranking_candidates, never an item the user rated); RecBole's uni100 "
        "draws 100 with replacement at every evaluation. Same protocol, different draws.",
        "Ties: the course counts a negative scored equal to the held-out item as ranked above "
        "it (pessimistic); RecBole breaks ties by its internal item index. This matters for "
        "Pop only.",
        "Both sides select the epoch with the best validation NDCG (patience as in "
        "recbole_run.py) and report the test metrics of that epoch's weights.",
        "NGCF/LightGCN regularisation: the same weight (1e-5) but the course penalises "
        "squared norms / 2 / batch, RecBole's EmbLoss plain norms / batch.",
    ]
    return result


# ----------------------------------------------------------------------------- speed
def data_prep(ratings: pd.DataFrame, seed: int, repeat: int = 3) -> dict:
    """The course's data preparation steps on ``ratings`` (best of ``repeat`` runs)."""
    enc = IdEncoder().fit(ratings)
    e = enc.transform(ratings)
    n_users, n_items = enc.n_users, enc.n_items
    train, test = leave_one_out(e)
    g = torch.Generator().manual_seed(seed)
    steps = {
        "leave-one-out split": lambda: leave_one_out(e),
        "negative sampler (index of positives)": lambda: NegativeSampler.from_ratings(
            train, n_items
        ),
        "pointwise instances, 4 negatives (one epoch)": lambda: pointwise_instances(
            train, n_items, n_neg=4, generator=g
        ),
        "pairwise instances, 1 negative (one epoch)": lambda: pairwise_instances(
            train, n_items, generator=g
        ),
        "ranking candidates, 100 negatives": lambda: ranking_candidates(
            train, test, n_items, n_neg=100, seed=seed
        ),
        "normalised adjacency": lambda: normalized_adjacency(
            train["user_id"].to_numpy(), train["item_id"].to_numpy(), n_users, n_items
        ),
    }
    out = {}
    for name, step in steps.items():
        times = []
        for _ in range(repeat):
            with Clock() as c:
                step()
            times.append((c.wall, c.cpu))
        out[name] = {"s": min(t[0] for t in times), "cpu_s": min(t[1] for t in times)}
    return out


def ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b


def speed_rows(explicit: dict | None, ranking: dict | None) -> list[dict]:
    """One row per (task, model) pairing a course model with its peer: times and ratios."""
    rows = []
    if explicit:
        for course_name, peer_name in (
            ("MF (biases)", "SVD"),
            ("EmbeddingMLP", "SVD"),
            ("AutoRec (item)", "SVD"),
            ("MF (biases)", "SVDpp"),
        ):
            c, p = (
                explicit["course"][course_name]["split"],
                explicit["surprise"][peer_name]["split"],
            )
            cpu = "_cpu" if "train_cpu_s_per_epoch" in p else ""
            rows.append(
                {
                    "task": "explicit 80/20",
                    "model": course_name,
                    "peer": f"surprise {peer_name}",
                    "course_train_s": c[f"train{cpu}_s_per_epoch"],
                    "peer_train_s": p[f"train{cpu}_s_per_epoch"],
                    "train_ratio": ratio(
                        c[f"train{cpu}_s_per_epoch"], p[f"train{cpu}_s_per_epoch"]
                    ),
                    "course_eval_s": c[f"test{cpu}_s"],
                    "peer_eval_s": p[f"test{cpu}_s"],
                    "eval_ratio": ratio(c[f"test{cpu}_s"], p[f"test{cpu}_s"]),
                    "basis": "cpu" if cpu else "wall",
                }
            )
    if ranking:
        for protocol in ("ncf", "temporal"):
            if protocol not in ranking:
                continue
            block = ranking[protocol]
            for name, c in block["course"].items():
                p = block["recbole"]["models"].get(name)
                if p is None:
                    continue
                cpu = p.get("train_cpu_s_per_epoch") is not None
                key = "cpu_s" if cpu else "s"
                rows.append(
                    {
                        "task": "NCF protocol" if protocol == "ncf" else "full ranking",
                        "model": name,
                        "peer": f"RecBole {name}",
                        "course_train_s": c[f"train_{key}_per_epoch"],
                        "peer_train_s": p[f"train_{key}_per_epoch"],
                        "train_ratio": ratio(
                            c[f"train_{key}_per_epoch"], p[f"train_{key}_per_epoch"]
                        ),
                        "course_eval_s": c[f"valid_{key}_per_eval"],
                        "peer_eval_s": p[f"valid_{key}_per_eval"],
                        "eval_ratio": ratio(c[f"valid_{key}_per_eval"], p[f"valid_{key}_per_eval"]),
                        "basis": "cpu" if cpu else "wall",
                    }
                )
    return rows


def run_speed(args, ratings, tmp, results_now: dict, stored: dict) -> dict:
    """Ratios from this run's sections, else from the stored ones (each section times the
    course and its peer in the same invocation), else from short timing runs."""
    explicit = results_now.get("explicit") or stored.get("explicit")
    ranking = results_now.get("ranking") or stored.get("ranking")
    out = {
        "sources": {
            "explicit": None if explicit is None else explicit.get("created", "this run"),
            "ranking": None if ranking is None else ranking.get("created", "this run"),
        }
    }
    if explicit is None and ranking is None:
        log("speed alone: timing runs of the explicit and ranking sections (3 epochs)")
        explicit = run_explicit(args, ratings, tmp / "speed_explicit", epochs_cap=3, cv=False)
        ranking = run_ranking(args, ratings, tmp / "speed_ranking", epochs_cap=3)
        out["timing_runs"] = {"explicit": explicit, "ranking": ranking}
    out["rows"] = speed_rows(explicit, ranking)
    log("data preparation timings")
    prep = {"course": data_prep(ratings, args.seed)}
    if ranking:
        rb = ranking["ncf"]["recbole"]["models"]
        rt = ranking["temporal"]["recbole"]["models"]
        prep["recbole"] = {
            "dataset + data loaders, NCF protocol (create_dataset, data_preparation)": rb.get(
                "NeuMF", {}
            ).get("prep_s"),
            "dataset + data loaders, full ranking": rt.get("LightGCN", {}).get("prep_s"),
            "LightGCN construction (normalised adjacency)": rt.get("LightGCN", {}).get(
                "model_init_s"
            ),
            "NGCF construction (normalised adjacency)": rt.get("NGCF", {}).get("model_init_s"),
        }
        prep["course_in_run"] = {
            protocol: ranking[protocol]["course_prep"] for protocol in ("ncf", "temporal")
        }
        prep["course_model_init"] = {
            name: ranking["temporal"]["course"][name]["model_init_s"]
            for name in ("NGCF", "LightGCN")
        }
    out["prep"] = prep
    return out


# --------------------------------------------------------------------------- scaling
def run_scaling(args) -> dict:
    shapes = dict(SCALING_SHAPES)
    if args.quick:
        shapes = {k: (u // 10, i // 10, n // 100) for k, (u, i, n) in shapes.items()}
    out = {}
    for label, (n_users, n_items, n_ratings) in shapes.items():
        log(f"scaling {label}: {n_users} users, {n_items} items, {n_ratings} ratings")
        out[label] = scaling_entry(n_users, n_items, n_ratings, args.seed)
    return out


def one_timed_epoch(model, make_batches, loss, optimizer, evaluate, what: str, **extra) -> dict:
    """Train ``model`` one epoch and evaluate it once; the times of both, as in ``EpochTimer``."""
    timer = EpochTimer(make_batches)
    fit(model, timer.train_data, loss, optimizer, epochs=1, evaluate=timer.evaluate, progress=False)
    with Clock() as c:
        evaluate(model)
    return {**timer.summary(), "eval_s": c.wall, "eval_cpu_s": c.cpu, **extra, "eval": what}


def scaling_entry(n_users: int, n_items: int, n_ratings: int, seed: int) -> dict:
    """Time one epoch and one evaluation of four course models on synthetic data."""
    r = synthetic_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed)
    enc = IdEncoder().fit(r.ratings)
    e = enc.transform(r.ratings)
    n_users, n_items = enc.n_users, enc.n_items
    g = torch.Generator().manual_seed(seed)
    models = {}

    # explicit MF: one epoch on 90 %, RMSE on 10 %
    train, test = random_split(e, 0.1, seed=seed)
    tu, ti, tr = explicit_columns(train)
    test_cols = explicit_columns(test)

    def rmse_on_test(model):
        return evaluate_ratings(model, *test_cols)

    seed_everything(0)
    mf = MF(n_users, n_items, dim=50, y_range=(0.5, 5.5))
    models["MF (explicit)"] = one_timed_epoch(
        mf,
        lambda ep: Batches(tu, ti, tr, batch_size=256, generator=g),
        "mse",
        torch.optim.AdamW(mf.parameters(), lr=5e-3),
        rmse_on_test,
        "RMSE on 10% of the ratings",
    )

    # AutoRec: one epoch over the item rows
    csr = interaction_matrix(train, n_users, n_items)
    seed_everything(0)
    ae = AutoRec(n_users, n_items, csr, hidden=500, y_range=(1.0, 5.0))
    rows = torch.arange(ae.n_rows)
    models["AutoRec (explicit)"] = one_timed_epoch(
        ae,
        lambda ep: Batches(rows, batch_size=64, generator=g),
        "masked_mse",
        torch.optim.Adam(ae.parameters(), lr=1e-3),
        rmse_on_test,
        "RMSE on 10% of the ratings",
    )

    # NeuMF: leave-one-out, 4 negatives, batch 256; sampled ranking with 100 negatives
    train, test = leave_one_out(e)
    with Clock() as cand:
        cands = ranking_candidates(train, test, n_items, n_neg=100, seed=seed)
    sampler = NegativeSampler.from_ratings(train, n_items)
    seed_everything(0)
    neumf = NeuMF(n_users, n_items, dim=32, layers=TOWER)

    def make_pointwise(epoch):
        u, i, y = pointwise_instances(train, n_items, n_neg=4, generator=g, positives=sampler)
        return Batches(u, i, y, batch_size=NCF_BATCH, generator=g)

    models["NeuMF (NCF protocol)"] = one_timed_epoch(
        neumf,
        make_pointwise,
        "bce",
        torch.optim.Adam(neumf.parameters(), lr=1e-3),
        lambda model: evaluate_sampled(model, *cands, ks=(10,)),
        "HR@10 / NDCG@10, 100 sampled negatives",
        candidates_s=cand.wall,
    )

    # LightGCN: chronological 80/20, BPR batch 2048; full ranking
    train, test = chronological_split(e, 0.2, per_user=True)
    with Clock() as adj:
        lgcn = LightGCN.from_interactions(
            train["user_id"].to_numpy(),
            train["item_id"].to_numpy(),
            n_users,
            n_items,
            n_layers=3,
            reg=1e-5,
        )
    sampler = NegativeSampler.from_ratings(train, n_items)
    tr_csr = interaction_matrix(train, n_users, n_items, values="ones")
    te_csr = interaction_matrix(test, n_users, n_items, values="ones")

    def make_pairwise(epoch):
        u, p, n = pairwise_instances(train, n_items, generator=g, positives=sampler)
        return Batches(u, p, n, batch_size=FULL_BATCH, generator=g)

    models["LightGCN (full ranking)"] = one_timed_epoch(
        lgcn,
        make_pairwise,
        "bpr",
        torch.optim.Adam(lgcn.parameters(), lr=1e-3),
        lambda model: evaluate_full(
            model, tr_csr, te_csr, ks=(20,), metrics=("recall", "ndcg")
        ),
        "recall@20 / NDCG@20, all items",
        adjacency_s=adj.wall,
    )
    return {"users": n_users, "items": n_items, "ratings": len(e), "models": models}


# --------------------------------------------------------------------------- reporting
def fmt(x, digits=4):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return str(x)
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}" if abs(x) < 0.01 else f"{x:.{digits - 1}f}"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def stamp(section: dict) -> str:
    return f"_Measured {section['created']} with `{section['command']}`._"


# quality.py's protocol and model names for the ranking tables' protocols and model names
QUALITY_RANKING = {
    "ncf": ("neumf", {"Pop": "Pop", "GMF": "GMF", "MLP": "MLP", "NeuMF": "NeuMF"}),
    "temporal": ("graph", {"BPR": "BPR-MF", "NGCF": "NGCF", "LightGCN": "LightGCN"}),
}


def load_quality(path: Path = QUALITY_JSON) -> dict:
    """``quality.json``'s results by protocol, or ``{}`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text()).get("results", {})
    except (OSError, ValueError):
        return {}


def quality_settings(protocol: str, params: dict, model: str) -> str:
    """A few words on the hyper-parameters quality.py trained ``model`` with."""

    def lr(x):
        return f"lr {x:.0e}".replace("e-0", "e-")

    if protocol == "ncf":
        if model == "Pop":
            return "no training"
        if model == "NeuMF":
            return f"pre-trained GMF + MLP, {lr(params['neumf_lr'])}"
        tower = "-".join(map(str, params["layers"]))
        size = f"tower {tower}" if model == "MLP" else f"dim {params['dim']}"
        return f"{size}, {lr(params['lr'])}, patience {params['patience']}"
    q = params[{"BPR-MF": "bpr", "NGCF": "ngcf", "LightGCN": "lightgcn"}[model]]
    extra = f"reg {q['reg']:.0e}" if "reg" in q else f"init std {q['init_std']:g}"
    return f"{lr(q['lr'])}, {extra.replace('e-0', 'e-')}"


def course_defaults(protocol: str, block: dict, metric_keys: list[str], quality: dict) -> list:
    """The course's tuned results (quality.json) beside this protocol's same-settings rows."""
    key, names = QUALITY_RANKING[protocol]
    res = quality.get(key)
    if not res:
        return []
    rows = []
    for name, q_name in names.items():
        q = res["models"].get(q_name)
        if q is None:
            continue
        c = block["course"].get(name, {}).get("test", {})
        p = block["recbole"]["models"].get(name, {}).get("test", {})
        epochs = f"{q['best_epoch']}/{q['epochs_run']}" if "best_epoch" in q else "1/1"
        rows.append(
            [q_name]
            + [v for k in metric_keys for v in (q["test"].get(k), c.get(k), p.get(k))]
            + [epochs, quality_settings(protocol, res["params"], q_name)]
        )
    header = ["model"]
    for k in metric_keys:
        header += [f"{k} course defaults", "same settings: course", "RecBole"]
    header += ["best/run epochs", "course defaults"]
    why = (
        "The same-settings rows above give both libraries RecBole's hyper-parameters (Adam, "
        "lr 1e-3, RecBole's epochs and early stopping) to compare the implementations; the "
        "course-defaults rows are the course's tuned recipes, the ones the chapters use."
    )
    if protocol == "ncf":
        why += " Same split; the 100 sampled negatives are drawn with another seed."
    else:
        why += (
            " Same split; the course defaults rank on the validation set every 5 epochs and stop"
            " after 4 such evaluations without improvement."
        )
    return [
        "### Course defaults (benchmarks/quality.py)",
        "",
        f"From `benchmarks/results/quality.json` (`{res.get('command', 'benchmarks/quality.py')}`).",
        "",
        table(header, rows),
        "",
        why,
        "",
    ]


def explicit_recipes(ex: dict) -> str:
    """One line on the explicit section's recipes, with quality.json's figures next to them."""
    course = ex["course"]
    if "recipe" not in course.get("MF (biases)", {}).get("params", {}):
        return ""
    a = course["AutoRec (item)"]
    fold_epochs = [f["epochs"] for f in a.get("cv", {}).get("folds", [])]
    text = (
        "MF with biases and AutoRec use the course's default recipes, `MF_PARAMS` and "
        "`AUTOREC_PARAMS` of `benchmarks/quality.py` (AutoRec: epochs picked by early stopping "
        f"on 10 % of each training part, {a['split']['epochs']} on the 80/20 split"
    )
    if fold_epochs:
        text += ", " + ", ".join(map(str, fold_epochs)) + " on the folds"
    text += ", then a refit on the whole training part)."
    quality = load_quality()
    if "mf" in quality and "autorec" in quality:
        text += (
            f" `quality.json` has MF {quality['mf']['test']['RMSE']:.4f} and AutoRec "
            f"{quality['autorec']['test']['RMSE']:.4f} on the same 80/20 split: its MF trains "
            "on 90 % of the training ratings (the rest is its validation curve), and it leaves "
            f"out the {quality['mf']['n_test_dropped_unknown']} test ratings whose user or item "
            "has no training rating, which are predicted here."
        )
    return text


def markdown(report: dict) -> str:
    m = report.get("machine", {})
    out = [
        "# Peer benchmarks: recs_course vs scikit-surprise and RecBole",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('threads', '?')} "
        f"thread(s) for every library; Python {m.get('python', '?')}, torch {m.get('torch', '?')}."
        " Times are seconds; ratios are course / peer (below 1: the course is faster).",
        "",
    ]
    ex = report.get("explicit")
    if ex:
        out += ["## Explicit ratings (ml-100k): RMSE, lower is better", "", stamp(ex), ""]
        rows = []
        folds = ex["data"].get("folds")
        for name, r in ex["course"].items():
            cv = r.get("cv", {})
            rows.append(
                [
                    "course " + name,
                    r["split"]["RMSE"],
                    r["split"]["MAE"],
                    cv.get("RMSE_mean"),
                    cv.get("RMSE_std"),
                    r["split"]["epochs"],
                    r["split"]["train_s_per_epoch"],
                    r["split"]["test_s"],
                ]
            )
        for name, r in ex["surprise"].items():
            cv = r.get("cv", {})
            rows.append(
                [
                    "surprise " + name,
                    r["split"]["RMSE"],
                    r["split"]["MAE"],
                    cv.get("RMSE_mean"),
                    cv.get("RMSE_std"),
                    r["params"]["n_epochs"],
                    r["split"]["train_s_per_epoch"],
                    r["split"]["test_s"],
                ]
            )
        out += [
            table(
                [
                    "model",
                    "RMSE 80/20",
                    "MAE 80/20",
                    f"RMSE {folds}-fold" if folds else "RMSE CV",
                    "sd",
                    "epochs",
                    "train s/epoch",
                    "predict s (test)",
                ],
                rows,
            ),
            "",
            f"{ex['data']['ratings']} ratings, {ex['data']['users']} users, "
            f"{ex['data']['items']} items; test {ex['data']['test']} ratings.",
            "",
        ]
        recipes = explicit_recipes(ex)
        if recipes:
            out += [recipes, ""]
    rk = report.get("ranking")
    quality = load_quality()
    if rk:
        for protocol, title, metric_keys in (
            (
                "ncf",
                "Implicit, NCF protocol (leave-one-out, 100 sampled negatives)",
                ["HR@10", "NDCG@10"],
            ),
            (
                "temporal",
                "Implicit, full ranking (per-user chronological split)",
                ["recall@20", "NDCG@20"],
            ),
        ):
            if protocol not in rk:
                continue
            b = rk[protocol]
            out += [f"## {title}", "", stamp(rk), "", b["split"]["method"] + ".", ""]
            rows = []
            for name, c in b["course"].items():
                p = b["recbole"]["models"].get(name, {})
                pt = p.get("test", {})
                rows.append(
                    [name]
                    + [v for k in metric_keys for v in (c["test"].get(k), pt.get(k))]
                    + [
                        f"{c['best_epoch']}/{c['epochs_run']}",
                        f"{p.get('best_epoch')}/{p.get('epochs_run')}",
                        c["train_s_per_epoch"],
                        p.get("train_s_per_epoch"),
                        c["valid_s_per_eval"],
                        p.get("valid_s_per_eval"),
                    ]
                )
            header = ["model"]
            for k in metric_keys:
                header += [f"{k} course", f"{k} RecBole"]
            header += [
                "best/run epochs course",
                "RecBole",
                "train s/epoch course",
                "RecBole",
                "eval s course",
                "RecBole",
            ]
            out += [table(header, rows), ""]
            out += course_defaults(protocol, b, metric_keys, quality)
    sp_ = report.get("speed")
    if sp_:
        out += ["## Speed: course / peer", "", stamp(sp_), ""]
        if sp_.get("timing_runs"):
            out += ["(from timing runs of at most 3 epochs)", ""]
        else:
            src = sp_.get("sources", {})
            out += [
                f"Training and evaluation times from the explicit section ({src.get('explicit')})"
                f" and the ranking section ({src.get('ranking')}): each times the course and its "
                "peer in the same invocation, one after the other.",
                "",
            ]
        rows = [
            [
                r["task"],
                r["model"],
                r["peer"],
                r["course_train_s"],
                r["peer_train_s"],
                r["train_ratio"],
                r["course_eval_s"],
                r["peer_eval_s"],
                r["eval_ratio"],
                r["basis"],
            ]
            for r in sp_["rows"]
        ]
        out += [
            table(
                [
                    "task",
                    "course model",
                    "peer",
                    "train s/epoch course",
                    "peer",
                    "ratio",
                    "eval s course",
                    "peer",
                    "ratio",
                    "clock",
                ],
                rows,
            ),
            "",
            "Evaluation: predicting the test ratings (explicit), one validation pass (ranking). "
            "`cpu`: process CPU seconds, `wall`: wall-clock seconds.",
            "",
            "### Data preparation",
            "",
        ]
        prep = sp_["prep"]
        rows = [["course", k, v["s"]] for k, v in prep["course"].items()]
        for k, v in prep.get("course_model_init", {}).items():
            rows.append(["course", f"{k} construction (normalised adjacency)", v])
        for k, v in prep.get("recbole", {}).items():
            rows.append(["RecBole", k, v])
        out += [table(["library", "step", "seconds"], rows), ""]
    sc = report.get("scaling")
    if sc:
        out += ["## Scaling (course, synthetic data)", "", stamp(sc), ""]
        labels = list(sc["results"])
        rows = []
        for model in sc["results"][labels[0]]["models"]:
            a = sc["results"][labels[0]]["models"][model]
            b = sc["results"][labels[-1]]["models"][model]
            rows.append(
                [
                    model,
                    a["train_s_per_epoch"],
                    b["train_s_per_epoch"],
                    ratio(b["train_cpu_s_per_epoch"], a["train_cpu_s_per_epoch"]),
                    a["eval_s"],
                    b["eval_s"],
                    ratio(b["eval_cpu_s"], a["eval_cpu_s"]),
                    b["eval"],
                ]
            )
        shapes = ", ".join(
            f"{k}: {v['users']} users x {v['items']} items, {v['ratings']} ratings"
            for k, v in sc["results"].items()
        )
        out += [
            table(
                [
                    "model",
                    f"train s/epoch {labels[0]}",
                    labels[-1],
                    "growth",
                    f"eval s {labels[0]}",
                    labels[-1],
                    "growth",
                    "evaluation",
                ],
                rows,
            ),
            "",
            shapes + ". Growth: ratio of CPU times.",
            "",
        ]
    return "\n".join(out)


def plots(report: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    sp_ = report.get("speed")
    if sp_ and sp_["rows"]:
        rows = [r for r in sp_["rows"] if r["train_ratio"] and r["eval_ratio"]]
        labels = [f"{r['model']} vs {r['peer']}\n({r['task']})" for r in rows]
        y = np.arange(len(rows))
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
        ax.barh(y - 0.2, [r["train_ratio"] for r in rows], 0.4, label="training, per epoch")
        ax.barh(y + 0.2, [r["eval_ratio"] for r in rows], 0.4, label="evaluation")
        ax.axvline(1.0, color="black", lw=1)
        ax.set_xscale("log")
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("course time / peer time (log scale; < 1: course faster)")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Speed of recs_course relative to surprise and RecBole")
        fig.tight_layout()
        path = out_dir / "peers_speed.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    sc = report.get("scaling")
    if sc:
        labels = list(sc["results"])
        models = list(sc["results"][labels[0]]["models"])
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        x = np.arange(len(models))
        width = 0.8 / len(labels)
        for k, label in enumerate(labels):
            res = sc["results"][label]["models"]
            for ax, key in zip(axes, ("train_s_per_epoch", "eval_s"), strict=True):
                ax.bar(
                    x + k * width - 0.4 + width / 2,
                    [res[m][key] for m in models],
                    width,
                    label=label,
                )
        for ax, title in zip(axes, ("training, one epoch", "evaluation"), strict=True):
            ax.set_yscale("log")
            ax.set_xticks(x, [m.replace(" (", "\n(") for m in models], fontsize=7)
            ax.set_ylabel("seconds (log scale)")
            ax.set_title(title)
            ax.legend(fontsize=8)
        fig.suptitle("recs_course on synthetic data shaped like ml-100k and ml-1m")
        fig.tight_layout()
        path = out_dir / "peers_scaling.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    return written


# ------------------------------------------------------------------------------ main
def main(args) -> int:
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "peers.json"
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    if args.render_only:
        if not report:
            raise SystemExit(f"--render-only: {json_path} is missing or empty")
        (out_dir / "peers.md").write_text(markdown(report) + "\n")
        images = plots(report, out_dir)
        log(f"rendered {out_dir / 'peers.md'}, {', '.join(images)} from {json_path}")
        return 0
    if report.get("quick") is not None and report.get("quick") != args.quick:
        report = {}  # never mix a smoke run's sections with a full run's
    command = "python benchmarks/peers.py " + " ".join(sys.argv[1:])
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ratings = load_ratings(args.quick, args.seed)
    cap = 2 if args.quick else None
    now: dict = {}
    with tempfile.TemporaryDirectory(prefix="peers_") as tmp_name:
        tmp = Path(tmp_name)
        for sub in ("speed_explicit", "speed_ranking"):
            (tmp / sub).mkdir()
        started = time.perf_counter()
        if "explicit" in args.only:
            now["explicit"] = run_explicit(args, ratings, tmp, epochs_cap=cap)
        if "ranking" in args.only:
            now["ranking"] = run_ranking(args, ratings, tmp, epochs_cap=cap)
        if "speed" in args.only:
            now["speed"] = run_speed(args, ratings, tmp, now, report)
        if "scaling" in args.only:
            now["scaling"] = {"results": run_scaling(args)}
        elapsed = time.perf_counter() - started
    # re-read: another run may have written other sections meanwhile
    if json_path.exists():
        latest = json.loads(json_path.read_text())
        if latest.get("quick") == args.quick:
            report = latest
    for section, value in now.items():
        value.update(command=command, created=created)
        report[section] = rounded(value)
    report.update(
        quick=args.quick,
        machine=machine(args.threads),
        last_run={
            "command": command,
            "created": created,
            "sections": args.only,
            "elapsed_s": round(elapsed, 1),
        },
    )
    write_json(json_path, report, indent=1, allow_nan=False)
    (out_dir / "peers.md").write_text(markdown(report) + "\n")
    images = plots(report, out_dir)
    log(f"wrote {json_path}, peers.md, {', '.join(images)} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(_ARGS))
