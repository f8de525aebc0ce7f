"""Tests of recs_course.evaluation with tiny fake models (no dependency on recs_course.models)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from recs_course.evaluation import evaluate_full, evaluate_ratings, evaluate_sampled
from recs_course.metrics import ranking_metrics
from recs_course.models import model_device


class TableModel(nn.Module):
    """Scores come from a fixed (n_users, n_items) table; records the mode it was called in."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table.clone().float(), requires_grad=True)
        self.dropout = nn.Dropout(0.5)  # a submodule, to check every flag is restored
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.table[users, items]

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.table[users]


class ConstantModel(nn.Module):
    """No parameters at all: device=None must fall back to the CPU."""

    def __init__(self, n_items: int):
        super().__init__()
        self.n_items = n_items

    def forward(self, users, items):
        return torch.full(users.shape, 0.5)

    def score_all(self, users):
        return torch.full((users.shape[0], self.n_items), 0.5)


class CountModel(nn.Module):
    """Integer scores (like an item-popularity count): item i scores i % 7."""

    def __init__(self, n_items: int):
        super().__init__()
        self.register_buffer("counts", torch.arange(n_items) % 7)

    def forward(self, users, items):
        return self.counts[items]

    def score_all(self, users):
        return self.counts.expand(users.shape[0], -1)  # a view: must not be written to


def random_csr(rng, n_users, n_items, density):
    return sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float32))


def brute_force_full(table: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix, k: int):
    """Per-user loop: argsort the unmasked items, recall@k and NDCG@k (test-only reference)."""
    recalls, ndcgs = [], []
    for u in range(table.shape[0]):
        test_items = set(test[u].indices)
        if not test_items:
            continue
        seen = set(train[u].indices)
        ranked = [i for i in np.argsort(-table[u], kind="stable") if i not in seen][:k]
        hits = [i in test_items for i in ranked]
        recalls.append(sum(hits) / len(test_items))
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(test_items), k)))
        ndcgs.append(dcg / idcg)
    return float(np.mean(recalls)), float(np.mean(ndcgs))


# --------------------------------------------------------------------------- ratings
def test_evaluate_ratings_hand_worked_and_restores_mode():
    table = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    model = TableModel(table)
    model.train()
    model.dropout.eval()  # mixed flags must come back exactly
    users, items = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    ratings = [1.0, 3.0, 3.0, 2.0]  # errors 0, -1, 0, 2 -> MAE 3/4, RMSE sqrt(5/4)
    out = evaluate_ratings(model, users, items, ratings, pairs_per_batch=3)
    assert out == pytest.approx({"RMSE": math.sqrt(5 / 4), "MAE": 0.75})
    assert model.training and not model.dropout.training
    assert model.calls == [(False, False), (False, False)]  # two batches, eval + no_grad
    # per user: user 0 errors (0, -1), user 1 errors (0, 2), by hand
    frame = out.per_user
    assert frame["user"].tolist() == [0, 1] and frame["n_ratings"].tolist() == [2, 2]
    assert frame["RMSE"].tolist() == pytest.approx([math.sqrt(1 / 2), math.sqrt(4 / 2)])
    assert frame["MAE"].tolist() == pytest.approx([0.5, 1.0])


def test_per_user_rating_errors_match_a_loop():
    rng = np.random.default_rng(0)
    table = torch.from_numpy(rng.normal(3, 1, (30, 40)))
    users, items = rng.integers(0, 30, 500), rng.integers(0, 40, 500)
    ratings = rng.integers(1, 6, 500).astype(float)
    frame = evaluate_ratings(TableModel(table), users, items, ratings, pairs_per_batch=64).per_user
    pred = table.float().double().numpy()[users, items]
    for row in frame.itertuples():
        err = (pred - ratings)[users == row.user]
        assert row.n_ratings == err.size
        assert row.RMSE == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-6)
        assert row.MAE == pytest.approx(np.mean(np.abs(err)), rel=1e-6)
    assert sorted(frame["user"]) == sorted(set(users.tolist()))


def test_metrics_result_prints_compares_and_pickles():
    import pickle

    users, candidates = sampled_case(n_users=5, seed=2)
    model = TableModel(torch.randn(5, 200, generator=torch.Generator().manual_seed(1)))
    a = evaluate_sampled(model, users, candidates, ks=10)
    b = evaluate_sampled(model, users, candidates, ks=10, users_per_batch=1)
    assert a == b and dict(a) == {k: a[k] for k in ("HR@10", "NDCG@10")}
    assert repr(a).startswith("Metrics({'HR@10': ") and repr(a).endswith("users=5)")
    assert f"{a['HR@10']:.4f}" in repr(a)
    again = pickle.loads(pickle.dumps(a))
    assert again == a and again.per_user.equals(a.per_user)


