"""Mini-batches of aligned tensors, without a per-sample ``Dataset``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .._arrays import _numpy_values
from ..utils import check_flag, check_positive_int, get_device
from ._common import as_index_array, check_frame, rating_values, torch_generator

__all__ = ["Batches", "to_tensors"]


def to_tensors(
    frame, columns: tuple[str, ...] = ("user_id", "item_id", "rating")
) -> tuple[torch.Tensor, ...]:
    """The ``columns`` of an (encoded) ratings frame as tensors, one per column.

    Each column is copied once into a tensor, ready for :class:`Batches` or a model: the id
    columns (``user_id``, ``item_id``) as int64, converted exactly (``recs_course.data``'s id
    rule: NaN, ``1.5`` or ``2**63`` are a ``ValueError``), the others in their own dtype (float32
    ratings in the course's schema), checked to be finite numbers. The frame is not modified.

    ``columns`` is a sequence of column names; a single name (``"user_id"``) means that one
    column (a tuple of one tensor is returned).

    Example: ``users, items, ratings = to_tensors(train)``.
    """
    if isinstance(columns, str):
        columns = (columns,)
    try:
        columns = tuple(columns)
    except TypeError:
        raise ValueError(
            f"columns must be a column name or a sequence of them, got {columns!r}"
        ) from None
    if not all(isinstance(c, str) for c in columns):
        raise ValueError(f"columns must hold column names (str), got {list(columns)!r}")
    check_frame(frame, columns)
    tensors = []
    for c in columns:
        name = f"frame[{c!r}]"
        if c in ("user_id", "item_id"):
            values = as_index_array(frame[c], name)
        else:
            values = np.array(rating_values(frame[c], name))  # a writable copy
        tensors.append(torch.from_numpy(values))
    return tuple(tensors)


def _as_tensor(t: object, k: int) -> torch.Tensor:
    """Argument ``k`` of :class:`Batches` as a tensor: a tensor as it is, else a copy of its
    numbers (the shared conversion of ``recs_course._arrays``: pandas' missing values are an
    error, never a silent NaN)."""
    if isinstance(t, torch.Tensor):
        return t
    name = f"Batches argument {k + 1} (tensors[{k}])"
    try:
        arr, label = _numpy_values(t, name)
    except ValueError as exc:
        if name in str(exc):
            raise
        raise ValueError(f"{name} cannot be read as an array of numbers ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold numbers (bool, integers or floats), got {type(t).__name__} of "
            f"dtype {label}: convert it first (e.g. .astype('int64'), pandas.factorize for text)"
        )
    # a copy: a pandas column's array is read-only and torch would warn about it
    return torch.from_numpy(np.array(arr))


class Batches:
    """Iterate over aligned tensors in mini-batches.

    ``Batches(users, items, labels, batch_size=1024)`` yields tuples
    ``(users[idx], items[idx], labels[idx])`` of ``batch_size`` rows (the last one may be
    shorter). With ``shuffle=True`` each pass draws one ``randperm`` and gathers each batch
    with one index-select per tensor; without shuffling batches are slices (views). This is
    the fast replacement for a ``Dataset`` that builds tensors one sample at a time.

    Args:
        *tensors: tensors with the same first dimension ``N``, or numbers in another form
            (numpy arrays, pandas Series, lists), copied into tensors. Those must hold numbers
            (bool, integers or floats): text, objects, ragged lists and missing values (NaN of
            pandas' nullable ``Int64``, ...) are a ``ValueError`` naming the argument.
        batch_size: rows per batch, a positive integer.
        shuffle: a new random order at every pass (a bool, as ``drop_last``: ``"no"`` is a
            ``ValueError``, not ``True``).
        generator: ``torch.Generator`` or int seed for the order; ``None`` uses torch's default
            generator. An int seed makes every pass draw from one generator created here, so
            passes differ but the sequence of passes is reproducible.
        drop_last: skip the final incomplete batch.
        device: move each batch there (``.to(device)``); ``None`` leaves tensors where they are.
            Checked at once with :func:`recs_course.utils.get_device` (``"auto"`` picks one):
            an unknown device or one this machine lacks is a ``ValueError`` here, not later.
    """

    def __init__(
        self,
        *tensors,
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | int | None = None,
        drop_last: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("Batches needs at least one tensor")
        self.tensors = tuple(_as_tensor(t, k) for k, t in enumerate(tensors))
        lengths = [t.shape[0] if t.dim() else None for t in self.tensors]
        if None in lengths:
            raise ValueError("Batches needs tensors with at least one dimension, got a scalar")
        if len(set(lengths)) != 1:
            raise ValueError(
                f"all tensors must have the same length (first dimension), got {lengths}"
            )
        self.n = int(lengths[0])
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = check_flag("shuffle", shuffle)
        self.generator = torch_generator(generator)
        self.drop_last = check_flag("drop_last", drop_last)
        self.device = None if device is None else get_device(device)

    def __len__(self) -> int:
        """Number of batches per pass."""
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        stop = len(self) * self.batch_size if self.drop_last else self.n
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else None
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, self.n)
            if order is None:
                batch = tuple(t[start:end] for t in self.tensors)
            else:
                idx = order[start:end]
                batch = tuple(t.index_select(0, idx.to(t.device)) for t in self.tensors)
            if self.device is not None:
                batch = tuple(t.to(self.device, non_blocking=True) for t in batch)
            yield batch

    def __repr__(self) -> str:
        return (
            f"Batches(n={self.n}, batch_size={self.batch_size}, batches={len(self)}, "
            f"shuffle={self.shuffle})"
        )
