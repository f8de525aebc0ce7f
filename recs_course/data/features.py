"""Side information: item and user features as index bags for ``nn.EmbeddingBag``.

A hybrid model (:class:`recs_course.models.HybridMF`) represents an item by the sum of the
embedding of its id and the embeddings of its *features* (its genres, the bucket of its release
year, ...). This module turns a metadata frame (``load_movielens(...).items`` or ``.users``)
into those features:

- :class:`FeatureEncoder` learns, on training data, the vocabulary of each *field* (a column):
  ``categorical`` fields hold one value per row (gender, occupation), ``multi`` fields a list of
  values (genres), ``buckets`` fields a number cut into intervals (release year, age). Each
  known value is one feature; each field also has one shared *unknown* feature, which a row
  gets for that field when its value is missing (NaN, an empty list), was not seen when
  fitting, or was seen fewer than ``min_count`` times. So every row has at least one feature
  per field and a value the training data never showed maps to a feature that was trained (the
  unknown one), never to an error or to an untrained row.
- :meth:`FeatureEncoder.transform` returns :class:`FeatureBags`: one bag of feature indices per
  row, in the order of the ids asked for (for example ``IdEncoder.item_ids``, so that row ``k``
  is the item of index ``k``). Bags are padded to one width: ``indices`` ``(R, W)`` with the
  padding index ``n_features``, and ``weights`` ``(R, W)``, what
  ``nn.EmbeddingBag(n_features + 1, d, mode="sum", padding_idx=n_features)`` takes as
  ``bag(indices, per_sample_weights=weights)``. Each field contributes one vector: a
  single-valued field's feature with weight 1, a multi-valued field's features with weight
  ``1 / (its number of known values)`` each (their mean).

The encoder holds plain data only (strings, numbers, lists): it pickles, and
:meth:`FeatureEncoder.to_dict` / :meth:`FeatureEncoder.from_dict` store it in a checkpoint that
loads with ``torch.load(weights_only=True)`` (see :func:`recs_course.training.save_checkpoint`).

MovieLens presets: :func:`movielens_item_encoder` (genres, release year in buckets) and
:func:`movielens_user_encoder` (gender, occupation, age in MovieLens-1M's age groups).

Typical use, with ids encoded on the training ratings::

    ml = load_movielens("ml-100k")
    ids = IdEncoder().fit(train)
    items = movielens_item_encoder().fit(ml.items, ids=ids.item_ids)   # training items only
    item_bags = items.transform(ml.items, ids=ids.item_ids)            # row k: item index k
    model = HybridMF(ids.n_users, ids.n_items, item_features=item_bags)

Every step is vectorised (``explode``, ``searchsorted``, ``get_indexer``); nothing loops over
rows in Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
import torch

from ..utils import check_positive_int
from ._common import as_index_array

__all__ = [
    "FeatureBags",
    "FeatureEncoder",
    "movielens_item_encoder",
    "movielens_user_encoder",
    "YEAR_EDGES",
    "AGE_EDGES",
]

YEAR_EDGES = (1950, 1960, 1970, 1980, 1990, 1995, 1996, 1997, 1998)
"""Release-year buckets of the MovieLens preset: before 1950, the 1950s to the 1980s by decade,
1990-1994, then one bucket per year from 1995 (more than half of ml-100k's films are from
1995-1998), and 1998 or later."""

AGE_EDGES = (18, 25, 35, 45, 50, 56)
"""Age buckets of the MovieLens preset: MovieLens-1M's age groups (under 18, 18-24, 25-34,
35-44, 45-49, 50-55, 56+), so ml-1m's coded ages (1, 18, 25, ...) fall in the same groups."""

_KINDS = ("categorical", "multi", "buckets")
_FORMAT = "recs_course.FeatureEncoder/1"
_BAGS_FORMAT = "recs_course.FeatureBags/1"
UNKNOWN = "<unknown>"
"""How the unknown feature of a field is named: ``"genres=<unknown>"``."""


# --------------------------------------------------------------------------------------------
# The bags


