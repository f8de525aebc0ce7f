"""Quality of the course's models on the full MovieLens-100K, with the course's defaults.

Four protocols, each built with the public API of ``recs_course`` only, the test set never used
for any choice (early stopping and epoch counts come from a validation set carved from the
training data):

``mf``       explicit MF with biases, random 80/20 split (``random_split(seed=0)``), 10 % of
             the training ratings held out for early stopping: test RMSE <= 0.905.
``autorec``  item-based AutoRec on the same split; the number of epochs is picked on the
             validation ratings, then the model is trained again on all training ratings for
             that many epochs (AutoRec's input rows are the training ratings, so the held-out
             10 % would otherwise be missing from them at test time): test RMSE <= 0.90.
``neumf``    leave-one-out by time (ties by item id, as RecBole's NCF protocol in
             ``benchmarks/recbole_split.py``), the second latest rating of each user as the
             validation item, 100 sampled negatives: Popularity, GMF, the NCF MLP and NeuMF
             built from the pre-trained GMF and MLP. Target: NeuMF's HR@10 and NDCG@10 above
             Popularity's and GMF's, and at least RecBole's NeuMF on the same split.
``graph``    chronological per-user split as RecBole's temporal protocol (each user's latest
             20 % -> test, the 10 % before -> validation), full ranking with the user's
             training (and, for test, validation) items excluded: BPR-MF, NGCF and LightGCN
             trained with BPR; target LightGCN's recall@20 / NDCG@20 above NGCF's and BPR-MF's.

Run:  python -m benchmarks.quality [--only mf,autorec,neumf,graph] [--threads 1]
Writes benchmarks/results/quality.json (metrics, hyper-parameters, times, thread count,
pass/fail per target). ``MF_PARAMS`` and ``AUTOREC_PARAMS`` (with ``mf_and_optimizer`` and
``autorec_and_optimizer``) are also the explicit recipes of ``benchmarks.peers``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    RESULTS,
    argument_parser,
    comma_list,
    command_line,
    machine_line,
    write_json,
)
from recs_course.data import (
    Batches,
    IdEncoder,
    InstanceBatches,
    NegativeSampler,
    chronological_split,
    interaction_matrix,
    leave_one_out,
    load_movielens,
    random_split,
    ranking_candidates,
    to_tensors,
)
from recs_course.evaluation import evaluate_full, evaluate_ratings, evaluate_sampled
from recs_course.models import GMF, MF, NCFMLP, NGCF, AutoRec, LightGCN, NeuMF, Popularity
from recs_course.training import fit, seed_everything

RECBOLE_NCF = RESULTS / "recbole_ncf.json"
RECBOLE_TEMPORAL = RESULTS / "recbole_temporal.json"

# The course's default hyper-parameters, one dict per model (what the chapters use).
MF_PARAMS = {
    "dim": 64,
    "y_range": (0.5, 5.5),
    "optimizer": "AdamW, betas (0.9, 0.99), weight decay on the embeddings only",
    "lr": 5e-3,
    "weight_decay": 0.3,
    "schedule": "OneCycleLR over all epochs",
    "batch_size": 256,
    "epochs": 5,
}
AUTOREC_PARAMS = {
    "hidden": 500,
    "activation": "sigmoid",
    "dropout": 0.05,
    "clip": (1.0, 5.0),
    "optimizer": "Adam",
    "lr": 3e-3,
    "weight_decay": 3e-3,
    "batch_size": 256,
    "max_epochs": 150,
    "patience": 10,
}
NCF_PARAMS = {
    "dim": 32,
    "layers": (64, 32, 16, 8),
    "n_neg": 4,
    "batch_size": 256,
    "lr": 1e-3,
    "optimizer": "Adam",
    "max_epochs": 20,
    "patience": 3,
    "neumf_alpha": 0.5,
    "neumf_lr": 1e-4,
    "neumf_max_epochs": 10,
    "eval_negatives": 100,
}
GRAPH_PARAMS = {
    "dim": 64,
    "batch_size": 2048,
    "optimizer": "Adam",
    "max_epochs": 150,
    "eval_every": 5,
    "patience_evals": 4,
    "bpr": {"lr": 5e-3, "weight_decay": 0.0, "init_std": 0.1},
    "ngcf": {"lr": 5e-3, "layer_dims": (64, 64, 64), "reg": 1e-5},
    "lightgcn": {"lr": 5e-3, "n_layers": 3, "reg": 1e-4},
}


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------- explicit
def explicit_split(ratings, seed: int):
    """Random 80/20 split; 10 % of the training ratings carved out for validation."""
    train_full, test = random_split(ratings, test_size=0.2, seed=seed)
    train, valid = random_split(train_full, test_size=0.1, seed=seed + 1)
    enc = IdEncoder().fit(train_full)
    return (
        enc,
        enc.transform(train_full),
        enc.transform(train),
        enc.transform(valid, unknown="drop"),
        enc.transform(test, unknown="drop"),
        len(test),
    )


def mf_and_optimizer(n_users: int, n_items: int, p: dict = MF_PARAMS):
    """``MF_PARAMS``'s model and optimiser: AdamW, weight decay on the embeddings only."""
    model = MF(n_users, n_items, dim=p["dim"], biases=True, y_range=p["y_range"])
    embeddings = [model.user_embedding.weight, model.item_embedding.weight]
    others = [w for name, w in model.named_parameters() if "embedding" not in name]
    optimizer = torch.optim.AdamW(
        [
            {"params": embeddings, "weight_decay": p["weight_decay"]},
            {"params": others, "weight_decay": 0.0},  # biases are not shrunk
        ],
        lr=p["lr"],
        betas=(0.9, 0.99),
    )
    return model, optimizer


