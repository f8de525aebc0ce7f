"""The ``speed`` section: training and evaluation times as course / peer ratios, from the runs
of the other two sections, and the data preparation steps of both libraries.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from benchmarks.common import Clock, ratio
from benchmarks.peers.explicit import run_explicit
from benchmarks.peers.ranking import run_ranking
from benchmarks.peers.shared import log
from recs_course.data import (
    IdEncoder,
    NegativeSampler,
    leave_one_out,
    pairwise_instances,
    pointwise_instances,
    ranking_candidates,
)
from recs_course.models import normalized_adjacency

# (course model, surprise model) pairs of the explicit section
EXPLICIT_PAIRS = (
    ("MF (biases)", "SVD"),
    ("EmbeddingMLP", "SVD"),
    ("AutoRec (item)", "SVD"),
    ("MF (biases)", "SVDpp"),
)


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
            test, n_items, n_neg=100, exclude=train, generator=seed
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


def speed_row(task: str, model: str, peer: str, course: dict, other: dict, train: str, ev: str):
    """One pairing: the ``train`` and ``ev`` time keys of ``course`` and its ``peer``'s."""
    return {
        "task": task,
        "model": model,
        "peer": peer,
        "course_train_s": course[train],
        "peer_train_s": other[train],
        "train_ratio": ratio(course[train], other[train]),
        "course_eval_s": course[ev],
        "peer_eval_s": other[ev],
        "eval_ratio": ratio(course[ev], other[ev]),
    }


def speed_rows(explicit: dict | None, ranking: dict | None) -> list[dict]:
    """One row per (task, model) pairing a course model with its peer: times and ratios."""
    rows = []
    if explicit:
        for course_name, peer_name in EXPLICIT_PAIRS:
            c = explicit["course"][course_name]["split"]
            p = explicit["surprise"][peer_name]["split"]
            cpu = "_cpu" if "train_cpu_s_per_epoch" in p else ""
            row = speed_row(
                "explicit 80/20",
                course_name,
                f"surprise {peer_name}",
                c,
                p,
                f"train{cpu}_s_per_epoch",
                f"test{cpu}_s",
            )
            rows.append({**row, "basis": "cpu" if cpu else "wall"})
    for protocol in ("ncf", "temporal") if ranking else ():
        if protocol not in ranking:
            continue
        block = ranking[protocol]
        for name, c in block["course"].items():
            p = block["recbole"]["models"].get(name)
            if p is None:
                continue
            cpu = p.get("train_cpu_s_per_epoch") is not None
            key = "cpu_s" if cpu else "s"
            row = speed_row(
                "NCF protocol" if protocol == "ncf" else "full ranking",
                name,
                f"RecBole {name}",
                c,
                p,
                f"train_{key}_per_epoch",
                f"valid_{key}_per_eval",
            )
            rows.append({**row, "basis": "cpu" if cpu else "wall"})
    return rows


def recbole_prep(ranking: dict) -> dict:
    """RecBole's data preparation and graph construction, from the ranking section's runs."""
    rb = ranking["ncf"]["recbole"]["models"]
    rt = ranking["temporal"]["recbole"]["models"]
    return {
        "dataset + data loaders, NCF protocol (create_dataset, data_preparation)": rb.get(
            "NeuMF", {}
        ).get("prep_s"),
        "dataset + data loaders, full ranking": rt.get("LightGCN", {}).get("prep_s"),
        "LightGCN construction (normalised adjacency)": rt.get("LightGCN", {}).get("model_init_s"),
        "NGCF construction (normalised adjacency)": rt.get("NGCF", {}).get("model_init_s"),
    }


def run_speed(args, ratings, tmp: Path, results_now: dict, stored: dict) -> dict:
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
        prep["recbole"] = recbole_prep(ranking)
        prep["course_in_run"] = {
            protocol: ranking[protocol]["course_prep"] for protocol in ("ncf", "temporal")
        }
        prep["course_model_init"] = {
            name: ranking["temporal"]["course"][name]["model_init_s"]
            for name in ("NGCF", "LightGCN")
        }
    out["prep"] = prep
    return out