@dataclass(frozen=True, eq=False)
class FeatureBags:
    """Padded bags of feature indices, one per row (item or user), for ``nn.EmbeddingBag``.

    Attributes:
        indices: ``(R, W)`` int64; the features of row ``r`` are ``indices[r]``, padded with
            ``n_features`` (:attr:`padding_index`).
        weights: ``(R, W)`` float32 ``per_sample_weights``; 0 at the padding.
        n_features: how many features there are (the embedding table has one more row, the
            padding).
        names: ``(n_features,)`` names such as ``"genres=Action"`` or ``"year=[1990,1995)"``.
        fields: ``(name, start, stop)`` per field: its features are ``start .. stop - 1``, the
            last of them (``stop - 1``) its unknown feature.

    ``bag = nn.EmbeddingBag(n_features + 1, d, mode="sum", padding_idx=n_features)``, then
    ``bag(indices, per_sample_weights=weights)`` is ``(R, d)``: per field, the mean of the
    embeddings of the row's features, summed over the fields (the same as ``dense() @
    bag.weight[:-1]``).
    """

    indices: torch.Tensor
    weights: torch.Tensor
    n_features: int
    names: tuple[str, ...]
    fields: tuple[tuple[str, int, int], ...]

    def __post_init__(self) -> None:
        ind, w = self.indices, self.weights
        if not isinstance(ind, torch.Tensor) or not isinstance(w, torch.Tensor):
            raise ValueError("FeatureBags.indices and .weights must be tensors")
        if ind.dim() != 2 or ind.dtype != torch.int64:
            raise ValueError(
                f"FeatureBags.indices must be a 2-D int64 tensor, got {ind.dtype} of shape "
                f"{tuple(ind.shape)}"
            )
        if w.shape != ind.shape or not w.is_floating_point():
            raise ValueError(
                f"FeatureBags.weights must be a float tensor shaped like indices "
                f"{tuple(ind.shape)}, got {w.dtype} of shape {tuple(w.shape)}"
            )
        n = check_positive_int("n_features", self.n_features)
        if len(self.names) != n:
            raise ValueError(f"FeatureBags has {len(self.names)} names for {n} features")
        stops = [stop for _, _, stop in self.fields]
        starts = [start for _, start, _ in self.fields]
        if not self.fields or starts[0] != 0 or stops[-1] != n or starts[1:] != stops[:-1]:
            raise ValueError(
                f"FeatureBags.fields must cover 0..{n} in consecutive ranges, got {self.fields}"
            )
        if ind.numel():
            low, high = int(ind.min()), int(ind.max())
            if low < 0 or high > n:
                raise ValueError(
                    f"FeatureBags.indices must lie in [0, {n}] ({n}: the padding), found values "
                    f"in [{low}, {high}]"
                )
            if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                raise ValueError("FeatureBags.weights must be finite and >= 0")
            if bool((w[ind == n] != 0).any()):
                raise ValueError("FeatureBags.weights must be 0 at the padding")

    @property
    def n_rows(self) -> int:
        """``R``, the number of bags (items or users)."""
        return int(self.indices.shape[0])

    @property
    def width(self) -> int:
        """``W``, the most features a row has (the padded width)."""
        return int(self.indices.shape[1])

    @property
    def padding_index(self) -> int:
        """The index that pads short bags: ``n_features``."""
        return self.n_features

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}: {stop - start}" for name, start, stop in self.fields)
        return (
            f"FeatureBags({self.n_rows} rows, {self.n_features} features ({fields}), "
            f"width={self.width})"
        )

    def field(self, name: str) -> tuple[int, int]:
        """``(start, stop)`` of field ``name``'s features (the last is its unknown feature)."""
        for field, start, stop in self.fields:
            if field == name:
                return start, stop
        raise ValueError(
            f"no field {name!r} in these bags: they have {[f for f, _, _ in self.fields]}"
        )

    def select(self, rows: object) -> FeatureBags:
        """The bags of some rows (indices in ``[0, R)``), e.g. of a few new items."""
        idx = torch.from_numpy(
            as_index_array(rows, "rows", low=0, high=self.n_rows, hint="rows of these bags")
        )
        return FeatureBags(
            self.indices[idx].clone(),
            self.weights[idx].clone(),
            self.n_features,
            self.names,
            self.fields,
        )

    def dense(self) -> torch.Tensor:
        """``(R, n_features)`` float32: each row's weights as a dense vector (a weighted
        multi-hot row; the padding dropped). ``dense() @ table[:-1]`` is what the bag sums."""
        out = torch.zeros(self.n_rows, self.n_features + 1, dtype=self.weights.dtype)
        out.scatter_add_(1, self.indices, self.weights)
        return out[:, :-1]

    def multi_hot(self, field: str, *, unknown: bool = False) -> torch.Tensor:
        """``(R, k)`` bool: which of field ``field``'s features each row has.

        ``k`` counts the field's known values, plus its unknown feature (last column) when
        ``unknown=True``. For :class:`~recs_course.losses.PartialCreditBPR`: two items share a
        genre when their rows share a ``True`` column (a shared *unknown* is no shared genre,
        hence the default).
        """
        start, stop = self.field(field)
        stop = stop if unknown else stop - 1
        hot = torch.zeros(self.n_rows, self.n_features + 1, dtype=torch.bool)
        hot.scatter_(1, self.indices, torch.ones_like(self.indices, dtype=torch.bool))
        return hot[:, start:stop].clone()

    def labels(self, field: str) -> torch.Tensor:
        """``(R,)`` int64: each row's first known value of field ``field`` (its smallest index
        in the field, in the vocabulary's order), ``-1`` where the row has only the unknown
        feature. The single-label view of a multi-valued field (the tutorial's "first genre")."""
        hot = self.multi_hot(field)
        if hot.shape[1] == 0:
            return torch.full((self.n_rows,), -1, dtype=torch.int64)
        first = hot.to(torch.int8).argmax(dim=1)
        return torch.where(hot.any(dim=1), first, torch.full_like(first, -1))

    def to_dict(self) -> dict:
        """Plain data and tensors (what ``save_checkpoint``'s extras hold)."""
        return {
            "format": _BAGS_FORMAT,
            "indices": self.indices.clone(),
            "weights": self.weights.clone(),
            "n_features": self.n_features,
            "names": list(self.names),
            "fields": [[name, start, stop] for name, start, stop in self.fields],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FeatureBags:
        """The bags :meth:`to_dict` wrote; ``ValueError`` for anything else."""
        if not isinstance(data, Mapping) or data.get("format") != _BAGS_FORMAT:
            raise ValueError(
                f"not a dict written by FeatureBags.to_dict (format {_BAGS_FORMAT!r}): "
                f"{str(data)[:80]}"
            )
        try:
            fields = tuple((str(f), int(a), int(b)) for f, a, b in data["fields"])
            return cls(
                data["indices"],
                data["weights"],
                data["n_features"],
                tuple(str(n) for n in data["names"]),
                fields,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"FeatureBags.from_dict: malformed data ({exc!r})") from exc


# --------------------------------------------------------------------------------------------
# The encoder


@dataclass
class _Field:
    """One field: its column, kind, bucket edges (``buckets``) and fitted vocabulary."""

    name: str
    kind: str
    edges: tuple[float, ...] | None = None  # buckets: sorted edges (None: to fit, see n_buckets)
    n_buckets: int | None = None  # buckets: fit this many quantile buckets
    values: tuple = ()  # fitted: categorical/multi values, or bucket numbers

    @property
    def size(self) -> int:
        return len(self.values) + 1  # + the unknown feature

    def value_name(self, value: object) -> str:
        if self.kind != "buckets":
            return f"{self.name}={value}"
        k, edges = int(value), self.edges
        if k == 0:
            return f"{self.name}<{edges[0]:g}"
        if k == len(edges):
            return f"{self.name}>={edges[-1]:g}"
        return f"{self.name}=[{edges[k - 1]:g},{edges[k]:g})"


def _plain(value: object, what: str) -> object:
    """A vocabulary value as plain Python data (numpy scalars unwrapped), else ValueError."""
    if isinstance(value, np.generic):
        value = value.item()
    if type(value) in (str, int, float, bool):
        return value
    raise ValueError(
        f"{what}: the value {value!r} ({type(value).__name__}) cannot be stored; feature "
        "values must be strings, integers, floats or bools"
    )


def _sorted_values(values: np.ndarray) -> tuple:
    """Distinct values in a stable order: sorted, by type name first when types are mixed."""
    unique = pd.unique(values)
    try:
        return tuple(sorted(unique))
    except TypeError:
        return tuple(sorted(unique, key=lambda v: (type(v).__name__, v)))


class FeatureEncoder:
    """Learn the features of some columns of a metadata frame; turn rows into index bags.

    Args:
        id_column: the frame's id column (``"item_id"``, ``"user_id"``): raw ids, unique.
        categorical: columns with one value per row (strings, integers, bools); NaN/None is
            missing.
        multi: columns holding a list (or tuple, set, array) of values per row; an empty list
            or NaN is missing. A string is refused (split it into a list first).
        buckets: ``{column: edges}`` for numeric columns cut at sorted ``edges`` (bucket 0:
            below ``edges[0]``; bucket ``k``: ``[edges[k-1], edges[k])``; the last: at or above
            ``edges[-1]``), or ``{column: n}`` for ``n`` buckets at the quantiles of the fitting
            data. NaN is missing.
        min_count: a value held by fewer of the fitting rows than this is not learnt (it maps
            to its field's unknown feature): rare values would get embeddings trained on a
            handful of interactions.

    Fields come in this order: ``categorical``, ``multi``, ``buckets`` (each in the given
    order); within a field, values are sorted, then the unknown feature. Unseen values,
    missing values and ids absent from the frame (``transform(missing="unknown")``) map to the
    field's unknown feature: one shared index per field, trained on the rows that have it.
    """

    def __init__(
        self,
        id_column: str,
        *,
        categorical: Sequence[str] = (),
        multi: Sequence[str] = (),
        buckets: Mapping[str, int | Sequence[float]] | None = None,
        min_count: int = 1,
    ) -> None:
        if not isinstance(id_column, str) or not id_column:
            raise ValueError(f"id_column must be a column name, got {id_column!r}")
        self.id_column = id_column
        self.min_count = check_positive_int("min_count", min_count)
        fields: list[_Field] = []
        for kind, columns in (("categorical", categorical), ("multi", multi)):
            if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
                raise ValueError(
                    f"{kind} must be a sequence of column names such as ['gender'], got {columns!r}"
                )
            fields += [_Field(_column_name(c, kind), kind) for c in columns]
        buckets = {} if buckets is None else buckets
        if not isinstance(buckets, Mapping):
            raise ValueError(
                f"buckets must be a dict {{column: edges or number of buckets}}, got {buckets!r}"
            )
        for column, spec in buckets.items():
            name = _column_name(column, "buckets")
            if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
                n = check_positive_int(f"buckets[{name!r}]", spec)
                if n < 2:
                    raise ValueError(f"buckets[{name!r}] must ask for at least 2 buckets, got {n}")
                fields.append(_Field(name, "buckets", n_buckets=n))
            else:
                fields.append(_Field(name, "buckets", edges=_check_edges(name, spec)))
        if not fields:
            raise ValueError(
                "a FeatureEncoder needs at least one field (categorical, multi, buckets)"
            )
        names = [f.name for f in fields]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated or self.id_column in names:
            raise ValueError(
                "each column may be one field only, and not the id column: "
                f"{repeated or [id_column]}"
            )
        self._fields = fields
        self._fitted = False

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, ids: object = None) -> FeatureEncoder:
        """Learn each field's values (and quantile edges) from the rows of ``frame`` whose id
        is in ``ids`` (raw ids, e.g. the training items ``IdEncoder.item_ids``; ``None``: every
        row). Returns ``self``."""
        frame = self._check_frame(frame, "frame")
        raw = self._frame_ids(frame, "frame")
        if ids is not None:
            wanted = as_index_array(ids, "ids")
            frame = frame.loc[np.isin(raw, wanted)]
            if len(frame) == 0:
                raise ValueError(
                    f"none of the ids to fit on is in frame[{self.id_column!r}]: pass the raw "
                    "ids of the training rows (e.g. IdEncoder.item_ids), not encoded indices"
                )
        learnt = []  # (values, edges) per field, kept only if every field can be fitted
        for field in self._fields:
            column = frame[field.name]
            edges = field.edges
            if field.kind == "categorical":
                values = _categorical_values(column, field.name)
                values = self._frequent(values[~pd.isna(values)], field.name)
            elif field.kind == "multi":
                owner, exploded = _exploded(column, field.name)
                pairs = pd.DataFrame({"row": owner, "value": exploded}).dropna()
                pairs = pairs.drop_duplicates()  # a value listed twice in a row counts once
                values = self._frequent(pairs["value"].to_numpy(), field.name)
            else:
                numbers = _numbers(column, field.name)
                if field.n_buckets is not None:
                    finite = numbers[~np.isnan(numbers)]
                    if finite.size == 0:
                        raise ValueError(
                            f"frame[{field.name!r}] has no value to place quantile edges at"
                        )
                    qs = np.quantile(finite, np.linspace(0, 1, field.n_buckets + 1)[1:-1])
                    edges = tuple(float(e) for e in np.unique(qs))
                codes = _bucket_codes(numbers, edges)
                values = self._frequent(codes[codes >= 0], field.name)
            learnt.append((values, edges))
        for field, (values, edges) in zip(self._fields, learnt, strict=True):
            field.values, field.edges = values, edges
        self._fitted = True
        return self

    def _frequent(self, values: np.ndarray, name: str) -> tuple:
        """The distinct values seen at least ``min_count`` times, sorted, as plain data."""
        if len(values) == 0:
            return ()
        counts = pd.Series(values).value_counts(sort=False)
        kept = counts.index.to_numpy()[counts.to_numpy() >= self.min_count]
        return tuple(_plain(v, f"frame[{name!r}]") for v in _sorted_values(kept))

    def fit_transform(self, frame: pd.DataFrame, ids: object = None, **kwargs) -> FeatureBags:
        """``fit(frame, ids)`` then ``transform(frame, ids)``."""
        return self.fit(frame, ids).transform(frame, ids, **kwargs)

    # -- transforming -------------------------------------------------------------------------
    def transform(
        self, frame: pd.DataFrame, ids: object = None, *, missing: str = "error"
    ) -> FeatureBags:
        """The bags of the rows of ``frame`` with raw ids ``ids``, in that order.

        Args:
            frame: the metadata frame (the id column and every field's column).
            ids: raw ids, one bag each, in this order (e.g. ``IdEncoder.item_ids``: row ``k``
                of the bags is item index ``k``); ``None``: the frame's rows in order.
            missing: an id of ``ids`` absent from the frame: ``"error"`` (a ``ValueError``
                naming how many and some of them) or ``"unknown"`` (every field unknown).

        Returns:
            :class:`FeatureBags` with ``len(ids)`` rows.
        """
        self._check_fitted()
        if missing not in ("error", "unknown"):
            raise ValueError(f"missing must be 'error' or 'unknown', got {missing!r}")
        frame = self._check_frame(frame, "frame")
        raw = self._frame_ids(frame, "frame")
        if ids is None:
            positions = np.arange(len(frame), dtype=np.int64)
        else:
            wanted = as_index_array(ids, "ids")
            order = np.argsort(raw, kind="stable")
            sorted_raw = raw[order]
            at = np.minimum(np.searchsorted(sorted_raw, wanted), max(len(raw) - 1, 0))
            found = (sorted_raw[at] == wanted) if len(raw) else np.zeros(len(wanted), bool)
            positions = np.where(found, order[at] if len(raw) else -1, -1)
            if missing == "error" and not found.all():
                absent = np.unique(wanted[~found])
                raise ValueError(
                    f"{absent.size} of the ids have no row in frame[{self.id_column!r}], e.g. "
                    f"{absent[:5].tolist()}: pass the raw ids (IdEncoder.item_ids or "
                    "user_ids, not encoded indices), or missing='unknown' to give them the "
                    "unknown feature of every field"
                )
        return self._bags(frame, positions)

    def _bags(self, frame: pd.DataFrame, positions: np.ndarray) -> FeatureBags:
        """Bags of ``frame``'s rows at ``positions`` (``-1``: a row with every value missing)."""
        n_rows = len(positions)
        absent = positions < 0
        take = np.where(absent, 0, positions)
        rows_parts, index_parts, weight_parts = [], [], []
        start = 0
        for field in self._fields:
            column = frame[field.name]
            lookup = pd.Index(field.values, dtype=object) if field.kind != "buckets" else None
            unknown = start + len(field.values)
            if field.kind == "multi":
                owner, values = _exploded(
                    column.iloc[take] if n_rows else column.iloc[:0], field.name
                )
                codes = lookup.get_indexer(values) if len(values) else np.zeros(0, np.int64)
                keep = (codes >= 0) & ~absent[owner]
                keys = np.unique(owner[keep] * (len(field.values) + 1) + codes[keep])
                rows = keys // (len(field.values) + 1)
                local = keys % (len(field.values) + 1)
                counts = np.bincount(rows, minlength=n_rows)
                lonely = np.flatnonzero(counts == 0)  # no known value: the unknown feature
                rows_parts += [rows, lonely]
                index_parts += [start + local, np.full(lonely.size, unknown)]
                weight_parts += [1.0 / counts[rows], np.ones(lonely.size)]
            else:
                if field.kind == "categorical":
                    values = _categorical_values(column, field.name)[take]
                    codes = lookup.get_indexer(values) if n_rows else np.zeros(0, np.int64)
                    codes = np.where(pd.isna(values), -1, codes)
                else:
                    buckets = _bucket_codes(_numbers(column, field.name)[take], field.edges)
                    table = np.full(len(field.edges) + 1, -1, dtype=np.int64)
                    table[np.asarray(field.values, dtype=np.int64)] = np.arange(len(field.values))
                    codes = np.where(buckets >= 0, table[np.maximum(buckets, 0)], -1)
                codes = np.where(absent, -1, codes)
                rows_parts.append(np.arange(n_rows))
                index_parts.append(np.where(codes >= 0, start + codes, unknown))
                weight_parts.append(np.ones(n_rows))
            start += field.size
        rows = np.concatenate(rows_parts).astype(np.int64)
        order = np.argsort(rows, kind="stable")  # by row, fields in order within a row
        rows = rows[order]
        index = np.concatenate(index_parts).astype(np.int64)[order]
        weight = np.concatenate(weight_parts)[order]
        per_row = np.bincount(rows, minlength=n_rows)
        first = np.zeros(n_rows, dtype=np.int64)
        if n_rows > 1:
            np.cumsum(per_row[:-1], out=first[1:])
        slot = np.arange(rows.size) - first[rows]
        width = int(per_row.max()) if n_rows else len(self._fields)
        n_features = start
        indices = np.full((n_rows, width), n_features, dtype=np.int64)
        weights = np.zeros((n_rows, width), dtype=np.float32)
        indices[rows, slot] = index
        weights[rows, slot] = weight
        return FeatureBags(
            torch.from_numpy(indices),
            torch.from_numpy(weights),
            n_features,
            self.names,
            self.fields,
        )

    # -- what was learnt ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ValueError("this FeatureEncoder is not fitted yet: call .fit(frame, ids) first")

    @property
    def n_features(self) -> int:
        """How many features (known values plus one unknown per field)."""
        self._check_fitted()
        return sum(f.size for f in self._fields)

    @property
    def names(self) -> tuple[str, ...]:
        """The features' names, in index order (``"genres=Action"``, ``"genres=<unknown>"``)."""
        self._check_fitted()
        out: list[str] = []
        for f in self._fields:
            out += [f.value_name(v) for v in f.values] + [f"{f.name}={UNKNOWN}"]
        return tuple(out)

    @property
    def fields(self) -> tuple[tuple[str, int, int], ...]:
        """``(name, start, stop)`` per field (as :attr:`FeatureBags.fields`)."""
        self._check_fitted()
        out, start = [], 0
        for f in self._fields:
            out.append((f.name, start, start + f.size))
            start += f.size
        return tuple(out)

    def vocabulary(self, field: str) -> tuple:
        """The known values of ``field`` in index order (bucket numbers for ``buckets``)."""
        self._check_fitted()
        for f in self._fields:
            if f.name == field:
                return f.values
        raise ValueError(f"no field {field!r}: the fields are {[f.name for f in self._fields]}")

    def __repr__(self) -> str:
        kinds = ", ".join(f"{f.name} ({f.kind})" for f in self._fields)
        state = f"{self.n_features} features" if self._fitted else "not fitted"
        return f"FeatureEncoder({self.id_column}: {kinds}; {state})"

    # -- saving -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fitted encoder as plain data (str, int, float, bool, lists, dicts): what
        ``save_checkpoint(path, model, features=encoder.to_dict())`` stores, and what loads
        back with ``torch.load(weights_only=True)``, no pickle."""
        self._check_fitted()
        return {
            "format": _FORMAT,
            "id_column": self.id_column,
            "min_count": self.min_count,
            "fields": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "edges": None if f.edges is None else [float(e) for e in f.edges],
                    "values": [_plain(v, f.name) for v in f.values],
                }
                for f in self._fields
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FeatureEncoder:
        """The fitted encoder :meth:`to_dict` wrote; ``ValueError`` for anything else."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ValueError(
                f"not a dict written by FeatureEncoder.to_dict (format {_FORMAT!r}): "
                f"{str(data)[:80]}"
            )
        try:
            specs = list(data["fields"])
            kinds = {k: [s["name"] for s in specs if s["kind"] == k] for k in _KINDS}
            unknown_kinds = [s["kind"] for s in specs if s["kind"] not in _KINDS]
            if unknown_kinds:
                raise ValueError(f"unknown field kinds {unknown_kinds}")
            encoder = cls(
                data["id_column"],
                categorical=kinds["categorical"],
                multi=kinds["multi"],
                buckets={s["name"]: s["edges"] for s in specs if s["kind"] == "buckets"},
                min_count=data["min_count"],
            )
            by_name = {s["name"]: s for s in specs}
            for field in encoder._fields:
                values = tuple(_plain(v, field.name) for v in by_name[field.name]["values"])
                if len(set(values)) != len(values):
                    raise ValueError(f"field {field.name!r} lists a value twice")
                if field.kind == "buckets" and not all(
                    type(v) is int and 0 <= v <= len(field.edges) for v in values
                ):
                    raise ValueError(f"field {field.name!r} has bucket numbers out of range")
                field.values = values
        except (KeyError, TypeError) as exc:
            raise ValueError(f"FeatureEncoder.from_dict: malformed data ({exc!r})") from exc
        except ValueError as exc:
            raise ValueError(f"FeatureEncoder.from_dict: {exc}") from exc
        encoder._fitted = True
        return encoder

    # -- checks -------------------------------------------------------------------------------
    def _check_frame(self, frame: object, what: str) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(
                f"{what} must be a pandas DataFrame (e.g. load_movielens(...).items), got "
                f"{type(frame).__name__}"
            )
        needed = [self.id_column] + [f.name for f in self._fields]
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise ValueError(
                f"{what} is missing the column(s) {absent}; it has {list(frame.columns)}"
            )
        return frame

    def _frame_ids(self, frame: pd.DataFrame, what: str) -> np.ndarray:
        raw = as_index_array(frame[self.id_column], f"{what}[{self.id_column!r}]")
        if len(np.unique(raw)) != len(raw):
            values, counts = np.unique(raw, return_counts=True)
            raise ValueError(
                f"{what}[{self.id_column!r}] repeats {int((counts > 1).sum())} id(s), e.g. "
                f"{values[counts > 1][0]}: one row per id (drop the duplicates first)"
            )
        return raw


