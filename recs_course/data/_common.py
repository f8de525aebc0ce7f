"""Helpers shared by the data modules: input checks and random generators."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


def check_frame(r: object, required: Iterable[str], what: str = "ratings") -> pd.DataFrame:
    """Check that ``r`` is a DataFrame holding the ``required`` columns and return it.

    Raises ``ValueError`` naming every missing column (and the columns that are there), so a
    mistyped column name is obvious at once.
    """
    if not isinstance(r, pd.DataFrame):
        raise ValueError(
            f"{what} must be a pandas DataFrame with columns {list(required)}, "
            f"got {type(r).__name__}"
        )
    missing = [c for c in required if c not in r.columns]
    if missing:
        raise ValueError(
            f"{what} is missing the column(s) {missing}; it has {list(r.columns)}. "
            f"The course's schema is {list(RATING_COLUMNS)}."
        )
    return r


def check_test_size(test_size: float) -> float:
    """Return ``test_size`` as a float after checking it lies strictly between 0 and 1."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.number)):
        raise ValueError(f"test_size must be a number in (0, 1), got {test_size!r}")
    value = float(test_size)
    if not 0.0 < value < 1.0:
        raise ValueError(f"test_size must be strictly between 0 and 1, got {test_size!r}")
    return value


def numpy_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed (or the generator itself).

    Never touches numpy's global RNG.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def torch_generator(generator: int | torch.Generator | None) -> torch.Generator | None:
    """A ``torch.Generator`` from an int seed, the generator itself, or ``None``.

    ``None`` means "use torch's default generator" (it is consumed, never reseeded), so
    ``torch.manual_seed`` / ``seed_everything`` still make the result reproducible.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, (int, np.integer)):
        raise ValueError(
            f"generator must be a torch.Generator, an int seed or None, got {generator!r}"
        )
    g = torch.Generator()
    g.manual_seed(int(generator))
    return g


def as_index_array(x: object, name: str) -> np.ndarray:
    """Convert ids (tensor, array, list, Series or scalar) to a 1-D int64 numpy array."""
    if isinstance(x, torch.Tensor):
        arr = x.detach().cpu().numpy()
    elif isinstance(x, (pd.Series, pd.Index)):
        arr = x.to_numpy()
    else:
        arr = np.asarray(x)
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return np.array(arr, dtype=np.int64)  # a writable copy: pandas hands out read-only views
