"""Helpers shared by the data modules: input checks and random generators.

Every public function of :mod:`recs_course.data` that reads a ratings frame checks it with
:func:`check_ratings` (and loose index arguments with :func:`as_index_array`), so the rules are
written once, here, and every check is vectorised (no Python loop over rows):

- **ids** (``user_id``, ``item_id``, index arguments): integers that int64 holds exactly. Any
  integer dtype whose values fit in int64, or floats that are finite and integral (``3.0``) and
  fit; they are converted to int64 without loss. NaN / missing values, non-integral floats
  (``1.5``), values outside int64 (uint64 ``>= 2**63``, ``1e19``), booleans, strings and object
  columns are a ``ValueError`` naming the column and an offending value.
- **timestamps**: numbers (integers, or floats that are finite and integral) or ``datetime64``
  values (time-zone aware or not), ordered by their exact value (``datetime64`` by its int64
  count of its own unit, so whole-second datetimes order exactly as their int64 seconds). NaN,
  NaT, infinities, fractions of a second in floats, strings and other dtypes are a
  ``ValueError`` naming the column and its dtype.
- **ratings** (where their values are used): finite numbers; NaN and infinities are a
  ``ValueError`` naming the column.
- **(user, item) pairs**, where a function needs them unique (the splits, the interaction
  matrix): duplicates are a ``ValueError`` saying how many there are, showing one, and
  pointing to :func:`recs_course.data.drop_duplicate_pairs`.
- **encoded indices** (0-based, from ``IdEncoder``): outside ``[0, n)`` is a ``ValueError``
  naming the argument and the valid range; a size (``n_users``/``n_items`` given, or max index
  + 1) above :data:`MAX_DIM` (``2**31 - 1``) is a ``ValueError`` asking whether the ids are
  encoded, before anything of that size is allocated.
- **seeds**: errors name the argument (``seed``, ``generator``), never numpy's or torch's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
import torch

# The exact id conversion is shared with recs_course.models (one rule for ids and indices).
from .._arrays import _INT64_LIMIT, _exact_int64, _first, _numpy_values, check_finite

RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")

ENCODE_HINT = "encode ids with IdEncoder (fitted on data holding them) first"

MAX_DIM = 2**31 - 1
"""Largest number of users or items (rows, columns, embedding rows) an encoded frame may imply.

Encoded indices come from :class:`~recs_course.data.IdEncoder`, so they stay below the number
of distinct ids: an index of ``2**31 - 1`` or more would need two billion users or items, far
beyond any dataset of the course (and beyond the int32 indices scipy's sparse matrices use by
default and some torch kernels use). Such a value is a raw id that was not encoded, and the
matrix or table sized ``max + 1`` from it would take terabytes (a ``MemoryError`` after a long
wait, or the machine swapping): it is refused at once with a ``ValueError`` instead.
"""


def check_dim(n: int, name: str, implied: str = "") -> int:
    """``ValueError`` if the size ``n`` (``n_users``, ``n_items``, or ``max index + 1`` as
    ``implied`` says) exceeds :data:`MAX_DIM`; returns ``n``."""
    if n > MAX_DIM:
        source = f" ({implied})" if implied else ""
        raise ValueError(
            f"{name}={n}{source} is more than 2**31 - 1 = {MAX_DIM}, the most users or items an "
            f"encoded frame can have: are the ids encoded? {ENCODE_HINT[0].upper()}"
            f"{ENCODE_HINT[1:]}, which maps them to 0..n-1"
        )
    return n


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
    repeated = [c for c in required if list(r.columns).count(c) > 1]
    if repeated:
        raise ValueError(
            f"{what} has the column(s) {repeated} more than once; it has {list(r.columns)}: "
            "keep one of each (e.g. r.loc[:, ~r.columns.duplicated()])"
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


def numpy_rng(seed: int | np.random.Generator | None, name: str = "seed") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a non-negative int seed (or the generator itself).

    Never touches numpy's global RNG. ``name`` is the argument's name in messages.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{name} must be an int or a numpy.random.Generator, got {seed!r}")
    if seed < 0:  # numpy's own message ("expected non-negative integer") names no argument
        raise ValueError(f"{name} must be a non-negative int (numpy's seeds are), got {seed}")
    return np.random.default_rng(int(seed))


_TORCH_SEED_LOW, _TORCH_SEED_HIGH = -(2**63), 2**64  # what torch.Generator.manual_seed takes


def torch_generator(
    generator: int | torch.Generator | None, name: str = "generator"
) -> torch.Generator | None:
    """A ``torch.Generator`` from an int seed, the generator itself, or ``None``.

    ``None`` means "use torch's default generator" (it is consumed, never reseeded), so
    ``torch.manual_seed`` / ``seed_everything`` still make the result reproducible. ``name`` is
    the argument's name in messages; an int must lie in ``[-2**63, 2**64)``, the range of
    ``torch.Generator.manual_seed``.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, (int, np.integer)):
        raise ValueError(
            f"{name} must be a torch.Generator, an int seed or None, got {generator!r}"
        )
    if not _TORCH_SEED_LOW <= int(generator) < _TORCH_SEED_HIGH:
        raise ValueError(
            f"{name} must lie in [-2**63, 2**64) (the seeds torch.Generator takes), got "
            f"{generator}: use a smaller seed"
        )
    g = torch.Generator()
    g.manual_seed(int(generator))
    return g