def autorec_and_optimizer(train, n_users: int, n_items: int, p: dict = AUTOREC_PARAMS):
    """``AUTOREC_PARAMS``'s item-based AutoRec on the ratings of ``train``, and its Adam."""
    model = AutoRec(
        n_users,
        n_items,
        interaction_matrix(train, n_users, n_items),
        hidden=p["hidden"],
        based="item",
        activation=p["activation"],
        dropout=p["dropout"],
        clip=p["clip"],
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    return model, optimizer


def run_mf(ratings, seed: int) -> dict:
    p = MF_PARAMS
    enc, _, train, valid, test, n_test_raw = explicit_split(ratings, seed)
    g = seed_everything(seed)
    model, optimizer = mf_and_optimizer(enc.n_users, enc.n_items, p)
    batches = Batches(*to_tensors(train), batch_size=p["batch_size"], generator=g)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=p["lr"], total_steps=p["epochs"] * len(batches)
    )
    start = time.perf_counter()
    history = fit(
        model,
        batches,
        "mse",
        optimizer,
        epochs=p["epochs"],
        scheduler=scheduler,
        evaluate=lambda m: evaluate_ratings(m, *to_tensors(valid)),
        monitor="RMSE",
        progress=False,
    )
    seconds = time.perf_counter() - start
    metrics = evaluate_ratings(model, *to_tensors(test))
    return {
        "protocol": "random 80/20 split (seed 0), 10 % of train for validation",
        "n_train": len(train),
        "n_valid": len(valid),
        "n_test": len(test),
        "n_test_dropped_unknown": n_test_raw - len(test),
        "params": p,
        "best_epoch": history.best_epoch,
        "valid_RMSE": history.best["RMSE"],
        "test": metrics,
        "train_s": seconds,
        "targets": {"RMSE <= 0.905": metrics["RMSE"] <= 0.905},
    }


