r"""Comparing two models over users *and* training seeds: a paired difference with an interval.

A model's score on a test set varies for two reasons: which users happen to be evaluated (the
users are a sample of the population), and which training run produced the model (the seed of
its initial weights, of its negatives, of its batches). A table of two means hides both. This
module keeps the per-user values (:attr:`recs_course.metrics.Metrics.per_user`) of several
training runs per model and answers with an interval and a verdict a chapter can print and a
test can assert::

    runs_a = run_seeds(lambda seed: train_and_evaluate_neumf(seed), seeds=[0, 1, 2])
    runs_b = run_seeds(lambda seed: train_and_evaluate_gmf(seed), seeds=[0, 1, 2])
    result = compare(runs_a, runs_b, "NDCG@10", names=("NeuMF", "GMF"))
    print(result)
    # NDCG@10: NeuMF - GMF = +0.012 [+0.004, +0.020] (95%, 943 users, 3 x 3 seeds): NeuMF ahead
    result.assert_verdict("NeuMF")

The method
----------
For model A the per-user values form a table :math:`X_A[s, u]` (``S_A`` seeds by ``U`` users,
users paired by the ``user`` column), for B a table :math:`X_B[t, u]` (``S_B`` seeds). The
estimate is the mean over users of the per-user difference of the seed means,

.. math:: \hat D = \frac1U \sum_u d_u, \qquad d_u = \bar X_A[\cdot, u] - \bar X_B[\cdot, u].

Each table is read as a crossed two-way random-effects layout, users and seeds both drawn from
their populations: :math:`X[s, u] = \mu + \alpha_u + \gamma_s + \varepsilon_{su}` (the user
effects may differ between A and B: only their difference matters, since users are paired;
seeds of A and B are independent runs, even when the same seed numbers were used). Then

.. math::
    \operatorname{Var}\hat D = \frac{\sigma_d^2}{U} + \frac{\sigma_{\gamma A}^2}{S_A}
    + \frac{\sigma_{\gamma B}^2}{S_B} + \frac{\sigma_{\varepsilon A}^2}{U S_A}
    + \frac{\sigma_{\varepsilon B}^2}{U S_B},

estimated without bias by

.. math:: \hat V = \frac{s_d^2}{U} + \frac{\hat\sigma_{\gamma A}^2}{S_A}
    + \frac{\hat\sigma_{\gamma B}^2}{S_B},

* ``s_d^2``: the sample variance of the ``d_u``; it estimates the user term *and* the noise
  terms (a ``d_u`` is an average over the seeds of each side);
* :math:`\hat\sigma_\gamma^2 = \max(0, MS_{seed} - MS_{res} / U)`: the ANOVA estimator of the
  seed variance of one side (``MS_seed``: the sample variance of the ``S`` seed means, which
  also holds ``sigma_eps^2 / U``; ``MS_res``: the residual mean square of the additive fit
  ``mu + alpha_u + gamma_s``, which estimates ``sigma_eps^2``), clipped at 0 as usual.

The interval is :math:`\hat D \pm t_{\nu,(1+c)/2}\sqrt{\hat V}`, with ``nu`` the
Welch-Satterthwaite degrees of freedom of the mean squares (``s_d^2``: ``U - 1``; ``MS_seed``:
``S - 1``; ``MS_res``: ``(S - 1)(U - 1)``). The t quantile matters: with 3 seeds a side and the
seed variance dominant, ``nu`` is about 4 and ``t`` is 2.8, not 1.96. The normal approximation
behind the t is sound because both kinds of means involved are averages over many users (a
seed's mean is over every user), whatever the distribution of one user's metric (0/1 for HR).

**Why not a bootstrap.** A two-level bootstrap (users resampled with replacement, and seeds of
each side independently) is the other natural choice, and it fails where this matters: a
handful of seeds. Resampling ``S`` seeds gives a plug-in variance ``(S - 1) / S`` of the
unbiased one, and a percentile interval has roughly normal quantiles where a t with ``S - 1``
degrees of freedom is due; resampling both users and seeds also counts the noise term three
times. In simulations of the model above (3 seeds a side, 300 users), the bootstrap's 95%
interval covered the true difference 80-86% of the time when the seed variance dominates and
99.5% when there is none; the interval here covered 93.6-97.4% over the same designs and others
(2 to 10 seeds a side, 50 to 300 users, 3000 replicates each) and 96% with binary per-user
values (a logistic model of HR). ``tests/test_compare.py`` checks the coverage.

**One seed a side.** The seed variances cannot be estimated from one run: the seed terms are
left out, ``V = s_d^2 / U``, and the interval is the paired t-interval over users (the one of
``scipy.stats.ttest_rel``). It then covers the users only: a model that drew a lucky seed can
be declared ahead. :class:`Comparison` records the seeds of each side and says what its
interval covers (:attr:`Comparison.covers`). Averaging the seeds first (one ``Metrics`` of
seed means a side) is the same mistake in another form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import Metrics
from .utils import check_flag, check_number

__all__ = ["Comparison", "compare", "run_seeds", "TIE"]

#: The verdict when the interval contains 0.
TIE = "no difference at this confidence"


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: ``difference = mean(A) - mean(B)`` and its interval.

    Attributes:
        metric: the compared metric (a column of ``Metrics.per_user``), e.g. ``"NDCG@10"``.
        difference: the estimate, mean over users of (A's seed mean - B's seed mean).
        low, high: the ends of the ``confidence`` interval of ``difference``.
        confidence: the level of the interval, e.g. ``0.95``.
        n_users: the users compared (those with a value in every run of both models).
        n_seeds_a, n_seeds_b: the training runs of each model.
        names: the names of A and B, for the verdict and the printed line.
        higher_is_better: whether a larger value of ``metric`` is better (``False`` for RMSE).
        n_dropped: users left out because some run has no value (``NaN``) for them.
        std_error: the estimated standard error of ``difference``.
        dof: the degrees of freedom of the t quantile (``inf`` when the standard error is 0).
    """

    metric: str
    difference: float
    low: float
    high: float
    confidence: float
    n_users: int
    n_seeds_a: int
    n_seeds_b: int
    names: tuple[str, str] = ("A", "B")
    higher_is_better: bool = True
    n_dropped: int = 0
    std_error: float = 0.0
    dof: float = math.inf

    @property
    def verdict(self) -> str:
        """``"<A> ahead"``, ``"<B> ahead"`` or ``"no difference at this confidence"``.

        A is ahead when the whole interval says A is better: ``low > 0`` (``high < 0`` for a
        metric where lower is better, such as RMSE).
        """
        a_better = self.low > 0 if self.higher_is_better else self.high < 0
        b_better = self.high < 0 if self.higher_is_better else self.low > 0
        if a_better:
            return f"{self.names[0]} ahead"
        if b_better:
            return f"{self.names[1]} ahead"
        return TIE

    @property
    def covers(self) -> str:
        """What the interval accounts for: users always, seeds where a side has several."""
        a, b = self.n_seeds_a > 1, self.n_seeds_b > 1
        if a and b:
            return "users and training seeds"
        if a or b:
            name = self.names[0] if a else self.names[1]
            return f"users and the training seeds of {name} only"
        return "users only (one training seed per model)"

    def ahead(self, name: str) -> bool:
        """Whether the model called ``name`` (one of :attr:`names`) is ahead."""
        if name not in self.names:
            raise ValueError(f"name must be one of {self.names}, got {name!r}")
        return self.verdict == f"{name} ahead"

    def tied(self) -> bool:
        """Whether neither model is ahead at this confidence (the interval contains 0)."""
        return self.verdict == TIE

    def assert_verdict(self, expected: str) -> None:
        """Raise ``AssertionError`` with the printed line unless the verdict is ``expected``.

        ``expected`` is a model's name (``"NeuMF"``: NeuMF ahead), a whole verdict
        (``"NeuMF ahead"``), or ``"tie"`` / ``"no difference at this confidence"``.
        """
        choices = {f"{n} ahead": f"{n} ahead" for n in self.names}
        choices.update({n: f"{n} ahead" for n in self.names})
        choices.update({"tie": TIE, TIE: TIE})
        if not isinstance(expected, str) or expected not in choices:
            raise ValueError(f"expected must be one of {sorted(set(choices))}, got {expected!r}")
        if self.verdict != choices[expected]:
            raise AssertionError(f"expected {choices[expected]!r}, got: {self}")

    def __str__(self) -> str:
        seeds = "seed" if self.n_seeds_a == self.n_seeds_b == 1 else "seeds"
        level = f"{100 * self.confidence:g}%"
        extras = "" if self.higher_is_better else ", lower is better"
        if self.n_dropped:
            extras += f", {self.n_dropped} dropped"
        # 3 decimals, more (up to 6) where an end would print as 0 without being 0, so that
        # "A ahead" never sits next to an interval that seems to touch 0
        ends = (self.difference, self.low, self.high)
        digits = 3
        while digits < 6 and any(v != 0 and round(v, digits) == 0 for v in ends):
            digits += 1
        diff, low, high = (f"{v:+.{digits}f}" for v in ends)
        return (
            f"{self.metric}: {self.names[0]} - {self.names[1]} = {diff} "
            f"[{low}, {high}] ({level}, {self.n_users} users, "
            f"{self.n_seeds_a} x {self.n_seeds_b} {seeds}{extras}): {self.verdict}"
        )