def _column_name(column: object, kind: str) -> str:
    if not isinstance(column, str) or not column:
        raise ValueError(f"{kind} must name columns (strings), got {column!r}")
    return column


def _check_edges(name: str, edges: object) -> tuple[float, ...]:
    if isinstance(edges, (str, bytes)) or not isinstance(edges, (Sequence, np.ndarray)):
        raise ValueError(
            f"buckets[{name!r}] must be sorted edges such as (1950, 1960, 1970) or a number of "
            f"quantile buckets, got {edges!r}"
        )
    values = []
    for e in edges:
        if isinstance(e, (bool, np.bool_)) or not isinstance(
            e, (int, float, np.integer, np.floating)
        ):
            raise ValueError(f"buckets[{name!r}] must hold numbers, got {e!r}")
        if not math.isfinite(float(e)):
            raise ValueError(f"buckets[{name!r}] must hold finite numbers, got {e!r}")
        values.append(float(e))
    if not values or any(b <= a for a, b in pairwise(values)):
        raise ValueError(
            f"buckets[{name!r}] must be at least one edge, strictly increasing, got {list(edges)}"
        )
    return tuple(values)


def _categorical_values(column: pd.Series, name: str) -> np.ndarray:
    """A single-valued column as an object array (missing values as NaN/None)."""
    values = column.to_numpy(dtype=object, na_value=np.nan)
    listed = column.map(type).isin([list, tuple, set, np.ndarray]).to_numpy()
    if listed.any():
        raise ValueError(
            f"frame[{name!r}] holds lists (e.g. at row {int(np.flatnonzero(listed)[0])}): "
            "declare it a multi field"
        )
    return values


