"""Tests of the synthetic generator and of user subsampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recs_course.data import IdEncoder, random_split, subsample_users, synthetic_ratings


def test_schema_and_sizes():
    ml = synthetic_ratings(n_users=50, n_items=80, n_ratings=1200, dim=3, seed=1)
    r = ml.ratings
    assert ml.name == "synthetic" and ml.source == "synthetic"
    assert list(r.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert [str(t) for t in r.dtypes] == ["int64", "int64", "float32", "int64"]
    assert len(r) == 1200
    assert r["user_id"].nunique() == 50  # every user has ratings
    assert r["user_id"].min() == 1 and r["user_id"].max() == 50  # raw ids, 1-based
    assert r["item_id"].between(1, 80).all()
    assert not r.duplicated(["user_id", "item_id"]).any()
    assert set(r["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert r.groupby("user_id").size().min() >= 5
    assert r.groupby("user_id").size().max() <= 40  # at most half the items
    assert list(ml.items.columns) == ["item_id", "title", "year", "genres"]
    assert ml.items.loc[16, "title"] == "Item 17"
    assert isinstance(ml.items["year"].dtype, pd.Int64Dtype)
    assert all(1 <= len(g) <= 2 for g in ml.items["genres"])
    assert list(ml.users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert len(ml.users) == 50 and len(ml.items) == 80


def test_timestamps_strictly_increase_within_each_user():
    r = synthetic_ratings(seed=3).ratings
    diffs = r.groupby("user_id")["timestamp"].diff().dropna()
    assert (diffs > 0).all()


def test_deterministic_and_seed_dependent():
    a = synthetic_ratings(seed=7)
    b = synthetic_ratings(seed=7)
    c = synthetic_ratings(seed=8)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert not a.ratings.equals(c.ratings)


def test_popularity_is_skewed():
    r = synthetic_ratings(n_users=300, n_items=400, n_ratings=12_000, seed=0).ratings
    counts = np.sort(r["item_id"].value_counts().to_numpy())[::-1]
    top_decile = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile > 0.3  # uniform popularity would give about 0.1


def test_ratings_carry_learnable_structure():
    """A user's mean on half their ratings predicts the other half better than the global mean."""
    r = synthetic_ratings(n_users=300, n_items=200, n_ratings=15_000, seed=0).ratings
    train, test = random_split(r, test_size=0.5, seed=0)
    enc = IdEncoder().fit(train)
    test = enc.transform(test, unknown="drop")
    train = enc.transform(train)
    mu = train["rating"].mean()
    user_mean = train.groupby("user_id")["rating"].mean()
    item_mean = train.groupby("item_id")["rating"].mean()
    pred = (
        user_mean.reindex(test["user_id"]).to_numpy()
        + item_mean.reindex(test["item_id"]).fillna(mu).to_numpy()
        - mu
    )
    rmse_bias = np.sqrt(np.mean((pred - test["rating"].to_numpy()) ** 2))
    rmse_global = np.sqrt(np.mean((mu - test["rating"].to_numpy()) ** 2))
    assert rmse_bias < 0.93 * rmse_global


def test_sizes_may_be_numpy_integers():
    sizes = {"n_users": 6, "n_items": 5, "n_ratings": 20, "dim": 2}
    a = synthetic_ratings(**{k: np.int64(v) for k, v in sizes.items()}).ratings
    pd.testing.assert_frame_equal(a, synthetic_ratings(**sizes).ratings)


def test_dense_request_fills_the_matrix():
    r = synthetic_ratings(n_users=6, n_items=5, n_ratings=30, seed=0).ratings
    assert len(r) == 30 and r.groupby("user_id").size().eq(5).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, "n_users must be a positive integer"),
        ({"n_items": 2.5}, "n_items must be a positive integer"),
        ({"n_ratings": 10}, "n_ratings=10 must lie between n_users=200"),
        ({"n_users": 3, "n_items": 3, "n_ratings": 10}, "every pair rated once"),
        ({"dim": -1}, "dim must be a positive integer"),
        ({"seed": "a"}, "seed must be an int"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_ratings(**kwargs)


def test_subsample_users_keeps_all_ratings_of_chosen_users():
    r = synthetic_ratings(seed=0).ratings
    before = r.copy()
    sub = subsample_users(r, n_users=20, seed=1)
    pd.testing.assert_frame_equal(r, before)  # input untouched
    assert sub["user_id"].nunique() == 20
    assert list(sub.index) == list(range(len(sub)))
    kept = r[r["user_id"].isin(sub["user_id"].unique())].reset_index(drop=True)
    pd.testing.assert_frame_equal(sub, kept)  # every rating of each kept user, in order


def test_subsample_users_is_deterministic_and_frac_works():
    r = synthetic_ratings(seed=0).ratings
    a = subsample_users(r, frac=0.25, seed=5)
    b = subsample_users(r, frac=0.25, seed=5)
    c = subsample_users(r, frac=0.25, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert a["user_id"].nunique() == 50
    assert set(a["user_id"]) != set(c["user_id"])
    assert subsample_users(r, frac=1.0)["user_id"].nunique() == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of n_users or frac"),
        ({"n_users": 5, "frac": 0.5}, "exactly one of n_users or frac"),
        ({"n_users": 500}, "more than the 200 users"),
        ({"n_users": 0}, "positive integer"),
        ({"frac": 1.5}, r"frac must be in \(0, 1\]"),
        ({"frac": True}, r"frac must be a finite positive number in \(0, 1\]"),
        ({"frac": 0.0}, r"frac must be a finite positive number in \(0, 1\]"),
        ({"frac": "0.5"}, r"frac must be a finite positive number in \(0, 1\]"),
        ({"n_users": True}, "n_users must be a positive integer"),
    ],
)
def test_subsample_users_bad_arguments(kwargs, message):
    r = synthetic_ratings(seed=0).ratings
    with pytest.raises(ValueError, match=message):
        subsample_users(r, **kwargs)


@pytest.mark.parametrize(
    ("n", "frac", "kept"),
    [(5, 0.5, 3), (5, 0.3, 2), (5, 0.7, 4), (5, 0.1, 1), (5, 0.9, 5), (50, 0.29, 15), (3, 1, 3)],
)
def test_subsample_users_rounds_frac_half_up_as_the_splits_do(n, frac, kept):
    """``floor(frac * n + 1/2)`` with frac's decimal (0.29 * 50 is 14.5: 15), at least 1."""
    r = pd.DataFrame({"user_id": np.arange(n), "item_id": np.zeros(n, dtype=np.int64)})
    assert subsample_users(r, frac=frac)["user_id"].nunique() == kept


def test_subsample_users_takes_numpy_integers():
    r = synthetic_ratings(seed=0).ratings
    pd.testing.assert_frame_equal(
        subsample_users(r, n_users=np.int64(20), seed=1), subsample_users(r, n_users=20, seed=1)
    )


def test_subsample_users_missing_column():
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['user_id'\]"):
        subsample_users(pd.DataFrame({"user": [1]}), n_users=1)
