"""Tests of the splits (no leakage, fresh indexes, input untouched) and of to_implicit.

The tie rule (order by time) and the rounding rule (test sizes) are tested as a specification:
hand-built frames with ties and half cases whose expected rows are written out by hand, and a
brute-force reference (exact fractions, Python sorts, a loop over users) on random frames.
"""

from __future__ import annotations

import math
from fractions import Fraction

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
    assert len(test) == 450  # 0.3 x 1500
    _, test_again = random_split(ratings, test_size=0.3, seed=1)
    _, test_other = random_split(ratings, test_size=0.3, seed=2)
    pd.testing.assert_frame_equal(test, test_again)
    assert not test.equals(test_other)


def test_chronological_global_puts_the_future_in_test(ratings):
    train, test = chronological_split(ratings, test_size=0.25)
    assert len(test) == 375  # 0.25 x 1500
    assert test["timestamp"].min() >= train["timestamp"].max()


def test_chronological_per_user_has_no_leakage(ratings):
    train, test = chronological_split(ratings, test_size=0.2, per_user=True)
    last_train = train.groupby("user_id")["timestamp"].max()
    first_test = test.groupby("user_id")["timestamp"].min()
    assert (last_train.reindex(first_test.index) <= first_test).all()


def test_leave_one_out_takes_each_users_latest(ratings):
    train, test = leave_one_out(ratings)
    assert test["user_id"].is_unique
    assert set(test["user_id"]) == set(ratings["user_id"])
    latest = ratings.groupby("user_id")["timestamp"].max()
    assert (
        test.set_index("user_id")["timestamp"] == latest.reindex(test["user_id"]).to_numpy()
    ).all()


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


# ------------------------------------------------------------------ the two rules, by hand
# The specification (module docstring of recs_course.data.splits, DESIGN.md):
#   order by time: (timestamp, item_id, user_id), larger = later; never the row order;
#   n_test = floor(test_size * n + 1/2) with test_size read as its decimal, clipped to
#   [1, n - 1] (a user's single rating stays in train; the global splits need n >= 2).
# Every expected value below is written out by hand.


def _frame(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """A ratings frame from (user_id, item_id, timestamp) rows; rating = row position."""
    users, items, times = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_id": np.array(users, dtype=np.int64),
            "item_id": np.array(items, dtype=np.int64),
            "rating": np.arange(len(rows), dtype=np.float32),
            "timestamp": np.array(times, dtype=np.int64),
        }
    )


def _n_rows(n: int, user: int = 7) -> pd.DataFrame:
    """``n`` ratings of one user, all at the same time."""
    return _frame([(user, item, 100) for item in range(1, n + 1)])


def _assert_split(r, train, test, test_positions):
    """``test`` is exactly the rows of ``r`` at ``test_positions``, ``train`` the others,
    both in their original order with fresh indexes."""
    expected_test = r.iloc[sorted(test_positions)].reset_index(drop=True)
    rest = [i for i in range(len(r)) if i not in set(test_positions)]
    pd.testing.assert_frame_equal(test, expected_test)
    pd.testing.assert_frame_equal(train, r.iloc[rest].reset_index(drop=True))


def _pairs(df: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(df["user_id"].tolist(), df["item_id"].tolist(), strict=True))


# (test_size, n, n_test): test_size * n, then round half up, then clip to [1, n - 1].
ROUNDING = [
    (0.2, 12, 2),  # 2.4 -> 2
    (0.2, 13, 3),  # 2.6 -> 3
    (0.5, 5, 3),  # 2.5 -> 3 (half up; half to even would give 2)
    (0.5, 9, 5),  # 4.5 -> 5 (half to even: 4)
    (0.5, 7, 4),  # 3.5 -> 4 (half to even: 4 too)
    (0.3, 5, 2),  # 1.5 -> 2
    (0.1, 25, 3),  # 2.5 -> 3 (half to even: 2)
    (0.45, 10, 5),  # 4.5 -> 5 (half to even: 4)
    (0.125, 20, 3),  # 2.5 -> 3 (half to even: 2)
    (0.125, 12, 2),  # 1.5 -> 2
    (0.29, 50, 15),  # 14.5 -> 15, although the float product is 14.499999999999998
    (0.7, 5, 4),  # 3.5 -> 4
    (0.25, 2, 1),  # 0.5 -> 1
    (0.1, 4, 1),  # 0.4 -> 0, raised to the floor of 1
    (0.2, 2, 1),  # 0.4 -> 0, raised to 1
    (0.9, 4, 3),  # 3.6 -> 4, lowered to the ceiling of n - 1 = 3
    (0.99, 2, 1),  # 1.98 -> 2, lowered to 1
]
ROUNDING_IDS = [f"{t}x{n}" for t, n, _ in ROUNDING]