@pytest.mark.parametrize("device", [None, "auto", "cpu", torch.device("cpu")])
def test_every_evaluator_takes_the_same_device_values(device):
    users, candidates = sampled_case(n_users=5, seed=2)
    model = TableModel(torch.randn(5, 200, generator=torch.Generator().manual_seed(1)))
    train = sp.csr_matrix((5, 200))
    test = sp.csr_matrix(np.eye(5, 200))
    evaluate_ratings(model, [0, 1], [2, 3], [1.0, 2.0], device=device)
    evaluate_sampled(model, users, candidates, device=device)
    evaluate_full(model, train, test, device=device)
    for bad in ("gpu", "cuda:x", 3.5):
        with pytest.raises(ValueError, match="device"):
            evaluate_sampled(model, users, candidates, device=bad)


def test_evaluate_ratings_errors():
    model = TableModel(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same length"):
        evaluate_ratings(model, [0, 1], [0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no ratings"):
        evaluate_ratings(model, [], [], [])
    with pytest.raises(ValueError, match="integer"):
        evaluate_ratings(model, [0.5], [1], [1.0])
    with pytest.raises(ValueError, match="pairs_per_batch"):
        evaluate_ratings(model, [0], [1], [1.0], pairs_per_batch=0)
    model.train()
    bad = TableModel(torch.zeros(2, 2))
    bad.forward = lambda u, i: torch.zeros(len(u), 2)  # wrong output shape
    with pytest.raises(ValueError, match="scores"):
        evaluate_ratings(bad, [0, 1], [0, 1], [1.0, 2.0])


# --------------------------------------------------------------------------- sampled
def sampled_case(n_users=30, n_items=200, n_cand=101, seed=0):
    rng = np.random.default_rng(seed)
    users = torch.arange(n_users)
    candidates = torch.stack(
        [torch.from_numpy(rng.choice(n_items, n_cand, replace=False)) for _ in range(n_users)]
    )
    return users, candidates


def test_evaluate_sampled_perfect_and_constant_models():
    users, candidates = sampled_case()
    table = torch.zeros(30, 200)
    table[users, candidates[:, 0]] = 1.0  # positive scored above every negative
    model = TableModel(table)
    model.train()
    perfect = evaluate_sampled(model, users, candidates, ks=(1, 10), metrics=("hr", "ndcg", "mrr"))
    assert perfect == {
        "HR@1": 1.0,
        "HR@10": 1.0,
        "NDCG@1": 1.0,
        "NDCG@10": 1.0,
        "MRR@1": 1.0,
        "MRR@10": 1.0,
    }
    assert model.training and all(call == (False, False) for call in model.calls)
    # constant model: the positive ties with 100 negatives and ranks last (pessimistic)
    const = evaluate_sampled(ConstantModel(200), users, candidates, ks=10)
    assert const == {"HR@10": 0.0, "NDCG@10": 0.0}


def test_evaluate_sampled_matches_ranking_metrics_and_batching():
    users, candidates = sampled_case(seed=1)
    table = torch.randn(30, 200, generator=torch.Generator().manual_seed(0))
    model = TableModel(table)
    scores = table[users.unsqueeze(1), candidates]  # (U, C)
    relevant = torch.zeros_like(scores, dtype=torch.bool)
    relevant[:, 0] = True
    metrics = ("hr", "ndcg", "recall", "mrr", "auc")
    expected = ranking_metrics(scores, relevant, ks=(5, 10), metrics=metrics)
    for batch_size in (7, 1024):
        got = evaluate_sampled(
            model, users, candidates, ks=(5, 10), metrics=metrics, users_per_batch=batch_size
        )
        assert got == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected["HR@10"] < 1.0  # a non-trivial case
    # single positive: rank = 1 + #(neg > pos) + #(neg == pos); HR@10 = mean(rank <= 10)
    rank = 1 + (scores[:, 1:] >= scores[:, :1]).sum(1)
    assert expected["HR@10"] == pytest.approx((rank <= 10).double().mean().item())


def test_evaluate_sampled_per_user_and_errors():
    users, candidates = sampled_case(n_users=5, seed=2)
    model = TableModel(torch.randn(5, 200, generator=torch.Generator().manual_seed(1)))
    result = evaluate_sampled(model, users + 0, candidates, ks=10, users_per_batch=2)
    frame = result.per_user
    assert isinstance(frame, pd.DataFrame) and isinstance(result, dict)
    assert list(frame.columns) == ["user", "HR@10", "NDCG@10"] and frame["user"].tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]
    means = evaluate_sampled(model, users, candidates, ks=10)
    assert frame["NDCG@10"].mean() == pytest.approx(means["NDCG@10"])
    with pytest.raises(ValueError, match="larger than the number of items"):
        evaluate_sampled(model, users, candidates, ks=102)
    with pytest.raises(ValueError, match="candidates"):
        evaluate_sampled(model, users[:3], candidates)


# --------------------------------------------------------------------------- full ranking
def test_evaluate_full_masks_training_items():
    # 3 users x 6 items; the model scores training items highest (10), then test items (5)
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]))
    test = sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0]]))
    table = 10.0 * torch.tensor(train.toarray()) + 5.0 * torch.tensor(test.toarray())
    model = TableModel(table)
    model.train()
    out = evaluate_full(model, train, test, ks=(1, 2), metrics=("recall", "precision", "hr"))
    # after masking, test items rank first: user 0 -> 1 of 1 in top 1; user 1 -> 2 test items,
    # top-1 holds one (recall 1/2), top-2 both. User 2 has no test item: skipped.
    assert out["recall@1"] == pytest.approx((1 + 0.5) / 2)
    assert out["recall@2"] == 1.0 and out["HR@1"] == 1.0
    assert out["precision@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert model.training and all(call == (False, False) for call in model.calls)
    assert len(model.calls) == 1  # users 0 and 1 in one score_all batch
    # without the mask the training items would take the top slots
    unmasked = ranking_metrics(
        table[:2], torch.tensor(test.toarray()[:2] > 0), ks=1, metrics="recall"
    )
    assert unmasked["recall@1"] == 0.0


def test_evaluate_full_matches_brute_force():
    rng = np.random.default_rng(3)
    n_users, n_items = 60, 80
    train = random_csr(rng, n_users, n_items, 0.15)
    test = random_csr(rng, n_users, n_items, 0.05)
    test = sp.csr_matrix(test - test.multiply(train))  # disjoint from train
    test.eliminate_zeros()
    table = torch.from_numpy(rng.standard_normal((n_users, n_items)))
    model = TableModel(table)
    for k in (5, 20):
        recall, ndcg = brute_force_full(table.float().numpy(), train, test, k)
        for batch_size in (8, 1024):
            out = evaluate_full(
                model, train, test, ks=k, metrics=("recall", "ndcg"), users_per_batch=batch_size
            )
            assert out[f"recall@{k}"] == pytest.approx(recall, abs=1e-9)
            assert out[f"NDCG@{k}"] == pytest.approx(ndcg, abs=1e-9)


def test_evaluate_full_users_per_user_and_errors():
    rng = np.random.default_rng(4)
    train = random_csr(rng, 10, 30, 0.2)
    dense_test = (rng.random((10, 30)) < 0.1).astype(np.float32)
    dense_test[0] = 0  # user 0 has no test item
    test = sp.csr_matrix(dense_test)
    model = TableModel(torch.randn(10, 30, generator=torch.Generator().manual_seed(2)))
    frame = evaluate_full(model, train, test, ks=5, users=[0, 3, 4]).per_user
    assert frame["user"].tolist() == [3, 4]  # user 0 skipped
    assert list(frame.columns) == ["user", "recall@5", "NDCG@5", "precision@5", "HR@5"]
    subset = evaluate_full(model, train, test, ks=5, users=np.array([3, 4]))
    assert subset["recall@5"] == pytest.approx(frame["recall@5"].mean())
    # a model without parameters runs on the CPU
    assert model_device(ConstantModel(30)) == torch.device("cpu")
    const = evaluate_full(ConstantModel(30), train, test, ks=5, metrics=("hr", "auc"))
    assert const["AUC"] == 0.5 and 0.0 <= const["HR@5"] <= 1.0
    with pytest.raises(ValueError, match="same shape"):
        evaluate_full(model, train, test[:, :20], ks=5)
    with pytest.raises(ValueError, match="larger than the number of items"):
        evaluate_full(model, train, test, ks=31)
    with pytest.raises(ValueError, match="score_all must return"):
        evaluate_full(ConstantModel(29), train, test, ks=5)
    with pytest.raises(ValueError, match="no user"):
        evaluate_full(model, train, test, ks=5, users=[0])
    with pytest.raises(ValueError, match="sparse"):
        evaluate_full(model, train.toarray(), test, ks=5)


def test_integer_scores_and_cached_score_all_are_not_modified():
    rng = np.random.default_rng(5)
    train, test = random_csr(rng, 8, 21, 0.2), random_csr(rng, 8, 21, 0.2)
    model = CountModel(21)
    counts = model.counts.clone()
    full = evaluate_full(model, train, test, ks=5, metrics=("hr", "ndcg")).per_user
    assert torch.equal(model.counts, counts)  # the masked copy is out of place
    # reference: the same integer scores as float, masked by hand
    dense = counts.double().repeat(8, 1)
    dense[torch.from_numpy(train.toarray() > 0)] = float("-inf")
    relevant = torch.from_numpy(test.toarray() > 0)
    ref = ranking_metrics(dense, relevant, ks=5, metrics=("hr", "ndcg")).per_user
    keep = relevant.any(1).numpy()
    np.testing.assert_allclose(full["NDCG@5"].to_numpy(), ref["NDCG@5"].to_numpy()[keep])
    users, candidates = sampled_case(n_users=6, n_items=21, n_cand=10, seed=6)
    sampled = evaluate_sampled(model, users, candidates, ks=3, metrics="mrr_full")
    s = counts[candidates].double()
    rank = 1 + (s[:, 1:] >= s[:, :1]).sum(1)  # pessimistic rank of column 0
    assert sampled["MRR"] == pytest.approx((1 / rank).mean().item())
