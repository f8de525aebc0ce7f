"""Reference runs of RecBole 1.2.1 on MovieLens-100K, under explicit protocols.

Runs inside the separate environment made by ``benchmarks/recbole_env.sh``, from the
repository root::

    bash benchmarks/recbole_env.sh
    .venv-recbole/bin/python -m benchmarks.recbole_run --protocol ncf
    .venv-recbole/bin/python -m benchmarks.recbole_run --protocol temporal
    .venv-recbole/bin/python -m benchmarks.recbole_run --protocol recbole

and writes ``benchmarks/results/recbole_<protocol>.json``: versions, thread count,
the per-epoch training time (which includes RecBole's negative sampling in its data
loader), validation and test evaluation times, the test metrics of the best
validation epoch, and for each model the exact ``config_dict`` handed to RecBole
together with the resolved values of the keys that matter. The models' settings and the
protocols are in ``benchmarks/recbole_settings.py``, the split files in
``benchmarks/recbole_split.py``.

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
``rating``, ``timestamp``, raw MovieLens ids): ``benchmarks.peers`` and ``benchmarks.quality``
write it so that RecBole and the course package train and test on exactly the same rows.

``--models-json FILE`` replaces the protocol's models of ``recbole_settings.MODELS`` by those in
``FILE`` (``{"name": ["RecBole class", {config overrides}], ...}``): ``benchmarks.quality``
writes it from the course's recipes (``recbole_settings.from_recipe``). ``--scores-dir DIR``
writes, for each model once trained (the best validation epoch's weights, as tested),
``DIR/<name>.npz`` with ``scores`` (float32, users x items: every item scored for every user),
``users`` and ``items`` (their raw ids, int64): the course evaluates them with its own protocol
(candidates, masks, per-user metrics). NeuMF's scores are its logits (its sigmoid removed, which
keeps the order and avoids float32 saturating at 1.0 into ties).

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

import json
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import (
    REPO,
    RESULTS,
    Clock,
    argument_parser,
    command_line,
    set_thread_env,
    write_json,
)
from benchmarks.recbole_settings import MODELS, NOTES, PROTOCOLS
from benchmarks.recbole_split import COLUMNS, DATASET, prepare_data

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
            with Clock() as c:
                loss = super()._train_epoch(*args, **kwargs)
            total = sum(loss) if isinstance(loss, tuple) else loss
            self.epoch_log.append(
                {
                    "epoch": len(self.epoch_log),
                    "train_s": round(c.wall, 4),
                    "train_cpu_s": round(c.cpu, 4),
                    "loss": float(total),
                }
            )
            return loss

        def _valid_epoch(self, *args, **kwargs):
            with Clock() as c:
                score, result = super()._valid_epoch(*args, **kwargs)
            self.epoch_log[-1].update(
                valid_s=round(c.wall, 4),
                valid_cpu_s=round(c.cpu, 4),
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


def dump_scores(model, dataset, config, path: Path, users_per_batch: int = 128) -> None:
    """Every item's score for every user, by raw ids, in ``path`` (``.npz``)."""
    import numpy as np
    import torch
    from recbole.data.interaction import Interaction

    uid, iid = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
    n_users, n_items = dataset.user_num, dataset.item_num  # index 0 is RecBole's padding
    device = config["device"]
    if isinstance(getattr(model, "sigmoid", None), torch.nn.Sigmoid):
        model.sigmoid = torch.nn.Identity()  # logits: same order, no saturation at 1.0
    model.eval()
    rows = []
    with torch.no_grad():
        for start in range(1, n_users, users_per_batch):
            users = torch.arange(start, min(start + users_per_batch, n_users), device=device)
            try:
                scores = model.full_sort_predict(Interaction({uid: users}).to(device))
            except NotImplementedError:
                items = torch.arange(n_items, device=device)
                pairs = Interaction(
                    {uid: users.repeat_interleave(n_items), iid: items.repeat(len(users))}
                ).to(device)
                scores = model.predict(pairs)
            rows.append(scores.view(len(users), n_items)[:, 1:].float().cpu().numpy())
    np.savez(
        path,
        scores=np.concatenate(rows),
        users=dataset.field2id_token[uid][1:].astype(np.int64),
        items=dataset.field2id_token[iid][1:].astype(np.int64),
    )


def run_model(
    model_cls: str,
    dataset_name: str,
    config_dict: dict,
    threads: int,
    verbose: bool,
    scores: Path | None = None,
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
    with Clock() as prep:
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    with Clock() as init:
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = timed(get_trainer(config["MODEL_TYPE"], config["model"]))(config, model)

    with Clock() as fitting:
        best_score, best_valid = trainer.fit(train_data, valid_data, verbose=verbose, saved=True)
    with Clock() as testing:
        test = trainer.evaluate(test_data, load_best_model=True)
    if scores is not None:
        dump_scores(trainer.model, dataset, config, scores)

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
        "prep_s": round(prep.wall, 4),
        "model_init_s": round(init.wall, 4),
        "fit_s": round(fitting.wall, 3),
        "test_eval_s": round(testing.wall, 4),
        "test_eval_cpu_s": round(testing.cpu, 4),
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
    p = argument_parser("recbole_run", __doc__)
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
        "--models-json",
        help='models to run instead of recbole_settings.MODELS: {"name": ["Class", {config}]}',
    )
    p.add_argument("--scores-dir", help="write every model's scores of all items to DIR/<name>.npz")
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
    set_thread_env(args.threads)
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
    if args.models_json:
        available = {
            name: (cls, overrides)
            for name, (cls, overrides) in json.loads(Path(args.models_json).read_text()).items()
        }
    names = args.models or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown models for {args.protocol}: {unknown}; have {list(available)}")
    suffix = f"_{args.suffix}" if args.suffix else ""
    out = Path(args.out) if args.out else RESULTS / f"recbole_{args.protocol}{suffix}.json"
    out = out.resolve()
    extra = parse_set(args.set)
    scores_dir = None
    if args.scores_dir:  # resolved before the chdir below
        scores_dir = Path(args.scores_dir).resolve()
        scores_dir.mkdir(parents=True, exist_ok=True)

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
                scores = None if scores_dir is None else scores_dir / f"{name}.npz"
                result = run_model(
                    model_cls,
                    dataset_name,
                    config_dict,
                    args.threads,
                    verbose=args.verbose,
                    scores=scores,
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
            "command": command_line("recbole_run", argv),
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