@pytest.mark.parametrize(("test_size", "n", "n_test"), ROUNDING, ids=ROUNDING_IDS)
def test_rounding_rule_of_the_global_splits(test_size, n, n_test):
    r = _n_rows(n)
    for train, test in (
        random_split(r, test_size, seed=3),
        chronological_split(r, test_size),
    ):
        assert (len(train), len(test)) == (n - n_test, n_test)


@pytest.mark.parametrize(("test_size", "n", "n_test"), ROUNDING, ids=ROUNDING_IDS)
def test_rounding_rule_of_the_per_user_splits(test_size, n, n_test):
    # user 7 has n ratings; user 8 one rating (train only); user 9 n ratings too
    r = pd.concat([_n_rows(n, 7), _n_rows(1, 8), _n_rows(n, 9)], ignore_index=True)
    for train, test in (
        chronological_split(r, test_size, per_user=True),
        stratified_split(r, test_size, seed=3),
    ):
        counts = test["user_id"].value_counts().to_dict()
        assert counts == {7: n_test, 9: n_test}
        assert train["user_id"].value_counts().to_dict() == {7: n - n_test, 8: 1, 9: n - n_test}


def test_per_user_counts_for_users_of_every_size():
    # test_size 0.25: n = 1 -> 0 (alone), 2 -> 0.5 -> 1, 3 -> 0.75 -> 1, 4 -> 1, 5 -> 1.25 -> 1,
    # 6 -> 1.5 -> 2, 10 -> 2.5 -> 3, 14 -> 3.5 -> 4, 17 -> 4.25 -> 4
    sizes = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 10: 10, 14: 14, 17: 17}  # user -> n
    expected = {2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 10: 3, 14: 4, 17: 4}
    r = pd.concat([_n_rows(n, user) for user, n in sizes.items()], ignore_index=True)
    r = r.sample(frac=1.0, random_state=1).reset_index(drop=True)
    for _, test in (
        chronological_split(r, 0.25, per_user=True),
        stratified_split(r, 0.25, seed=0),
    ):
        assert test["user_id"].value_counts().to_dict() == expected


def test_rounding_uses_the_decimal_test_size_even_for_long_decimals():
    # 0.30000000000000004 (the float after 0.3) x 1000 = 300.00000000000004 -> 300; its exact
    # integer form overflows int64 (2 x 7500000000000001 x 1000 > 2**63): same rule.
    r = _n_rows(1000)
    assert len(chronological_split(r, 0.30000000000000004)[1]) == 300
    # 0.29999999999999993 x 5 = 1.49999999999999965 -> 1 (not a half: rounds down)
    assert len(random_split(_n_rows(5), 0.29999999999999993)[1]) == 1
    # numpy scalars are their float64 value: np.float64(0.29) x 50 = 14.5 -> 15
    assert len(random_split(_n_rows(50), np.float64(0.29))[1]) == 15


def test_global_splits_need_two_ratings_and_per_user_splits_keep_single_ratings_in_train():
    one = _n_rows(1)
    for split in (random_split, chronological_split):
        with pytest.raises(ValueError, match="need at least 2"):
            split(one, 0.5)
    for train, test in (
        chronological_split(one, 0.5, per_user=True),
        stratified_split(one, 0.5),
        leave_one_out(one),
    ):
        assert len(test) == 0
        pd.testing.assert_frame_equal(train, one)


# Rows for the tie rule: (user_id, item_id, timestamp); the comment is the row position.
TIES_GLOBAL = [
    (1, 5, 1),  # 0
    (2, 7, 2),  # 1
    (1, 9, 3),  # 2  t=3: item 9, user 1
    (2, 9, 3),  # 3  t=3: item 9, user 2 (later than row 2: same time, same item, larger user)
    (3, 2, 3),  # 4  t=3: item 2 (the earliest of the three rows at t=3)
    (3, 8, 4),  # 5
]
# Order by time: 0, 1, 4, 2, 3, 5.  test_size -> n_test (rounding rule) -> the latest rows.
GLOBAL_CASES = [
    (0.3, [3, 5]),  # 1.8 -> 2
    (0.5, [2, 3, 5]),  # 3
    (0.6, [2, 3, 4, 5]),  # 3.6 -> 4
    (0.25, [5, 3]),  # 1.5 -> 2
    (0.1, [5]),  # 0.6 -> 1
]


