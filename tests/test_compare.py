"""`recs_course.compare`: paired per-user differences over users and training seeds."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import recs_course
from recs_course.compare import TIE, Comparison, compare, run_seeds
from recs_course.metrics import Metrics


def metrics(values, users=None, name="NDCG@10", **other) -> Metrics:
    """A Metrics with one per-user column ``name`` (plus ``other`` columns)."""
    values = np.asarray(values, dtype=np.float64)
    users = np.arange(len(values)) if users is None else np.asarray(users, dtype=np.int64)
    frame = pd.DataFrame({"user": users, name: values, **other})
    means = {c: float(np.nanmean(frame[c])) for c in frame.columns if c != "user"}
    return Metrics(means, frame)


def runs(table, name="NDCG@10") -> list[Metrics]:
    """One Metrics per row of an (S, U) table."""
    return [metrics(row, name=name) for row in np.atleast_2d(table)]


def simulate(rng, n_users, n_seeds, sd_user, sd_seed, sd_noise, delta):
    """Per-user metric tables of A and B from a known crossed model (true difference ``delta``).

    ``value[s, u] = base_u + model effect + user-specific difference + seed effect + noise``;
    A's and B's seeds are independent runs.
    """
    base = rng.normal(0.4, 0.2, n_users)
    a = (
        base
        + delta
        + rng.normal(0, sd_user, n_users)
        + rng.normal(0, sd_seed, (n_seeds, 1))
        + rng.normal(0, sd_noise, (n_seeds, n_users))
    )
    b = base + rng.normal(0, sd_seed, (n_seeds, 1)) + rng.normal(0, sd_noise, (n_seeds, n_users))
    return a, b


# --------------------------------------------------------------------------- hand-worked cases
def test_identical_inputs_are_a_tie_with_difference_zero():
    # seeds that clearly differ (offsets 0, 0.1, 0.2), so that the seed term is not 0
    table = np.random.default_rng(0).random((3, 50)) + np.array([[0.0], [0.1], [0.2]])
    result = compare(runs(table), runs(table), "NDCG@10")
    assert result.difference == 0.0
    assert result.low <= 0.0 <= result.high
    assert result.low < 0 < result.high  # the seeds vary: the interval is not a point
    assert result.verdict == TIE and result.tied()
    assert not result.ahead("A") and not result.ahead("B")


def test_identical_single_runs_give_a_point_interval_at_zero():
    values = np.random.default_rng(1).random(30)
    result = compare(metrics(values), metrics(values), "NDCG@10")
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.tied()


def test_constant_shift_is_found_exactly_and_a_is_ahead():
    base = np.random.default_rng(2).random(40)
    table = np.tile(base, (3, 1))  # every seed gives every user the same value
    result = compare(runs(table + 0.1), runs(table), "NDCG@10", names=("NeuMF", "GMF"))
    assert result.difference == pytest.approx(0.1, abs=1e-12)
    assert 0.1 - 1e-9 <= result.low <= result.high <= 0.1 + 1e-9
    assert result.verdict == "NeuMF ahead"
    assert result.ahead("NeuMF") and not result.ahead("GMF") and not result.tied()
    result.assert_verdict("NeuMF")
    result.assert_verdict("NeuMF ahead")
    with pytest.raises(AssertionError, match="expected 'GMF ahead', got: NDCG@10: NeuMF - GMF"):
        result.assert_verdict("GMF")
    with pytest.raises(AssertionError, match="no difference"):
        result.assert_verdict("tie")
    swapped = compare(runs(table), runs(table + 0.1), "NDCG@10", names=("NeuMF", "GMF"))
    assert swapped.difference == pytest.approx(-0.1, abs=1e-12) and swapped.ahead("GMF")


def test_difference_is_the_mean_over_users_of_the_seed_means_naive_loop():
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 25)), rng.random((2, 25))
    result = compare(runs(a), runs(b), "NDCG@10")
    total = 0.0
    for u in range(25):
        mean_a = sum(a[s, u] for s in range(3)) / 3
        mean_b = sum(b[t, u] for t in range(2)) / 2
        total += mean_a - mean_b
    assert result.difference == pytest.approx(total / 25, rel=1e-12)
    assert (result.n_users, result.n_seeds_a, result.n_seeds_b) == (25, 3, 2)


def test_one_seed_a_side_is_the_paired_t_interval_over_users():
    rng = np.random.default_rng(4)
    a, b = rng.random(60), rng.random(60)
    result = compare(metrics(a), metrics(b), "NDCG@10", confidence=0.9)
    expected = stats.ttest_rel(a, b).confidence_interval(0.9)
    assert result.low == pytest.approx(expected.low, rel=1e-10)
    assert result.high == pytest.approx(expected.high, rel=1e-10)
    assert result.dof == pytest.approx(59)
    assert result.covers == "users only (one training seed per model)"


def test_interval_is_the_variance_decomposition_by_hand():
    """Two seeds a side, four users: the formula of the module docstring, written out."""
    a = np.array([[0.5, 0.2, 0.9, 0.4], [0.7, 0.5, 1.0, 0.7]])
    b = np.array([[0.3, 0.2, 0.6, 0.5], [0.0, 0.1, 0.4, 0.2]])
    result = compare(runs(a), runs(b), "NDCG@10")
    d = a.mean(0) - b.mean(0)
    variance, parts = d.var(ddof=1) / 4, [(d.var(ddof=1) / 4, 3)]
    for x in (a, b):
        seed_means = x.mean(1)
        residual = x - x.mean(0) - seed_means[:, None] + x.mean()
        ms_seed, ms_res = seed_means.var(ddof=1), (residual**2).sum() / 3
        assert ms_seed - ms_res / 4 > 0  # chosen so that no component is clipped
        variance += (ms_seed - ms_res / 4) / 2
        parts += [(ms_seed / 2, 1), (ms_res / 8, 3)]
    dof = variance**2 / sum(v**2 / k for v, k in parts)
    half = stats.t.ppf(0.975, dof) * math.sqrt(variance)
    assert result.std_error == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert result.dof == pytest.approx(dof, rel=1e-12)
    assert (result.low, result.high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_order_of_users_and_of_seeds_does_not_matter_and_results_repeat():
    rng = np.random.default_rng(5)
    a, b = rng.random((3, 20)), rng.random((4, 20))
    first = compare(runs(a), runs(b), "NDCG@10")
    assert compare(runs(a), runs(b), "NDCG@10") == first  # no resampling: deterministic
    perm = rng.permutation(20)
    shuffled_a = [metrics(row[perm], users=perm) for row in a[::-1]]
    shuffled_b = [metrics(row[perm[::-1]], users=perm[::-1]) for row in b[[2, 0, 3, 1]]]
    again = compare(shuffled_a, shuffled_b, "NDCG@10")
    assert again.difference == pytest.approx(first.difference, rel=1e-12)
    assert (again.low, again.high) == pytest.approx((first.low, first.high), rel=1e-12)


def test_users_with_nan_are_dropped_and_counted():
    rng = np.random.default_rng(6)
    a, b = rng.random((2, 10)), rng.random((2, 10))
    a[1, 3] = np.nan
    b[0, 7] = np.nan
    result = compare(runs(a), runs(b), "NDCG@10")
    keep = [u for u in range(10) if u not in (3, 7)]
    expected = compare(runs(a[:, keep]), runs(b[:, keep]), "NDCG@10")
    assert (result.n_users, result.n_dropped) == (8, 2)
    assert result.difference == pytest.approx(expected.difference)
    assert (result.low, result.high) == pytest.approx((expected.low, expected.high))
    assert "2 dropped" in str(result)


def test_lower_is_better_is_read_from_the_name_or_given():
    a, b = np.full(10, 0.9), np.full(10, 1.0)
    a[0], b[0] = 0.8, 0.95  # the per-user differences vary a little
    result = compare(metrics(a, name="RMSE"), metrics(b, name="RMSE"), "RMSE", names=("MF", "Pop"))
    assert result.difference < 0 and result.high < 0
    assert not result.higher_is_better and result.verdict == "MF ahead"
    assert "lower is better" in str(result)
    forced = compare(
        metrics(a, name="RMSE"), metrics(b, name="RMSE"), "RMSE", higher_is_better=True
    )
    assert forced.verdict == "B ahead"


def test_printed_line_and_covers():
    base = np.tile(np.random.default_rng(7).random(943), (3, 1))
    result = compare(runs(base + 0.012), runs(base), "NDCG@10", names=("NeuMF", "GMF"))
    line = str(result)
    assert line == (
        "NDCG@10: NeuMF - GMF = +0.012 [+0.012, +0.012] (95%, 943 users, 3 x 3 seeds): NeuMF ahead"
    )
    assert result.covers == "users and training seeds"
    single = compare(runs(base[:1] + 0.012), runs(base), "NDCG@10", names=("NeuMF", "GMF"))
    assert "1 x 3 seeds" in str(single)
    assert single.covers == "users and the training seeds of GMF only"
    assert "1 x 1 seed)" in str(compare(runs(base[:1]), runs(base[:1]), "NDCG@10"))
    near_zero = Comparison("HR@10", 0.004, 0.0004, 0.0076, 0.9, 10, 1, 1)
    assert str(near_zero) == (
        "HR@10: A - B = +0.0040 [+0.0004, +0.0076] (90%, 10 users, 1 x 1 seed): A ahead"
    )


def test_comparison_is_frozen_and_pickles():
    result = compare(runs(np.eye(3)), runs(np.ones((2, 3))), "NDCG@10")
    assert isinstance(result, Comparison)
    with pytest.raises(AttributeError):
        result.low = 0.0
    assert pickle.loads(pickle.dumps(result)) == result


def test_package_loads_compare_lazily():
    assert recs_course.compare.compare is compare
    assert "compare" in recs_course.__all__


# --------------------------------------------------------------------------- refusals
def test_refuses_runs_on_different_users():
    a = [metrics([0.1, 0.2, 0.3]), metrics([0.1, 0.2, 0.3])]
    other = metrics([0.1, 0.2, 0.3], users=[0, 1, 5])
    with pytest.raises(ValueError, match=r"b\[1\] and a\[0\] were not evaluated on the same users"):
        compare(a, [a[0], other], "NDCG@10")
    with pytest.raises(ValueError, match=r"1 of its users are missing \(e.g. user 2\).*same split"):
        compare(a, other, "NDCG@10")
    with pytest.raises(ValueError, match=r"a\[1\] and a\[0\].*2 other users"):
        compare([a[0], metrics(np.zeros(5))], a, "NDCG@10")
    with pytest.raises(ValueError, match="lists user 1 more than once"):
        compare(metrics([0.1, 0.2], users=[1, 1]), a, "NDCG@10")


def test_refuses_a_missing_metric_naming_it_and_the_run():
    a = metrics([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"a has no metric 'HR@10'.*\['NDCG@10'\]"):
        compare(a, a, "HR@10")
    with pytest.raises(ValueError, match=r"b\[1\] has no metric 'NDCG@10'"):
        compare(a, [a, metrics([0.1, 0.2, 0.3], name="HR@10")], "NDCG@10")
    with pytest.raises(ValueError, match="has no metric 'user'"):
        compare(a, a, "user")


@pytest.mark.parametrize("confidence", [0, 1, 95, -0.5, 1.5, math.nan, True, "0.95", None])
def test_refuses_bad_confidence(confidence):
    a = metrics([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="confidence"):
        compare(a, a, "NDCG@10", confidence=confidence)


@pytest.mark.parametrize(
    ("a", "match"),
    [
        ({"NDCG@10": 0.3}, "a must be a Metrics"),
        ([], "a is empty"),
        ([{"NDCG@10": 0.3}], r"a\[0\] must be a Metrics"),
    ],
)
def test_refuses_inputs_that_are_not_metrics(a, match):
    with pytest.raises(ValueError, match=match):
        compare(a, metrics([0.1, 0.2]), "NDCG@10")


def test_refuses_bad_names_values_and_too_few_users():
    a = metrics([0.1, 0.2, 0.3])
    for names in [("A", "A"), ("A",), ("A", ""), "AB", ("A", 1)]:
        with pytest.raises(ValueError, match="names must be two distinct"):
            compare(a, a, "NDCG@10", names=names)
    with pytest.raises(ValueError, match="metric must be a metric name"):
        compare(a, a, 10)
    with pytest.raises(ValueError, match="higher_is_better must be True or False"):
        compare(a, a, "NDCG@10", higher_is_better="no")
    with pytest.raises(ValueError, match=r"a.per_user\['NDCG@10'\] holds 1 infinite"):
        compare(metrics([0.1, math.inf, 0.3]), a, "NDCG@10")
    with pytest.raises(ValueError, match="only 1 user.*2 have NaN.*at least 2"):
        compare(metrics([0.1, math.nan, math.nan]), a, "NDCG@10")
    result = compare(a, a, "NDCG@10")
    with pytest.raises(ValueError, match="name must be one of"):
        result.ahead("C")
    with pytest.raises(ValueError, match="expected must be one of"):
        result.assert_verdict("C ahead")


# --------------------------------------------------------------------------- coverage
def coverage(rng, n_rep, *, n_seeds, sd_seed, users_only=False, delta=0.03):
    hits = 0
    for _ in range(n_rep):
        a, b = simulate(rng, 200, n_seeds, 0.08, sd_seed, 0.2, delta)
        if users_only:  # the seeds averaged first: one Metrics of seed means a side
            a, b = a.mean(0), b.mean(0)
        result = compare(runs(a), runs(b), "NDCG@10")
        hits += result.low <= delta <= result.high
    return hits / n_rep


def test_coverage_with_users_and_seeds():
    """The 95% interval covers the true difference about 95% of the time, with 3 seeds a side.

    400 replicate experiments (fixed generator): with a true coverage of 0.95 the estimate has a
    standard deviation of 0.011, and the method's own coverage in larger simulations (3000
    replicates) is 0.936-0.974 over designs like these (the Satterthwaite t is approximate and
    the seed component is clipped at 0, slightly conservative). [0.91, 0.99] holds both with a
    margin of about 2.5 standard deviations; an interval that forgets the seeds, or uses 1.96
    instead of the t quantile, falls below it.
    """
    rng = np.random.default_rng(2024)
    seeds_dominate = coverage(rng, 400, n_seeds=3, sd_seed=0.05)
    users_dominate = coverage(rng, 400, n_seeds=3, sd_seed=0.005)
    assert 0.91 <= seeds_dominate <= 0.99, seeds_dominate
    assert 0.91 <= users_dominate <= 0.99, users_dominate


def test_users_only_interval_undercovers_when_seeds_vary():
    """Averaging the seeds first (or training once) leaves out the seed variance: with seeds
    varying as much as here, the "95%" interval covers the truth less than half of the time."""
    users_only = coverage(np.random.default_rng(11), 200, n_seeds=3, sd_seed=0.05, users_only=True)
    assert users_only < 0.6, users_only
    with_seeds = coverage(np.random.default_rng(11), 200, n_seeds=3, sd_seed=0.05)
    assert with_seeds > 0.9, with_seeds


def test_unequal_seed_counts_cover():
    """5 seeds against 2: B's seed variance rests on one degree of freedom, where the
    Satterthwaite t is a little optimistic (0.924-0.936 in 3000-replicate simulations); 300
    replicates have a standard deviation of 0.015, so [0.88, 0.99] (3 below, 4 above)."""
    rng = np.random.default_rng(12)
    hits = 0
    for _ in range(300):
        a, b = simulate(rng, 150, 5, 0.08, 0.04, 0.2, 0.0)
        result = compare(runs(a), runs(b[:2]), "NDCG@10")
        hits += result.low <= 0.0 <= result.high
    assert 0.88 <= hits / 300 <= 0.99, hits / 300


# --------------------------------------------------------------------------- run_seeds
def test_run_seeds_seeds_each_run_and_checks_results():
    def train_and_evaluate(seed):
        values = torch.rand(8, dtype=torch.float64)  # the global generator, seeded per run
        return Metrics.from_per_user(
            torch.arange(8), {"NDCG@10": values, "seed": values * 0 + seed}
        )

    first = run_seeds(train_and_evaluate, [0, 1, 2])
    again = run_seeds(train_and_evaluate, [2, 0])
    assert [m.per_user["seed"].iloc[0] for m in first] == [0, 1, 2]
    assert first[0].per_user.equals(again[1].per_user)
    assert first[2].per_user.equals(again[0].per_user)
    assert not first[0].per_user.equals(first[1].per_user)
    assert compare(first, again, "NDCG@10").n_seeds_b == 2
    with pytest.raises(ValueError, match=r"train_and_evaluate\(0\) returned dict"):
        run_seeds(lambda seed: {"NDCG@10": 0.3}, [0])
    with pytest.raises(ValueError, match="seeds is empty"):
        run_seeds(train_and_evaluate, [])
    with pytest.raises(ValueError, match="repeats a seed"):
        run_seeds(train_and_evaluate, [1, 1])
