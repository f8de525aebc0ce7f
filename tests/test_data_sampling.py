"""Tests of negative sampling: exact against a set-based reference, uniform, seeded, scalable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recs_course.data import (
    IdEncoder,
    InstanceBatches,
    NegativeSampler,
    interaction_matrix,
    leave_one_out,
    pairwise_instances,
    pointwise_instances,
    ranking_candidates,
    sample_negatives,
    synthetic_ratings,
)
from recs_course.data import sampling as sampling_mod


@pytest.fixture(scope="module")
def encoded():
    """Encoded synthetic ratings, dense enough that collisions are frequent."""
    r = synthetic_ratings(n_users=80, n_items=60, n_ratings=1500, seed=4).ratings
    enc = IdEncoder().fit(r)
    return enc.transform(r), enc.n_users, enc.n_items


@pytest.fixture(params=["table", "sorted-keys"])
def path(request, monkeypatch):
    """Run a test with the membership table and with the sorted-key (large data) path."""
    if request.param == "sorted-keys":
        monkeypatch.setattr(sampling_mod, "DENSE_LIMIT", 0)
    return request.param


def user_sets(r: pd.DataFrame) -> dict[int, set[int]]:
    """The naive reference: a Python set of items per user."""
    sets: dict[int, set[int]] = {}
    for u, i in zip(r["user_id"].tolist(), r["item_id"].tolist(), strict=True):
        sets.setdefault(u, set()).add(i)
    return sets


def test_sample_negatives_never_returns_a_positive(encoded, path):
    r, n_users, n_items = encoded
    csr = interaction_matrix(r, n_users, n_items, values="ones")
    sets = user_sets(r)
    users = torch.arange(n_users).repeat(200)
    neg = sample_negatives(users, csr, n_neg=7, generator=torch.Generator().manual_seed(0))
    assert neg.shape == (len(users), 7) and neg.dtype == torch.int64
    assert int(neg.min()) >= 0 and int(neg.max()) < n_items
    for u, row in zip(users.tolist(), neg.tolist(), strict=True):
        assert not sets[u] & set(row)
    # With replacement, many draws cover every negative of every user.
    for u in range(n_users):
        drawn = set(neg[users == u].flatten().tolist())
        assert drawn == set(range(n_items)) - sets[u]


def test_sampling_is_uniform_over_the_negatives(path):
    positives = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 1, 0, 0]], dtype=np.float32))
    sampler = NegativeSampler(positives)
    neg = sampler.sample(torch.zeros(40_000, dtype=torch.int64), 1, generator=0)
    counts = np.bincount(neg.flatten().numpy(), minlength=8)
    assert counts[[0, 2, 5]].sum() == 0
    expected = 40_000 / 5
    assert np.all(np.abs(counts[[1, 3, 4, 6, 7]] - expected) < 5 * np.sqrt(expected))


def test_without_replacement_is_distinct_and_uniform(path):
    positives = sp.csr_matrix(np.array([[0, 1, 0, 0, 1, 0, 0, 0, 0, 0]], dtype=np.float32))
    sampler = NegativeSampler(positives)
    neg = sampler.sample(torch.zeros(20_000, dtype=torch.int64), 3, generator=1, replace=False)
    rows = np.sort(neg.numpy(), axis=1)
    assert (np.diff(rows, axis=1) > 0).all()  # distinct within each row
    assert not np.isin(neg.numpy(), [1, 4]).any()
    # Each of the 8 negatives appears in a row with probability 3/8, in each column equally.
    for col in range(3):
        counts = np.bincount(neg[:, col].numpy(), minlength=10)[[0, 2, 3, 5, 6, 7, 8, 9]]
        expected = 20_000 / 8
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_users_with_very_few_negatives_use_the_exact_fallback(path):
    n_items = 500
    dense = np.ones((2, n_items), dtype=np.float32)
    dense[0, 123] = 0  # user 0 has a single negative
    dense[1, [7, 400]] = 0
    sampler = NegativeSampler(sp.csr_matrix(dense))
    neg = sampler.sample(torch.tensor([0, 1, 0]), 20, generator=0)
    assert (neg[[0, 2]] == 123).all()
    assert set(neg[1].tolist()) <= {7, 400}


def test_same_seed_same_draws_and_fresh_draws_each_epoch(encoded, path):
    r, _, n_items = encoded
    a = pointwise_instances(r, n_items, n_neg=4, generator=torch.Generator().manual_seed(3))
    b = pointwise_instances(r, n_items, n_neg=4, generator=torch.Generator().manual_seed(3))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    g = torch.Generator().manual_seed(3)
    epoch1 = pointwise_instances(r, n_items, n_neg=4, generator=g)
    epoch2 = pointwise_instances(r, n_items, n_neg=4, generator=g)
    assert not torch.equal(epoch1[1], epoch2[1])  # negatives re-drawn every epoch
    assert torch.equal(epoch1[0], epoch2[0]) and torch.equal(epoch1[2], epoch2[2])


def test_global_rng_is_not_reseeded(encoded):
    r, _, n_items = encoded
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    pointwise_instances(r, n_items, generator=torch.Generator().manual_seed(0))
    ranking_candidates(r.iloc[50:60], n_items, n_neg=5, exclude=r.iloc[:50], generator=1)
    assert torch.equal(torch.rand(3), expected)


def test_pointwise_instances_layout(encoded):
    r, _, n_items = encoded
    users, items, labels = pointwise_instances(r, n_items, n_neg=4, generator=0)
    n = len(r)
    assert users.shape == items.shape == labels.shape == (5 * n,)
    assert users.dtype == items.dtype == torch.int64 and labels.dtype == torch.float32
    assert torch.equal(users[:n], torch.as_tensor(r["user_id"].to_numpy().copy()))
    assert torch.equal(items[:n], torch.as_tensor(r["item_id"].to_numpy().copy()))
    assert labels[:n].eq(1).all() and labels[n:].eq(0).all()
    assert torch.equal(users[n:], users[:n].repeat_interleave(4))
    sets = user_sets(r)
    assert not any(
        i in sets[u] for u, i in zip(users[n:].tolist(), items[n:].tolist(), strict=True)
    )


def test_positives_argument_excludes_more_items(encoded):
    r, n_users, n_items = encoded
    train, test = leave_one_out(r)
    everything = interaction_matrix(r, n_users, n_items, values="ones")
    sampler = NegativeSampler(everything)
    users, items, _ = pointwise_instances(train, n_items, n_neg=6, generator=0, positives=sampler)
    held_out = set(zip(test["user_id"].tolist(), test["item_id"].tolist(), strict=True))
    n = len(train)
    pairs = zip(users[n:].tolist(), items[n:].tolist(), strict=True)
    assert not any(p in held_out for p in pairs)
    with pytest.raises(ValueError, match="positives has 60 items"):
        pointwise_instances(train, n_items + 1, positives=everything)


def test_pairwise_instances(encoded, path):
    r, _, n_items = encoded
    users, pos, neg = pairwise_instances(r, n_items, generator=torch.Generator().manual_seed(0))
    assert users.shape == pos.shape == neg.shape == (len(r),)
    sets = user_sets(r)
    assert all(p in sets[u] for u, p in zip(users.tolist(), pos.tolist(), strict=True))
    assert not any(x in sets[u] for u, x in zip(users.tolist(), neg.tolist(), strict=True))


def test_ranking_candidates(encoded, path):
    r, _, n_items = encoded
    train, test = leave_one_out(r)
    users, cand = ranking_candidates(test, n_items, n_neg=20, exclude=train, generator=0)
    assert users.shape == (len(test),) and cand.shape == (len(test), 21)
    assert torch.equal(users, torch.as_tensor(test["user_id"].to_numpy().copy()))
    assert torch.equal(cand[:, 0], torch.as_tensor(test["item_id"].to_numpy().copy()))
    sets = user_sets(r)  # train and test positives
    for u, row in zip(users.tolist(), cand[:, 1:].tolist(), strict=True):
        assert len(set(row)) == 20  # distinct within the row
        assert not sets[u] & set(row)  # never a positive, train or test
    again = ranking_candidates(test, n_items, n_neg=20, exclude=train, generator=0)[1]
    other = ranking_candidates(test, n_items, n_neg=20, exclude=train, generator=1)[1]
    assert torch.equal(cand, again) and not torch.equal(cand, other)


def test_ranking_candidates_memory_does_not_grow_with_users_times_items(monkeypatch):
    """A users x items size far beyond memory (4e10 pairs) works: only the ratings are stored."""
    n_users, n_items = 200_000, 200_000
    rng = np.random.default_rng(0)
    test_users = rng.choice(n_users, size=500, replace=False)
    train = pd.DataFrame(
        {"user_id": np.repeat(test_users, 3), "item_id": rng.integers(0, n_items, 1500)}
    )
    test = pd.DataFrame({"user_id": test_users, "item_id": rng.integers(0, n_items, 500)})
    users, cand = ranking_candidates(test, n_items, n_neg=99, exclude=train, generator=0)
    assert cand.shape == (500, 100)
    assert (torch.sort(cand[:, 1:], dim=1).values.diff(dim=1) > 0).all()


def test_user_who_rated_every_item_is_named(encoded):
    r, n_users, n_items = encoded
    full = pd.DataFrame({"user_id": np.full(n_items, 5), "item_id": np.arange(n_items)})
    r2 = pd.concat([r[r["user_id"] != 5], full], ignore_index=True)
    with pytest.raises(ValueError, match=r"user 5 has interacted with every one of the 60 items"):
        pointwise_instances(r2, n_items, generator=0)
    with pytest.raises(ValueError, match="user 5 has interacted with every one"):
        pairwise_instances(r2, n_items, generator=0)


def test_more_negatives_than_the_pool_is_an_error(encoded):
    r, _, n_items = encoded
    train, test = leave_one_out(r)
    sizes = r.groupby("user_id").size()
    biggest = int(sizes.idxmax())
    pool = n_items - int(sizes.max())
    with pytest.raises(
        ValueError, match=rf"user {biggest} has only {pool} items .* n_neg={pool + 1}"
    ):
        ranking_candidates(test, n_items, n_neg=pool + 1, exclude=train, generator=0)
    csr = interaction_matrix(r, values="ones")
    with pytest.raises(ValueError, match=rf"fewer than the n_neg={n_items}"):
        sample_negatives(torch.tensor([biggest]), csr, n_items, replace=False)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r, n: pointwise_instances(r, n, n_neg=-1), "n_neg must be a non-negative integer"),
        (
            lambda r, n: pointwise_instances(r, n - 1),
            r"r\['item_id'\] must lie in \[0, n_items=59\)",
        ),
        (
            lambda r, n: pointwise_instances(r.drop(columns="item_id"), n),
            r"missing the column\(s\) \['item_id'\]",
        ),
        (lambda r, n: pairwise_instances(r, 0), "n_items must be a positive integer"),
        (
            lambda r, n: ranking_candidates(r.drop(columns="user_id"), n, exclude=r),
            r"test is missing the column\(s\) \['user_id'\]",
        ),
        (
            lambda r, n: ranking_candidates(r, n, exclude=r, generator="0"),
            "generator must be",
        ),
        (lambda r, n: sample_negatives([0], r, 2), "positives must be a scipy sparse"),
        (
            lambda r, n: sample_negatives([10_000], interaction_matrix(r), 2),
            r"users must lie in \[0, 80 \(the positives' rows\)\)",
        ),
        (
            lambda r, n: pointwise_instances(r, n, generator="seed"),
            "generator must be a torch.Generator",
        ),
    ],
)
def test_bad_inputs(encoded, call, message):
    r, _, n_items = encoded
    with pytest.raises(ValueError, match=message):
        call(r, n_items)


def test_sample_negatives_accepts_a_prebuilt_sampler_and_is_chunked(encoded, monkeypatch):
    r, n_users, n_items = encoded
    monkeypatch.setattr(sampling_mod, "_CHUNK", 64)  # many chunks
    sampler = NegativeSampler.from_ratings(r, n_items, n_users=n_users)
    users = torch.arange(n_users)
    a = sample_negatives(users, sampler, 5, generator=torch.Generator().manual_seed(0))
    b = sample_negatives(users, sampler, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    sets = user_sets(r)
    assert not any(sets[u] & set(row) for u, row in zip(users.tolist(), a.tolist(), strict=True))
    assert sample_negatives(users, sampler, 0).shape == (n_users, 0)


def reference_rejection(sampler: NegativeSampler, users, n_neg, g):
    """The rejection rounds written with torch operations only (the sampler's first version):
    the draws and their order, which the numpy bookkeeping of ``_rejection`` must not change."""
    n = sampler.n_items
    base = (users * n).to(torch.int32)
    items = torch.randint(0, n, (len(users), n_neg), generator=g, dtype=torch.int32)
    flat = items.view(-1)
    hit = sampler._member.index_select(0, (items + base[:, None]).view(-1))
    todo = torch.nonzero(hit).squeeze(1)
    for _ in range(sampling_mod.MAX_ROUNDS):
        if todo.numel() == 0:
            return items
        cand = torch.randint(0, n, todo.shape, generator=g, dtype=torch.int32)
        hit = sampler._member.index_select(0, base.index_select(0, todo // n_neg) + cand)
        ok = torch.nonzero(~hit).squeeze(1)
        flat.index_copy_(0, todo.index_select(0, ok), cand.index_select(0, ok))
        todo = todo[hit]
    if todo.numel():
        u = users[todo // n_neg]
        k = sampler._uniform_below(sampler.pool[u], g)
        flat[todo] = sampler._kth_negative(u, k).to(torch.int32)
    return items


@pytest.mark.parametrize("max_rounds", [16, 2, 0])  # 0 and 2: the exact fallback draws too
@pytest.mark.parametrize("n_neg", [1, 4, 9])
def test_rejection_draws_are_those_of_the_plain_torch_rounds(encoded, monkeypatch, max_rounds,
                                                             n_neg):
    r, n_users, n_items = encoded  # about 30% of the pairs are positives: many rounds
    monkeypatch.setattr(sampling_mod, "MAX_ROUNDS", max_rounds)
    sampler = NegativeSampler.from_ratings(r, n_items, n_users=n_users)
    users = torch.tensor(r["user_id"].to_numpy(dtype=np.int64))
    for seed in range(3):
        got = sampler._rejection(users, n_neg, torch.Generator().manual_seed(seed))
        want = reference_rejection(sampler, users, n_neg, torch.Generator().manual_seed(seed))
        assert got.dtype == torch.int32 and torch.equal(got, want)
    sets = user_sets(r)
    for u, row in zip(users.tolist(), got.tolist(), strict=True):
        assert not sets[u] & set(row)


@pytest.mark.parametrize("max_rounds", [16, 1])  # 1: most rejected draws go to the fallback
def test_rejection_is_uniform_with_and_without_the_fallback(monkeypatch, max_rounds):
    monkeypatch.setattr(sampling_mod, "MAX_ROUNDS", max_rounds)
    positives = np.zeros((3, 12), dtype=np.float32)
    positives[0, [0, 2, 3, 5, 6, 7, 8, 9, 11]] = 1  # 3 negatives: 75% of draws rejected
    positives[1, [4]] = 1
    positives[2, :11] = 1  # a single negative
    sampler = NegativeSampler(sp.csr_matrix(positives))
    users = torch.tensor([0, 1, 2]).repeat(12_000)
    neg = sampler.sample(users, 2, generator=7).numpy()
    for u in range(3):
        drawn = neg[users.numpy() == u].ravel()
        negatives = np.flatnonzero(positives[u] == 0)
        counts = np.bincount(drawn, minlength=12)
        assert counts[positives[u] == 1].sum() == 0  # never a positive
        expected = drawn.size / negatives.size
        assert np.all(np.abs(counts[negatives] - expected) < 5 * np.sqrt(expected))


# --------------------------------------------------------------------------------------------
# Approximate sampling: uniform over the catalogue, no check against the positives


def test_approximate_collisions_match_the_closed_form_rate(encoded):
    r, n_users, n_items = encoded
    k = 200
    users, _, neg = pairwise_instances(r, n_items, n_neg=k, generator=0, approximate=True)
    member = interaction_matrix(r, n_users, n_items, values="ones").toarray().astype(bool)
    hit = member[users.numpy()[:, None], neg.numpy()]  # (N, K): was the "negative" a positive?
    deg = member.sum(axis=1)
    p = deg / n_items  # the closed form: a uniform draw is a positive with probability deg/I
    sampler = NegativeSampler.from_ratings(r, n_items, n_users=n_users)
    np.testing.assert_allclose(sampler.collision_rate().numpy(), p)
    np.testing.assert_allclose(sampler.collision_rate([3, 0]).numpy(), p[[3, 0]])
    # Per user: n_u = deg_u * K independent Bernoulli(p_u) draws, so the measured rate has
    # binomial standard error sqrt(p_u (1 - p_u) / n_u) (here n_u >= 1000 and n_u p_u >= 80: the
    # normal approximation holds). |z| < 4.5 for every one of the 80 users: were the sampler
    # right, the chance that any z reaches 4.5 is at most 80 * 6.8e-6 = 5e-4 (two-sided).
    draws = np.bincount(users.numpy(), minlength=n_users) * k
    collisions = np.bincount(users.numpy(), weights=hit.sum(axis=1), minlength=n_users)
    z = (collisions / draws - p) / np.sqrt(p * (1 - p) / draws)
    assert np.abs(z).max() < 4.5
    # Over the epoch: every row's K draws are Bernoulli(p of its user); expected rate the mean
    # of p over rows (heavy users own more rows, so above the mean of p over users), standard
    # error sqrt(sum K p (1 - p)) / (N K); a 4-standard-error band (two-sided 6e-5).
    p_rows = p[users.numpy()]
    expected = p_rows.mean()
    se = np.sqrt((k * p_rows * (1 - p_rows)).sum()) / hit.size
    assert abs(hit.mean() - expected) < 4 * se
    assert expected > p.mean() + 10 * se  # the weighting by rows is visible at this precision


def test_approximate_draws_are_uniform_reproducible_and_build_no_sampler(encoded, monkeypatch):
    r, n_users, n_items = encoded

    def refuse(*args, **kwargs):
        raise AssertionError("approximate sampling must not build the positives' structure")

    monkeypatch.setattr(NegativeSampler, "_setup", refuse)
    users, items, labels = pointwise_instances(r, n_items, n_neg=20, generator=1, approximate=True)
    n = len(r)
    counts = np.bincount(items[n:].numpy(), minlength=n_items)
    # 30,000 uniform draws over 60 items: 500 expected each, binomial SE ~22; 5 SE band
    assert np.abs(counts - 500).max() < 5 * np.sqrt(500 * (1 - 1 / n_items))
    again = pointwise_instances(r, n_items, n_neg=20, generator=1, approximate=True)
    assert torch.equal(items, again[1]) and torch.equal(labels, again[2])
    batches = InstanceBatches(
        r, n_items, "pairwise", n_neg=3, batch_size=500, generator=0, approximate=True
    )
    assert len(batches) == 3 and "approximate" in repr(batches)
    assert sum(b[2].shape[0] for b in batches) == n and next(iter(batches))[2].shape[1] == 3


def test_approximate_sample_without_replacement_is_distinct(encoded):
    r, n_users, n_items = encoded
    sampler = NegativeSampler.from_ratings(r, n_items, n_users=n_users)
    users = torch.arange(n_users).repeat(20)
    draws = sampler.sample(users, 30, generator=0, replace=False, approximate=True)
    assert all(len(set(row)) == 30 for row in draws.tolist())
    sets = user_sets(r)
    pairs = zip(users.tolist(), draws.tolist(), strict=True)
    collided = sum(x in sets[u] for u, row in pairs for x in row)
    assert collided > 0  # no check against the positives
    assert sample_negatives(users[:3], sampler, 4, approximate=True).shape == (3, 4)
    with pytest.raises(ValueError, match="61 distinct items asked for among only 60"):
        sampler.sample(users[:2], 61, replace=False, approximate=True)


def test_approximate_arguments_are_checked(encoded):
    r, n_users, n_items = encoded
    matrix = interaction_matrix(r, n_users, n_items, values="ones")
    with pytest.raises(ValueError, match="never looks at the positives"):
        pointwise_instances(r, n_items, positives=matrix, approximate=True)
    with pytest.raises(ValueError, match="never looks at the positives"):
        InstanceBatches(r, n_items, batch_size=10, positives=matrix, approximate=True)
    with pytest.raises(ValueError, match="approximate must be True or False"):
        pairwise_instances(r, n_items, approximate="yes")
    with pytest.raises(ValueError, match="approximate must be True or False"):
        sample_negatives([0], matrix, 2, approximate=1)
    with pytest.raises(ValueError, match=r"users must lie in \[0, 80"):
        NegativeSampler(matrix).collision_rate([80])