@pytest.mark.parametrize(("test_size", "positions"), GLOBAL_CASES)
def test_global_chronological_ties_by_item_then_user_never_by_row_order(test_size, positions):
    r = _frame(TIES_GLOBAL)
    train, test = chronological_split(r, test_size)
    _assert_split(r, train, test, positions)
    expected = _pairs(r.iloc[positions])
    for perm in ([5, 4, 3, 2, 1, 0], [3, 0, 5, 2, 4, 1], [4, 3, 2, 1, 0, 5]):
        shuffled = r.iloc[perm].reset_index(drop=True)
        train, test = chronological_split(shuffled, test_size)
        assert _pairs(test) == expected
        _assert_split(shuffled, train, test, [perm.index(p) for p in positions])


TIES_PER_USER = [
    (1, 3, 10),  # 0
    (1, 1, 20),  # 1  t=20: item 1 (earliest at t=20)
    (1, 9, 20),  # 2  t=20: item 9 (latest at t=20)
    (1, 5, 20),  # 3  t=20: item 5
    (1, 2, 30),  # 4  the latest of user 1
    (2, 6, 7),  # 5  user 2: a tie at the top -> item 6 is later than item 4
    (2, 4, 7),  # 6
    (3, 8, 1),  # 7  user 3: a single rating, train only
    (4, 8, 50),  # 8  user 4: a tie at the top -> item 8 is later than item 3
    (4, 1, 40),  # 9
    (4, 3, 50),  # 10
]
# user 1 by time: 0, 1, 3, 2, 4;  user 2: 6, 5;  user 3: 7;  user 4: 9, 10, 8.
PER_USER_CASES = [
    # 0.5: user 1: 2.5 -> 3 (rows 3, 2, 4); user 2: 1 (row 5); user 4: 1.5 -> 2 (rows 10, 8)
    (0.5, [2, 3, 4, 5, 8, 10]),
    # 0.4: user 1: 2 (rows 2, 4); user 2: 0.8 -> 1; user 4: 1.2 -> 1 (row 8)
    (0.4, [2, 4, 5, 8]),
    # 0.7: user 1: 3.5 -> 4 (rows 1, 3, 2, 4); user 2: 1.4 -> 1; user 4: 2.1 -> 2
    (0.7, [1, 2, 3, 4, 5, 8, 10]),
]


@pytest.mark.parametrize(("test_size", "positions"), PER_USER_CASES)
def test_per_user_chronological_ties_by_item_never_by_row_order(test_size, positions):
    r = _frame(TIES_PER_USER)
    train, test = chronological_split(r, test_size, per_user=True)
    _assert_split(r, train, test, positions)
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm = rng.permutation(len(r)).tolist()
        shuffled = r.iloc[perm].reset_index(drop=True)
        train, test = chronological_split(shuffled, test_size, per_user=True)
        _assert_split(shuffled, train, test, [perm.index(p) for p in positions])


def test_leave_one_out_ties_by_item_never_by_row_order():
    r = _frame(TIES_PER_USER)
    # user 1: row 4 (t=30); user 2: row 5 (item 6 > 4 at t=7); user 3: none; user 4: row 8
    positions = [4, 5, 8]
    train, test = leave_one_out(r)
    _assert_split(r, train, test, positions)
    # the second latest (as the chapters take a validation row): user 1: row 2 (item 9 at
    train2, valid = leave_one_out(train)
    # t=20); user 2 is down to one rating: none; user 4: row 10 (item 3 at t=50)
    assert valid[["user_id", "item_id"]].values.tolist() == [[1, 9], [4, 3]]
    assert len(train2) == len(r) - 5
    for perm in (list(range(len(r)))[::-1], [10, 3, 7, 0, 8, 5, 1, 9, 4, 6, 2]):
        shuffled = r.iloc[perm].reset_index(drop=True)
        train, test = leave_one_out(shuffled)
        _assert_split(shuffled, train, test, [perm.index(p) for p in positions])


