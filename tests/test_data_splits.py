"""Tests of the splits (no leakage, fresh indexes, input untouched) and of to_implicit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recs_course.data import (
    chronological_split,
    leave_one_out,
    load_movielens,
    random_split,
    stratified_split,
    synthetic_ratings,
    to_implicit,
)
from recs_course.data import movielens as mlmod


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    r = synthetic_ratings(n_users=60, n_items=90, n_ratings=1500, seed=2).ratings
    # Shuffle the rows so that no split can rely on a sorted input.
    return r.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory) -> pd.DataFrame:
    if mlmod._mirror_paths() is None:
        pytest.skip(
            "the offline ml-100k mirror is not installed: pip install --no-deps recbole==1.2.1"
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECS_COURSE_DATA", str(tmp_path_factory.mktemp("cache")))
        return load_movielens("ml-100k", download=False).ratings


def _rows(df: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, df.to_numpy().tolist()))


def check_partition(r, train, test):
    """train + test are the rows of r exactly; fresh indexes."""
    assert len(train) + len(test) == len(r)
    assert _rows(pd.concat([train, test])) == _rows(r)
    assert list(train.index) == list(range(len(train)))
    assert list(test.index) == list(range(len(test)))
    assert list(train.columns) == list(r.columns) and list(test.columns) == list(r.columns)


SPLITS = [
    lambda r: random_split(r, 0.2, seed=0),
    lambda r: chronological_split(r, 0.2),
    lambda r: chronological_split(r, 0.2, per_user=True),
    lambda r: leave_one_out(r),
    lambda r: stratified_split(r, 0.2, seed=0),
]


@pytest.mark.parametrize("split", SPLITS, ids=["random", "chrono", "chrono-user", "loo", "strat"])
def test_every_split_partitions_without_mutating(ratings, split):
    before = ratings.copy()
    train, test = split(ratings)
    pd.testing.assert_frame_equal(ratings, before)
    check_partition(ratings, train, test)
    assert 0 < len(test) < len(ratings)


def test_random_split_size_and_seed(ratings):
    train, test = random_split(ratings, test_size=0.3, seed=1)
    assert len(test) == round(0.3 * len(ratings))
    _, test_again = random_split(ratings, test_size=0.3, seed=1)
    _, test_other = random_split(ratings, test_size=0.3, seed=2)
    pd.testing.assert_frame_equal(test, test_again)
    assert not test.equals(test_other)


def test_chronological_global_puts_the_future_in_test(ratings):
    train, test = chronological_split(ratings, test_size=0.25)
    assert len(test) == round(0.25 * len(ratings))
    assert test["timestamp"].min() >= train["timestamp"].max()


def test_chronological_per_user_has_no_leakage(ratings):
    train, test = chronological_split(ratings, test_size=0.2, per_user=True)
    last_train = train.groupby("user_id")["timestamp"].max()
    first_test = test.groupby("user_id")["timestamp"].min()
    assert (last_train.reindex(first_test.index) <= first_test).all()
    n = ratings.groupby("user_id").size()
    n_test = test.groupby("user_id").size().reindex(n.index, fill_value=0)
    expected = np.clip(np.floor(0.2 * n + 0.5), 1, n - 1)
    np.testing.assert_array_equal(n_test.to_numpy(), expected.to_numpy())


def test_leave_one_out_takes_each_users_latest(ratings):
    train, test = leave_one_out(ratings)
    assert test["user_id"].is_unique
    assert set(test["user_id"]) == set(ratings["user_id"])
    latest = ratings.groupby("user_id")["timestamp"].max()
    assert (
        test.set_index("user_id")["timestamp"] == latest.reindex(test["user_id"]).to_numpy()
    ).all()


def test_leave_one_out_ties_and_single_rating_users():
    r = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 3, 3],
            "item_id": [5, 9, 7, 4, 1, 2],
            "rating": np.ones(6, dtype=np.float32),
            "timestamp": [10, 20, 20, 5, 3, 3],
        }
    )
    train, test = leave_one_out(r)
    # user 1: items 9 and 7 tie at t=20 -> the larger item id (9); user 3: tie -> item 2;
    # user 2 has a single rating: it stays in train and has no test row.
    assert test[["user_id", "item_id"]].values.tolist() == [[1, 9], [3, 2]]
    assert 2 in set(train["user_id"]) and 2 not in set(test["user_id"])
    # The rule does not depend on the row order.
    _, test_rev = leave_one_out(r.iloc[::-1].reset_index(drop=True))
    assert sorted(test_rev[["user_id", "item_id"]].values.tolist()) == [[1, 9], [3, 2]]


def test_leave_one_out_on_the_real_ml100k(ml100k):
    train, test = leave_one_out(ml100k)
    assert len(test) == 943 and test["user_id"].is_unique  # every user has >= 20 ratings
    assert len(train) == 100_000 - 943
    latest = ml100k.groupby("user_id")["timestamp"].max()
    t = test.set_index("user_id")
    assert (t["timestamp"] == latest.reindex(t.index)).all()
    # Nothing in train is later than the user's test rating.
    last_train = train.groupby("user_id")["timestamp"].max()
    assert (last_train.reindex(t.index) <= t["timestamp"]).all()


def test_stratified_split_gives_each_user_both_parts(ratings):
    small = pd.concat(
        [ratings, pd.DataFrame({"user_id": [999, 998, 998], "item_id": [1, 1, 2],
                                "rating": np.float32(3), "timestamp": [1, 1, 2]})],
        ignore_index=True,
    )  # fmt: skip
    train, test = stratified_split(small, test_size=0.2, seed=0)
    check_partition(small, train, test)
    n_train = train.groupby("user_id").size()
    n_test = test.groupby("user_id").size()
    multi = small.groupby("user_id").size()
    multi = multi[multi >= 2].index
    assert (n_train.reindex(multi) >= 1).all() and (n_test.reindex(multi) >= 1).all()
    assert 999 not in set(test["user_id"])  # one rating: train only
    _, again = stratified_split(small, test_size=0.2, seed=0)
    pd.testing.assert_frame_equal(test, again)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "0.2", None])
@pytest.mark.parametrize("split", [random_split, chronological_split, stratified_split])
def test_test_size_must_be_in_the_open_unit_interval(ratings, split, bad):
    with pytest.raises(ValueError, match="test_size must be"):
        split(ratings, test_size=bad)


@pytest.mark.parametrize(
    ("split", "missing"),
    [
        (random_split, "item_id"),
        (chronological_split, "timestamp"),
        (leave_one_out, "timestamp"),
        (stratified_split, "user_id"),
        (to_implicit, "rating"),
    ],
)
def test_missing_columns_are_named(ratings, split, missing):
    with pytest.raises(ValueError, match=rf"missing the column\(s\) \['{missing}'\]"):
        split(ratings.drop(columns=[missing]))


def test_too_small_inputs():
    one = pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [1.0], "timestamp": [0]})
    with pytest.raises(ValueError, match="need at least 2"):
        random_split(one)
    with pytest.raises(ValueError, match="empty"):
        leave_one_out(one.iloc[:0])


def test_to_implicit(ratings):
    before = ratings.copy()
    out = to_implicit(ratings, threshold=4)
    pd.testing.assert_frame_equal(ratings, before)
    assert len(out) == int((ratings["rating"] >= 4).sum())
    assert (out["rating"] == 1.0).all() and out["rating"].dtype == np.float32
    assert list(out.index) == list(range(len(out)))
    assert len(to_implicit(ratings)) == len(ratings)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        to_implicit(ratings, threshold="4")
