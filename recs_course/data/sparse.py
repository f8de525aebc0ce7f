"""The users x items interaction matrix as a scipy sparse matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._common import ENCODE_HINT, check_dim, check_ratings, check_unique_pairs

__all__ = ["interaction_matrix"]


def _check_size(n: int | None, what: str) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n_{what}s must be a non-negative integer, got {n!r}")
    return check_dim(int(n), f"n_{what}s")


def interaction_matrix(
    r: pd.DataFrame,
    n_users: int | None = None,
    n_items: int | None = None,
    values: str = "rating",
) -> sp.csr_matrix:
    """The ``(n_users, n_items)`` CSR matrix of encoded ratings.

    Args:
        r: encoded ratings (0-based ``user_id`` / ``item_id`` indices, e.g. from
            ``IdEncoder.transform``); ``rating`` is needed for ``values="rating"``.
        n_users, n_items: the shape; default ``max index + 1``. Indices ``>= n`` are an error,
            and so is a size above ``2**31 - 1`` (given, or implied by the indices): encoded
            indices never get there, so such an index is a raw id (see
            ``recs_course.data._common.MAX_DIM``); the matrix would not fit in memory.
        values: ``"rating"`` stores the ratings (finite numbers: NaN or infinite ratings are
            an error), ``"ones"`` stores 1.0 for every interaction.

    Returns:
        ``scipy.sparse.csr_matrix`` of float32 with sorted column indices. Each (user, item)
        pair must occur at most once: duplicates are an error (keep one row per pair first
        with :func:`recs_course.data.drop_duplicate_pairs`) rather than being summed silently.
        Indices outside ``[0, n_users)`` / ``[0, n_items)`` are an error.
    """
    if values not in ("rating", "ones"):
        raise ValueError(f"values must be 'rating' or 'ones', got {values!r}")
    n_users, n_items = _check_size(n_users, "user"), _check_size(n_items, "item")
    cols = check_ratings(
        r, "r", rating=values == "rating", rating_dtype=np.float32, encoded=True,
        n_users=n_users, n_items=n_items,
    )  # fmt: skip
    u, i = cols.user, cols.item
    shape = tuple(
        (int(x.max()) + 1 if x.size else 0) if n is None else n
        for x, n in ((u, n_users), (i, n_items))
    )
    data = cols.rating if values == "rating" else np.ones(len(u), dtype=np.float32)
    try:
        m = sp.csr_matrix((data, (u, i)), shape=shape, dtype=np.float32)
    except MemoryError as exc:  # the row pointers alone take 8 bytes per user
        raise ValueError(
            f"a ({shape[0]}, {shape[1]}) matrix does not fit in memory (n_users={shape[0]}, "
            f"n_items={shape[1]}; given, or max index + 1): are the ids encoded? {ENCODE_HINT}"
        ) from exc
    m.sum_duplicates()
    if m.nnz != len(u):  # only duplicates lower nnz (a pair summed to zero stays stored)
        check_unique_pairs(u, i, "r", "A matrix cell holds one value; duplicates would be summed.")
    m.sort_indices()
    return m
