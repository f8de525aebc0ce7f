"""Reference runs of RecBole 1.2.1 on MovieLens-100K, under explicit protocols.

Runs inside the separate environment made by ``benchmarks/recbole_env.sh``::

    bash benchmarks/recbole_env.sh
    .venv-recbole/bin/python benchmarks/recbole_run.py --protocol ncf
    .venv-recbole/bin/python benchmarks/recbole_run.py --protocol temporal
    .venv-recbole/bin/python benchmarks/recbole_run.py --protocol recbole

and writes ``benchmarks/results/recbole_<protocol>.json``: versions, thread count,
the per-epoch training time (which includes RecBole's negative sampling in its data
loader), validation and test evaluation times, the test metrics of the best
validation epoch, and for each model the exact ``config_dict`` handed to RecBole
together with the resolved values of the keys that matter.

Protocols
---------
``ncf``       NCF-style leave-one-out with sampled evaluation.  Each user's ratings are
              ordered by (timestamp, item_id) (``--ties row`` orders by (timestamp, row
              position in the file) instead): the latest is the test item, the second
              latest the validation item, the rest is training data.  Valid and test
              items are ranked against 100 negatives sampled uniformly among the items
              the user never rated (RecBole mode ``uni100``); HR@10 and NDCG@10.
              Models: Pop, BPR, GMF and MLP (RecBole's NeuMF with ``mlp_train`` or
              ``mf_train`` off) and NeuMF.
``temporal``  Chronological split with full ranking: each user's latest 20 % of ratings
              (``--test-frac``) are the test set, the 10 % before them (``--valid-frac``)
              the validation set (``--scope global`` cuts one global time line
              instead).  All items are ranked, the user's training (and validation)
              items masked; recall@k and NDCG@k for k in 10, 20.  Models: BPR, NGCF,
              LightGCN.
``recbole``   RecBole's own default for ml-100k: random 8:1:1 split per user
              (``eval_args.split = {'RS': [0.8, 0.1, 0.1]}``, order ``RO``), full
              ranking, same metrics as ``temporal``.  Models: BPR, LightGCN.

``--split-dir DIR`` (``ncf`` and ``temporal`` only) skips this script's own split and uses
the one in ``DIR/{train,valid,test}.tsv`` (tab-separated, columns ``user_id``, ``item_id``,
``rating``, ``timestamp``, raw MovieLens ids): ``benchmarks/peers.py`` writes it so that
RecBole and the course package train and test on exactly the same rows.

Besides the wall-clock times, each model reports the process CPU times of its epochs
(``train_cpu_s_per_epoch_mean``, ``valid_cpu_s_per_eval_mean``, ``test_eval_cpu_s``): with one
thread they equal the wall times on an idle machine and are far less disturbed by other
processes on a shared one. ``prep_s`` is RecBole's data preparation (``create_dataset`` plus
``data_preparation``: reading the atomic files, remapping ids, building the data loaders) and
``model_init_s`` the model's construction (for NGCF and LightGCN, the normalised adjacency).

The ``ncf`` and ``temporal`` splits are written by this script (pandas) as RecBole
"benchmark" atomic files ``ml-100k-split.{train,valid,test}.inter`` in a temporary
directory and read with ``benchmark_filename: [train, valid, test]``, so RecBole sees
exactly the split we define.  ``--no-valid`` uses the test file as validation file
and evaluates once, after the last epoch: the training set is then the whole
non-test data and no model selection happens.  Every rating counts as an implicit
positive (no rating threshold).  The data are the ml-100k atomic files shipped in
the recbole wheel (``recbole/dataset_example/ml-100k/ml-100k.inter``); nothing is
written into the repository except the JSON result.  RecBole's logs, tensorboard
events and checkpoints go to the same temporary directory.

Known RecBole behaviours that matter when comparing numbers (see the JSON ``notes``):
the sampled negatives of ``uni100`` are drawn with replacement and re-drawn at every
evaluation (validation scores are noisy); ``train_batch_size`` counts rows *after*
negative sampling (256 with 4 negatives = 51 positives x 5 rows); ties between the
held-out item and a negative are broken by ``torch.topk`` over RecBole's internal item
indices (matters for Pop); a dataset named ``ml-100k`` is always read from the wheel,
whatever ``data_path`` says (hence the name ``ml-100k-split``); RecBole's ``Config``
also parses ``sys.argv`` (hidden from it here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import write_json

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
# RecBole's Config always reads a dataset called "ml-100k" from the copy in its wheel,
# whatever data_path says, so the split files get another dataset name.
DATASET = "ml-100k-split"

# --------------------------------------------------------------------------- protocols

NCF_COMMON = {
    "learning_rate": 0.001,
    "train_batch_size": 256,
    "weight_decay": 0.0,
}
NEUMF_COMMON = {
    **NCF_COMMON,
    "mf_embedding_size": 32,
    "mlp_embedding_size": 32,
    "mlp_hidden_size": [64, 32, 16, 8],
    "dropout_prob": 0.0,  # the NCF paper's; RecBole's default is 0.1
    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 4},
}
# Full-ranking models keep RecBole's defaults (lr 0.001, batch 2048, 1 negative), so
# they need many epochs; the per-model "epochs" keep each run to a few minutes on one
# CPU thread (about 0.25, 2.5 and 1.7 s an epoch for BPR, NGCF and LightGCN).
FULL_COMMON = {
    "learning_rate": 0.001,
    "train_batch_size": 2048,
    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
}

# name -> (RecBole model class, config overrides).  Anything not listed is the
# RecBole default of that model (recbole/properties/model/<Model>.yaml).
MODELS = {
    "ncf": {
        # Pop counts the items of the training rows: no negatives must be sampled.
        "Pop": ("Pop", {"train_neg_sample_args": None}),
        "BPR": (
            "BPR",
            {
                **NCF_COMMON,
                "embedding_size": 32,
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
            },
        ),
        "GMF": ("NeuMF", {**NEUMF_COMMON, "mf_train": True, "mlp_train": False}),
        "MLP": ("NeuMF", {**NEUMF_COMMON, "mf_train": False, "mlp_train": True}),
        "NeuMF": ("NeuMF", {**NEUMF_COMMON, "mf_train": True, "mlp_train": True}),
    },
    "temporal": {
        "BPR": ("BPR", {**FULL_COMMON, "embedding_size": 64, "epochs": 300}),
        # RecBole defaults: embedding 64, hidden [64, 64, 64], message dropout 0.1.
        "NGCF": ("NGCF", {**FULL_COMMON, "epochs": 80}),
        # RecBole's default is n_layers=2; 3 is the LightGCN paper's setting.
        "LightGCN": (
            "LightGCN",
            {**FULL_COMMON, "embedding_size": 64, "n_layers": 3, "epochs": 120},
        ),
    },
}
MODELS["recbole"] = {k: MODELS["temporal"][k] for k in ("BPR", "LightGCN")}

PROTOCOLS = {
    "ncf": {
        "text": "leave-one-out by time (latest -> test, second latest -> valid), "
        "100 sampled negatives (uni100), HR@10 and NDCG@10",
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "mode": "uni100",
        "epochs": 20,
        "stopping_step": 5,
    },
    "temporal": {
        "text": "chronological split (each user's latest 20% -> test, the 10% before -> "
        "valid), full ranking with training items masked, recall@k and NDCG@k",
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@20",
        "mode": "full",
        "epochs": 300,
        # RecBole's default patience (10) stops LightGCN on a plateau of its
        # validation curve (epochs 30-60 here) long before it converges.
        "stopping_step": 30,
    },
    "recbole": {
        "text": "RecBole's default ml-100k protocol: random 8:1:1 split per user (RS, RO), "
        "full ranking with training items masked, recall@k and NDCG@k",
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@20",
        "mode": "full",
        "epochs": 300,
        # RecBole's default patience (10) stops LightGCN on a plateau of its
        # validation curve (epochs 30-60 here) long before it converges.
        "stopping_step": 30,
    },
}

NOTES = [
    "Every rating is an implicit positive (no threshold); ml-100k has no duplicate pairs.",
    "train_s is RecBole's training epoch including its data loader's negative sampling.",
    "RecBole's train_batch_size counts rows after negative sampling: pointwise with 4 "
    "negatives and batch 256 gives 51 positives x 5 rows = 255 rows a batch.",
    "uni100: 100 negatives drawn uniformly with replacement among items the user never "
    "rated (train, valid or test), re-drawn at every evaluation; test is evaluated once. "
    "Scores are scattered into a (users, items) matrix, so a negative drawn twice counts "
    "once: a few users rank slightly fewer than 101 distinct candidates.",
    "Ranking ties (many for Pop) are broken by torch.topk over the item-id columns, i.e. "
    "by RecBole's internal item index, neither for nor against the held-out item.",
    "With benchmark_filename set, RecBole ignores eval_args.split (it still shows the "
    "default RS entry in resolved_config); order/group_by are unused too.",
    "Full ranking masks the user's training items (and validation items at test time).",
    "Test metrics are those of the checkpoint of the best validation epoch (RecBole's "
    "load_best_model); with --no-valid, of the last epoch.",
]


# ------------------------------------------------------------------------------ splits


def mirror_inter_file() -> Path:
    """The ml-100k interactions shipped in the recbole wheel."""
    import recbole

    return Path(recbole.__file__).parent / "dataset_example" / "ml-100k" / "ml-100k.inter"


def read_inter(path: Path):
    import pandas as pd

    df = pd.read_csv(path, sep="\t")
    df.columns = [c.split(":")[0] for c in df.columns]
    df = df[COLUMNS].copy()
    df["row"] = range(len(df))
    return df


def order_ratings(df, ties: str, per_user: bool):
    """Sort chronologically; equal timestamps are ordered by item_id or file row."""
    tie = "item_id" if ties == "item" else "row"
    if per_user:
        keys = ["user_id", "timestamp", tie]
    elif ties == "item":
        keys = ["timestamp", "user_id", "item_id"]
    else:
        keys = ["timestamp", "row"]
    return df.sort_values(keys, kind="mergesort")


def _n(frac: float, n):
    """Rows a fraction of ``n`` takes: round half up (``n`` may be an array)."""
    import numpy as np

    return np.floor(np.asarray(n) * frac + 0.5).astype(int)


def leave_one_out(df, ties: str, valid: bool):
    ordered = order_ratings(df, ties, per_user=True)
    from_end = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    test = ordered[from_end == 0]
    if valid:
        return ordered[from_end >= 2], ordered[from_end == 1], test
    return ordered[from_end >= 1], None, test


def chronological(df, ties: str, scope: str, test_frac: float, valid_frac: float):
    import numpy as np

    if scope == "user":
        ordered = order_ratings(df, ties, per_user=True)
        size = ordered.groupby("user_id")["item_id"].transform("size").to_numpy()
        from_end = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    else:
        ordered = order_ratings(df, ties, per_user=False)
        size = np.full(len(ordered), len(ordered))
        from_end = np.arange(len(ordered))[::-1]
    n_test = np.maximum(_n(test_frac, size), 1)
    n_valid = _n(valid_frac, size)
    test = ordered[from_end < n_test]
    valid = ordered[(from_end >= n_test) & (from_end < n_test + n_valid)]
    train = ordered[from_end >= n_test + n_valid]
    return train, (valid if valid_frac > 0 else None), test


def write_inter(df, path: Path) -> None:
    out = df[COLUMNS].sort_values(["user_id", "timestamp"], kind="mergesort")
    out.to_csv(path, sep="\t", index=False, header=INTER_HEADER)


def prepare_data(args, data_dir: Path) -> dict:
    """Write the split files for RecBole; return a description of the split."""
    src = Path(args.inter_file) if args.inter_file else mirror_inter_file()
    if args.protocol == "recbole":
        if args.inter_file or args.split_dir:
            raise SystemExit(
                "--inter-file and --split-dir apply to the ncf and temporal protocols only"
            )
        return {
            "method": "RecBole eval_args split RS [0.8, 0.1, 0.1], order RO, group_by user",
            "source": str(src),
        }
    ds_dir = data_dir / DATASET
    ds_dir.mkdir(parents=True)
    if args.split_dir:
        return given_split(Path(args.split_dir), ds_dir)
    df = read_inter(src)
    if args.protocol == "ncf":
        train, valid, test = leave_one_out(df, args.ties, valid=not args.no_valid)
        method = (
            "leave-one-out per user by (timestamp, "
            f"{'item_id' if args.ties == 'item' else 'row'}): latest -> test, "
            + ("second latest -> valid, " if not args.no_valid else "")
            + "rest -> train"
        )
    else:
        train, valid, test = chronological(
            df, args.ties, args.scope, args.test_frac, 0.0 if args.no_valid else args.valid_frac
        )
        method = (
            f"chronological ({'per user' if args.scope == 'user' else 'global'}), ties by "
            f"{'item_id' if args.ties == 'item' else 'row'}: latest {args.test_frac:g} -> test"
            + ("" if args.no_valid else f", the {args.valid_frac:g} before -> valid")
            + ", rest -> train (fractions of each user's ratings, rounded half up)"
        )
    write_inter(train, ds_dir / f"{DATASET}.train.inter")
    write_inter(test, ds_dir / f"{DATASET}.test.inter")
    write_inter(valid if valid is not None else test, ds_dir / f"{DATASET}.valid.inter")
    return {
        "method": method,
        "validation": "test file reused, evaluated after the last epoch only"
        if valid is None
        else "held out",
        "source": str(src),
        "ties": args.ties,
        "rows": {
            "train": len(train),
            "valid": 0 if valid is None else len(valid),
            "test": len(test),
        },
        "users": {
            "train": int(train["user_id"].nunique()),
            "test": int(test["user_id"].nunique()),
            "test_users_without_train": int((~test["user_id"].isin(train["user_id"])).sum()),
        },
    }


def given_split(split_dir: Path, ds_dir: Path) -> dict:
    """Copy a split made elsewhere (``peers.py``) into RecBole's benchmark files."""
    import pandas as pd

    parts = {}
    for part in ("train", "valid", "test"):
        path = split_dir / f"{part}.tsv"
        if not path.exists():
            raise SystemExit(f"--split-dir: {path} is missing")
        df = pd.read_csv(path, sep="\t")
        missing = set(COLUMNS) - set(df.columns)
        if missing:
            raise SystemExit(f"--split-dir: {path} lacks the columns {sorted(missing)}")
        parts[part] = df
        write_inter(df, ds_dir / f"{DATASET}.{part}.inter")
    train, test = parts["train"], parts["test"]
    return {
        "method": f"given by --split-dir ({split_dir.name})",
        "validation": "held out",
        "source": str(split_dir),
        "rows": {part: len(df) for part, df in parts.items()},
        "users": {
            "train": int(train["user_id"].nunique()),
            "test": int(test["user_id"].nunique()),
            "test_users_without_train": int((~test["user_id"].isin(train["user_id"])).sum()),
        },
    }


