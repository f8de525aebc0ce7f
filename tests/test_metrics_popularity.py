"""Tests of recs_course.metrics.popularity_profile: hand-worked cases, independent references
(scipy's rankdata, a double-loop Gini, naive loops) and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from recs_course.metrics import popularity_profile

KEYS = [
    "mean popularity rank",
    "mean popularity percentile",
    "coverage",
    "gini",
    "share of top 10% items",
]


# --------------------------------------------------------------------------- reference
def reference_profile(recommended: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """Straight from the definitions, with loops (test only)."""
    n = len(counts)
    ranks = rankdata(-np.asarray(counts, dtype=np.float64), method="average")
    entries = [int(i) for row in recommended for i in row]
    mean_rank = sum(ranks[i] for i in entries) / len(entries)
    times = [0] * n
    for i in entries:
        times[i] += 1
    # Gini as the mean absolute difference: sum_i sum_j |x_i - x_j| / (2 n^2 mean)
    mean = sum(times) / n
    mad = sum(abs(a - b) for a in times for b in times)
    gini = mad / (2 * n * n * mean)
    # top 10%: the ceil(n/10) items of largest count, ties broken by the smaller index
    m = math.ceil(n / 10)
    top = set(sorted(range(n), key=lambda i: (-counts[i], i))[:m])
    return {
        "mean popularity rank": mean_rank,
        "mean popularity percentile": mean_rank / n,
        "coverage": sum(t > 0 for t in times) / n,
        "gini": gini,
        "share of top 10% items": sum(i in top for i in entries) / len(entries),
    }


def assert_profile(got: dict, expected: dict) -> None:
    assert list(got) == KEYS
    assert all(type(v) is float for v in got.values())
    for key in KEYS:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key


# --------------------------------------------------------------------------- hand-worked
def test_hand_worked_three_users_five_items():
    counts = torch.tensor([10, 4, 4, 0, 7])
    # popularity ranks (1 = most popular): item 0 (10) -> 1, item 4 (7) -> 2,
    # items 1 and 2 (4, tied for ranks 3 and 4) -> 3.5 each, item 3 (0) -> 5
    recommended = torch.tensor([[0, 4], [1, 0], [2, 0]])
    # entry ranks: [1, 2], [3.5, 1], [3.5, 1] -> sum 12 over 6 entries -> mean 2.0
    # percentile: 2.0 / 5 = 0.4
    # recommended items {0, 1, 2, 4}: coverage 4 / 5 = 0.8
    # times recommended: item0 3, item1 1, item2 1, item3 0, item4 1 -> sorted [0, 1, 1, 1, 3]
    #   weights 2i - n - 1 = [-4, -2, 0, 2, 4] -> 0 - 2 + 0 + 2 + 12 = 12; gini 12 / (5 * 6) = 0.4
    #   (check: sum |x_i - x_j| over ordered pairs = 2 * (3*1 + 3 + 3*2) = 24; 24 / (2*25*1.2) = 0.4)
    # top 10%: ceil(5 / 10) = 1 item, item 0; 3 of the 6 entries are item 0 -> 0.5
    expected = {
        "mean popularity rank": 2.0,
        "mean popularity percentile": 0.4,
        "coverage": 0.8,
        "gini": 0.4,
        "share of top 10% items": 0.5,
    }
    got = popularity_profile(recommended, counts)
    assert_profile(got, expected)
    assert_profile(got, reference_profile(recommended.numpy(), counts.numpy()))
    # the same from numpy arrays, lists, float counts and an explicit n_items
    assert_profile(popularity_profile(recommended.numpy(), counts.numpy()), expected)
    assert_profile(
        popularity_profile(recommended.tolist(), [10.0, 4, 4, 0, 7], n_items=5), expected
    )


def test_hand_worked_tie_at_the_top_10_percent_boundary():
    counts = np.array([4, 9, 9, 1])
    # ranks: items 1 and 2 (9, tied for ranks 1 and 2) -> 1.5 each, item 0 -> 3, item 3 -> 4
    # top 10%: ceil(4 / 10) = 1 item; items 1 and 2 tie, the smaller index (1) is taken
    got = popularity_profile(np.array([[2, 0]]), counts)
    # entries: ranks 1.5 and 3 -> mean 2.25, percentile 2.25 / 4 = 0.5625; neither is item 1
    # coverage 2 / 4 = 0.5; times [1, 0, 1, 0] -> sorted [0, 0, 1, 1], weights [-3, -1, 1, 3]
    #   -> (1 + 3) / (4 * 2) = 0.5
    assert_profile(
        got,
        {
            "mean popularity rank": 2.25,
            "mean popularity percentile": 0.5625,
            "coverage": 0.5,
            "gini": 0.5,
            "share of top 10% items": 0.0,
        },
    )
    # item 1 is in the top 10%: one of the two entries -> 0.5
    assert popularity_profile(np.array([[1, 3]]), counts)["share of top 10% items"] == 0.5
    # the tied ranks do not depend on the order of ties: swapping items 1 and 2 changes nothing
    assert (
        popularity_profile(np.array([[1, 0]]), counts)["mean popularity rank"]
        == got["mean popularity rank"]
    )


def test_top_10_percent_is_ceil_of_a_tenth():
    # 30 items: ceil(3.0) = 3 items exactly, items 0, 1, 2
    counts = 30 - np.arange(30)  # item i has rank i + 1
    assert popularity_profile(np.full((2, 1), 2), counts)["share of top 10% items"] == 1.0
    assert popularity_profile(np.full((2, 1), 3), counts)["share of top 10% items"] == 0.0
    # 31 items: ceil(3.1) = 4 items
    counts = 31 - np.arange(31)
    assert popularity_profile(np.array([[3]]), counts)["share of top 10% items"] == 1.0
    assert popularity_profile(np.array([[4]]), counts)["share of top 10% items"] == 0.0


def test_single_item_catalogue():
    got = popularity_profile(np.array([[0], [0]]), np.array([3]))
    assert_profile(
        got,
        {
            "mean popularity rank": 1.0,
            "mean popularity percentile": 1.0,
            "coverage": 1.0,
            "gini": 0.0,
            "share of top 10% items": 1.0,
        },
    )


# --------------------------------------------------------------------------- references
@pytest.mark.parametrize("seed", range(6))
def test_against_references_random(seed):
    gen = np.random.default_rng(seed)
    n_items = int(gen.integers(1, 60))
    n_users = int(gen.integers(1, 40))
    k = int(gen.integers(1, n_items + 1))
    # small integer counts: plenty of ties (and zeros); every other seed as floats
    counts = gen.integers(0, 6, size=n_items)
    if seed % 2:
        counts = counts * 0.5
    scores = torch.from_numpy(gen.random((n_users, n_items)))
    recommended = torch.topk(scores, k).indices
    got = popularity_profile(recommended, torch.from_numpy(counts))
    assert_profile(got, reference_profile(recommended.numpy(), counts))
    assert 0 < got["mean popularity percentile"] <= 1
    assert 0 <= got["gini"] < 1


@pytest.mark.parametrize("seed", range(4))
def test_skewed_recommendations_against_references(seed):
    # popularity-biased scores: a few items take most slots -> high Gini, matches the reference
    gen = np.random.default_rng(100 + seed)
    n_items, n_users, k = 50, 30, 5
    counts = np.floor(1000 / (1 + np.arange(n_items)) ** 1.2).astype(np.int64)
    gen.shuffle(counts)
    scores = torch.from_numpy(np.log1p(counts) + 0.3 * gen.standard_normal((n_users, n_items)))
    recommended = torch.topk(scores, k).indices
    got = popularity_profile(recommended, counts)
    assert_profile(got, reference_profile(recommended.numpy(), counts))
    assert got["gini"] > 0.8
    assert got["mean popularity percentile"] < 0.3


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("n_items, k", [(10, 1), (30, 3), (20, 1), (40, 4), (7, 3)])
def test_everyone_gets_the_k_most_popular(n_items, k):
    gen = np.random.default_rng(n_items)
    counts = gen.permutation(n_items) * 3 + 1  # distinct: no ties
    most_popular = np.argsort(-counts)[:k]
    recommended = np.tile(gen.permutation(most_popular), (6, 1))
    got = popularity_profile(recommended, counts)
    assert got["coverage"] == pytest.approx(k / n_items)
    assert got["mean popularity rank"] == pytest.approx((k + 1) / 2)
    assert got["mean popularity percentile"] == pytest.approx((k + 1) / 2 / n_items)
    if k <= math.ceil(n_items / 10):
        assert got["share of top 10% items"] == 1.0
    # K items share every slot equally, the other I - K never: gini = 1 - K / I
    assert got["gini"] == pytest.approx(1 - k / n_items)


@pytest.mark.parametrize("n_items, k", [(5, 2), (12, 3), (8, 8)])
def test_uniform_assignment_has_gini_zero(n_items, k):
    # user u gets items u, u+1, ..., u+k-1 (mod I): every item is recommended exactly k times
    recommended = (np.arange(n_items)[:, None] + np.arange(k)[None, :]) % n_items
    got = popularity_profile(torch.from_numpy(recommended), np.arange(n_items) + 1)
    assert got["gini"] == pytest.approx(0.0, abs=1e-15)
    assert got["coverage"] == 1.0
    # every item appears equally often: the mean rank is the catalogue's mean rank (I+1)/2
    assert got["mean popularity rank"] == pytest.approx((n_items + 1) / 2)


def test_invariant_to_permuting_users_and_items_within_a_row():
    gen = np.random.default_rng(7)
    counts = gen.integers(0, 20, size=25)
    recommended = torch.topk(torch.rand(15, 25, generator=torch.Generator().manual_seed(7)), 4)
    recommended = recommended.indices
    base = popularity_profile(recommended, counts)
    users = torch.from_numpy(gen.permutation(15))
    assert popularity_profile(recommended[users], counts) == pytest.approx(base, abs=1e-12)
    cols = torch.from_numpy(gen.permutation(4))
    assert popularity_profile(recommended[:, cols], counts) == pytest.approx(base, abs=1e-12)


def test_inputs_are_not_modified_and_dtypes_accepted():
    counts = torch.tensor([3.0, 1.0, 2.0], dtype=torch.float16)
    recommended = torch.tensor([[2, 0]], dtype=torch.int32)
    before_c, before_r = counts.clone(), recommended.clone()
    got = popularity_profile(recommended, counts)
    assert torch.equal(counts, before_c) and torch.equal(recommended, before_r)
    # ranks: item 0 -> 1, item 2 -> 2: mean 1.5
    assert got["mean popularity rank"] == 1.5
    assert popularity_profile(recommended.to(torch.uint8), counts) == got
    assert popularity_profile(recommended.numpy().astype(np.uint16), counts.numpy()) == got


# --------------------------------------------------------------------------- bad input
COUNTS = np.array([5, 3, 1, 0])


@pytest.mark.parametrize(
    "recommended, match",
    [
        (np.array([0, 1]), r"2-D .*recommended\[None\]"),
        (np.zeros((2, 2, 1), dtype=np.int64), "2-D"),
        (np.zeros((0, 2), dtype=np.int64), "empty"),
        (np.zeros((3, 0), dtype=np.int64), "empty"),
        ([], "2-D"),
        ([[]], "empty"),
        (np.array([[0.0, 1.0]]), r"integer item indices.*float64.*topk"),
        (torch.tensor([[0.0, 1.0]]), r"integer item indices.*float32"),
        (torch.tensor([[True, False]]), "integer item indices"),
        (np.array([[0, 1], [2, 4]]), r"outside \[0, 4\): 4 in row 1"),
        (np.array([[0, 1], [-1, 2]]), r"outside \[0, 4\): -1 in row 1"),
        (np.array([[0, 1], [2, 3], [3, 3], [1, 1]]), "row 2 lists item 3 more than once"),
        (np.array([[0, 2, 0]]), "row 0 lists item 0 more than once.*distinct"),
        ("0 1", "matrix of item indices"),
        (None, "matrix of item indices"),
        ([[0, 1], [2]], "matrix of item indices"),
    ],
)
def test_bad_recommended(recommended, match):
    with pytest.raises(ValueError, match=match):
        popularity_profile(recommended, COUNTS)


@pytest.mark.parametrize(
    "counts, match",
    [
        (np.array([], dtype=np.int64), "counts is empty"),
        (np.ones((2, 4)), "counts must be 1-D"),
        (np.array([5, -1, 1, 0]), r"counts must be >= 0.*-1 for item 1"),
        (np.array([5.0, np.nan, 1.0, 0.0]), r"counts contains 1 NaN"),
        (torch.tensor([5.0, 3.0, float("inf"), 0.0]), "infinity"),
        (np.array([True, False, True, True]), "real numbers"),
        (np.array(["a", "b", "c", "d"]), "real numbers"),
        (None, "1-D array of item popularities"),
    ],
)
def test_bad_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        popularity_profile(np.array([[0, 1]]), counts)


@pytest.mark.parametrize(
    "n_items, match",
    [
        (5, r"n_items=5 but counts has 4 entries"),
        (3, r"n_items=3 but counts has 4 entries"),
        (0, "n_items must be a positive integer"),
        (4.0, "n_items must be a positive integer"),
        (True, "n_items must be a positive integer"),
    ],
)
def test_bad_n_items(n_items, match):
    with pytest.raises(ValueError, match=match):
        popularity_profile(np.array([[0, 1]]), COUNTS, n_items=n_items)
    assert popularity_profile(np.array([[0, 1]]), COUNTS, n_items=np.int64(4))["coverage"] == 0.5
