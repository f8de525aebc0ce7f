"""Tests of InstanceBatches (fresh instances every pass) and of ranking_candidates' exclude."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from recs_course.data import (
    Batches,
    IdEncoder,
    InstanceBatches,
    NegativeSampler,
    interaction_matrix,
    leave_one_out,
    pairwise_instances,
    pointwise_instances,
    ranking_candidates,
    synthetic_ratings,
)


@pytest.fixture(scope="module")
def data():
    r = synthetic_ratings(n_users=60, n_items=80, n_ratings=1500, seed=3).ratings
    enc = IdEncoder().fit(r)
    return enc.transform(r), enc.n_items


def by_hand(kind, r, n_items, n_neg, batch_size, g, sampler):
    """The closure the chapters used to write: draw one epoch, then batch it."""
    if kind == "pointwise":
        tensors = pointwise_instances(r, n_items, n_neg, generator=g, positives=sampler)
    else:
        tensors = pairwise_instances(r, n_items, n_neg, generator=g, positives=sampler)
    return list(Batches(*tensors, batch_size=batch_size, generator=g))


def same(a, b):
    return len(a) == len(b) and all(
        len(x) == len(y) and all(torch.equal(s, t) for s, t in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("kind,n_neg", [("pointwise", 4), ("pairwise", 1), ("pairwise", 3)])
def test_each_pass_equals_the_hand_written_epoch(data, kind, n_neg):
    r, n_items = data
    helper = InstanceBatches(r, n_items, kind, n_neg=n_neg, batch_size=128, generator=7)
    g = torch.Generator().manual_seed(7)
    sampler = NegativeSampler.from_ratings(r, n_items)
    passes = [list(helper) for _ in range(3)]
    for got in passes:
        assert same(got, by_hand(kind, r, n_items, n_neg, 128, g, sampler))
    assert not same(passes[0], passes[1])  # fresh negatives and a new order every pass
    rows = len(r) * (1 + n_neg) if kind == "pointwise" else len(r)
    assert len(helper) == len(passes[0]) == -(-rows // 128)
    if kind == "pairwise":
        neg = passes[0][0][2]
        assert neg.shape == ((128,) if n_neg == 1 else (128, n_neg))


def test_negatives_are_never_positives_and_defaults(data):
    r, n_items = data
    positives = torch.from_numpy(interaction_matrix(r, values="ones").toarray() > 0)
    helper = InstanceBatches(r, n_items, batch_size=10_000, generator=0)
    assert helper.kind == "pointwise" and helper.n_neg == 4
    (users, items, labels), = list(helper)
    assert torch.equal(positives[users, items], labels.bool())
    pair = InstanceBatches(r, n_items, "pairwise", batch_size=10_000, generator=0)
    assert pair.n_neg == 1
    (u, p, n), = list(pair)
    assert positives[u, p].all() and not positives[u, n].any()
    assert "pairwise" in repr(pair) and "batches=1" in repr(pair)


def test_an_explicit_sampler_is_used(data):
    r, n_items = data
    # every item but 0 and 1 is a positive of every user: the negatives can only be 0 or 1
    dense = torch.ones(r["user_id"].max() + 1, n_items)
    dense[:, :2] = 0
    import scipy.sparse as sp

    helper = InstanceBatches(r, n_items, "pairwise", batch_size=500, generator=1,
                             positives=sp.csr_matrix(dense.numpy()))
    negs = torch.cat([b[2] for b in helper])
    assert set(negs.tolist()) <= {0, 1}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"kind": "listwise"}, "kind must be 'pointwise' or 'pairwise'"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"n_neg": -1}, "n_neg"),
        ({"generator": "0"}, "generator must be"),
        ({"device": "gpu"}, "unknown device"),
    ],
)
def test_bad_arguments_are_named(data, kwargs, message):
    r, n_items = data
    args = {"kind": "pointwise", "batch_size": 32, **kwargs}
    kind = args.pop("kind")
    with pytest.raises(ValueError, match=message):
        InstanceBatches(r, n_items, kind, **args)


def test_fit_trains_on_it(data):
    from recs_course.models import MF
    from recs_course.training import fit

    r, n_items = data
    torch.manual_seed(0)
    model = MF(int(r["user_id"].max()) + 1, n_items, dim=8)
    helper = InstanceBatches(r, n_items, batch_size=256, generator=0)
    history = fit(model, helper, "bce", torch.optim.Adam(model.parameters(), lr=0.02),
                  epochs=5, progress=False)
    losses = history.to_frame()["loss"]
    assert losses.iloc[-1] < 0.8 * losses.iloc[0]


def test_ranking_candidates_exclude_list_equals_one_frame(data):
    r, n_items = data
    rest, test = leave_one_out(r)
    train, valid = leave_one_out(rest)
    one = ranking_candidates(valid, n_items, 20, exclude=pd.concat([train, test]), generator=4)
    two = ranking_candidates(valid, n_items, 20, exclude=[train, test], generator=4)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
    test_items = dict(zip(test["user_id"], test["item_id"], strict=True))
    users, cands = two
    assert not any(test_items.get(u) in row[1:] for u, row in zip(users.tolist(), cands.tolist(), strict=True))
    with pytest.raises(ValueError, match="exclude must be a ratings frame or a list"):
        ranking_candidates(valid, n_items, 20, exclude="train")
    with pytest.raises(ValueError, match=r"exclude\[1\] is missing"):
        ranking_candidates(valid, n_items, 20, exclude=[train, test.drop(columns="item_id")])
    with pytest.raises(TypeError):
        ranking_candidates(train, valid, n_items)  # the old signature: exclude is required