# --------------------------------------------------------------------------------------------
# Values of one column or argument


def check_index_range(
    arr: np.ndarray,
    name: str,
    low: int | None = 0,
    high: int | None = None,
    high_name: str | None = None,
    hint: str = ENCODE_HINT,
) -> np.ndarray:
    """Check that every value of the int64 ``arr`` lies in ``[low, high)`` and return it.

    ``None`` leaves that side open. ``high_name`` is how ``high`` is shown (``"n_items=59"``).
    The ``ValueError`` names ``name``, the valid range and the values found.
    """
    if arr.size == 0 or (low is None and high is None):
        return arr
    lo, hi = int(arr.min()), int(arr.max())
    if (low is not None and lo < low) or (high is not None and hi >= high):
        if high is None:
            valid = f"be >= {low}"
        else:
            valid = f"lie in [{'-inf' if low is None else low}, {high_name or high})"
        raise ValueError(f"{name} must {valid}, got values from {lo} to {hi}: {hint}")
    return arr


def as_index_array(
    x: object,
    name: str,
    low: int | None = None,
    high: int | None = None,
    high_name: str | None = None,
    hint: str = ENCODE_HINT,
) -> np.ndarray:
    """Convert ids (tensor, array, list, Series or scalar) to a new 1-D int64 numpy array.

    The conversion is exact (module docstring) or a ``ValueError`` naming ``name``. With
    ``low`` / ``high``, the values must also lie in ``[low, high)`` (see
    :func:`check_index_range`).
    """
    arr, label = _numpy_values(x, name)
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    arr = _exact_int64(arr, name, label)
    return check_index_range(arr, name, low, high, high_name, hint)


