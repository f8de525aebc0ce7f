"""The ``scaling`` section: the course's training time per epoch and evaluation time on
synthetic data shaped like ml-100k and like ml-1m (``recs_course.data.synthetic_ratings``).
"""

from __future__ import annotations

import torch

from benchmarks.common import Clock
from benchmarks.peers.shared import FULL_BATCH, NCF_BATCH, TOWER, EpochTimer, log
from recs_course.data import (
    Batches,
    IdEncoder,
    InstanceBatches,
    NegativeSampler,
    chronological_split,
    interaction_matrix,
    leave_one_out,
    random_split,
    ranking_candidates,
    synthetic_ratings,
    to_tensors,
)
from recs_course.evaluation import evaluate_full, evaluate_ratings, evaluate_sampled
from recs_course.models import MF, AutoRec, LightGCN, NeuMF
from recs_course.training import fit, seed_everything

SCALING_SHAPES = {
    "ml-100k-like": (943, 1682, 100_000),
    "ml-1m-like": (6040, 3706, 1_000_209),
}


def run_scaling(args) -> dict:
    shapes = dict(SCALING_SHAPES)
    if args.quick:
        shapes = {k: (u // 10, i // 10, n // 100) for k, (u, i, n) in shapes.items()}
    out = {}
    for label, (n_users, n_items, n_ratings) in shapes.items():
        log(f"scaling {label}: {n_users} users, {n_items} items, {n_ratings} ratings")
        out[label] = scaling_entry(n_users, n_items, n_ratings, args.seed)
    return out


def one_timed_epoch(model, batches, loss, optimizer, evaluate, what: str, **extra) -> dict:
    """Train ``model`` one epoch and evaluate it once; the times of both, as in ``EpochTimer``."""
    timer = EpochTimer(batches)
    fit(model, timer, loss, optimizer, epochs=1, evaluate=timer.evaluate, progress=False)
    with Clock() as c:
        evaluate(model)
    return {**timer.summary(), "eval_s": c.wall, "eval_cpu_s": c.cpu, **extra, "eval": what}


def scaling_entry(n_users: int, n_items: int, n_ratings: int, seed: int) -> dict:
    """Time one epoch and one evaluation of four course models on synthetic data."""
    r = synthetic_ratings(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed)
    enc = IdEncoder().fit(r.ratings)
    e = enc.transform(r.ratings)
    n_users, n_items = enc.n_users, enc.n_items
    g = torch.Generator().manual_seed(seed)  # every model's batches draw from it, in turn
    models = {}

    # explicit MF: one epoch on 90 %, RMSE on 10 %
    train, test = random_split(e, 0.1, seed=seed)
    test_cols = to_tensors(test)

    def rmse_on_test(model):
        return evaluate_ratings(model, *test_cols)

    seed_everything(0)
    mf = MF(n_users, n_items, dim=50, y_range=(0.5, 5.5))
    models["MF (explicit)"] = one_timed_epoch(
        mf,
        Batches(*to_tensors(train), batch_size=256, generator=g),
        "mse",
        torch.optim.AdamW(mf.parameters(), lr=5e-3),
        rmse_on_test,
        "RMSE on 10% of the ratings",
    )

    # AutoRec: one epoch over the item rows
    csr = interaction_matrix(train, n_users, n_items)
    seed_everything(0)
    ae = AutoRec(n_users, n_items, csr, hidden=500, clip=(1.0, 5.0))
    models["AutoRec (explicit)"] = one_timed_epoch(
        ae,
        Batches(torch.arange(ae.n_rows), batch_size=64, generator=g),
        "masked_mse",
        torch.optim.Adam(ae.parameters(), lr=1e-3),
        rmse_on_test,
        "RMSE on 10% of the ratings",
    )

    # NeuMF: leave-one-out, 4 negatives, batch 256; sampled ranking with 100 negatives
    train, test = leave_one_out(e)
    with Clock() as cand:
        cands = ranking_candidates(test, n_items, n_neg=100, exclude=train, generator=seed)
    sampler = NegativeSampler.from_ratings(train, n_items)
    seed_everything(0)
    neumf = NeuMF(n_users, n_items, dim=32, layers=TOWER)
    models["NeuMF (NCF protocol)"] = one_timed_epoch(
        neumf,
        InstanceBatches(
            train,
            n_items,
            "pointwise",
            n_neg=4,
            batch_size=NCF_BATCH,
            generator=g,
            positives=sampler,
        ),
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
    models["LightGCN (full ranking)"] = one_timed_epoch(
        lgcn,
        InstanceBatches(
            train, n_items, "pairwise", batch_size=FULL_BATCH, generator=g, positives=sampler
        ),
        "bpr",
        torch.optim.Adam(lgcn.parameters(), lr=1e-3),
        lambda model: evaluate_full(model, tr_csr, te_csr, ks=(20,), metrics=("recall", "ndcg")),
        "recall@20 / NDCG@20, all items",
        adjacency_s=adj.wall,
    )
    return {"users": n_users, "items": n_items, "ratings": len(e), "models": models}
