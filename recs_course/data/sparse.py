"""The users x items interaction matrix as a scipy sparse matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._common import as_index_array, check_frame

__all__ = ["interaction_matrix"]


def _size(ids: np.ndarray, n: int | None, what: str) -> int:
    if ids.size and ids.min() < 0:
        raise ValueError(f"{what} indices must be >= 0, got {ids.min()}: encode ids with IdEncoder")
    needed = int(ids.max()) + 1 if ids.size else 0
    if n is None:
        return needed
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n_{what}s must be a non-negative integer, got {n!r}")
    if needed > n:
        raise ValueError(
            f"{what} index {needed - 1} is out of range for n_{what}s={n}: encode the ids with "
            f"IdEncoder (fitted on data holding them) or pass a larger n_{what}s"
        )
    return int(n)


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
        n_users, n_items: the shape; default ``max index + 1``. Indices ``>= n`` are an error.
        values: ``"rating"`` stores the ratings, ``"ones"`` stores 1.0 for every interaction.

    Returns:
        ``scipy.sparse.csr_matrix`` of float32 with sorted column indices. Each (user, item)
        pair must occur at most once: duplicates are an error (drop them first, e.g. with
        ``r.drop_duplicates(["user_id", "item_id"], keep="last")``) rather than being summed
        silently.
    """
    if values not in ("rating", "ones"):
        raise ValueError(f"values must be 'rating' or 'ones', got {values!r}")
    check_frame(r, ["user_id", "item_id"] + (["rating"] if values == "rating" else []))
    u = as_index_array(r["user_id"], "user_id")
    i = as_index_array(r["item_id"], "item_id")
    shape = (_size(u, n_users, "user"), _size(i, n_items, "item"))
    if values == "rating":
        data = r["rating"].to_numpy(dtype=np.float32)
    else:
        data = np.ones(len(r), dtype=np.float32)
    m = sp.csr_matrix((data, (u, i)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    if m.nnz != len(r):
        # A pair summed to zero would also lower nnz; only duplicates matter here.
        keys = u * shape[1] + i
        n_dup = len(keys) - len(np.unique(keys))
        if n_dup:
            raise ValueError(
                f"{n_dup} duplicate (user, item) pair(s) in the ratings: drop them first, e.g. "
                "r.drop_duplicates(['user_id', 'item_id'], keep='last')"
            )
    m.sort_indices()
    return m