def test_the_tie_rule_is_the_same_for_datetimes():
    r = _frame(TIES_PER_USER)
    when = r.assign(timestamp=pd.to_datetime(r["timestamp"], unit="s", utc=True))
    _, test = chronological_split(when, 0.5, per_user=True)
    assert _pairs(test) == _pairs(r.iloc[[2, 3, 4, 5, 8, 10]])
    _, test = leave_one_out(when)
    assert _pairs(test) == {(1, 2), (2, 6), (4, 8)}
    g = _frame(TIES_GLOBAL)
    _, test = chronological_split(g.assign(timestamp=g["timestamp"].astype(float)), 0.3)
    assert _pairs(test) == {(2, 9), (3, 8)}


# ------------------------------------------------------ brute force on random frames
# An independent reference: exact fractions for the count, Python sorts for the order.


def _ref_n_test(n: int, test_size: float) -> int:
    exact = Fraction(repr(float(test_size))) * n + Fraction(1, 2)
    return min(max(math.floor(exact), 1), n - 1) if n >= 2 else 0


def _time_key(row) -> tuple:
    user, item, _, ts = row
    return (ts, item, user)


def _ref_chronological(rows: list[tuple], test_size: float) -> set[tuple[int, int]]:
    by_time = sorted(rows, key=_time_key)
    k = _ref_n_test(len(rows), test_size)
    return {(u, i) for u, i, _, _ in by_time[len(rows) - k :]}


def _ref_per_user(rows: list[tuple], count) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for user in {row[0] for row in rows}:
        mine = sorted((row for row in rows if row[0] == user), key=_time_key)
        k = count(len(mine))
        out |= {(u, i) for u, i, _, _ in mine[len(mine) - k :]}
    return out


def _random_frame(rng: np.random.Generator) -> pd.DataFrame:
    n_users, n_items = int(rng.integers(1, 12)), int(rng.integers(2, 30))
    n = int(rng.integers(2, n_users * n_items + 1))
    cells = rng.choice(n_users * n_items, size=n, replace=False)
    return pd.DataFrame(
        {
            "user_id": (cells // n_items * 3 + 100).astype(np.int64),
            "item_id": (cells % n_items * 7 + 5).astype(np.int64),
            "rating": rng.integers(1, 6, size=n).astype(np.float32),
            # few distinct times: many ties, across users and within a user
            "timestamp": rng.integers(0, int(rng.integers(1, 6)), size=n).astype(np.int64),
        }
    )


TEST_SIZES = [0.2, 0.5, 0.1, 0.125, 0.25, 0.3, 0.29, 0.45, 0.7, 0.9, 0.29999999999999993]


@pytest.mark.parametrize("seed", range(40))
def test_every_split_matches_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    r = _random_frame(rng)
    rows = list(r.itertuples(index=False, name=None))
    sizes = r["user_id"].value_counts()
    for test_size in TEST_SIZES:
        count = lambda n, t=test_size: _ref_n_test(n, t)  # noqa: E731
        train, test = chronological_split(r, test_size)
        check_partition(r, train, test)
        assert _pairs(test) == _ref_chronological(rows, test_size)
        train, test = chronological_split(r, test_size, per_user=True)
        check_partition(r, train, test)
        assert _pairs(test) == _ref_per_user(rows, count)
        _, test = random_split(r, test_size, seed=seed)
        assert len(test) == _ref_n_test(len(r), test_size)
        _, test = stratified_split(r, test_size, seed=seed)
        got = test["user_id"].value_counts().reindex(sizes.index, fill_value=0)
        assert got.to_dict() == {u: count(n) for u, n in sizes.items()}
    train, test = leave_one_out(r)
    check_partition(r, train, test)
    assert _pairs(test) == _ref_per_user(rows, lambda n: min(1, n - 1))
    # no split depends on the row order (the random ones draw per row, so not them)
    shuffled = r.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    for split in (
        lambda x: chronological_split(x, 0.3),
        lambda x: chronological_split(x, 0.3, per_user=True),
        leave_one_out,
    ):
        assert _pairs(split(shuffled)[1]) == _pairs(split(r)[1])


def test_chronological_splits_match_the_reference_on_the_real_ml100k(ml100k):
    rows = list(ml100k.itertuples(index=False, name=None))
    for test_size in (0.2, 0.125):
        _, test = chronological_split(ml100k, test_size, per_user=True)
        assert _pairs(test) == _ref_per_user(rows, lambda n, t=test_size: _ref_n_test(n, t))
    _, test = chronological_split(ml100k, 0.2)
    assert _pairs(test) == _ref_chronological(rows, 0.2)