def _exploded(column: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(row position, value)`` of every value of a list column (empty lists dropped, NaN
    rows kept as NaN)."""
    text = column.map(type).isin([str, bytes]).to_numpy()
    if text.any():
        raise ValueError(
            f"frame[{name!r}] holds a string where a list of values is expected (e.g. "
            f"{column.iloc[int(np.flatnonzero(text)[0])]!r}): split it into a list first, e.g. "
            f"frame[{name!r}].str.split('|')"
        )
    positions = pd.Series(column.to_numpy(dtype=object), index=np.arange(len(column)))
    exploded = positions.explode()
    values = exploded.to_numpy(dtype=object)
    return exploded.index.to_numpy(dtype=np.int64), values


def _numbers(column: pd.Series, name: str) -> np.ndarray:
    """A numeric column as float64 (missing values NaN); anything else is a ValueError."""
    if not (
        pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)
    ):
        raise ValueError(
            f"frame[{name!r}] must hold numbers to cut into buckets, got dtype {column.dtype}"
        )
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise ValueError(f"frame[{name!r}] holds infinite values: replace them with NaN (missing)")
    return values


def _bucket_codes(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """The bucket of each value (``-1`` for NaN)."""
    codes = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return np.where(np.isnan(values), -1, codes).astype(np.int64)


# --------------------------------------------------------------------------------------------
# MovieLens presets


def movielens_item_encoder(
    year_buckets: int | Sequence[float] = YEAR_EDGES, *, min_count: int = 1
) -> FeatureEncoder:
    """Item features of MovieLens: ``genres`` (a multi field) and ``year`` in buckets
    (:data:`YEAR_EDGES`, or a number of quantile buckets)."""
    return FeatureEncoder(
        "item_id", multi=["genres"], buckets={"year": year_buckets}, min_count=min_count
    )


def movielens_user_encoder(
    age_buckets: int | Sequence[float] = AGE_EDGES, *, min_count: int = 1
) -> FeatureEncoder:
    """User features of MovieLens (ml-100k, ml-1m): ``gender``, ``occupation``, and ``age`` in
    buckets (:data:`AGE_EDGES`, MovieLens-1M's groups)."""
    return FeatureEncoder(
        "user_id",
        categorical=["gender", "occupation"],
        buckets={"age": age_buckets},
        min_count=min_count,
    )