def run_autorec(ratings, seed: int) -> dict:
    p = AUTOREC_PARAMS
    enc, train_full, train, valid, test, n_test_raw = explicit_split(ratings, seed)
    n_users, n_items = enc.n_users, enc.n_items

    def build_and_fit(data, epochs: int, evaluate=None):
        g = seed_everything(seed)
        model, optimizer = autorec_and_optimizer(data, n_users, n_items, p)
        history = fit(
            model,
            Batches(torch.arange(n_items), batch_size=p["batch_size"], generator=g),
            "masked_mse",
            optimizer,
            epochs=epochs,
            evaluate=evaluate,
            monitor="RMSE" if evaluate else None,
            patience=p["patience"] if evaluate else None,
            progress=False,
        )
        return model, history

    start = time.perf_counter()
    _, history = build_and_fit(
        train, p["max_epochs"], evaluate=lambda m: evaluate_ratings(m, *to_tensors(valid))
    )
    select_s = time.perf_counter() - start
    epochs = history.best_epoch
    start = time.perf_counter()
    model, _ = build_and_fit(train_full, epochs)  # same recipe, all training ratings
    refit_s = time.perf_counter() - start
    metrics = evaluate_ratings(model, *to_tensors(test))
    return {
        "protocol": "random 80/20 split (seed 0); epochs picked on 10 % of train, then the "
        "model retrained on all of train for that many epochs",
        "n_train": len(train_full),
        "n_test": len(test),
        "n_test_dropped_unknown": n_test_raw - len(test),
        "params": p,
        "best_epoch": epochs,
        "epochs_run_for_selection": history.epochs,
        "valid_RMSE": history.best["RMSE"],
        "test": metrics,
        "train_s": select_s + refit_s,
        "targets": {"RMSE <= 0.90": metrics["RMSE"] <= 0.90},
    }


# ------------------------------------------------------------------------------- ranking
def fit_and_test(label, model, train_data, loss, optimizer, *, test, valid_keys=None, **fit_kw):
    """Train ``model`` with early stopping (``fit_kw``: epochs, evaluate, monitor, patience),
    then ``test`` it: the record of one ranking model in quality.json."""
    start = time.perf_counter()
    history = fit(model, train_data, loss, optimizer, progress=False, **fit_kw)
    seconds = time.perf_counter() - start
    metrics = test(model)
    log(f"    {label:8} {fmt(metrics)}  (best epoch {history.best_epoch}, {seconds:.0f} s)")
    valid = history.best if valid_keys is None else {k: history.best[k] for k in valid_keys}
    return {
        "best_epoch": history.best_epoch,
        "epochs_run": history.epochs,
        "valid": valid,
        "test": metrics,
        "train_s": seconds,
    }