def timestamp_values(s: pd.Series, name: str) -> np.ndarray:
    """The sort keys of a timestamp column (module docstring), or a ``ValueError``."""
    dtype = s.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        na = np.asarray(s.isna())
        if na.any():
            raise ValueError(
                f"{name} holds {int(na.sum())} missing time(s) (NaT), e.g. at position "
                f"{_first(na)}: drop or fill those rows first"
            )
        if isinstance(dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return s.to_numpy().view(np.int64)
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        raise ValueError(
            f"{name} must hold numbers (seconds since 1970, int64 in the course's schema) or "
            f"datetime64 values, got dtype {dtype}: convert it first, e.g. with "
            f".astype('int64') or pandas.to_datetime(...)"
        )
    arr, _ = _numpy_values(s, name)
    if arr.dtype.kind == "f":
        check_finite(arr, name, "time(s)", "drop or fill those rows first")
        fractional = np.trunc(arr) != arr
        if fractional.any():
            raise ValueError(
                f"{name} holds {int(fractional.sum())} non-integer time(s) (e.g. "
                f"{arr[fractional][0]} at position {_first(fractional)}): timestamps are whole "
                "seconds; round them (.round().astype('int64')) or pass datetime64 values"
            )
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold numbers or datetime64 values, got dtype {dtype}")
    return arr


def rating_values(s: pd.Series, name: str, dtype: type | None = None) -> np.ndarray:
    """The values of a rating column (cast to ``dtype`` when given), checked to be finite
    numbers, or a ``ValueError``."""
    if not pd.api.types.is_numeric_dtype(s.dtype):
        raise ValueError(
            f"{name} must hold numbers, got dtype {s.dtype}: convert it first, e.g. with "
            ".astype('float32')"
        )
    arr, _ = _numpy_values(s, name)
    if dtype is not None:
        with np.errstate(over="ignore"):  # an overflow becomes inf, reported below
            arr = arr.astype(dtype)
    check_finite(arr, name, "value(s)", "drop those rows (or fill them) first")
    return arr


# --------------------------------------------------------------------------------------------
# (user, item) pairs


def pair_keys(user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """One int64 per row, equal exactly when the (user, item) pairs are equal.

    ``user`` and ``item`` are int64 arrays of the same length (any values).
    """
    if user.size == 0:
        return np.zeros(0, dtype=np.int64)
    u_lo, i_lo = int(user.min()), int(item.min())
    u_span, i_span = int(user.max()) - u_lo + 1, int(item.max()) - i_lo + 1
    if u_span * i_span > _INT64_LIMIT:  # sparse huge ids: number them densely first
        user = np.unique(user, return_inverse=True)[1].astype(np.int64)
        item = np.unique(item, return_inverse=True)[1].astype(np.int64)
        u_lo = i_lo = 0
        i_span = int(item.max()) + 1
    # The differences fit in int64 (they are below the spans), even when a subtraction of
    # two large int64 values wraps around on the way.
    with np.errstate(over="ignore"):
        return (user - np.int64(u_lo)) * np.int64(i_span) + (item - np.int64(i_lo))


def check_unique_pairs(user: np.ndarray, item: np.ndarray, what: str, why: str) -> None:
    """``ValueError`` if a (user, item) pair occurs twice: how many, one example, the fix."""
    keys = pair_keys(user, item)
    ordered = np.sort(keys)
    repeat = ordered[1:] == ordered[:-1]
    if not repeat.any():
        return
    n_extra = int(repeat.sum())
    n_pairs = int((repeat & np.r_[True, ~repeat[:-1]]).sum())
    example = ordered[1:][repeat][0]
    rows = np.flatnonzero(keys == example)
    raise ValueError(
        f"{what} holds {n_extra} duplicate (user, item) pair(s): {n_pairs} (user_id, item_id) "
        f"pair(s) occur more than once, e.g. user_id={user[rows[0]]}, item_id={item[rows[0]]} "
        f"at positions {rows[:5].tolist()}. {why} Keep one row per pair first with "
        f"recs_course.data.drop_duplicate_pairs({what}) (each pair's latest rating; "
        "keep='first' or 'last' keeps by row order)."
    )


# --------------------------------------------------------------------------------------------
# Ratings frames


@dataclass(frozen=True)
class RatingsColumns:
    """The checked columns of a ratings frame (``None`` where not asked for)."""

    user: np.ndarray | None = None
    item: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    rating: np.ndarray | None = None


def check_ratings(
    r: object,
    what: str = "ratings",
    *,
    ids: tuple[str, ...] = ("user_id", "item_id"),
    timestamp: bool = False,
    rating: bool = False,
    rating_dtype: type | None = None,
    unique_pairs: str | None = None,
    encoded: bool = False,
    n_users: int | None = None,
    n_items: int | None = None,
) -> RatingsColumns:
    """Check a ratings frame by the rules of the module docstring; return its checked columns.

    Args:
        r: the frame; it must hold the ``ids`` columns, plus ``timestamp`` / ``rating`` when
            asked for.
        what: the argument's name in messages (``"ratings"``, ``"train"``, ...).
        ids: which id columns to check and return (``user_id`` and/or ``item_id``).
        timestamp: check and return ``timestamp`` (sort keys: numbers, or datetime64 as int64).
        rating: check and return ``rating`` (finite numbers, cast to ``rating_dtype`` if given).
        unique_pairs: when given, (user_id, item_id) pairs must be unique; the text says why.
        encoded: ids are 0-based indices: they must be ``>= 0`` and below ``n_users`` /
            ``n_items`` where those are given, else below :data:`MAX_DIM` (larger values are
            raw ids: see there).

    Returns:
        :class:`RatingsColumns`: ids as new int64 arrays, the timestamp sort keys, the ratings.
    """
    required = list(ids) + (["timestamp"] if timestamp else []) + (["rating"] if rating else [])
    check_frame(r, required, what=what)
    bounds = {"user_id": n_users, "item_id": n_items}
    arrays: dict[str, np.ndarray] = {}
    for col in ids:
        high = bounds.get(col)
        arrays[col] = as_index_array(
            r[col],
            f"{what}[{col!r}]",
            low=0 if encoded else None,
            high=high if encoded else None,
            high_name=f"n_{col[:-3]}s={high}",
        )
        if encoded and high is None and arrays[col].size:
            top = int(arrays[col].max())
            check_dim(top + 1, f"n_{col[:-3]}s", f"max {what}[{col!r}] + 1, the size it implies")
    if unique_pairs is not None:
        check_unique_pairs(arrays["user_id"], arrays["item_id"], what, unique_pairs)
    return RatingsColumns(
        user=arrays.get("user_id"),
        item=arrays.get("item_id"),
        timestamp=timestamp_values(r["timestamp"], f"{what}['timestamp']") if timestamp else None,
        rating=rating_values(r["rating"], f"{what}['rating']", rating_dtype) if rating else None,
    )


def round_half_up(fraction: float, sizes: np.ndarray | int) -> np.ndarray:
    """``floor(fraction * n + 1/2)`` for each ``n`` of ``sizes``, the course's one rounding rule
    (test sizes of the splits, ``subsample_users(frac=)``): ``fraction`` is read as the decimal
    Python writes for it (``repr``: ``0.29 * 50`` gives 15, where the float product 14.4999...
    would give 14) and the product is computed in exact integers, ``(2 p n + q) // (2 q)`` with
    ``p / q = fraction`` (int64 where that cannot overflow, else Python ints)."""
    n = np.asarray(sizes, dtype=np.int64)
    p, q = Fraction(repr(float(fraction))).as_integer_ratio()
    if n.size and 2 * abs(p) * int(np.abs(n).max()) + q >= 2**63:
        n = n.astype(object)
    return np.asarray((2 * p * n + q) // (2 * q)).astype(np.int64)
