"""Tests of recs_course.metrics against hand-worked cases, scikit-learn and a brute-force loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score, roc_auc_score

from recs_course.metrics import mae, metric_keys, pessimistic_hits, ranking_metrics, rmse

ALL = ("hr", "ndcg", "recall", "precision", "map", "mrr", "mrr_full", "auc")
NEG_INF = float("-inf")


# --------------------------------------------------------------------------- reference

def per_user_values(m):
    """The per-user columns of a Metrics result as float64 tensors, one per key, in key order."""
    assert list(m.per_user.columns) == ["user", *m]
    assert m.per_user["user"].tolist() == list(range(len(m.per_user)))
    return {k: torch.tensor(m.per_user[k].to_numpy()) for k in m}

def reference_metrics(scores: np.ndarray, relevant: np.ndarray, ks) -> dict[str, np.ndarray]:
    """Brute force, one user at a time, straight from the definitions (test-only loops).

    Ranking: sort by (score descending, relevant ascending) -> ties are pessimistic.
    -inf items are not candidates: never relevant, no part in AUC's pairs.
    """
    n_users = scores.shape[0]
    out = {
        f"{p}@{k}": np.full(n_users, np.nan)
        for p in ("HR", "NDCG", "recall", "precision", "MAP", "MRR")
        for k in ks
    }
    out["MRR"] = np.full(n_users, np.nan)
    out["AUC"] = np.full(n_users, np.nan)
    for u in range(n_users):
        s = scores[u]
        cand = s != NEG_INF
        rel = relevant[u] & cand
        n_rel = int(rel.sum())
        if n_rel == 0:
            continue
        order = np.lexsort((rel.astype(int), -s))  # primary: -score ascending; then rel ascending
        ranked = rel[order]
        first = int(np.flatnonzero(ranked)[0]) + 1
        for k in ks:
            top = ranked[:k]
            hits = int(top.sum())
            out[f"HR@{k}"][u] = float(hits > 0)
            out[f"recall@{k}"][u] = hits / n_rel
            out[f"precision@{k}"][u] = hits / k
            dcg = sum(1 / math.log2(r + 2) for r in range(k) if top[r])
            idcg = sum(1 / math.log2(r + 2) for r in range(min(n_rel, k)))
            out[f"NDCG@{k}"][u] = dcg / idcg
            ap = sum(top[: r + 1].sum() / (r + 1) for r in range(k) if top[r])
            out[f"MAP@{k}"][u] = ap / min(n_rel, k)
            out[f"MRR@{k}"][u] = 1 / first if first <= k else 0.0
        out["MRR"][u] = 1 / first
        pos, neg = s[rel], s[cand & ~rel]
        if len(neg):
            pairs = [(p > n) + 0.5 * (p == n) for p in pos for n in neg]
            out["AUC"][u] = float(np.mean(pairs))
    return out


def random_case(seed: int, n_users=40, n_items=30, ties=False, mask=False):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many ties, some straddling the cut-offs
        scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)
    else:
        scores = rng.standard_normal((n_users, n_items)).astype(np.float32)
    relevant = rng.random((n_users, n_items)) < 0.15
    relevant[:3] = False  # users without relevant items
    relevant[3, :] = True  # a user whose every item is relevant (AUC undefined)
    if mask:
        scores[rng.random((n_users, n_items)) < 0.3] = NEG_INF
    return scores, relevant


# --------------------------------------------------------------------------- rating metrics
def test_rmse_mae_hand_worked():
    # errors 0, -1, -2: MAE = 3/3 = 1, RMSE = sqrt((0 + 1 + 4) / 3) = sqrt(5/3)
    pred, target = [1.0, 2.0, 3.0], [1.0, 3.0, 5.0]
    assert mae(pred, target) == pytest.approx(1.0)
    assert rmse(np.array(pred), torch.tensor(target)) == pytest.approx(math.sqrt(5 / 3))
    assert isinstance(rmse(torch.tensor(pred), torch.tensor(target)), float)


def test_rmse_mae_match_sklearn():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=200).astype(np.float32), rng.normal(size=200)
    assert rmse(torch.from_numpy(p), t) == pytest.approx(
        math.sqrt(mean_squared_error(t, p)), rel=1e-9
    )
    assert mae(p, t) == pytest.approx(mean_absolute_error(t, p), rel=1e-9)


@pytest.mark.parametrize("fn", [rmse, mae])
def test_rating_metrics_errors(fn):
    with pytest.raises(ValueError, match="shape"):
        fn([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])


# --------------------------------------------------------------------------- hand-worked
def test_hand_worked_single_user():
    # ranked list (scores already decreasing): rel = [0, 1, 0, 1, 0] -> relevant at ranks 2, 4
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    relevant = torch.tensor([[False, True, False, True, False]])
    m = ranking_metrics(scores, relevant, ks=(1, 3, 5), metrics=ALL)
    l3, l5 = math.log2(3), math.log2(5)
    # fmt: off
    expected = {
        "HR@1": 0.0, "HR@3": 1.0, "HR@5": 1.0,
        "recall@1": 0.0, "recall@3": 0.5, "recall@5": 1.0,  # hits / n_rel with n_rel = 2
        "precision@1": 0.0, "precision@3": 1 / 3, "precision@5": 2 / 5,  # hits / k
        # DCG@3 = 1/log2(3); IDCG@3 = 1/log2(2) + 1/log2(3) (min(2, 3) = 2 ideal items)
        "NDCG@1": 0.0, "NDCG@3": (1 / l3) / (1 + 1 / l3),
        "NDCG@5": (1 / l3 + 1 / l5) / (1 + 1 / l3),
        # MAP@3 = (1/2) * P@2 = 1/4; MAP@5 = (1/2) * (P@2 + P@4) = (1/2) * (1/2 + 2/4) = 1/2
        "MAP@1": 0.0, "MAP@3": 0.25, "MAP@5": 0.5,
        "MRR@1": 0.0, "MRR@3": 0.5, "MRR@5": 0.5, "MRR": 0.5,  # first hit at rank 2
        # positives {0.8, 0.6} vs negatives {0.9, 0.7, 0.5}: 0.8 > 0.7, 0.5 and 0.6 > 0.5 -> 3/6
        "AUC": 0.5,
    }
    # fmt: on
    assert set(m) == set(expected)
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key


def test_keys_and_order():
    m = ranking_metrics(
        torch.rand(4, 12), torch.rand(4, 12) < 0.5, ks=(5, 10, 5), metrics=("ndcg", "HR", "auc")
    )
    assert list(m) == ["NDCG@5", "NDCG@10", "HR@5", "HR@10", "AUC"]
    assert metric_keys((20,), ("recall", "precision", "map", "mrr", "mrr_full")) == [
        "recall@20",
        "precision@20",
        "MAP@20",
        "MRR@20",
        "MRR",
    ]


# --------------------------------------------------------------------------- references
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("mask", [False, True], ids=["unmasked", "masked"])
def test_matches_brute_force(ties, mask):
    scores, relevant = random_case(seed=7 + 2 * ties + mask, ties=ties, mask=mask)
    ks = (1, 3, 10, 30)
    ref = reference_metrics(scores, relevant, ks)
    got = per_user_values(ranking_metrics(
        torch.from_numpy(scores), torch.from_numpy(relevant), ks=ks, metrics=ALL
    ))
    assert set(got) == set(ref)
    for key in ref:
        np.testing.assert_allclose(got[key].numpy(), ref[key], rtol=1e-9, atol=1e-12, err_msg=key)
    # each k alone: then k is the size of the one topk and tie groups straddle its boundary
    for k in ks:
        alone = per_user_values(ranking_metrics(
            torch.from_numpy(scores), torch.from_numpy(relevant), ks=k, metrics=ALL
        ))
        for key in alone:
            np.testing.assert_allclose(
                alone[key].numpy(), ref[key], rtol=1e-9, atol=1e-12, err_msg=key
            )
    # the mean skips exactly the NaN users
    means = ranking_metrics(
        torch.from_numpy(scores), torch.from_numpy(relevant), ks=ks, metrics=ALL
    )
    for key in ref:
        assert means[key] == pytest.approx(np.nanmean(ref[key]), abs=1e-12), key


def test_ndcg_matches_sklearn():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((50, 40))  # continuous: no ties (sklearn averages over ties)
    relevant = rng.random((50, 40)) < 0.2
    relevant[:, 0] = True  # every user has a relevant item (sklearn scores all-zero rows 0)
    for k in (1, 5, 10, 40):
        # sklearn's IDCG@k is the DCG of the ideal ranking cut at k: min(n_rel, k) items
        ours = ranking_metrics(
            torch.from_numpy(scores), torch.from_numpy(relevant), ks=k, metrics="ndcg"
        )
        assert ours[f"NDCG@{k}"] == pytest.approx(
            ndcg_score(relevant.astype(float), scores, k=k), abs=1e-10
        )


def test_auc_matches_sklearn_per_user_with_ties_and_mask():
    scores, relevant = random_case(seed=3, ties=True, mask=True)
    got = per_user_values(ranking_metrics(
        torch.from_numpy(scores), torch.from_numpy(relevant), metrics="auc"
    ))["AUC"]
    checked = 0
    for u in range(scores.shape[0]):
        cand = scores[u] != NEG_INF
        y = relevant[u][cand]
        if 0 < y.sum() < y.size:
            assert got[u].item() == pytest.approx(roc_auc_score(y, scores[u][cand]), abs=1e-12)
            checked += 1
        else:
            assert math.isnan(got[u].item())
    assert checked > 20


# --------------------------------------------------------------------------- limit cases
def test_perfect_ranking():
    rng = np.random.default_rng(2)
    relevant = torch.from_numpy(rng.random((20, 50)) < 0.1)
    relevant[:, 7] = True
    scores = relevant.double() + 0.01 * torch.from_numpy(rng.random((20, 50)))  # relevant on top
    n_rel = relevant.sum(1).double()
    m = per_user_values(ranking_metrics(scores, relevant, ks=(3, 50), metrics=ALL))
    for key in (
        "HR@3",
        "NDCG@3",
        "MAP@3",
        "MRR@3",
        "MRR",
        "AUC",
        "HR@50",
        "NDCG@50",
        "MAP@50",
        "recall@50",
    ):
        assert torch.allclose(m[key], torch.ones(20, dtype=torch.float64)), key
    assert torch.allclose(m["recall@3"], torch.clamp(3 / n_rel, max=1.0))
    assert torch.allclose(m["precision@3"], torch.clamp(n_rel / 3, max=1.0))


def test_no_hit_gives_zero():
    # 1 relevant item scored below 20 irrelevant ones
    scores = torch.arange(21.0, 0.0, -1.0).repeat(3, 1)
    relevant = torch.zeros(3, 21, dtype=torch.bool)
    relevant[:, -1] = True
    m = ranking_metrics(scores, relevant, ks=(1, 10, 20), metrics=ALL)
    for key, value in m.items():
        if key == "MRR":
            assert value == pytest.approx(1 / 21)  # ranked last of 21
        else:
            assert value == 0.0, key


def test_constant_scores_are_pessimistic():
    # sampled protocol: positive in column 0 among 100 negatives, constant model
    scores = torch.full((5, 101), 0.3)
    relevant = torch.zeros(5, 101, dtype=torch.bool)
    relevant[:, 0] = True
    m = ranking_metrics(scores, relevant, ks=(1, 10, 100, 101), metrics=ALL)
    # pessimistic rank = 1 + #(neg > pos) + #(neg == pos) = 1 + 0 + 100 = 101
    for k in (1, 10, 100):
        assert m[f"HR@{k}"] == 0.0 and m[f"NDCG@{k}"] == 0.0 and m[f"MRR@{k}"] == 0.0
    assert m["HR@101"] == 1.0
    assert m["NDCG@101"] == pytest.approx(1 / math.log2(102))
    assert m["MRR"] == pytest.approx(1 / 101)
    assert m["AUC"] == 0.5  # ties count 1/2 in AUC


@pytest.mark.parametrize("where", range(6))
def test_tie_group_straddling_the_cutoff(where):
    # scores 3 > 2 = 2 = 2 = 2 > 1: the relevant item is one of the 2's, whichever column it is in
    # pessimistic rank = 1 + #(> 2) + #(irrelevant == 2) = 1 + 1 + 3 = 5
    base = torch.tensor([3.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    perm = torch.roll(torch.arange(6), where)  # move the items around the row
    scores = base[perm].unsqueeze(0)
    relevant = (perm == 2).unsqueeze(0)  # the item with base index 2 (score 2) is relevant
    m = ranking_metrics(scores, relevant, ks=(2, 4, 5), metrics=("hr", "mrr", "mrr_full"))
    assert (m["HR@2"], m["HR@4"], m["HR@5"]) == (0.0, 0.0, 1.0)
    assert m["MRR@5"] == pytest.approx(0.2) and m["MRR"] == pytest.approx(0.2)
    # one k at a time: the top-k (k = 2, 3, 4) cuts the tie group, topk alone may pick item 2
    for k in (2, 3, 4):
        assert ranking_metrics(scores, relevant, ks=k, metrics="hr")[f"HR@{k}"] == 0.0


def test_ties_are_deterministic_under_column_permutation():
    scores, relevant = random_case(seed=11, ties=True)
    s, r = torch.from_numpy(scores), torch.from_numpy(relevant)
    a = ranking_metrics(s, r, ks=(2, 5), metrics=ALL)
    perm = torch.randperm(s.shape[1], generator=torch.Generator().manual_seed(0))
    b = ranking_metrics(s[:, perm], r[:, perm], ks=(2, 5), metrics=ALL)
    assert a == pytest.approx(b, abs=1e-12)


def test_pessimistic_hits_sorted_rule():
    # row: scores [1, 1, 0, 1], relevant [T, F, F, T] -> order by (score desc, rel asc):
    # item1 (1, F), item0 (1, T), item3 (1, T), item2 (0, F) -> hits [F, T, T, F]
    hits = pessimistic_hits(
        torch.tensor([[1.0, 1.0, 0.0, 1.0]]), torch.tensor([[True, False, False, True]]), 4
    )
    assert hits.tolist() == [[False, True, True, False]]


def test_users_without_relevant_items_are_excluded():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.9, 0.1, 0.5]])
    relevant = torch.tensor([[True, False, False], [False, False, False]])
    per_user = per_user_values(ranking_metrics(scores, relevant, ks=1, metrics=("hr", "auc")))
    assert per_user["HR@1"][0] == 1.0 and math.isnan(per_user["HR@1"][1])
    assert ranking_metrics(scores, relevant, ks=1, metrics="hr") == {"HR@1": 1.0}  # not 0.5
    with pytest.raises(ValueError, match="no user has a relevant"):
        ranking_metrics(scores, torch.zeros_like(relevant), ks=1)


def test_minus_inf_items_are_not_candidates():
    # masked (-inf) items, even relevant ones, never count; they sit after every candidate.
    scores = torch.tensor(
        [
            [NEG_INF, 0.3, 0.9, NEG_INF],  # item0 relevant but masked -> n_rel = 1
            [NEG_INF, NEG_INF, 0.2, 0.1],  # relevant item3 last among 2 candidates
            [NEG_INF, NEG_INF, 0.2, 0.1],  # only relevant item masked -> user excluded
        ]
    )
    relevant = torch.tensor(
        [[True, True, False, False], [True, False, False, True], [True, False, False, False]]
    )
    m = per_user_values(ranking_metrics(scores, relevant, ks=(1, 2, 4), metrics=ALL))
    assert m["recall@2"][0] == 1.0 and m["recall@4"][0] == 1.0  # denominator 1, not 2
    assert m["HR@1"][0] == 0.0 and m["MRR"][0] == 0.5
    assert m["AUC"][0] == 0.0  # one pair (0.3 vs 0.9); masked items take no part
    assert m["MRR"][1] == 0.5 and m["HR@2"][1] == 1.0 and m["precision@4"][1] == 0.25
    assert m["AUC"][1] == 0.0
    assert all(math.isnan(v[2]) for v in m.values())
    # a model scoring masked items highest: masked items never reach the top-k
    big = torch.tensor([[NEG_INF, NEG_INF, 5.0, 1.0, 0.5]])
    rel = torch.tensor([[True, True, False, True, False]])
    hits = pessimistic_hits(big, rel & (big != NEG_INF), 5)
    assert hits.tolist() == [[False, True, False, False, False]]


def test_integer_half_and_numpy_scores_rank_like_float32():
    g = torch.Generator().manual_seed(5)
    s = torch.randint(0, 5, (10, 20), generator=g)  # small integers: exact in every dtype
    r = torch.rand(10, 20, generator=g) < 0.3
    r[:, 0] = True
    ref = ranking_metrics(s.float(), r, ks=(3, 7), metrics=ALL)
    assert ranking_metrics(s, r, ks=(3, 7), metrics=ALL) == ref
    assert ranking_metrics(s.to(torch.bfloat16), r, ks=(3, 7), metrics=ALL) == ref
    assert ranking_metrics(s.double().numpy(), r.numpy(), ks=(3, 7), metrics=ALL) == ref


# --------------------------------------------------------------------------- validation
def test_validation_errors():
    s, r = torch.rand(3, 5), torch.rand(3, 5) < 0.5
    r[:, 0] = True
    with pytest.raises(ValueError, match="larger than the number of items"):
        ranking_metrics(s, r, ks=6)
    with pytest.raises(ValueError, match="at least 1"):
        ranking_metrics(s, r, ks=0)
    with pytest.raises(ValueError, match="int"):
        ranking_metrics(s, r, ks=(2.5,))
    with pytest.raises(ValueError, match="shape"):
        ranking_metrics(s, r[:, :4])
    with pytest.raises(ValueError, match="2-D"):
        ranking_metrics(s[0], r[0])
    with pytest.raises(ValueError, match="bool"):
        ranking_metrics(s, r.int())
    with pytest.raises(ValueError, match="unknown metric"):
        ranking_metrics(s, r, metrics=("hit_rate",))
    with pytest.raises(TypeError, match="reduce"):
        ranking_metrics(s, r, reduce="none")  # per-user values are in .per_user
    s_nan = s.clone()
    s_nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics(s_nan, r)
    # k is not checked against the items when only whole-list metrics are asked for
    assert 0.0 <= ranking_metrics(s, r, ks=99, metrics="auc")["AUC"] <= 1.0
