"""The ``ranking`` section: implicit feedback under RecBole's NCF protocol (leave-one-out, 100
sampled negatives) and full ranking on a per-user chronological split, the course's models and
RecBole's (``benchmarks.recbole_run --split-dir``) on the same split files with the same settings.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from benchmarks.common import Clock
from benchmarks.peers.shared import (
    FULL_BATCH,
    NCF_BATCH,
    NCF_NEG,
    RECBOLE_PY,
    TOWER,
    EpochTimer,
    log,
    need,
    run_peer,
)
from benchmarks.recbole_settings import MODELS as RECBOLE_MODELS
from benchmarks.recbole_settings import PROTOCOLS as RECBOLE_PROTOCOLS
from recs_course.data import (
    IdEncoder,
    InstanceBatches,
    NegativeSampler,
    chronological_split,
    interaction_matrix,
    leave_one_out,
    ranking_candidates,
    to_tensors,
)
from recs_course.evaluation import evaluate_full, evaluate_sampled
from recs_course.models import GMF, MF, NCFMLP, NGCF, LightGCN, NeuMF, Popularity
from recs_course.training import fit, seed_everything

# The settings of benchmarks/recbole_settings.py's MODELS, model by model.
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
                layer_dims=(64, 64, 64),
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
INSTANCES = {"bce": "pointwise", "bpr": "pairwise"}  # the loss -> InstanceBatches' kind

NOTES = [
    "Sampled ranking: the course ranks each held-out item among 100 distinct negatives "
    "drawn once (ranking_candidates, never an item the user rated); RecBole's uni100 "
    "draws 100 with replacement at every evaluation. Same protocol, different draws.",
    "Ties: the course counts a negative scored equal to the held-out item as ranked above "
    "it (pessimistic); RecBole breaks ties by its internal item index. This matters for "
    "Pop only.",
    "Both sides select the epoch with the best validation NDCG (patience as in "
    "recbole_settings.py) and report the test metrics of that epoch's weights.",
    "NGCF/LightGCN regularisation: the same weight (1e-5) but the course penalises "
    "squared norms / 2 / batch, RecBole's EmbLoss plain norms / batch.",
]


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


def evaluators(protocol: str, data: dict):
    """``(on_valid, on_test)``: the protocol's evaluation of a model."""
    ks, metrics = PROTOCOL_KS[protocol], PROTOCOL_METRICS[protocol]
    if protocol == "ncf":
        return (
            lambda m: evaluate_sampled(m, *data["valid_cand"], ks=ks, metrics=metrics),
            lambda m: evaluate_sampled(m, *data["test_cand"], ks=ks, metrics=metrics),
        )
    return (
        lambda m: evaluate_full(m, data["train_csr"], data["valid_csr"], ks=ks, metrics=metrics),
        lambda m: evaluate_full(m, data["seen_csr"], data["test_csr"], ks=ks, metrics=metrics),
    )


def train_ranking(protocol, spec, data, epochs, patience, seed):
    """One course model under ``protocol``: fit with early stopping, then test."""
    n_users, n_items, train = data["n_users"], data["n_items"], data["train"]
    seed_everything(seed)
    with Clock() as init:  # Popularity is built by counting, its "epoch" below
        model = None if spec["kind"] == "pop" else spec["model"](n_users, n_items, train)
    valid_eval, test_eval = evaluators(protocol, data)
    out = {"model_init_s": init.wall}
    if spec["kind"] == "pop":
        with Clock() as c:
            model = Popularity.from_interactions(
                *to_tensors(train, ("user_id", "item_id")), n_users, n_items
            )
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
        batches = InstanceBatches(
            train,
            n_items,
            INSTANCES[spec["kind"]],
            n_neg=NCF_NEG if spec["kind"] == "bce" else 1,
            batch_size=NCF_BATCH if protocol == "ncf" else FULL_BATCH,
            generator=torch.Generator().manual_seed(seed),
            positives=data["sampler"],
        )
        timer = EpochTimer(batches, valid_eval)
        history = fit(
            model,
            timer,
            spec["kind"],
            torch.optim.Adam(model.parameters(), lr=1e-3),
            epochs=epochs,
            evaluate=timer.evaluate,
            monitor=f"NDCG@{PROTOCOL_KS[protocol][-1]}",
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
    out_file = tmp / f"recbole_{protocol}.json"
    cmd = ["--protocol", protocol, "--split-dir", str(split_dir)]
    cmd += ["--threads", str(args.threads), "--out", str(out_file)]
    if epochs_cap is not None:
        cmd += ["--epochs", str(epochs_cap)]
    report = run_peer(RECBOLE_PY, "recbole_run", cmd, out_file, args.threads)
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


def protocol_data(protocol: str, train, valid, test, n_users: int, n_items: int, seed: int):
    """What the course's models of ``protocol`` train and are evaluated with, and its times."""
    data = {"n_users": n_users, "n_items": n_items, "train": train}
    prep = {}
    with Clock() as c:
        data["sampler"] = NegativeSampler.from_ratings(train, n_items)
    prep["negative_sampler_s"] = c.wall
    if protocol == "ncf":
        with Clock() as c:
            data["valid_cand"] = ranking_candidates(
                valid, n_items, n_neg=100, exclude=[train, test], generator=seed
            )
            data["test_cand"] = ranking_candidates(
                test, n_items, n_neg=100, exclude=[train, valid], generator=seed + 1
            )
        prep["candidates_s"] = c.wall
    else:
        with Clock() as c:
            data["train_csr"] = interaction_matrix(train, n_users, n_items, values="ones")
            data["valid_csr"] = interaction_matrix(valid, n_users, n_items, values="ones")
            data["test_csr"] = interaction_matrix(test, n_users, n_items, values="ones")
            data["seen_csr"] = data["train_csr"] + data["valid_csr"]
        prep["csr_s"] = c.wall
    return data, prep


def run_ranking(args, ratings: pd.DataFrame, tmp: Path, epochs_cap=None) -> dict:
    need(RECBOLE_PY)
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
        data, prep = protocol_data(protocol, train, valid, test, n_users, n_items, args.seed)
        spec = RECBOLE_PROTOCOLS[protocol]
        course = {}
        for name, model_spec in RANKING[protocol].items():
            epochs = RECBOLE_MODELS[protocol][name][1].get("epochs", spec["epochs"])
            if epochs_cap is not None:
                epochs = min(epochs, epochs_cap)
            log(f"course {protocol} {name}: up to {epochs} epochs")
            course[name] = train_ranking(
                protocol, model_spec, data, epochs, spec["stopping_step"], args.seed
            )
            log("    test " + ", ".join(f"{k} {v:.4f}" for k, v in course[name]["test"].items()))
        result[protocol] = {
            "split": {
                "method": text,
                "rows": {"train": len(train), "valid": len(valid), "test": len(test)},
                "users": n_users,
                "items": n_items,
            },
            "course_prep": {"split_s": split_clock.wall, **prep},
            "course": course,
            "recbole": recbole_ranking(args, protocol, split_dir, tmp, epochs_cap),
        }
    result["notes"] = NOTES
    return result
