"""The item-cold-start protocol (`recs_course.protocols.item_cold_start`, name ``"cold"``) and
the ``candidates=`` mask of `recs_course.evaluation.evaluate_full` it evaluates with.

The metrics are checked against a naive per-user Python loop written here from the
definitions of `recs_course.metrics` (ranking by score descending, ties pessimistic:
irrelevant items first; recall@k = hits@k / n_rel; NDCG@k = DCG@k / IDCG@k with
IDCG over min(n_rel, k) ranks).
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recs_course.data import interaction_matrix, synthetic_ratings
from recs_course.evaluation import evaluate_full
from recs_course.models import Popularity
from recs_course.protocols import PROTOCOLS, Protocol, item_cold_start
from recs_course.recipes import RECIPES, train

K = 10


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return synthetic_ratings(n_users=80, n_items=250, n_ratings=2500, seed=7).ratings


@pytest.fixture(scope="module")
def protocol(ratings) -> Protocol:
    return item_cold_start(ratings, seed=3, k=K)


def grid_ratings(n_users: int, n_items: int) -> pd.DataFrame:
    """Every user interacts with every item (raw ids start at 100), distinct timestamps."""
    users, items = np.divmod(np.arange(n_users * n_items), n_items)
    return pd.DataFrame(
        {
            "user_id": users + 100,
            "item_id": items + 100,
            "rating": np.ones(n_users * n_items, dtype=np.float32),
            "timestamp": np.arange(n_users * n_items),
        }
    )


class FixedScores(nn.Module):
    """A model whose ``score_all`` returns rows of a fixed ``(n_users, n_items)`` matrix."""

    def __init__(self, scores) -> None:
        super().__init__()
        scores = torch.as_tensor(np.asarray(scores, dtype=np.float64))
        self.n_users, self.n_items = scores.shape
        self.register_buffer("scores", scores)

    def forward(self, users, items):
        return self.scores[users, items]

    def score_all(self, users):
        return self.scores[users]


def random_model(n_users: int, n_items: int, seed: int = 0) -> FixedScores:
    # distinct floats: no ties, so the tie rule plays no part
    scores = np.random.default_rng(seed).permutation(n_users * n_items).reshape(n_users, n_items)
    return FixedScores(scores / (n_users * n_items) + 0.5)


def cold_items(p: Protocol, part: str) -> np.ndarray:
    return np.unique(getattr(p, part)["item_id"].to_numpy())


def naive_metrics(scores: np.ndarray, frame: pd.DataFrame, candidates: np.ndarray, k: int):
    """{user: (recall@k, NDCG@k)} ranking only ``candidates``, relevant = the user's items in
    ``frame`` (a plain loop, ties: irrelevant first)."""
    out = {}
    for user, group in frame.groupby("user_id"):
        relevant = set(group["item_id"].tolist()) & set(candidates.tolist())
        if not relevant:
            continue
        ranked = sorted(candidates.tolist(), key=lambda i: (-scores[user, i], i in relevant))
        top = ranked[:k]
        hits = sum(i in relevant for i in top)
        dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(top) if i in relevant)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), k)))
        out[int(user)] = (hits / len(relevant), dcg / idcg)
    return out


def pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["user_id"].tolist(), frame["item_id"].tolist(), strict=True))


def half_up(share: float, n: int) -> int:
    """floor(share * n + 1/2) in exact arithmetic, the share read as the decimal it is written."""
    return max(1, math.floor(Fraction(str(share)) * n + Fraction(1, 2)))


# ----------------------------------------------------------------------------- the split
def test_registered_and_described(protocol):
    assert PROTOCOLS["cold"] is item_cold_start
    p = protocol
    assert p.name == "cold" and p.k == K and p.seed == 3
    assert p.metrics == (f"recall@{K}", f"NDCG@{K}") and p.monitor == f"NDCG@{K}"
    assert p.higher_is_better
    assert "cold" in p.description and "cold" in repr(p)


def test_parts_are_disjoint_by_item_and_cold_items_are_whole(ratings, protocol):
    p = protocol
    train, valid, test = (set(cold_items(p, part)) for part in ("train", "valid", "test"))
    assert not train & valid and not train & test and not valid & test
    encoded = p.encoder.transform(ratings)
    for part, items in (("test", test), ("valid", valid)):
        # every interaction with a cold item is in its part, none elsewhere
        of_cold = encoded[encoded["item_id"].isin(items)]
        assert pairs(of_cold) == pairs(getattr(p, part))
        assert len(of_cold) == len(getattr(p, part))
    assert not p.train["item_id"].isin(test | valid).any()
    assert not p.valid["item_id"].isin(test).any()


def test_union_of_the_parts_is_the_encoded_input(ratings, protocol):
    p = protocol
    encoded = p.encoder.transform(ratings)
    parts = pd.concat([p.train, p.valid, p.test], ignore_index=True)
    assert len(parts) == len(ratings)
    assert pairs(parts) == pairs(encoded)
    key = ["user_id", "item_id"]
    got = parts.sort_values(key).reset_index(drop=True)
    want = encoded[list(parts.columns)].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)  # timestamps and ratings travel with their rows


def test_ids_are_encoded_on_the_whole_catalogue(ratings, protocol):
    p = protocol
    assert p.n_items == ratings["item_id"].nunique()
    assert p.n_users == ratings["user_id"].nunique()
    for part in (p.train, p.valid, p.test):
        assert part["item_id"].between(0, p.n_items - 1).all()
        assert part["user_id"].between(0, p.n_users - 1).all()
    # a cold test item maps back to a raw item of the input, which never appears in training
    raw_cold = set(p.encoder.inverse_items(cold_items(p, "test")).tolist())
    assert raw_cold <= set(ratings["item_id"].tolist())
    raw_train = set(p.encoder.inverse_items(cold_items(p, "train")).tolist())
    assert not raw_cold & raw_train


@pytest.mark.parametrize(
    "n_items, test_size, valid_size",
    [
        (250, 0.2, 0.1),  # synthetic data: n_items is what the encoder finds
        (40, 0.2, 0.1),  # 8 and 4
        (30, 0.05, 0.05),  # 1.5 -> 2, half up
        (50, 0.15, 0.25),  # 7.5 -> 8, 12.5 -> 13
        (12, 0.01, 0.01),  # 0.12 -> 0 -> at least 1
        (50, 0.29, 0.1),  # 0.29 * 50 is 14.4999.. in floats: the decimal rule gives 15
    ],
)
def test_cold_item_counts_round_half_up(ratings, n_items, test_size, valid_size):
    data = ratings if n_items == 250 else grid_ratings(3, n_items)
    p = item_cold_start(data, test_size=test_size, valid_size=valid_size, k=1)
    n = p.n_items
    assert len(cold_items(p, "test")) == half_up(test_size, n)
    assert len(cold_items(p, "valid")) == half_up(valid_size, n)
    assert len(cold_items(p, "train")) == n - half_up(test_size, n) - half_up(valid_size, n)


def test_the_seed_draws_the_items(ratings, protocol):
    again = item_cold_start(ratings, seed=3, k=K)
    for part in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(getattr(protocol, part), getattr(again, part))
    for part in ("valid", "test"):
        np.testing.assert_array_equal(protocol._parts[part][2], again._parts[part][2])
    other = item_cold_start(ratings, seed=4, k=K)
    assert set(cold_items(other, "test")) != set(cold_items(protocol, "test"))
    assert set(cold_items(other, "valid")) != set(cold_items(protocol, "valid"))
    # the encoding does not depend on the seed
    assert other.n_items == protocol.n_items and other.n_users == protocol.n_users


def test_the_smallest_catalogue_that_fits():
    p = item_cold_start(grid_ratings(2, 3), k=1)  # one item in each part
    assert [len(cold_items(p, x)) for x in ("train", "valid", "test")] == [1, 1, 1]
    assert len(p.train) + len(p.valid) + len(p.test) == 6


# ----------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("part", ["test", "valid"])
def test_metrics_equal_a_naive_loop_over_the_cold_items(protocol, part):
    p = protocol
    model = random_model(p.n_users, p.n_items, seed=11)
    got = p.evaluate(model, part)
    frame = getattr(p, part)
    want = naive_metrics(model.scores.numpy(), frame, cold_items(p, part), K)
    assert list(got) == [f"recall@{K}", f"NDCG@{K}"]
    per_user = got.per_user.set_index("user")
    assert sorted(per_user.index.tolist()) == sorted(want)  # the users with a cold item
    for user, (recall, ndcg) in want.items():
        assert per_user.loc[user, f"recall@{K}"] == pytest.approx(recall, abs=1e-12), user
        assert per_user.loc[user, f"NDCG@{K}"] == pytest.approx(ndcg, abs=1e-12), user
    values = np.array(list(want.values()))
    assert got[f"recall@{K}"] == pytest.approx(values[:, 0].mean(), abs=1e-12)
    assert got[f"NDCG@{K}"] == pytest.approx(values[:, 1].mean(), abs=1e-12)
    # the mask matters: ranked among every item, the same model scores otherwise
    everything = evaluate_full(
        model,
        p.matrix("train" if part == "valid" else "train_valid"),
        p.matrix(part),
        ks=(K,),
        metrics=("recall", "ndcg"),
    )
    assert everything[f"NDCG@{K}"] != got[f"NDCG@{K}"]


def test_evaluate_passes_the_cold_mask_to_evaluate_full(protocol):
    p = protocol
    model = random_model(p.n_users, p.n_items, seed=5)
    for part, known in (("valid", "train"), ("test", "train_valid")):
        mask = np.zeros(p.n_items, dtype=bool)
        mask[cold_items(p, part)] = True
        want = evaluate_full(
            model,
            p.matrix(known),
            p.matrix(part),
            ks=(K,),
            metrics=("recall", "ndcg"),
            candidates=mask,
        )
        got = p.evaluate(model, part)
        assert got == want
        pd.testing.assert_frame_equal(got.per_user, want.per_user)


def test_a_model_that_knows_the_answer_and_a_constant_one(protocol):
    p = protocol
    test = p.matrix("test").toarray()
    n_rel = (test > 0).sum(1)
    n_cold = len(cold_items(p, "test"))
    oracle = p.evaluate(FixedScores(test)).per_user.set_index("user")
    users = oracle.index.to_numpy()
    assert set(users.tolist()) == set(np.flatnonzero(n_rel).tolist())
    want_recall = np.minimum(n_rel[users], K) / n_rel[users]  # 1 where n_rel <= K
    np.testing.assert_allclose(oracle[f"recall@{K}"], want_recall, rtol=0, atol=1e-12)
    assert (oracle.loc[n_rel[users] <= K, f"recall@{K}"] == 1).all()
    np.testing.assert_allclose(oracle[f"NDCG@{K}"], 1.0, rtol=0, atol=1e-12)

    # metrics.py: among equal scores the irrelevant items come first, so with a constant
    # score a user's relevant items sit behind its n_cold - n_rel irrelevant cold items
    constant = p.evaluate(FixedScores(np.zeros((p.n_users, p.n_items))))
    per_user = constant.per_user.set_index("user")
    irrelevant = n_cold - n_rel[users]
    hits = np.clip(K - irrelevant, 0, None)
    np.testing.assert_allclose(per_user[f"recall@{K}"], hits / n_rel[users], atol=1e-12)
    assert (irrelevant >= K).all()  # on this data set every user gets nothing
    assert constant == {f"recall@{K}": 0.0, f"NDCG@{K}": 0.0}


# ----------------------------------------------------------------------------- evaluate_full
@pytest.fixture(scope="module")
def small():
    """A random 30 x 40 split, a random model and a candidate mask of 15 items."""
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 40
    dense = rng.random((n_users, n_items))
    train = sp_from(dense < 0.2)
    test = sp_from((dense >= 0.2) & (dense < 0.35))
    mask = np.zeros(n_items, dtype=bool)
    mask[rng.choice(n_items, 15, replace=False)] = True
    return random_model(n_users, n_items, seed=2), train, test, mask


def sp_from(dense: np.ndarray):
    users, items = np.nonzero(dense)
    frame = pd.DataFrame({"user_id": users, "item_id": items})
    return interaction_matrix(frame, *dense.shape, values="ones")


def full(model, train, test, **kw):
    return evaluate_full(model, train, test, ks=(5,), metrics=("recall", "ndcg", "hr"), **kw)


def test_candidates_equal_minus_inf_scores_outside(small):
    model, train, test, mask = small
    got = full(model, train, test, candidates=mask)
    masked = model.scores.clone()
    masked[:, torch.from_numpy(~mask)] = float("-inf")
    want = full(FixedScores(masked), train, test)
    assert got == want
    pd.testing.assert_frame_equal(got.per_user, want.per_user)
    # the mask is the same for every batch of users
    batched = full(model, train, test, candidates=mask, users_per_batch=7)
    pd.testing.assert_frame_equal(batched.per_user, got.per_user)
    assert got != full(model, train, test)  # and it changes the result


def test_a_torch_mask_works_as_a_numpy_one(small):
    model, train, test, mask = small
    want = full(model, train, test, candidates=mask)
    for candidates in (torch.from_numpy(mask), mask.tolist()):
        got = full(model, train, test, candidates=candidates)
        pd.testing.assert_frame_equal(got.per_user, want.per_user)


def test_a_test_item_outside_the_candidates_is_not_counted():
    scores = np.array([[0.1, 0.9, 0.2, 0.95, 0.3], [0.5, 0.4, 0.3, 0.2, 0.1]])
    model = FixedScores(scores)
    train = sp_from(np.zeros((2, 5), dtype=bool))
    test = sp_from(np.array([[0, 1, 0, 1, 0], [0, 0, 0, 1, 1]], dtype=bool))
    mask = np.array([True, True, True, False, False])
    got = evaluate_full(model, train, test, ks=(1,), metrics=("recall",), candidates=mask)
    # user 0: item 3 (the top score) is outside, item 1 is its only relevant candidate and
    # is ranked first: recall 1 of 1. User 1 has no relevant candidate: NaN, out of the mean.
    assert got.per_user["recall@1"].iloc[0] == 1.0
    assert np.isnan(got.per_user["recall@1"].iloc[1])
    assert got["recall@1"] == 1.0
    plain = evaluate_full(model, train, test, ks=(1,), metrics=("recall",))
    assert plain.per_user["recall@1"].tolist() == [0.5, 0.0]
    with pytest.raises(ValueError, match="no evaluated user has a relevant candidate"):
        evaluate_full(model, train, test, ks=(1,), metrics=("recall",), users=[1], candidates=mask)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda m: m.astype(np.int64), r"\(40,\) bool mask .* dtype int64"),
        (lambda m: m.astype(np.float32), r"\(40,\) bool mask"),
        (lambda m: torch.from_numpy(m).float(), r"\(40,\) bool mask"),
        (lambda m: np.append(m, True), r"\(40,\) bool mask .* shape \(41,\)"),
        (lambda m: m[None, :], r"\(40,\) bool mask .* shape \(1, 40\)"),
        (lambda m: m[:-1], r"shape \(39,\)"),
        (lambda m: np.zeros_like(m), "holds no item: there is nothing to rank"),
        (lambda m: torch.zeros(40, dtype=torch.bool), "holds no item"),
    ],
)
def test_a_bad_mask_is_refused_with_a_helpful_message(small, bad, match):
    model, train, test, mask = small
    with pytest.raises(ValueError, match=match):
        full(model, train, test, candidates=bad(mask))


def test_a_reversed_view_of_a_mask_works(small):
    model, train, test, mask = small
    reversed_view = mask[::-1]
    got = full(model, train, test, candidates=reversed_view)
    want = full(model, train, test, candidates=reversed_view.copy())
    pd.testing.assert_frame_equal(got.per_user, want.per_user)


# torch warns once per process only: this test can pass after another test triggered the
# warning, but it fails on its own (python -m pytest -k read_only) if the mask is not copied
def test_a_read_only_mask_raises_no_warning(small):
    model, train, test, mask = small
    read_only = mask.copy()
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = full(model, train, test, candidates=read_only)
    pd.testing.assert_frame_equal(got.per_user, full(model, train, test, candidates=mask).per_user)


# ----------------------------------------------------------------------------- hostile input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, r"seed must be an integer >= 0, got 1.5"),
        ({"seed": "0"}, r"seed must be an integer >= 0"),
        ({"seed": True}, r"seed must be an integer >= 0"),
        ({"test_size": 0}, r"test_size must be a number strictly between 0 and 1"),
        ({"test_size": 1.0}, r"test_size must be a number strictly between 0 and 1"),
        ({"test_size": -0.2}, r"test_size .* strictly between 0 and 1"),
        ({"test_size": "0.2"}, r"test_size .* strictly between 0 and 1"),
        ({"valid_size": 1.5}, r"valid_size must be a number strictly between 0 and 1"),
        ({"valid_size": None}, r"valid_size .* strictly between 0 and 1"),
        ({"test_size": 0.6, "valid_size": 0.4}, r"test_size \+ valid_size must be below 1"),
        ({"test_size": 0.7, "valid_size": 0.5}, r"below 1"),
        ({"k": 0}, r"k must be a positive integer"),
        ({"k": 2.0}, r"k must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused(ratings, kwargs, match):
    with pytest.raises(ValueError, match=match):
        item_cold_start(ratings, **kwargs)


def test_k_above_the_number_of_cold_test_items_is_refused():
    data = grid_ratings(3, 40)  # 8 cold test items, 4 cold validation items
    assert item_cold_start(data, k=4).k == 4
    # on the validation items every model would recall them all
    with pytest.raises(ValueError, match=r"k = 5 is larger than the 8 cold test or the 4 cold"):
        item_cold_start(data, k=5)
    assert item_cold_start(data, k=8, valid_size=0.2).k == 8
    with pytest.raises(ValueError, match=r"k = 9 is larger .* lower k"):
        item_cold_start(data, k=9, valid_size=0.2)


@pytest.mark.parametrize(
    "n_items, kwargs, match",
    [
        (2, {}, r"hold 2 item\(s\): item cold start needs at least 3"),
        (1, {}, r"hold 1 item\(s\): item cold start needs at least 3 \(one to train on"),
        # 5 + 5 cold items out of 10 leaves none to train on, though 0.5 + 0.45 < 1
        (10, {"test_size": 0.5, "valid_size": 0.45}, r"5 test and 5 validation items .* lower"),
    ],
)
def test_too_few_items_are_refused(n_items, kwargs, match):
    with pytest.raises(ValueError, match=match):
        item_cold_start(grid_ratings(3, n_items), k=1, **kwargs)


def test_bad_ratings_frames_are_refused(ratings):
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['timestamp'\]"):
        item_cold_start(ratings.drop(columns="timestamp"))
    with pytest.raises(ValueError, match=r"duplicate .*drop_duplicate_pairs"):
        item_cold_start(pd.concat([ratings, ratings.head(1)], ignore_index=True))
    with pytest.raises(ValueError, match="pandas DataFrame"):
        item_cold_start(ratings.to_numpy())


def test_evaluate_refuses_an_unknown_part(protocol):
    with pytest.raises(ValueError, match="'valid' or 'test'"):
        protocol.evaluate(random_model(protocol.n_users, protocol.n_items), "train")


# ----------------------------------------------------------------------------- recipes
def test_a_recipe_moves_to_the_cold_protocol(protocol):
    p = protocol
    recipe = RECIPES["full/Popularity"].replace(protocol="cold")
    trained = train(recipe, p, seed=0)
    model = trained.model
    assert isinstance(model, Popularity)
    # Popularity counts training users only, and no cold item has a training interaction:
    # every candidate scores 0. By the pessimistic tie rule each user's relevant cold items
    # rank behind its irrelevant ones, and every user has at least K of those, so nothing
    # relevant reaches the top K: recall and NDCG are exactly 0, as for any id-only model.
    counts = model.counts.numpy()
    assert (counts[cold_items(p, "test")] == 0).all()
    assert (counts[cold_items(p, "valid")] == 0).all()
    assert counts.sum() > 0
    n_irrelevant = len(cold_items(p, "test")) - p.test.groupby("user_id").size()
    assert (n_irrelevant >= K).all()
    for part in ("test", "valid"):
        metrics = p.evaluate(model, part)
        assert metrics == {f"recall@{K}": 0.0, f"NDCG@{K}": 0.0}
        assert len(metrics.per_user) == getattr(p, part)["user_id"].nunique()
    # the recipe still refuses the protocol it was not moved to
    with pytest.raises(ValueError, match="made for the 'full' protocol"):
        train(RECIPES["full/Popularity"], p)