def run_neumf(ratings, seed: int) -> dict:
    p = NCF_PARAMS
    train_full, test = leave_one_out(ratings)  # latest by (timestamp, item_id)
    train, valid = leave_one_out(train_full)  # second latest: validation
    # Fitted on the catalogue (all items), as RecBole does: 3 test items have no training
    # rating, their users are still evaluated (with an untrained item embedding).
    enc = IdEncoder().fit(ratings)
    train_full, train, valid, test = (enc.transform(x) for x in (train_full, train, valid, test))
    n_users, n_items = enc.n_users, enc.n_items
    valid_users, valid_cand = ranking_candidates(
        valid, n_items, p["eval_negatives"], exclude=train, generator=1
    )
    test_users, test_cand = ranking_candidates(
        test, n_items, p["eval_negatives"], exclude=train_full, generator=0
    )

    def on_valid(m):
        return evaluate_sampled(m, valid_users, valid_cand, ks=(10,))

    def on_test(m):
        return evaluate_sampled(m, test_users, test_cand, ks=(10,))

    g = seed_everything(seed)
    sampler = NegativeSampler.from_ratings(train, n_items, n_users=n_users)
    # fresh negatives every epoch, one generator for all three models
    train_data = InstanceBatches(
        train,
        n_items,
        "pointwise",
        n_neg=p["n_neg"],
        batch_size=p["batch_size"],
        generator=g,
        positives=sampler,
    )

    out: dict = {
        "protocol": "leave-one-out by (timestamp, item_id); second latest -> validation; "
        f"{p['eval_negatives']} sampled negatives (distinct, never a positive)",
        "n_train": len(train),
        "n_test_users": len(test),
        "params": p,
        "models": {},
    }

    def train_model(name: str, model, lr: float, epochs: int):
        out["models"][name] = fit_and_test(
            name,
            model,
            train_data,
            "bce",
            torch.optim.Adam(model.parameters(), lr=lr),
            epochs=epochs,
            evaluate=on_valid,
            monitor="NDCG@10",
            patience=p["patience"],
            test=on_test,
            valid_keys=("HR@10", "NDCG@10"),
        )
        return model

    popularity = Popularity.from_interactions(
        train["user_id"].to_numpy(), train["item_id"].to_numpy(), n_users, n_items
    )
    out["models"]["Pop"] = {"test": on_test(popularity)}
    log(f"    {'Pop':8} {fmt(out['models']['Pop']['test'])}")
    gmf = train_model("GMF", GMF(n_users, n_items, dim=p["dim"]), p["lr"], p["max_epochs"])
    mlp = train_model("MLP", NCFMLP(n_users, n_items, layers=p["layers"]), p["lr"], p["max_epochs"])
    neumf = NeuMF.from_pretrained(gmf, mlp, alpha=p["neumf_alpha"])
    train_model("NeuMF", neumf, p["neumf_lr"], p["neumf_max_epochs"])

    test_of = {k: v["test"] for k, v in out["models"].items()}
    recbole = json.loads(RECBOLE_NCF.read_text())["models"]
    out["recbole_test"] = {k: recbole[k]["test"] for k in ("Pop", "GMF", "MLP", "NeuMF")}
    nm = test_of["NeuMF"]
    targets = {}
    for metric in ("HR@10", "NDCG@10"):
        targets[f"NeuMF {metric} > Pop"] = nm[metric] > test_of["Pop"][metric]
        targets[f"NeuMF {metric} > GMF"] = nm[metric] > test_of["GMF"][metric]
        targets[f"NeuMF {metric} >= RecBole NeuMF"] = (
            nm[metric] >= out["recbole_test"]["NeuMF"][metric]
        )
    out["targets"] = targets
    return out


# ------------------------------------------------------------------------------- graph
def run_graph(ratings, seed: int) -> dict:
    p = GRAPH_PARAMS
    train_valid, test = chronological_split(ratings, test_size=0.2, per_user=True)
    # 0.125 of the remaining 80 % is RecBole's 10 % of each user's ratings (to rounding).
    train, valid = chronological_split(train_valid, test_size=0.125, per_user=True)
    enc = IdEncoder().fit(ratings)
    train, valid, test, train_valid = (enc.transform(x) for x in (train, valid, test, train_valid))
    n_users, n_items = enc.n_users, enc.n_items

    def matrix(df):
        return interaction_matrix(df, n_users, n_items, values="ones")

    r_train, r_valid, r_test, r_train_valid = (matrix(x) for x in (train, valid, test, train_valid))
    sampler = NegativeSampler.from_ratings(train, n_items, n_users=n_users)
    users, items = train["user_id"].to_numpy(), train["item_id"].to_numpy()
    out: dict = {
        "protocol": "chronological per user: latest 20 % -> test, the 10 % before -> "
        "validation (ties by item_id); full ranking, training items excluded (and validation "
        "items at test time)",
        "n_train": len(train),
        "n_valid": len(valid),
        "n_test": len(test),
        "params": p,
        "models": {},
    }

    def build(name: str):
        q = p[name]
        if name == "bpr":
            return MF(n_users, n_items, dim=p["dim"], biases=False, init_std=q["init_std"])
        if name == "ngcf":
            return NGCF.from_interactions(
                users,
                items,
                n_users,
                n_items,
                dim=p["dim"],
                layer_dims=q["layer_dims"],
                reg=q["reg"],
            )
        return LightGCN.from_interactions(
            users, items, n_users, n_items, dim=p["dim"], n_layers=q["n_layers"], reg=q["reg"]
        )

    for name, label in (("bpr", "BPR-MF"), ("ngcf", "NGCF"), ("lightgcn", "LightGCN")):
        g = seed_everything(seed)
        model = build(name)
        q = p[name]
        optimizer = torch.optim.Adam(
            model.parameters(), lr=q["lr"], weight_decay=q.get("weight_decay", 0.0)
        )

        train_data = InstanceBatches(
            train, n_items, "pairwise", batch_size=p["batch_size"], generator=g, positives=sampler
        )
        cache: dict = {}

        def on_valid(m, cache=cache):
            # Full ranking every eval_every epochs; in between the last values are repeated
            # (they can then never count as an improvement).
            cache["n"] = cache.get("n", 0) + 1
            if "last" not in cache or cache["n"] % p["eval_every"] == 0:
                cache["last"] = evaluate_full(
                    m, r_train, r_valid, ks=(20,), metrics=("recall", "ndcg")
                )
            return cache["last"]

        out["models"][label] = fit_and_test(
            label,
            model,
            train_data,
            "bpr",
            optimizer,
            epochs=p["max_epochs"],
            evaluate=on_valid,
            monitor="NDCG@20",
            patience=p["eval_every"] * p["patience_evals"],
            test=lambda m: evaluate_full(
                m, r_train_valid, r_test, ks=(10, 20), metrics=("recall", "ndcg")
            ),
        )

    test_of = {k: v["test"] for k, v in out["models"].items()}
    recbole = json.loads(RECBOLE_TEMPORAL.read_text())["models"]
    out["recbole_test"] = {k: recbole[k]["test"] for k in ("BPR", "NGCF", "LightGCN")}
    targets = {}
    for metric in ("recall@20", "NDCG@20"):
        for other in ("NGCF", "BPR-MF"):
            targets[f"LightGCN {metric} > {other}"] = (
                test_of["LightGCN"][metric] > test_of[other][metric]
            )
    out["targets"] = targets
    return out