# ----------------------------------------------------------------------------- running


def timed(trainer_cls):
    """A subclass of a RecBole trainer that records per-epoch times, losses, scores."""

    class Timed(trainer_cls):
        def __init__(self, config, model):
            super().__init__(config, model)
            # TraditionalTrainer (Pop) forces epochs=1 after eval_step was derived from
            # the configured epochs: keep the single evaluation (and checkpoint).
            self.eval_step = min(self.eval_step, self.epochs)
            self.epoch_log = []

        def _train_epoch(self, *args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            loss = super()._train_epoch(*args, **kwargs)
            total = sum(loss) if isinstance(loss, tuple) else loss
            self.epoch_log.append(
                {
                    "epoch": len(self.epoch_log),
                    "train_s": round(time.perf_counter() - start, 4),
                    "train_cpu_s": round(time.process_time() - cpu, 4),
                    "loss": float(total),
                }
            )
            return loss

        def _valid_epoch(self, *args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            score, result = super()._valid_epoch(*args, **kwargs)
            self.epoch_log[-1].update(
                valid_s=round(time.perf_counter() - start, 4),
                valid_cpu_s=round(time.process_time() - cpu, 4),
                valid_score=float(score),
                valid=course_names(result),
            )
            return score, result

    return Timed


def course_names(result) -> dict:
    """RecBole metric keys (hit@10, ndcg@20) -> the course's (HR@10, NDCG@20)."""
    names = {"hit": "HR", "ndcg": "NDCG", "recall": "recall", "mrr": "MRR"}
    out = {}
    for key, value in dict(result).items():
        metric, _, k = key.partition("@")
        out[f"{names.get(metric, metric)}@{k}"] = float(value)
    return out


def jsonable(value):
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


RESOLVED_KEYS = [
    "model",
    "epochs",
    "train_batch_size",
    "learner",
    "learning_rate",
    "weight_decay",
    "train_neg_sample_args",
    "valid_neg_sample_args",
    "test_neg_sample_args",
    "eval_args",
    "eval_step",
    "stopping_step",
    "metrics",
    "topk",
    "valid_metric",
    "eval_batch_size",
    "benchmark_filename",
    "seed",
    "reproducibility",
    "device",
]


def model_keys(model_cls: str) -> list[str]:
    import recbole
    import yaml

    path = Path(recbole.__file__).parent / "properties" / "model" / f"{model_cls}.yaml"
    return list((yaml.safe_load(path.read_text()) or {}).keys()) if path.exists() else []


def run_model(
    model_cls: str, dataset_name: str, config_dict: dict, threads: int, verbose: bool
) -> dict:
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config also parses sys.argv
    try:
        config = Config(model=model_cls, dataset=dataset_name, config_dict=config_dict)
    finally:
        sys.argv = argv
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(threads)
    start = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    prep_s = time.perf_counter() - start
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    start = time.perf_counter()
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model_init_s = time.perf_counter() - start
    trainer = timed(get_trainer(config["MODEL_TYPE"], config["model"]))(config, model)

    start = time.perf_counter()
    best_score, best_valid = trainer.fit(train_data, valid_data, verbose=verbose, saved=True)
    fit_s = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    test = trainer.evaluate(test_data, load_best_model=True)
    test_s, test_cpu_s = time.perf_counter() - start, time.process_time() - cpu

    log = trainer.epoch_log
    scored = [e for e in log if "valid_score" in e]
    best_epoch = max((e["epoch"] for e in scored if e["valid_score"] == best_score), default=None)
    train_times = [e["train_s"] for e in log]
    train_cpu = [e["train_cpu_s"] for e in log]
    resolved = {k: jsonable(config[k]) for k in RESOLVED_KEYS + model_keys(model_cls)}
    return {
        "recbole_model": model_cls,
        "config_dict": jsonable(config_dict),
        "resolved_config": resolved,
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "epochs_max": int(trainer.epochs),
        "epochs_run": len(log),
        "best_epoch": best_epoch,
        "stopped_early": len(log) < trainer.epochs,
        "train_s_per_epoch_mean": round(sum(train_times) / len(train_times), 4),
        "train_s_per_epoch_median": round(sorted(train_times)[len(train_times) // 2], 4),
        "train_cpu_s_per_epoch_mean": round(sum(train_cpu) / len(train_cpu), 4),
        "valid_s_per_eval_mean": round(sum(e["valid_s"] for e in scored) / len(scored), 4)
        if scored
        else None,
        "valid_cpu_s_per_eval_mean": round(sum(e["valid_cpu_s"] for e in scored) / len(scored), 4)
        if scored
        else None,
        "prep_s": round(prep_s, 4),
        "model_init_s": round(model_init_s, 4),
        "fit_s": round(fit_s, 3),
        "test_eval_s": round(test_s, 4),
        "test_eval_cpu_s": round(test_cpu_s, 4),
        "best_valid": course_names(best_valid) if best_valid else None,
        "test": course_names(test),
        "epochs": log,
    }


def base_config(args, data_dir: Path) -> dict:
    spec = PROTOCOLS[args.protocol]
    config = {
        "data_path": str(data_dir),
        "checkpoint_dir": str(data_dir / "saved"),
        "gpu_id": "0" if args.device == "cuda" else "",
        "use_gpu": args.device == "cuda",
        "seed": args.seed,
        "reproducibility": True,
        "show_progress": False,
        "worker": 0,
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "RATING_FIELD": "rating",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": COLUMNS},
        "threshold": None,
        "epochs": spec["epochs"],
        "stopping_step": args.stopping_step
        if args.stopping_step is not None
        else spec["stopping_step"],
        "eval_step": 1,
        "metrics": spec["metrics"],
        "topk": spec["topk"],
        "valid_metric": spec["valid_metric"],
        "valid_metric_bigger": True,
        "metric_decimal_place": 6,
        "eval_batch_size": 4096,
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},
            "group_by": "user",
            "order": "RO",
            "mode": spec["mode"],
        },
    }
    if args.protocol != "recbole":
        config["benchmark_filename"] = ["train", "valid", "test"]
    return config


def parse_set(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), required=True)
    p.add_argument("--models", nargs="+", help="subset of the protocol's models (default all)")
    p.add_argument("--epochs", type=int, help="maximum epochs (default per model)")
    p.add_argument("--stopping-step", type=int, help="early-stopping patience in evaluations")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--ties",
        choices=["item", "row"],
        default="item",
        help="order of equal timestamps: larger item_id / later file row is later",
    )
    p.add_argument(
        "--scope",
        choices=["user", "global"],
        default="user",
        help="temporal protocol: per-user or global time cut",
    )
    p.add_argument("--test-frac", type=float, default=0.2)
    p.add_argument("--valid-frac", type=float, default=0.1)
    p.add_argument(
        "--no-valid",
        action="store_true",
        help="no validation split: evaluate the last epoch on the test set",
    )
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=YAML",
        help="extra RecBole config for every model, e.g. --set dropout_prob=0.1",
    )
    p.add_argument("--inter-file", help="ml-100k.inter to use (default: the recbole mirror)")
    p.add_argument(
        "--split-dir",
        help="use the split in DIR/{train,valid,test}.tsv (ncf and temporal protocols)",
    )
    p.add_argument(
        "--out", help="output JSON (default benchmarks/results/recbole_<protocol>[_<suffix>].json)"
    )
    p.add_argument("--suffix", help="appended to the default output name")
    p.add_argument(
        "--merge", action="store_true", help="keep the other models of an existing output file"
    )
    p.add_argument("--verbose", action="store_true", help="RecBole's INFO log on stderr")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # Before torch is imported: one thread, and torch>=2.6's weights_only=True default
    # would refuse RecBole's checkpoints (they pickle its Config object).
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import logging
    import warnings

    import numpy as np
    import pandas as pd
    import recbole
    import scipy
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if not args.verbose:  # RecBole 1.2.1's known pandas/torch deprecation messages
        for category in (FutureWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category, module=r"recbole\.")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )

    available = MODELS[args.protocol]
    names = args.models or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown models for {args.protocol}: {unknown}; have {list(available)}")
    suffix = f"_{args.suffix}" if args.suffix else ""
    out = Path(args.out) if args.out else RESULTS / f"recbole_{args.protocol}{suffix}.json"
    out = out.resolve()
    extra = parse_set(args.set)

    report = {}
    if args.merge and out.exists():
        report = json.loads(out.read_text())
    models = report.get("models", {})
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="recbole_run_") as tmp:
        data_dir = Path(tmp)
        split = prepare_data(args, data_dir)
        os.chdir(data_dir)  # RecBole writes log_tensorboard/ into the working directory
        try:
            for name in names:
                model_cls, overrides = available[name]
                config_dict = {**base_config(args, data_dir), **overrides}
                if args.epochs is not None:
                    config_dict["epochs"] = args.epochs
                if args.no_valid:  # one evaluation, after the last epoch
                    config_dict["eval_step"] = config_dict["epochs"]
                config_dict.update(extra)
                print(f"[{args.protocol}] {name} ({model_cls}) ...", file=sys.stderr, flush=True)
                dataset_name = "ml-100k" if args.protocol == "recbole" else DATASET
                result = run_model(
                    model_cls, dataset_name, config_dict, args.threads, verbose=args.verbose
                )
                for key in ("data_path", "checkpoint_dir"):
                    result["config_dict"][key] = "<tmpdir>" + (
                        "/saved" if key == "checkpoint_dir" else ""
                    )
                models[name] = result
                metrics = ", ".join(f"{k} {v:.4f}" for k, v in result["test"].items())
                print(
                    f"    {metrics} | {result['epochs_run']} epochs, "
                    f"{result['train_s_per_epoch_mean']:.2f} s/epoch, best epoch "
                    f"{result['best_epoch']}, test eval {result['test_eval_s']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            os.chdir(cwd)

    report.update(
        {
            "protocol": args.protocol,
            "description": PROTOCOLS[args.protocol],
            "split": split,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {
                "recbole": recbole.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "scipy": scipy.__version__,
                "python": platform.python_version(),
            },
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "torch_interop_threads": torch.get_num_interop_threads(),
                "device": args.device,
            },
            "seed": args.seed,
            "notes": NOTES,
            "models": models,
        }
    )
    write_json(out, report, indent=1, allow_nan=False)
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
