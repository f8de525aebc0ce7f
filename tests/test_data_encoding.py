"""Tests of IdEncoder: contiguous indices, unknown-id policy, inverse mappings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recs_course.data import IdEncoder, synthetic_ratings


@pytest.fixture
def frames():
    train = pd.DataFrame(
        {"user_id": [30, 10, 30, 20], "item_id": [7, 5, 9, 5], "rating": [1.0, 2.0, 3.0, 4.0]}
    )
    test = pd.DataFrame(
        {"user_id": [10, 40, 20, 30], "item_id": [9, 5, 11, 7], "rating": [5.0, 4.0, 3.0, 2.0]},
        index=[100, 101, 102, 103],
    )
    return train, test


def test_fit_transform_gives_contiguous_indices_in_raw_id_order(frames):
    train, _ = frames
    before = train.copy()
    enc = IdEncoder()
    out = enc.fit_transform(train)
    pd.testing.assert_frame_equal(train, before)  # input untouched
    assert enc.n_users == 3 and enc.n_items == 3
    assert out["user_id"].tolist() == [2, 0, 2, 1]  # 10 -> 0, 20 -> 1, 30 -> 2
    assert out["item_id"].tolist() == [1, 0, 2, 0]  # 5 -> 0, 7 -> 1, 9 -> 2
    assert out["rating"].tolist() == train["rating"].tolist()
    assert out["user_id"].dtype == np.int64


def test_unknown_error_says_how_many_and_suggests_drop(frames):
    train, test = frames
    enc = IdEncoder().fit(train)
    with pytest.raises(
        ValueError, match=r"2 of 4 rows .* 1 unknown user\(s\), 1 unknown item\(s\).*unknown='drop'"
    ):
        enc.transform(test)


def test_unknown_drop_removes_rows_and_resets_index(frames):
    train, test = frames
    enc = IdEncoder().fit(train)
    out = enc.transform(test, unknown="drop")
    assert out["user_id"].tolist() == [0, 2]
    assert out["item_id"].tolist() == [2, 1]
    assert out["rating"].tolist() == [5.0, 2.0]
    assert list(out.index) == [0, 1]
    assert len(test) == 4  # input untouched


def test_inverse_mappings_round_trip():
    r = synthetic_ratings(seed=0).ratings
    enc = IdEncoder().fit(r)
    out = enc.transform(r)
    assert out["user_id"].max() == enc.n_users - 1 and out["item_id"].max() == enc.n_items - 1
    np.testing.assert_array_equal(enc.inverse_users(out["user_id"]), r["user_id"].to_numpy())
    np.testing.assert_array_equal(
        enc.inverse_items(torch.tensor(out["item_id"].to_numpy())), r["item_id"].to_numpy()
    )
    np.testing.assert_array_equal(enc.transform_items(r["item_id"]), out["item_id"].to_numpy())
    np.testing.assert_array_equal(enc.transform_users([1, 2]), [0, 1])


def test_inverse_out_of_range(frames):
    enc = IdEncoder().fit(frames[0])
    with pytest.raises(ValueError, match=r"item indices must lie in \[0, 3\)"):
        enc.inverse_items([0, 3])
    with pytest.raises(ValueError, match=r"user indices must lie in \[0, 3\)"):
        enc.inverse_users(np.array([-1]))


def test_transform_ids_unknown(frames):
    enc = IdEncoder().fit(frames[0])
    with pytest.raises(ValueError, match=r"1 unknown item id\(s\), e\.g\. \[6\]"):
        enc.transform_items([5, 6])


def test_not_fitted_and_bad_policy(frames):
    with pytest.raises(ValueError, match="not fitted yet"):
        IdEncoder().transform(frames[0])
    with pytest.raises(ValueError, match="not fitted yet"):
        _ = IdEncoder().n_users
    enc = IdEncoder().fit(frames[0])
    with pytest.raises(ValueError, match="unknown must be 'error' or 'drop'"):
        enc.transform(frames[1], unknown="ignore")
    assert repr(enc) == "IdEncoder(n_users=3, n_items=3)"


def test_missing_columns():
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['item_id'\]"):
        IdEncoder().fit(pd.DataFrame({"user_id": [1]}))
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        IdEncoder().fit([(1, 2)])


def test_non_integer_ids_are_rejected():
    with pytest.raises(ValueError, match="must hold integers"):
        IdEncoder().fit(pd.DataFrame({"user_id": ["a"], "item_id": [1]}))
