"""Tests of interaction_matrix and of Batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recs_course.data import Batches, interaction_matrix, synthetic_ratings, to_tensors


@pytest.fixture
def small():
    return pd.DataFrame(
        {"user_id": [0, 2, 2, 1], "item_id": [1, 0, 3, 3], "rating": [4.0, 5.0, 1.0, 2.5]}
    )


def test_interaction_matrix_values_and_shape(small):
    m = interaction_matrix(small, n_users=4, n_items=5)
    assert sp.issparse(m) and m.format == "csr" and m.dtype == np.float32
    assert m.shape == (4, 5) and m.nnz == 4 and m.has_sorted_indices
    expected = np.zeros((4, 5), dtype=np.float32)
    expected[[0, 2, 2, 1], [1, 0, 3, 3]] = [4.0, 5.0, 1.0, 2.5]
    np.testing.assert_array_equal(m.toarray(), expected)
    ones = interaction_matrix(small, values="ones")
    assert ones.shape == (3, 4)
    np.testing.assert_array_equal(ones.toarray(), (expected[:3, :4] > 0).astype(np.float32))


def test_interaction_matrix_errors(small):
    with pytest.raises(
        ValueError,
        match=r"r\['user_id'\] must lie in \[0, n_users=2\), got values from 0 to 2.*IdEncoder",
    ):
        interaction_matrix(small, n_users=2)
    with pytest.raises(ValueError, match=r"r\['item_id'\] must lie in \[0, n_items=3\)"):
        interaction_matrix(small, n_items=3)
    dup = pd.concat([small, small.iloc[[0]]], ignore_index=True)
    with pytest.raises(
        ValueError, match=r"1 duplicate \(user, item\) pair\(s\).*drop_duplicate_pairs"
    ):
        interaction_matrix(dup)
    with pytest.raises(ValueError, match="values must be 'rating' or 'ones'"):
        interaction_matrix(small, values="count")
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['rating'\]"):
        interaction_matrix(small.drop(columns="rating"))
    with pytest.raises(ValueError, match=r"r\['user_id'\] must be >= 0"):
        interaction_matrix(small.assign(user_id=[-1, 0, 1, 2]))
    assert interaction_matrix(small.drop(columns="rating"), values="ones").nnz == 4


def test_batches_cover_every_row_once_per_epoch():
    x = torch.arange(103)
    y = x * 10
    batches = Batches(x, y, batch_size=10, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 11
    seen = []
    for bx, by in batches:
        assert torch.equal(by, bx * 10)  # rows stay aligned
        assert len(bx) <= 10
        seen.append(bx)
    seen = torch.cat(seen)
    assert sorted(seen.tolist()) == list(range(103))
    assert not torch.equal(seen, x)  # shuffled
    second = torch.cat([bx for bx, _ in batches])
    assert not torch.equal(seen, second)  # a new order every epoch


def test_batches_are_reproducible_with_a_seed():
    x = torch.arange(50)
    a = [b[0] for b in Batches(x, batch_size=7, generator=1)]
    b = [b[0] for b in Batches(x, batch_size=7, generator=1)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_batches_without_shuffle_and_drop_last():
    x = torch.arange(25)
    batches = Batches(x, batch_size=10, shuffle=False, drop_last=True)
    assert len(batches) == 2
    out = [b for (b,) in batches]
    assert [t.tolist() for t in out] == [list(range(10)), list(range(10, 20))]
    assert len(Batches(x, batch_size=10, shuffle=False)) == 3
    assert (
        len(Batches(x, batch_size=30)) == 1 and len(Batches(x, batch_size=30, drop_last=True)) == 0
    )


def test_batches_accept_arrays_and_move_to_a_device():
    batches = Batches(np.arange(6), np.ones(6, dtype=np.float32), batch_size=4, device="cpu")
    first = next(iter(batches))
    assert isinstance(first[0], torch.Tensor) and first[0].device.type == "cpu"
    assert first[1].dtype == torch.float32
    assert repr(batches) == "Batches(n=6, batch_size=4, batches=2, shuffle=True)"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.arange(5), torch.arange(4)), {"batch_size": 2}, r"same length.*\[5, 4\]"),
        ((torch.arange(5),), {"batch_size": 0}, "batch_size must be a positive integer"),
        ((torch.arange(5),), {"batch_size": 2.0}, "batch_size must be a positive integer"),
        ((torch.arange(5),), {"batch_size": True}, "batch_size must be a positive integer"),
        ((torch.arange(5),), {"batch_size": 2, "shuffle": "no"}, "shuffle must be True or False"),
        ((torch.arange(5),), {"batch_size": 2, "drop_last": 1}, "drop_last must be True or False"),
        ((), {"batch_size": 2}, "at least one tensor"),
        ((torch.tensor(3),), {"batch_size": 2}, "at least one dimension"),
    ],
)
def test_batches_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Batches(*args, **kwargs)


def test_batches_take_numpy_integers_and_numpy_bools():
    batches = Batches(torch.arange(5), batch_size=np.int64(2), shuffle=np.bool_(False),
                      drop_last=np.bool_(True))  # fmt: skip
    assert type(batches.batch_size) is int and batches.shuffle is False
    assert [b[0].tolist() for b in batches] == [[0, 1], [2, 3]]


def test_to_tensors_copies_each_column_with_its_dtype():
    r = synthetic_ratings(n_users=20, n_items=30, n_ratings=200, seed=1).ratings
    users, items, ratings = to_tensors(r)
    assert users.dtype == torch.int64 and ratings.dtype == torch.float32
    np.testing.assert_array_equal(users.numpy(), r["user_id"].to_numpy())
    np.testing.assert_array_equal(items.numpy(), r["item_id"].to_numpy())
    np.testing.assert_array_equal(ratings.numpy(), r["rating"].to_numpy())
    users[0] = -1  # a copy: the frame is untouched
    assert r["user_id"].iloc[0] != -1
    (ts,) = to_tensors(r, ("timestamp",))
    assert ts.shape == (len(r),)
    with pytest.raises(ValueError, match="missing the column"):
        to_tensors(r.drop(columns="rating"))
