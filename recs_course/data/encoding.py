"""Map raw user and item ids to contiguous 0-based indices, and back."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import as_index_array, check_ratings

__all__ = ["IdEncoder"]


class IdEncoder:
    """Encode raw ``user_id`` / ``item_id`` values as contiguous indices ``0..n-1``.

    Fit it on the training ratings only, then apply it to every split, so a model never sees
    an index learnt from test data. Indices follow the sorted raw ids (raw id order is kept).

    Raw ids must be integers that int64 holds exactly (any integer dtype, or integral floats
    such as ``3.0``); NaN, ``1.5``, uint64 values ``>= 2**63`` or ``1e19`` are a ``ValueError``
    rather than being rounded or wrapped, so :meth:`inverse_users` / :meth:`inverse_items`
    give back exactly the ids that were encoded (as int64).

    Example::

        enc = IdEncoder().fit(train)
        train_idx = enc.transform(train)
        test_idx = enc.transform(test, unknown="drop")   # users/items unseen in training

    Attributes:
        user_ids: ``(n_users,)`` sorted raw user ids (int64); index ``k`` encodes
            ``user_ids[k]``.
        item_ids: ``(n_items,)`` sorted raw item ids (int64).
    """

    def __init__(self) -> None:
        self.user_ids: np.ndarray | None = None
        self.item_ids: np.ndarray | None = None

    # -- fitting --------------------------------------------------------------------------
    def fit(self, ratings: pd.DataFrame) -> IdEncoder:
        """Learn the users and items present in ``ratings`` (columns ``user_id``, ``item_id``)."""
        cols = check_ratings(ratings)
        self.user_ids = np.unique(cols.user)
        self.item_ids = np.unique(cols.item)
        return self

    def fit_transform(self, ratings: pd.DataFrame) -> pd.DataFrame:
        """``fit(ratings)`` then ``transform(ratings)``."""
        return self.fit(ratings).transform(ratings)

    def _check_fitted(self) -> None:
        if self.user_ids is None or self.item_ids is None:
            raise ValueError("this IdEncoder is not fitted yet: call .fit(train_ratings) first")

    @property
    def n_users(self) -> int:
        """Number of known users (the size of a user embedding table)."""
        self._check_fitted()
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of known items (the size of an item embedding table)."""
        self._check_fitted()
        return len(self.item_ids)

    # -- raw ids -> indices -----------------------------------------------------------------
    @staticmethod
    def _lookup(known: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Indices of ``raw`` in the sorted ``known`` ids, ``-1`` where absent (vectorised)."""
        if len(known) == 0:
            return np.full(len(raw), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(known, raw), len(known) - 1)
        return np.where(known[pos] == raw, pos, -1).astype(np.int64)

    def transform(self, ratings: pd.DataFrame, unknown: str = "error") -> pd.DataFrame:
        """Replace raw ids by indices in a copy of ``ratings`` (other columns are kept).

        Args:
            ratings: a frame with ``user_id`` and ``item_id``; it is not modified.
            unknown: what to do with rows whose user or item was not seen by :meth:`fit`:
                ``"error"`` raises ``ValueError`` saying how many there are; ``"drop"`` removes
                those rows.

        Returns:
            A new frame with a fresh ``RangeIndex`` and int64 indices in ``user_id`` and
            ``item_id``.
        """
        self._check_fitted()
        if unknown not in ("error", "drop"):
            raise ValueError(f"unknown must be 'error' or 'drop', got {unknown!r}")
        cols = check_ratings(ratings)
        u = self._lookup(self.user_ids, cols.user)
        i = self._lookup(self.item_ids, cols.item)
        bad = (u < 0) | (i < 0)
        out = ratings.copy()
        out["user_id"] = u
        out["item_id"] = i
        if bad.any():
            if unknown == "error":
                n_u = len(np.unique(cols.user[u < 0]))
                n_i = len(np.unique(cols.item[i < 0]))
                raise ValueError(
                    f"{int(bad.sum())} of {len(bad)} rows have ids the encoder was not fitted "
                    f"on: {n_u} unknown user(s), {n_i} unknown item(s). Pass unknown='drop' to "
                    "remove those rows (typical for test splits), or fit on data that holds them."
                )
            out = out.loc[~bad]
        return out.reset_index(drop=True)

    def transform_users(self, raw_ids) -> np.ndarray:
        """Indices ``(n,)`` of raw user ids; ``ValueError`` if any is unknown."""
        return self._transform_ids(raw_ids, self.user_ids, "user")

    def transform_items(self, raw_ids) -> np.ndarray:
        """Indices ``(n,)`` of raw item ids; ``ValueError`` if any is unknown."""
        return self._transform_ids(raw_ids, self.item_ids, "item")

    def _transform_ids(self, raw_ids, known: np.ndarray | None, what: str) -> np.ndarray:
        self._check_fitted()
        raw = as_index_array(raw_ids, f"{what} ids")
        idx = self._lookup(known, raw)
        if (idx < 0).any():
            missing = np.unique(raw[idx < 0])
            raise ValueError(
                f"{len(missing)} unknown {what} id(s), e.g. {missing[:5].tolist()}: the encoder "
                f"was not fitted on them"
            )
        return idx

    # -- indices -> raw ids -----------------------------------------------------------------
    def inverse_users(self, idx) -> np.ndarray:
        """Raw user ids ``(n,)`` of indices (tensor, array or list)."""
        return self._inverse(idx, self.user_ids, "user")

    def inverse_items(self, idx) -> np.ndarray:
        """Raw item ids ``(n,)`` of indices (tensor, array or list)."""
        return self._inverse(idx, self.item_ids, "item")

    def _inverse(self, idx, known: np.ndarray | None, what: str) -> np.ndarray:
        self._check_fitted()
        arr = as_index_array(
            idx,
            f"{what} indices",
            low=0,
            high=len(known),
            hint=f"indices come from this encoder, which knows {len(known)} {what}(s)",
        )
        return known[arr]

    def __repr__(self) -> str:
        if self.user_ids is None:
            return "IdEncoder(not fitted)"
        return f"IdEncoder(n_users={self.n_users}, n_items={self.n_items})"
