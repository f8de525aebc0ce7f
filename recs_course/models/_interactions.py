"""Interaction lists as a checked ``(U, I)`` scipy matrix: the one input path of
``from_interactions`` (Popularity, NGCF, LightGCN, AutoRec) and of AutoRec's rating matrix.

:func:`interaction_csr` checks, each with a ``ValueError`` naming the argument: the sizes
(positive integers), the indices (integers in ``[0, n)``, on the CPU, by
:func:`~recs_course.models.base.check_indices`), equal lengths and, with ratings, real finite
values and one rating per (user, item) pair (the message of the data layer, pointing to
:func:`recs_course.data.drop_duplicate_pairs`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from torch import Tensor

from .base import check_indices, check_positive_int, check_real_dtype

__all__ = ["interaction_csr"]


def _indices(name: str, values: object, upper: int) -> np.ndarray:
    """Indices (tensor, array or list, any shape) as a flat int64 array in ``[0, upper)``,
    checked on the CPU."""
    if isinstance(values, Tensor):
        values = values.detach().to("cpu")
    tensor = check_indices(name, values, upper, ndim=None, what=f"n_{name} = {upper}")
    return tensor.reshape(-1).long().numpy()


def interaction_csr(
    users: object,
    items: object,
    n_users: int,
    n_items: int,
    ratings: object = None,
) -> sp.csr_matrix:
    """The ``(U, I)`` float32 CSR matrix of interaction lists, checked (sorted indices).

    Args:
        users: ``(E,)`` user indices (a tensor, array or list; any shape is flattened).
        items: ``(E,)`` item indices.
        n_users: ``U``; n_items: ``I``.
        ratings: ``None``: a 1 per distinct pair (a repeated pair is one interaction);
            else ``(E,)`` real finite values, one per pair (a repeated pair is an error).
    """
    n_users = check_positive_int("n_users", n_users)
    n_items = check_positive_int("n_items", n_items)
    u = _indices("users", users, n_users)
    i = _indices("items", items, n_items)
    if ratings is None:
        if u.size != i.size:
            raise ValueError(
                f"users and items must have the same length, got {u.size} and {i.size}"
            )
        values = np.ones(u.size, dtype=np.float32)
    else:
        if isinstance(ratings, Tensor):
            ratings = ratings.detach().to("cpu").numpy()
        values = np.asarray(ratings)
        check_real_dtype("ratings", values.dtype)
        values = values.reshape(-1).astype(np.float32)
        if not (u.size == i.size == values.size):
            raise ValueError(
                f"users, items and ratings must have the same length, got {u.size}, {i.size} "
                f"and {values.size}"
            )
    # tocsr() sums repeated pairs into one stored entry (explicit zeros stay stored entries)
    matrix = sp.coo_matrix((values, (u, i)), shape=(n_users, n_items)).tocsr()
    matrix.sort_indices()
    if ratings is None:
        matrix.data[:] = 1.0  # a repeated (user, item) pair is one interaction, not a weight
        return matrix
    if matrix.nnz != u.size:  # a repeated pair: the data layer's message (pandas loads here)
        from ..data._common import check_unique_pairs

        check_unique_pairs(u, i, "ratings", "A rating matrix holds one rating per pair.")
    if not np.isfinite(matrix.data).all():
        bad = int((~np.isfinite(matrix.data)).sum())
        raise ValueError(
            f"ratings holds {bad} NaN or infinite value(s) (or values too large for float32)"
        )
    return matrix
