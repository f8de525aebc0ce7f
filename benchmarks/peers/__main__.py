"""The course package side by side with scikit-surprise and RecBole, in one run.

Run with the course's environment, from the repository root; the peers run in their own
environments (made by ``benchmarks/surprise_env.sh`` and ``benchmarks/recbole_env.sh``) as
subprocesses that read the very split files this command writes::

    python -m benchmarks.peers                      # everything (about an hour on one thread)
    python -m benchmarks.peers --quick              # smoke run on 150 users, 2 epochs
    python -m benchmarks.peers --only explicit,speed
    python -m benchmarks.peers --render-only        # peers.md and the PNGs from peers.json

Sections (``--only``, comma-separated):

``explicit``  RMSE on the full ml-100k, one 80/20 random split and 5-fold cross-validation (the
              same rows for every library): the course's MF with biases, EmbeddingMLP and
              item-based AutoRec against surprise's SVD and SVD++ (``benchmarks.surprise_run``).
              MF and AutoRec follow the course's recipes, ``RECIPES["explicit/MF with biases"]``
              and ``RECIPES["explicit/AutoRec"]`` of ``recs_course.recipes``, trained by
              ``recipes.train`` with 10 % of each training part as their validation part
              (AutoRec then refitted on all of it).
``ranking``   Implicit feedback (every rating a positive). RecBole's NCF protocol: leave-one-out
              by time (latest rating -> test, second latest -> validation), the held-out item
              ranked among 100 sampled negatives, HR@10 / NDCG@10, for Pop, BPR-MF, GMF, MLP
              and NeuMF; and full ranking on a per-user chronological split (latest 20 % -> test,
              the 10 % before -> validation), recall@k / NDCG@k with training items masked, for
              BPR-MF, NGCF and LightGCN. The course's models and RecBole's
              (``benchmarks.recbole_run --split-dir``) get the same split files and the same
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
``peers_speed.png`` / ``peers_scaling.png``. The course's own recipes against the peers, on the
evaluation spine with paired intervals, are ``python -m benchmarks.quality``'s (``quality.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks.common import RESULTS, argument_parser, comma_list, set_thread_env
from benchmarks.peers import SECTIONS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argument_parser("peers", __doc__)
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
    only = comma_list(p, args.only, SECTIONS)
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.folds < 2:
        p.error("--folds must be at least 2")
    args.only = [s for s in SECTIONS if s in only]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out_dir).resolve()
    if args.render_only:
        from benchmarks.peers.report import render_stored

        return render_stored(out_dir)
    # The thread count must be in the environment before torch is imported (by .run).
    set_thread_env(args.threads)
    os.environ["RECS_COURSE_THREADS"] = str(args.threads)
    os.environ["RECS_COURSE_PROGRESS"] = "0"
    from benchmarks.peers.run import run

    return run(args, out_dir, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