# --------------------------------------------------------------------------- inputs
def _runs(name: str, value) -> list[tuple[str, Metrics]]:
    """``value`` as a list of (label, Metrics): one ``Metrics`` or a list/tuple of them."""
    if isinstance(value, Metrics):
        return [(name, value)]
    runs = getattr(value, "metrics", None)  # a recs_course.recipes.Runs
    if isinstance(runs, list) and isinstance(getattr(value, "label", None), str):
        value = runs
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"{name} must be a Metrics (what an evaluate_* function returns) or a list of them, "
            f"one per training seed; got {type(value).__name__}"
        )
    if not value:
        raise ValueError(f"{name} is empty: give at least one Metrics (one per training seed)")
    for i, m in enumerate(value):
        if not isinstance(m, Metrics):
            raise ValueError(
                f"{name}[{i}] must be a Metrics (what an evaluate_* function returns), "
                f"got {type(m).__name__}"
            )
    return [(f"{name}[{i}]", m) for i, m in enumerate(value)]


def _column(label: str, metrics: Metrics, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The (users, values) of one run, sorted by user; checks the table."""
    import pandas as pd

    table = metrics.per_user
    if not isinstance(table, pd.DataFrame) or "user" not in table.columns:
        raise ValueError(f"{label}.per_user must be a DataFrame with a 'user' column")
    if metric not in table.columns or metric == "user":
        available = [c for c in table.columns if c != "user"]
        raise ValueError(
            f"{label} has no metric {metric!r}: its per-user columns are {available}; "
            "evaluate every run with that metric, or compare one of these"
        )
    users = table["user"].to_numpy()
    if users.dtype.kind not in "iu":
        raise ValueError(f"{label}.per_user['user'] must hold integer user ids, got {users.dtype}")
    try:
        values = table[metric].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label}.per_user[{metric!r}] must hold numbers") from exc
    if np.isinf(values).any():
        raise ValueError(
            f"{label}.per_user[{metric!r}] holds {int(np.isinf(values).sum())} infinite "
            "value(s): a metric is finite, or NaN where undefined"
        )
    order = np.argsort(users, kind="stable")
    users, values = users[order], values[order]
    if len(users) > 1 and (users[1:] == users[:-1]).any():
        dup = users[1:][users[1:] == users[:-1]][0]
        raise ValueError(f"{label}.per_user lists user {dup} more than once")
    return users, values


def _stack(runs: list[tuple[str, Metrics]], metric: str, ref) -> tuple[np.ndarray, tuple]:
    """The ``(S, U)`` table of one side, users in the order of ``ref`` (label, sorted users)."""
    rows = []
    for label, m in runs:
        users, values = _column(label, m, metric)
        if ref is None:
            ref = (label, users)
        elif len(users) != len(ref[1]) or not np.array_equal(users, ref[1]):
            missing = np.setdiff1d(ref[1], users)
            extra = np.setdiff1d(users, ref[1])
            detail = []
            if len(missing):
                detail.append(f"{len(missing)} of its users are missing (e.g. user {missing[0]})")
            if len(extra):
                detail.append(f"it has {len(extra)} other users (e.g. user {extra[0]})")
            raise ValueError(
                f"{label} and {ref[0]} were not evaluated on the same users: "
                f"{' and '.join(detail)}. Evaluate every run of both models on the same test "
                "users (same split, same candidates, same users=), so that users can be paired"
            )
        rows.append(values)
    return np.stack(rows), ref


# --------------------------------------------------------------------------- the interval
def _seed_terms(x: np.ndarray) -> tuple[float, list[tuple[float, float]]]:
    """The seed variance term ``sigma_gamma^2 / S`` of one side's ``(S, U)`` table and the
    (value, dof) of the mean squares behind it, for Satterthwaite; nothing for one seed."""
    s, u = x.shape
    if s < 2:
        return 0.0, []
    seed_means = x.mean(axis=1)
    ms_seed = float(seed_means.var(ddof=1))
    residual = x - x.mean(axis=0) - seed_means[:, None] + x.mean()
    ms_res = float((residual**2).sum()) / ((s - 1) * (u - 1))
    component = max(ms_seed - ms_res / u, 0.0)
    if component == 0.0:
        return 0.0, []
    return component / s, [(ms_seed / s, s - 1), (ms_res / (u * s), (s - 1) * (u - 1))]


def _higher_is_better(metric: str, value) -> bool:
    if value is not None:
        return check_flag("higher_is_better", value)
    from .training import _infer_mode  # fit's rule: loss, rmse, mse, mae, error -> lower

    return _infer_mode(metric) == "max"


def compare(
    a: Metrics | Sequence[Metrics],
    b: Metrics | Sequence[Metrics],
    metric: str,
    *,
    confidence: float = 0.95,
    names: tuple[str, str] | None = None,
    higher_is_better: bool | None = None,
) -> Comparison:
    """Compare models A and B on ``metric``, user by user, over their training seeds.

    See the module docstring for the method (an analytic crossed users x seeds variance, a
    t-interval with Welch-Satterthwaite degrees of freedom) and why it is not a bootstrap. It
    is deterministic: there is no resampling, hence no seed to give.

    Args:
        a: model A's evaluation: a :class:`~recs_course.metrics.Metrics`, or a list of them,
            one per training seed, all on the same users, or the
            :class:`~recs_course.recipes.Runs` of a recipe.
        b: model B's, likewise, on the same users as A (its number of seeds may differ).
        metric: a per-user column of the ``Metrics``, e.g. ``"NDCG@10"``.
        confidence: the level of the interval, in ``(0, 1)``.
        names: the names of A and B in the verdict and the printed line; ``None``: the
            labels of two ``Runs``, else ``("A", "B")``.
        higher_is_better: whether a larger ``metric`` is better; ``None`` reads it from the
            name as ``fit`` does (``loss``, ``rmse``, ``mse``, ``mae``, ``error``: lower).
            ``difference`` is always A - B; only the verdict follows this.

    Returns:
        A :class:`Comparison` (``print`` it; ``.verdict``, ``.ahead(name)``, ``.tied()``,
        ``.assert_verdict(expected)``).

    Raises:
        ValueError: an input that is not a ``Metrics`` or a list of them, a run without
            ``metric``, runs evaluated on other users, repeated users, infinite values, fewer
            than two users with a value in every run, ``confidence`` outside ``(0, 1)``, or
            ``names`` that are not two distinct non-empty strings.
    """
    if not isinstance(metric, str):
        raise ValueError(f"metric must be a metric name such as 'NDCG@10', got {metric!r}")
    if names is None:
        labels = tuple(getattr(x, "label", None) for x in (a, b))
        runs = all(isinstance(getattr(x, "metrics", None), list) for x in (a, b))
        names = labels if runs and all(isinstance(n, str) for n in labels) else ("A", "B")
        if names[0] == names[1]:
            names = (f"{names[0]} (A)", f"{names[1]} (B)")
    confidence = check_number("confidence", confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95 for 95%; got {confidence!r}")
    if (
        not isinstance(names, (tuple, list))
        or len(names) != 2
        or not all(isinstance(n, str) and n for n in names)
        or names[0] == names[1]
    ):
        raise ValueError(f"names must be two distinct non-empty strings, got {names!r}")
    names = (names[0], names[1])
    better_high = _higher_is_better(metric, higher_is_better)
    xa, ref = _stack(_runs("a", a), metric, None)
    xb, _ = _stack(_runs("b", b), metric, ref)

    keep = ~(np.isnan(xa).any(axis=0) | np.isnan(xb).any(axis=0))
    n_users, n_dropped = int(keep.sum()), int((~keep).sum())
    if n_users < 2:
        raise ValueError(
            f"only {n_users} user(s) have a value of {metric!r} in every run of both models "
            f"({n_dropped} have NaN somewhere): an interval needs at least 2"
        )
    xa, xb = xa[:, keep], xb[:, keep]
    d = xa.mean(axis=0) - xb.mean(axis=0)
    difference = float(d.mean())

    user_term = float(d.var(ddof=1)) / n_users
    seed_a, parts_a = _seed_terms(xa)
    seed_b, parts_b = _seed_terms(xb)
    variance = user_term + seed_a + seed_b
    parts = [(user_term, n_users - 1), *parts_a, *parts_b]
    denominator = sum(value**2 / dof for value, dof in parts if value > 0)
    if variance > 0 and denominator > 0:
        from scipy import stats

        dof = variance**2 / denominator
        half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(variance)
    else:  # every run gives every user the same difference: nothing varies
        dof, half = math.inf, 0.0
    return Comparison(
        metric=metric,
        difference=difference,
        low=difference - half,
        high=difference + half,
        confidence=confidence,
        n_users=n_users,
        n_seeds_a=xa.shape[0],
        n_seeds_b=xb.shape[0],
        names=names,
        higher_is_better=better_high,
        n_dropped=n_dropped,
        std_error=math.sqrt(variance),
        dof=float(dof),
    )


def run_seeds(train_and_evaluate: Callable[[int], Metrics], seeds: Iterable[int]) -> list[Metrics]:
    """``[train_and_evaluate(seed) for seed in seeds]``, each call after
    ``recs_course.training.seed_everything(seed)``: the runs of one model for :func:`compare`.

    ``train_and_evaluate`` builds, trains and evaluates a model from scratch and returns the
    ``Metrics`` of its evaluation (every run on the same users); it may use ``seed`` itself (for
    a ``generator=``). Raises ``ValueError`` when it returns anything else, or when ``seeds``
    is empty or repeats a seed (a repeated run is no new evidence).
    """
    from .training import seed_everything

    if not callable(train_and_evaluate):
        raise ValueError("train_and_evaluate must be a function seed -> Metrics")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give the training seeds, e.g. seeds=[0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeats a seed: {seeds}; each run needs its own seed")
    runs = []
    for seed in seeds:
        seed_everything(seed)
        result = train_and_evaluate(seed)
        if not isinstance(result, Metrics):
            raise ValueError(
                f"train_and_evaluate({seed}) returned {type(result).__name__}, not the Metrics "
                "of an evaluate_* function"
            )
        runs.append(result)
    return runs