# ------------------------------------------------------------------------------- main
def fmt(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


RUNNERS = {"mf": run_mf, "autorec": run_autorec, "neumf": run_neumf, "graph": run_graph}


def main(argv: list[str] | None = None) -> dict:
    parser = argument_parser("quality", __doc__)
    parser.add_argument(
        "--only", default=",".join(RUNNERS), help=f"comma-separated subset of {list(RUNNERS)}"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args(argv)
    names = comma_list(parser, args.only, list(RUNNERS))
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    ratings = load_movielens("ml-100k").ratings
    log(f"torch {torch.__version__}, threads = {torch.get_num_threads()}, ml-100k {len(ratings)}")

    # Keep the other protocols' results of an earlier run when only some are re-run.
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    results = report.get("results", {})
    total = time.perf_counter()
    for name in names:
        log(f"[{name}]")
        start = time.perf_counter()
        results[name] = RUNNERS[name](ratings, args.seed)
        results[name]["wall_s"] = time.perf_counter() - start
        results[name]["threads"] = torch.get_num_threads()
        results[name]["command"] = command_line("quality", argv)
        if "test" in results[name]:
            log(f"    test: {fmt(results[name]['test'])}")
        for target, ok in results[name]["targets"].items():
            log(f"    {'PASS' if ok else 'FAIL'}  {target}")

    log("\nsummary")
    log(f"{'protocol':9} {'model':9} {'metric':10} {'value':>8}  target")
    for name, res in results.items():
        rows = res["models"].items() if "models" in res else [(name, res)]
        for model, r in rows:
            for metric, value in r["test"].items():
                log(f"{name:9} {model:9} {metric:10} {value:8.4f}")
        for target, ok in res["targets"].items():
            log(f"{name:9} {'':9} {'':10} {'':8}  {'PASS' if ok else 'FAIL'} {target}")
    all_pass = all(ok for res in results.values() for ok in res["targets"].values())
    log(f"all targets: {'PASS' if all_pass else 'FAIL'}")

    report = {
        "benchmark": "quality of the course's models on ml-100k",
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "last_run_s": time.perf_counter() - total,
        "all_targets_pass": all_pass,
        "results": results,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": machine_line(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    write_json(args.out, report, default=list)
    log(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
