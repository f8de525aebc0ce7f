"""The validation grids behind the course's recipes (``recs_course.recipes.GRIDS``).

For every recipe with a grid, train each setting once (training seed 0) on the protocol's
training part of the full MovieLens-100K and score it on the validation part
(``protocol.monitor``); the test part is never touched. Every model of a protocol gets a grid
of six settings. The best setting of each grid is what ``recs_course.recipes.RECIPES`` must
hold, and ``tests/test_recipes.py`` checks it against the file this writes.

    python -m benchmarks.tune [--only full/LightGCN,sampled/GMF] [--threads 1]

writes ``benchmarks/results/tuning.json`` (with ``--only``, the other entries are kept).
"""

from __future__ import annotations

import json
import time

import torch

from benchmarks.common import RESULTS, argument_parser, command_line, machine_line, write_json
from recs_course.data import load_movielens
from recs_course.protocols import PROTOCOLS
from recs_course.recipes import GRIDS, RECIPES, tune

OUTPUT = RESULTS / "tuning.json"


def main(argv: list[str] | None = None) -> dict:
    parser = argument_parser("tune", __doc__)
    parser.add_argument("--only", default="", help="comma-separated recipe keys")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [k for k in args.only.split(",") if k] or list(GRIDS)
    unknown = [k for k in keys if k not in GRIDS]
    if unknown:
        parser.error(f"no grid for {unknown}; choose from {list(GRIDS)}")
    ratings = load_movielens("ml-100k").ratings
    protocols = {}
    out = json.loads(OUTPUT.read_text()) if OUTPUT.exists() and args.only else {}
    out.setdefault("grids", {})
    out.update(
        machine=machine_line(),
        threads=args.threads,
        command=command_line("tune", argv),
        data="ml-100k (full)",
        training_seed=0,
    )
    for key in keys:
        recipe = RECIPES[key]
        if recipe.protocol not in protocols:
            protocols[recipe.protocol] = PROTOCOLS[recipe.protocol](ratings)
        protocol = protocols[recipe.protocol]
        start = time.perf_counter()
        best, table = tune(recipe, protocol, GRIDS[key])
        seconds = time.perf_counter() - start
        chosen = {name: best.summary().get(name) for name in GRIDS[key]}
        out["grids"][key] = {
            "monitor": f"valid {protocol.monitor}",
            "grid": GRIDS[key],
            "best": chosen,
            "table": json.loads(table.to_json(orient="records")),
            "seconds": round(seconds, 1),
        }
        print(f"{key:28} best {chosen}  ({seconds:.0f} s)", flush=True)
        write_json(OUTPUT, out)
    return out


if __name__ == "__main__":
    main()
