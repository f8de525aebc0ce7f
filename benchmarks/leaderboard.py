"""The leaderboard: every recipe of the course on its protocol, three training seeds, intervals.

For each protocol (``recs_course.protocols``, split seed 0, full MovieLens-100K), train every
recipe of ``recs_course.recipes.RECIPES`` made for it with training seeds 0, 1 and 2, evaluate
each model on the test part, and compare each model with the protocol's leader (the best mean
of the protocol's ranking metric, NDCG or RMSE) with ``recs_course.compare.compare``: the
paired per-user difference with a 95 % interval over users and training seeds, and its verdict.
A chapter run with ``SEED = 0`` trains the same models (same recipes, split and seeds), so its
figures are these.

    python -m benchmarks.leaderboard [--only explicit,sampled,full] [--seeds 0,1,2] [--threads 1]

writes ``benchmarks/results/leaderboard.json``, which the book's leaderboard page shows
(``book/leaderboard.md``) and ``tests/test_leaderboard.py`` checks against ``RECIPES``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

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
from recs_course.protocols import PROTOCOLS
from recs_course.recipes import RECIPES, run

OUTPUT = RESULTS / "leaderboard.json"
#: The metric that orders each protocol's table (the second of the protocol's metrics).
RANKED_BY = {"explicit": "RMSE", "sampled": "NDCG@10", "full": "NDCG@20"}


def board(protocol, seeds: list[int]) -> dict:
    """Run every recipe of ``protocol``; each row compared with the leader."""
    runs = {}
    for key, recipe in RECIPES.items():
        if recipe.protocol != protocol.name:
            continue
        start = time.perf_counter()
        runs[recipe.label] = run(recipe, protocol, seeds=seeds)
        print(
            f"  {key:28} {runs[recipe.label].mean()}  ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    metric = RANKED_BY[protocol.name]
    lower = not protocol.higher_is_better
    order = sorted(runs, key=lambda k: runs[k].mean()[metric], reverse=not lower)
    leader = order[0]
    rows = []
    for label in order:
        r = runs[label]
        row = {
            "model": label,
            "recipe": f"{protocol.name}/{label}",
            "settings": json.loads(json.dumps(r.recipe.summary())),
            "mean": r.mean(),
            "per_seed": [dict(m) for m in r.metrics],
            "epochs": r.epochs,
            "seconds": [round(s, 1) for s in r.seconds],
        }
        if label != leader:
            c = compare(r, runs[leader], metric)
            row["vs_leader"] = {
                "difference": c.difference,
                "low": c.low,
                "high": c.high,
                "verdict": c.verdict,
                "line": str(c),
            }
        rows.append(row)
    return {
        "description": protocol.description,
        "ranked_by": metric,
        "metrics": list(protocol.metrics),
        "leader": leader,
        "n_users": len(runs[leader].metrics[0].per_user),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argument_parser("leaderboard", __doc__)
    parser.add_argument("--only", default="explicit,sampled,full")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    output = Path(args.output)
    names = comma_list(parser, args.only, list(PROTOCOLS))
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    ratings = load_movielens("ml-100k").ratings
    out = json.loads(output.read_text()) if output.exists() else {}
    out.setdefault("protocols", {})
    out.update(
        machine=machine_line(),
        threads=args.threads,
        command=command_line("leaderboard", argv),
        data="ml-100k (full), protocol seed 0",
        training_seeds=seeds,
    )
    for name in names:
        print(f"{name}:", flush=True)
        start = time.perf_counter()
        out["protocols"][name] = board(PROTOCOLS[name](ratings, seed=0), seeds)
        out["protocols"][name]["seconds"] = round(time.perf_counter() - start, 1)
        write_json(output, out)
    return out


if __name__ == "__main__":
    main()
