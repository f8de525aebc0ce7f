"""How much the leave-one-out details move HR@10: the tie rule and training on the validation item.

415 of ml-100k's 943 users have two or more ratings at their latest timestamp, so "each user's
latest interaction" is a choice. The course (as RecBole) holds out the one with the larger
``item_id``; the NeuMF tutorial the course grew from holds out the first in file order, and it
also trains on the validation item (it has no validation set). This script measures both
details on the course's sampled-ranking protocol (``recs_course.protocols.sampled_ranking``,
100 sampled negatives, HR@10 and NDCG@10), with the course's recipes over three training seeds:

``course``         ties by the larger item id; validation item held out, early stopping on it
``file order``     ties by the first row in the file; otherwise as ``course``
``+ valid item``   course ties; after early stopping on the validation item, the model is
                   trained again on training and validation data for that many epochs
                   (the recipe with ``refit=True``)
``both``           file-order ties and the validation item trained on (the tutorial's choices)

Each variant is compared with ``course`` by ``recs_course.compare.compare`` (users paired; the
test item of a user may differ between tie rules, which is the point).

    python -m benchmarks.tie_rule [--models GMF,NeuMF,Popularity] [--threads 1]

writes ``benchmarks/results/tie_rule.json``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from benchmarks.common import (
    RESULTS,
    argument_parser,
    comma_list,
    command_line,
    machine_line,
    write_json,
)
from recs_course.compare import compare
from recs_course.data import load_movielens
from recs_course.protocols import sampled_ranking
from recs_course.recipes import RECIPES, run

OUTPUT = RESULTS / "tie_rule.json"
SEEDS = [0, 1, 2]


def file_order_ties(ratings: pd.DataFrame) -> pd.DataFrame:
    """The same ratings with timestamps that make, among equal timestamps, the *first* row of the
    file the latest (so that leave-one-out holds it out), and every timestamp distinct."""
    n = len(ratings)
    position = np.arange(n, dtype=np.int64)
    stamps = ratings["timestamp"].to_numpy().astype(np.int64) * n + (n - 1 - position)
    return ratings.assign(timestamp=stamps)


def tied_users(ratings: pd.DataFrame) -> dict:
    latest = ratings.groupby("user_id")["timestamp"].transform("max")
    at_latest = (ratings["timestamp"] == latest).groupby(ratings["user_id"]).sum()
    tied = at_latest[at_latest >= 2]
    return {
        "users": int(ratings["user_id"].nunique()),
        "users_with_ties_at_latest": int(len(tied)),
        "mean_ratings_at_latest_when_tied": round(float(tied.mean()), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argument_parser("tie_rule", __doc__)
    parser.add_argument("--models", default="Popularity,GMF,NeuMF")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    labels = comma_list(
        parser, args.models, ["Popularity", "GMF", "MLP", "NeuMF", "MF (dot product)"]
    )
    torch.set_num_threads(args.threads)
    ratings = load_movielens("ml-100k").ratings
    course = sampled_ranking(ratings, seed=0)
    file_order = sampled_ranking(file_order_ties(ratings), seed=0)
    # the same ids in both (only timestamps changed), so the encodings agree
    same_test = course.test.merge(file_order.test, on="user_id", suffixes=("", "_file"))
    out: dict = {
        "machine": machine_line(),
        "threads": args.threads,
        "command": command_line("tie_rule", argv),
        "data": "ml-100k (full)",
        "training_seeds": SEEDS,
        "ties": tied_users(ratings),
        "test_item_differs": int((same_test["item_id"] != same_test["item_id_file"]).sum()),
        "models": {},
    }
    for label in labels:
        recipe = RECIPES[f"sampled/{label}"]
        start = time.perf_counter()
        base = run(recipe, course, seeds=SEEDS)
        variants = {"course": base, "file order": run(recipe, file_order, seeds=SEEDS)}
        # the validation item trained on: refit on training and validation data for the
        # number of epochs early stopping chose (recipes' refit rule; no leak into the choice)
        refit = recipe.replace(refit=True)
        variants["+ valid item"] = run(refit, course, seeds=SEEDS)
        variants["both"] = run(refit, file_order, seeds=SEEDS)
        rows = {}
        for name, runs in variants.items():
            row = {"mean": runs.mean(), "epochs": runs.epochs}
            if name != "course":
                for metric in ("HR@10", "NDCG@10"):
                    c = compare(runs, base, metric, names=(name, "course"))
                    row[f"vs course {metric}"] = {
                        "difference": c.difference,
                        "low": c.low,
                        "high": c.high,
                        "verdict": c.verdict,
                        "line": str(c),
                    }
            rows[name] = row
        out["models"][label] = rows
        print(
            f"{label}: "
            + "; ".join(f"{k} HR@10 {v['mean']['HR@10']:.4f}" for k, v in rows.items())
            + f" ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        write_json(OUTPUT, out)
    return out


if __name__ == "__main__":
    main()
