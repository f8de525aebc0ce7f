"""Train/test splits without leakage, and explicit -> implicit feedback.

Every split returns ``(train, test)``: new frames with fresh ``RangeIndex``es, rows in their
original relative order, the input untouched. Nothing is encoded here: split the raw ratings,
then fit an ``IdEncoder`` on ``train`` only.

Two rules hold for every split (DESIGN.md states them too):

- **Order by time** (:func:`chronological_split`, :func:`leave_one_out`): rating *a* is later
  than rating *b* when ``(timestamp, item_id, user_id)`` of *a* is larger, compared in that
  order: at equal timestamps the larger ``item_id`` counts as later, then the larger
  ``user_id`` (which only matters in the global split). The (user, item) pairs are unique, so
  this is a total order: the split never depends on the row order.
- **Test sizes**: out of ``n`` ratings (all of them for :func:`random_split` and the global
  :func:`chronological_split`; each user's for ``per_user=True`` and :func:`stratified_split`),
  ``n_test = floor(test_size * n + 1/2)`` (round half up), with ``test_size`` taken as the
  decimal Python writes for it (``repr``: ``0.29`` is 29/100 exactly, so ``0.29 * 50 = 14.5``
  gives 15 although the float product is ``14.499999999999998``), then clipped to
  ``[1, n - 1]``. ``n = 1``: a user's single rating stays in ``train``; the global splits need
  ``n >= 2``. :func:`leave_one_out` takes ``n_test = min(1, n - 1)`` per user.

Input rules (checked by every split, vectorised; see ``recs_course.data._common``):

- each (``user_id``, ``item_id``) pair occurs at most once: a pair rated twice could land in
  both ``train`` and ``test``, so duplicates are a ``ValueError`` pointing to
  :func:`drop_duplicate_pairs`, which keeps one row per pair;
- ids are integers that int64 holds exactly (NaN, ``1.5``, ``2**63`` are errors);
- where time matters (:func:`chronological_split`, :func:`leave_one_out`), ``timestamp`` holds
  numbers (integers, or integral finite floats) or ``datetime64`` values; NaN, NaT, strings are
  errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils import check_flag
from ._common import (
    check_frame,
    check_ratings,
    check_test_size,
    numpy_rng,
    pair_keys,
    rating_values,
    round_half_up,
)

__all__ = [
    "drop_duplicate_pairs",
    "random_split",
    "chronological_split",
    "leave_one_out",
    "stratified_split",
    "to_implicit",
]


_LEAK = "A pair rated twice could put the same (user, item) in train and in test."


def _split(r: pd.DataFrame, test_mask: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = r.iloc[np.flatnonzero(~test_mask)].reset_index(drop=True)
    test = r.iloc[np.flatnonzero(test_mask)].reset_index(drop=True)
    return train, test


def _n_test(sizes: np.ndarray, test_size: float) -> np.ndarray:
    """The test counts for groups of ``sizes`` ratings, by the rule of the module docstring.

    ``floor(p / q * n + 1/2) = (2 p n + q) // (2 q)`` with ``p / q`` the decimal ``test_size``
    in exact integers (int64 where it cannot overflow, else Python ints), clipped to
    ``[min(1, n - 1), n - 1]``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    rounded = round_half_up(test_size, sizes)
    return np.clip(rounded, np.minimum(1, sizes - 1), sizes - 1)


def _global_n_test(n: int, test_size: float) -> int:
    if n < 2:
        raise ValueError(f"cannot split {n} rating(s) into a train and a test set: need at least 2")
    return int(_n_test(np.array([n]), test_size)[0])


def _per_user_tail_mask(
    user: np.ndarray, keys: tuple[np.ndarray, ...], test_size: float | None
) -> np.ndarray:
    """Mark, for each user, the last ``n_test`` of their rows when sorted by ``keys``.

    ``keys`` are sort keys from least to most significant (as for ``np.lexsort``), the user
    being added as the most significant. ``n_test`` follows the rule of the module docstring
    for ``test_size``; ``test_size=None`` means one per user with at least two rows.
    """
    order = np.lexsort((*keys, user))
    su = user[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    sizes = np.diff(np.r_[starts, len(su)])
    n_test = np.minimum(1, sizes - 1) if test_size is None else _n_test(sizes, test_size)
    rank = np.arange(len(su)) - np.repeat(starts, sizes)
    mask = np.empty(len(su), dtype=bool)
    mask[order] = rank >= np.repeat(sizes - n_test, sizes)
    return mask


def random_split(
    r: pd.DataFrame, test_size: float = 0.2, seed: int | np.random.Generator = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A uniformly random set of ``n_test`` rows as test (count: module docstring).

    Users or items may end up in ``test`` only: handle them with
    ``IdEncoder.transform(test, unknown="drop")``.
    """
    test_size = check_test_size(test_size)
    check_ratings(r, unique_pairs=_LEAK)
    n_test = _global_n_test(len(r), test_size)
    mask = np.zeros(len(r), dtype=bool)
    mask[numpy_rng(seed).permutation(len(r))[:n_test]] = True
    return _split(r, mask)


def chronological_split(
    r: pd.DataFrame, test_size: float = 0.2, per_user: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by time: the future is the test set.

    ``per_user=False``: the latest ``n_test`` of all ratings, so every test rating is at least
    as recent as every training rating. ``per_user=True``: each user's latest ``n_test`` of
    their ratings. "Latest" and ``n_test`` follow the order by time and the count rule of the
    module docstring: at equal timestamps the larger ``item_id`` (then ``user_id``) is later.
    """
    per_user = check_flag("per_user", per_user)
    test_size = check_test_size(test_size)
    cols = check_ratings(r, timestamp=True, unique_pairs=_LEAK)
    if not per_user:
        n_test = _global_n_test(len(r), test_size)
        ts = cols.timestamp
        # The rows later than the cut's timestamp, plus the latest of the rows at that time by
        # (item_id, user_id): the same rows as the tail of a full sort, in O(n) but for the tie.
        cut = np.partition(ts, len(r) - n_test)[len(r) - n_test]
        mask = ts > cut
        tied = np.flatnonzero(ts == cut)
        order = np.lexsort((cols.user[tied], cols.item[tied]))
        mask[tied[order[len(tied) - (n_test - int(mask.sum())) :]]] = True
        return _split(r, mask)
    if len(r) == 0:
        raise ValueError("cannot split an empty ratings frame")
    mask = _per_user_tail_mask(cols.user, (cols.item, cols.timestamp), test_size)
    return _split(r, mask)


def leave_one_out(r: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's latest rating (the NCF protocol).

    The latest by the order by time of the module docstring: the largest ``timestamp``, and
    among ratings with the same timestamp the one with the larger ``item_id``, so the choice
    never depends on row order. Users with a single rating keep it in ``train`` and have no
    test rating.

    Returns:
        ``(train, test)`` with at most one test row per user.
    """
    cols = check_ratings(r, timestamp=True, unique_pairs=_LEAK)
    if len(r) == 0:
        raise ValueError("cannot split an empty ratings frame")
    mask = _per_user_tail_mask(cols.user, (cols.item, cols.timestamp), None)
    return _split(r, mask)


def stratified_split(
    r: pd.DataFrame, test_size: float = 0.2, seed: int | np.random.Generator = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random ``n_test`` of each user's ratings as test (count: module docstring).

    Every user with at least two ratings has at least one rating in each part; users with one
    rating stay in ``train``.
    """
    test_size = check_test_size(test_size)
    cols = check_ratings(r, unique_pairs=_LEAK)
    if len(r) == 0:
        raise ValueError("cannot split an empty ratings frame")
    noise = numpy_rng(seed).random(len(r))
    mask = _per_user_tail_mask(cols.user, (noise,), test_size)
    return _split(r, mask)


def to_implicit(r: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """Explicit ratings -> implicit feedback.

    Keeps the rows with ``rating >= threshold`` (all rows when ``threshold`` is ``None``) and
    sets their ``rating`` to ``1.0`` (float32). Returns a new frame with a fresh index. With a
    ``threshold``, ratings must be finite numbers (a NaN rating is an error, not a silent drop).
    """
    check_frame(r, ["user_id", "item_id", "rating"])
    if threshold is None:
        out = r.copy()
    else:
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float, np.number))
            or not np.isfinite(threshold)
        ):
            raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
        values = rating_values(r["rating"], "ratings['rating']")
        out = r.loc[values >= threshold].copy()
    out["rating"] = np.ones(len(out), dtype=np.float32)
    return out.reset_index(drop=True)


def drop_duplicate_pairs(ratings: pd.DataFrame, keep: str = "latest") -> pd.DataFrame:
    """Keep one row per (``user_id``, ``item_id``) pair, as the splits require.

    Args:
        ratings: a ratings frame; it is not modified.
        keep: which row of a repeated pair to keep: ``"latest"`` the one with the largest
            ``timestamp`` (ties: the later row), ``"first"`` / ``"last"`` the first / last by
            row order.

    Returns:
        A new frame with the kept rows in their original relative order and a fresh
        ``RangeIndex`` (the same rows when no pair repeats).
    """
    if keep not in ("latest", "first", "last"):
        raise ValueError(f"keep must be 'latest', 'first' or 'last', got {keep!r}")
    cols = check_ratings(ratings, timestamp=keep == "latest")
    keys = pair_keys(cols.user, cols.item)
    pos = np.arange(len(keys))
    if keep == "first":
        pos = -pos  # the first row sorts last within its pair
    sort_keys = (pos, keys) if keep != "latest" else (pos, cols.timestamp, keys)
    order = np.lexsort(sort_keys)
    sk = keys[order]
    last = np.r_[sk[1:] != sk[:-1], True] if len(sk) else np.zeros(0, dtype=bool)
    kept = np.sort(order[last])
    return ratings.iloc[kept].reset_index(drop=True)
