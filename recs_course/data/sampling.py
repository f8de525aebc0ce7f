"""Exact, vectorised negative sampling for implicit feedback.

A *negative* of a user is an item they have not interacted with. Sampling them is the inner
loop of implicit-feedback training (fresh negatives every epoch) and of sampled ranking
evaluation (1 held-out item + 99 negatives per user), so it must be exact (never a positive),
fast (no Python loop over users or ratings) and reproducible (a ``torch.Generator``).

How :class:`NegativeSampler` works. Two exact mechanisms, both vectorised over all draws:

- *Rejection with a membership test* (with replacement, when ``n_users * n_items`` is at most
  :data:`DENSE_LIMIT`): draw items uniformly, look each ``(u, j)`` up in a boolean table of the
  positives (``u * n_items + j``), redraw only the rejected ones; a loop over rounds, never over
  users or ratings. After :data:`MAX_ROUNDS` rounds the few draws left (users who rated almost
  everything) go to the second mechanism.
- *The k-th negative* (large data, without replacement, and the fallback): for user ``u`` with
  sorted positives ``p_0 < p_1 < ...``, ``a_m = p_m - m`` counts the negatives below ``p_m``,
  and the ``k``-th negative (0-based) is ``k + #{m : a_m <= k}``. All users' ``a_m`` live in
  one sorted int64 array of keys ``u * (n_items + 1) + a_m``, so the count is one
  ``torch.searchsorted`` for a whole batch, memory ``O(nnz)``. Drawing ``k`` uniformly in
  ``[0, n_items - deg(u))`` gives a uniform negative directly, without rejection.

Without replacement the ``k`` are drawn distinct per row with Floyd's algorithm (a loop over
the ``n_neg`` columns, vectorised over rows), then shuffled.

*Approximate* sampling (``approximate=True`` in :meth:`NegativeSampler.sample`,
:func:`sample_negatives`, :func:`pointwise_instances`, :func:`pairwise_instances` and
:class:`InstanceBatches`) skips the check: items are drawn uniformly from the whole catalogue,
so a draw is one of the user's positives with probability ``deg(u) / n_items``
(:meth:`NegativeSampler.collision_rate`), a "negative" that is in fact a positive. The trade of
Collie's ``ApproximateNegativeSamplingInteractionsDataLoader``: no lookup, and no structure of
the positives at all for the instance functions, at the price of those collisions (0.2 % for a
user with 2,000 positives among a million items; on ml-100k, every rating a positive, 6.3 %
for the average user and 12 % of an epoch's draws, since heavy users own more of the rows).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ..utils import check_flag, check_positive_int, get_device
from ._common import (
    ENCODE_HINT,
    as_index_array,
    check_dim,
    check_index_range,
    check_ratings,
    torch_generator,
)
from .batches import Batches

__all__ = [
    "NegativeSampler",
    "sample_negatives",
    "pointwise_instances",
    "pairwise_instances",
    "ranking_candidates",
    "InstanceBatches",
]

DENSE_LIMIT = 1 << 26
"""Largest ``n_users * n_items`` for which a boolean membership table (one byte per pair) is
kept: 64 MiB at most, e.g. 1.6 MB for ml-100k, 22 MB for ml-1m; ml-25m uses the sorted keys."""

MAX_ROUNDS = 16
"""Redraw rounds before the remaining draws switch to the exact k-th-negative lookup."""

_CHUNK = 1 << 22  # draws per chunk: bounds the temporaries of huge requests


def _check_count(n: object, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


class NegativeSampler:
    """Uniform, exact sampling of each user's non-interacted items.

    Build it once from the positives and reuse it every epoch (building costs a sort of the
    non-zeros).

    Args:
        positives: ``(n_users, n_items)`` scipy sparse matrix; every stored entry is a positive
            (its value is ignored). Not modified.

    Attributes:
        n_users, n_items: the matrix's shape.
        pool: ``(n_users,)`` LongTensor, how many negatives each user has.
    """

    def __init__(self, positives: sp.spmatrix | sp.sparray):
        if not sp.issparse(positives):
            raise ValueError(
                "positives must be a scipy sparse (users x items) matrix, e.g. from "
                f"interaction_matrix(r, n_users, n_items), got {type(positives).__name__}"
            )
        csr = sp.csr_matrix(positives, copy=True)
        csr.sum_duplicates()  # canonical: sorted, unique column indices per row
        n_users, n_items = (int(s) for s in csr.shape)
        rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(csr.indptr))
        self._setup(rows, csr.indices.astype(np.int64), n_users, n_items, canonical=True)

    @classmethod
    def from_ratings(
        cls, r: pd.DataFrame, n_items: int, n_users: int | None = None
    ) -> NegativeSampler:
        """A sampler whose positives are the (encoded) rows of ``r``; duplicates are fine.

        ``n_users`` defaults to the largest user index + 1.
        """
        if n_users is not None:
            n_users = check_dim(_check_count(n_users, "n_users"), "n_users")
        u, i = _encoded_pairs(r, n_items, "r", n_users)
        return cls._from_pairs(u, i, n_users, n_items)

    @classmethod
    def _from_pairs(
        cls, u: np.ndarray, i: np.ndarray, n_users: int | None, n_items: int
    ) -> NegativeSampler:
        """A sampler of already checked index arrays (duplicates fine); ``n_users`` defaults to
        the largest user index + 1."""
        if n_users is None:
            n_users = int(u.max()) + 1 if u.size else 0
        obj = cls.__new__(cls)
        obj._setup(u, i, int(n_users), int(n_items), canonical=False)
        return obj

    def _setup(
        self, rows: np.ndarray, cols: np.ndarray, n_users: int, n_items: int, canonical: bool
    ) -> None:
        """Positives ``(rows[m], cols[m])``; ``canonical``: unique and sorted by (row, col)."""
        if n_users * (n_items + 1) >= 2**63:
            raise ValueError(
                f"n_users={n_users} x n_items={n_items} is too large for the sampler's int64 "
                "keys: are the ids encoded? Encode them with IdEncoder first"
            )
        try:
            self._build(rows, cols, n_users, n_items, canonical)
        except MemoryError as exc:  # a table of n_users counts (or n_users * n_items flags)
            raise ValueError(
                f"the sampler's tables for n_users={n_users}, n_items={n_items} (given, or max "
                f"index + 1) do not fit in memory: are the ids encoded? {ENCODE_HINT}"
            ) from exc

    def _build(
        self, rows: np.ndarray, cols: np.ndarray, n_users: int, n_items: int, canonical: bool
    ) -> None:
        self.n_users, self.n_items = n_users, n_items
        self._member: torch.Tensor | None = None
        self._keys: torch.Tensor | None = None
        self._start: torch.Tensor | None = None
        if 0 < n_users * n_items <= DENSE_LIMIT:
            # Small enough for the membership table; the sorted keys are built when needed.
            member = np.zeros(n_users * n_items, dtype=bool)
            member[rows * n_items + cols] = True
            self._member = torch.from_numpy(member)
            deg = member.reshape(n_users, n_items).sum(axis=1, dtype=np.int64)
        else:
            if not canonical:
                keys = np.sort(rows * n_items + cols)
                keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys
                rows, cols = keys // n_items, keys % n_items
            deg = np.bincount(rows, minlength=n_users).astype(np.int64)
            self._build_keys(rows, cols, deg)
        self.pool = torch.from_numpy(n_items - deg)

    def _build_keys(self, rows: np.ndarray, cols: np.ndarray, deg: np.ndarray) -> None:
        """The sorted keys ``u * (n_items + 1) + a_m`` of the k-th-negative lookup."""
        start = np.zeros(self.n_users, dtype=np.int64)
        np.cumsum(deg[:-1], out=start[1:])
        below = cols - (np.arange(len(cols), dtype=np.int64) - start[rows])
        self._keys = torch.from_numpy(rows * (self.n_items + 1) + below)
        self._start = torch.from_numpy(start)

    def _kth_negative(self, users: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Item id of the ``k``-th (0-based) negative of each user; same shapes in and out."""
        if self._keys is None:  # built from the table (sorted by construction) on first use
            flat = np.flatnonzero(self._member.numpy())
            self._build_keys(
                flat // self.n_items, flat % self.n_items, (self.n_items - self.pool).numpy()
            )
        query = users * (self.n_items + 1) + k
        below = torch.searchsorted(self._keys, query, right=True) - self._start[users]
        return k + below

    def _check_users(self, users: torch.Tensor, n_neg: int, replace: bool) -> torch.Tensor | None:
        """Pool sizes of ``users`` (in range), or ``None`` when not needed; checks the pools."""
        if n_neg == 0 or users.numel() == 0:
            return None
        some_empty = bool((self.pool == 0).any())
        if replace and self._member is not None and not some_empty:
            return None  # rejection needs no pool sizes and every user has negatives
        pool = self.pool[users]
        empty = pool == 0
        if some_empty and bool(empty.any()):
            bad = users[empty]
            raise ValueError(
                f"user {int(bad[0])} has interacted with every one of the {self.n_items} items: "
                f"there is no negative to sample ({len(torch.unique(bad))} such user(s)). "
                "Remove such users before sampling."
            )
        if not replace:
            short = pool < n_neg
            if bool(short.any()):
                j = int(torch.nonzero(short)[0, 0])
                raise ValueError(
                    f"user {int(users[j])} has only {int(pool[j])} items they have not "
                    f"interacted with, fewer than the n_neg={n_neg} distinct negatives asked "
                    f"for ({len(torch.unique(users[short]))} such user(s)): lower n_neg, sample "
                    "with replacement, or drop those users"
                )
        return pool

    def sample(
        self,
        users,
        n_neg: int,
        generator: torch.Generator | int | None = None,
        replace: bool = True,
        approximate: bool = False,
    ) -> torch.Tensor:
        """Negatives for each entry of ``users``.

        Args:
            users: ``(B,)`` user indices (tensor, array or list); may repeat.
            n_neg: negatives per entry.
            generator: a ``torch.Generator``, an int seed, or ``None`` for torch's default
                generator (consumed, never reseeded).
            replace: ``True``: ``n_neg`` independent uniform negatives (a row may repeat an
                item). ``False``: ``n_neg`` distinct negatives per row, in random order.
            approximate: ``True``: uniform items of the whole catalogue, without the check
                against the user's positives (a draw is a positive with probability
                :meth:`collision_rate`); with ``replace=False`` distinct per row.

        Returns:
            ``(B, n_neg)`` LongTensor; entry ``[b, j]`` is never a positive of ``users[b]``
            (unless ``approximate``).
        """
        n_neg = _check_count(n_neg, "n_neg")
        replace = check_flag("replace", replace)
        approximate = check_flag("approximate", approximate)
        users_t = torch.as_tensor(self._user_indices(users, "users"))
        out = torch.empty((len(users_t), n_neg), dtype=torch.int64)
        g = torch_generator(generator)
        if approximate:
            _approximate_into(out, self.n_items, g, replace)
        else:
            self._sample_into(out, users_t, g, replace)
        return out

    def collision_rate(self, users=None) -> torch.Tensor:
        """``(B,)`` float64: the probability that an approximate draw for each user is one of
        their positives, ``deg(u) / n_items`` (``users=None``: every user)."""
        if users is None:
            pool = self.pool
        else:
            pool = self.pool[torch.as_tensor(self._user_indices(users, "users"))]
        return (self.n_items - pool).double() / self.n_items

    def _user_indices(self, users, name: str) -> np.ndarray:
        """``users`` as int64 indices, checked to lie in ``[0, n_users)``."""
        return as_index_array(
            users, name, low=0, high=self.n_users, high_name=f"{self.n_users} (the positives' rows)"
        )

    def _sample_into(
        self, out: torch.Tensor, users: torch.Tensor, g: torch.Generator | None, replace: bool
    ) -> None:
        """Fill ``out`` ``(B, n_neg)`` with negatives of ``users`` ``(B,)`` (int64)."""
        n_neg = out.shape[1]
        pool = self._check_users(users, n_neg, replace)
        if n_neg == 0 or len(users) == 0:
            return
        step = max(1, _CHUNK // n_neg)
        for s in range(0, len(users), step):
            u = users[s : s + step]
            p = None if pool is None else pool[s : s + step]
            if not replace:
                k = self._distinct_below(p, n_neg, g)
                out[s : s + step] = self._kth_negative(u[:, None].expand(-1, n_neg), k)
            elif self._member is None:
                k = self._uniform_below(p[:, None].expand(-1, n_neg), g)
                out[s : s + step] = self._kth_negative(u[:, None].expand(-1, n_neg), k)
            else:
                out[s : s + step] = self._rejection(u, n_neg, g)

    def _rejection(
        self, users: torch.Tensor, n_neg: int, g: torch.Generator | None
    ) -> torch.Tensor:
        """``(B, n_neg)`` uniform negatives of ``users`` ``(B,)`` by rejection on the table.

        Index arithmetic is int32 (the table has fewer than 2**31 entries): half the memory
        traffic of int64. The draws come from ``g`` (``torch.randint``: one call for all the
        draws, then one per round for the rejected ones, about ten rounds for ml-100k). The
        rounds' bookkeeping runs in numpy on views of the same memory: ``np.flatnonzero`` is
        two to three times faster than ``torch.nonzero`` on the CPU, ``take``/``compress`` are
        numpy's fastest gather and selection, and the later rounds are small arrays, where a
        numpy call costs a fraction of a torch one. The same draws as with torch operations,
        so the same negatives (``tests/test_data_sampling.py`` compares them draw for draw).
        """
        n = self.n_items
        items = torch.randint(0, n, (len(users), n_neg), generator=g, dtype=torch.int32)
        base = (users * n).to(torch.int32)  # row offsets in the table, (B,)
        hit = self._member.index_select(0, (items + base[:, None]).view(-1))
        member, flat, base_np = self._member.numpy(), items.view(-1).numpy(), base.numpy()
        todo = np.flatnonzero(hit.numpy())  # positions whose draw was a positive
        for _ in range(MAX_ROUNDS):
            if todo.size == 0:
                return items
            cand = torch.randint(0, n, (todo.size,), generator=g, dtype=torch.int32).numpy()
            hit = member.take(base_np.take(todo // n_neg) + cand)
            ok = ~hit
            flat[todo.compress(ok)] = cand.compress(ok)
            todo = todo.compress(hit)
        if todo.size:  # users with few negatives: draw them exactly, no more rounds
            u = users[torch.from_numpy(todo // n_neg)]
            flat[todo] = self._kth_negative(u, self._uniform_below(self.pool[u], g)).numpy()
        return items

    @staticmethod
    def _uniform_below(high: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Uniform integers in ``[0, high)`` elementwise (float64 draws: no modulo bias)."""
        r = torch.rand(high.shape, generator=g, dtype=torch.float64)
        return torch.minimum((r * high).long(), high - 1)

    @classmethod
    def _distinct_below(cls, pool: torch.Tensor, k: int, g: torch.Generator | None) -> torch.Tensor:
        """``(B, k)``: per row, ``k`` distinct integers in ``[0, pool)`` (Floyd), shuffled."""
        chosen = torch.empty((len(pool), k), dtype=torch.int64)
        for t in range(k):
            top = pool - k + t  # Floyd: draw in [0, top]; if taken, take top itself
            r = cls._uniform_below(top + 1, g)
            if t:
                r = torch.where((chosen[:, :t] == r[:, None]).any(dim=1), top, r)
            chosen[:, t] = r
        order = torch.rand((len(pool), k), generator=g).argsort(dim=1)
        return chosen.gather(1, order)


def _approximate_into(
    out: torch.Tensor, n_items: int, g: torch.Generator | None, replace: bool
) -> None:
    """Fill ``out`` ``(B, n_neg)`` with uniform items of ``[0, n_items)``, no check against
    positives (distinct per row when not ``replace``)."""
    n_neg = out.shape[1]
    if out.numel() == 0:
        return
    if replace:
        out.copy_(torch.randint(0, n_items, out.shape, generator=g, dtype=torch.int64))
        return
    if n_neg > n_items:
        raise ValueError(
            f"n_neg={n_neg} distinct items asked for among only {n_items}: lower n_neg or "
            "sample with replacement"
        )
    full = torch.full((out.shape[0],), n_items, dtype=torch.int64)
    out.copy_(NegativeSampler._distinct_below(full, n_neg, g))


class _ApproximateSampler:
    """The sampler of ``approximate=True``: uniform items, no structure of the positives."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def _sample_into(
        self, out: torch.Tensor, users: torch.Tensor, g: torch.Generator | None, replace: bool
    ) -> None:
        _approximate_into(out, self.n_items, g, replace)


def _encoded_pairs(
    r: pd.DataFrame, n_items: int, what: str, n_users: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The checked user and item indices of an encoded frame (users ``>= 0``, or below
    ``n_users`` when given; items in ``[0, n_items)``)."""
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    check_dim(int(n_items), "n_items")
    cols = check_ratings(r, what, encoded=True, n_users=n_users, n_items=int(n_items))
    return cols.user, cols.item


def _sampler_for(
    r_users: np.ndarray, positives, r: pd.DataFrame, n_items: int, approximate: bool = False
) -> NegativeSampler | _ApproximateSampler:
    if approximate:
        if positives is not None:
            raise ValueError(
                "approximate sampling never looks at the positives: pass positives=None, or "
                "approximate=False to exclude them exactly"
            )
        return _ApproximateSampler(n_items)
    if positives is None:
        return NegativeSampler.from_ratings(r, n_items)
    sampler = positives if isinstance(positives, NegativeSampler) else NegativeSampler(positives)
    if sampler.n_items != n_items:
        raise ValueError(f"positives has {sampler.n_items} items (columns) but n_items={n_items}")
    check_index_range(
        r_users, "r['user_id']", 0, sampler.n_users, f"{sampler.n_users} (the positives' rows)"
    )
    return sampler


def sample_negatives(
    users,
    positives: sp.spmatrix | NegativeSampler,
    n_neg: int,
    *,
    generator: torch.Generator | int | None = None,
    replace: bool = True,
    approximate: bool = False,
) -> torch.Tensor:
    """``(len(users), n_neg)`` LongTensor of items each user has not interacted with.

    ``positives`` is the ``(n_users, n_items)`` sparse matrix of positives (or a prebuilt
    :class:`NegativeSampler`, cheaper when called every epoch). ``replace=False`` makes the
    negatives of a row distinct. Raises ``ValueError`` for a user without negatives, or with
    fewer than ``n_neg`` of them when ``replace=False``. ``approximate=True``: uniform items
    without the check (see :meth:`NegativeSampler.sample`).
    """
    sampler = positives if isinstance(positives, NegativeSampler) else NegativeSampler(positives)
    return sampler.sample(
        users, n_neg, generator=generator, replace=replace, approximate=approximate
    )


def pointwise_instances(
    r: pd.DataFrame,
    n_items: int,
    n_neg: int = 4,
    *,
    generator: torch.Generator | int | None = None,
    positives: sp.spmatrix | NegativeSampler | None = None,
    approximate: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One epoch of labelled pairs for a pointwise (BCE) loss: call it every epoch.

    Every row of ``r`` (encoded; its ``rating`` is ignored, so filter with ``to_implicit``
    first if needed) is a positive with label 1, followed by ``n_neg`` fresh negatives per
    positive with label 0, drawn uniformly (with replacement) among the items the user has not
    interacted with.

    Args:
        r: encoded training ratings (``user_id``, ``item_id``).
        n_items: number of items (negatives are drawn from ``0..n_items-1``).
        n_neg: negatives per positive.
        generator: ``torch.Generator``, int seed, or ``None`` (torch's default generator).
        positives: what counts as a positive: by default the rows of ``r``; pass a sparse
            matrix or a :class:`NegativeSampler` (reused across epochs, e.g. to exclude
            validation items too).
        approximate: draw the negatives uniformly from all items without excluding the
            user's positives (no sampler is built; a "negative" is a positive with probability
            ``deg(u) / n_items``); ``positives`` must then be ``None``.

    Returns:
        ``(users, items, labels)``: ``users``/``items`` LongTensors and ``labels`` float32, all
        of shape ``(N * (1 + n_neg),)`` with ``N = len(r)``: the ``N`` positives first, then
        the negatives (shuffle with :class:`Batches`).
    """
    u, i = _encoded_pairs(r, n_items, "r")
    n_neg = _check_count(n_neg, "n_neg")
    approximate = check_flag("approximate", approximate)
    sampler = _sampler_for(u, positives, r, n_items, approximate)
    return _pointwise(u, i, n_neg, sampler, torch_generator(generator))


def _pointwise(u: np.ndarray, i: np.ndarray, n_neg: int, sampler, g):
    """:func:`pointwise_instances` on checked indices (what :class:`InstanceBatches` repeats)."""
    n = len(u)
    users = torch.empty(n * (1 + n_neg), dtype=torch.int64)
    items = torch.empty(n * (1 + n_neg), dtype=torch.int64)
    users[:n] = torch.from_numpy(u)
    items[:n] = torch.from_numpy(i)
    users[n:].view(n, n_neg).copy_(users[:n, None].expand(n, n_neg))
    sampler._sample_into(items[n:].view(n, n_neg), users[:n], g, True)
    labels = torch.zeros(n * (1 + n_neg), dtype=torch.float32)
    labels[:n] = 1.0
    return users, items, labels


def pairwise_instances(
    r: pd.DataFrame,
    n_items: int,
    n_neg: int = 1,
    *,
    generator: torch.Generator | int | None = None,
    positives: sp.spmatrix | NegativeSampler | None = None,
    approximate: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One epoch of BPR triples: each row of ``r`` with fresh negatives.

    Arguments as in :func:`pointwise_instances`; ``n_neg`` negatives per positive (drawn with
    replacement among the user's non-positives, or among all items with ``approximate``).

    Returns:
        ``(users, pos_items, neg_items)`` LongTensors: ``users`` and ``pos_items`` of shape
        ``(len(r),)``, ``neg_items`` ``(len(r),)`` for ``n_neg=1`` and ``(len(r), n_neg)``
        otherwise (:func:`recs_course.losses.bpr_loss` takes both).
    """
    u, i = _encoded_pairs(r, n_items, "r")
    n_neg = _check_count(n_neg, "n_neg")
    if n_neg == 0:
        raise ValueError("n_neg must be at least 1 for pairs (a positive against a negative)")
    approximate = check_flag("approximate", approximate)
    sampler = _sampler_for(u, positives, r, n_items, approximate)
    return _pairwise(u, i, n_neg, sampler, torch_generator(generator))


def _pairwise(u: np.ndarray, i: np.ndarray, n_neg: int, sampler, g):
    """:func:`pairwise_instances` on checked indices (what :class:`InstanceBatches` repeats)."""
    users = torch.from_numpy(u)
    neg = torch.empty((len(u), n_neg), dtype=torch.int64)
    sampler._sample_into(neg, users, g, True)
    return users, torch.from_numpy(i), neg[:, 0] if n_neg == 1 else neg


def ranking_candidates(
    test: pd.DataFrame,
    n_items: int,
    n_neg: int = 99,
    *,
    exclude: pd.DataFrame | Sequence[pd.DataFrame],
    generator: torch.Generator | int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate lists for sampled ranking evaluation (HR@k / NDCG@k, the NCF protocol).

    For each row of ``test`` (encoded; one per user after :func:`leave_one_out`): the held-out
    item in column 0, then ``n_neg`` distinct items in random order, none of them one of that
    user's items in ``test`` or in ``exclude``. Memory grows with the number of ratings and test
    rows, never with users x items.

    Args:
        test: encoded held-out rows (``user_id``, ``item_id``).
        n_items: number of items (negatives are drawn from ``0..n_items-1``).
        n_neg: negatives per row.
        exclude: the pairs that are never a negative besides ``test``'s own: a frame or a
            sequence of frames, e.g. ``exclude=train``, or ``exclude=[train, test]`` for
            validation candidates that must not draw a test item either.
        generator: ``torch.Generator``, int seed, or ``None`` (torch's default generator), as
            in :func:`pointwise_instances`; an int gives the same candidates at every call.

    Returns:
        ``(users, candidates)``: ``(U,)`` and ``(U, 1 + n_neg)`` LongTensors, ``U = len(test)``.

    Raises:
        ValueError: a user with fewer than ``n_neg`` negatives (naming the user), indices out
            of range, or missing columns.
    """
    n_neg = _check_count(n_neg, "n_neg")
    frames = [exclude] if isinstance(exclude, pd.DataFrame) else exclude
    if (
        isinstance(frames, (str, bytes))
        or not isinstance(frames, Sequence)
        or not all(isinstance(f, pd.DataFrame) for f in frames)
    ):
        raise ValueError(
            "exclude must be a ratings frame or a list of them (the pairs that are never a "
            f"negative, e.g. exclude=train), got {type(exclude).__name__}"
        )
    te_u, te_i = _encoded_pairs(test, n_items, "test")
    pairs = [
        _encoded_pairs(f, n_items, "exclude" if len(frames) == 1 else f"exclude[{k}]")
        for k, f in enumerate(frames)
    ]
    all_u = np.concatenate([u for u, _ in pairs] + [te_u])
    all_i = np.concatenate([i for _, i in pairs] + [te_i])
    sampler = NegativeSampler._from_pairs(all_u, all_i, None, n_items)
    users = torch.from_numpy(te_u)
    neg = sampler.sample(users, n_neg, generator=generator, replace=False)
    return users, torch.cat([torch.from_numpy(te_i)[:, None], neg], dim=1)


class InstanceBatches:
    """Training batches with fresh negatives at every pass: the data of one implicit epoch.

    Each ``iter()`` (each epoch of :func:`recs_course.training.fit`) draws a new set of
    instances from ``ratings`` and shuffles them into batches, with one generator for both::

        train_data = InstanceBatches(train, n_items, "pointwise", n_neg=4, batch_size=256,
                                     generator=seed)
        fit(model, train_data, "bce", optimizer, epochs=20)

    is the same, draw for draw, as calling, at every epoch::

        users, items, labels = pointwise_instances(train, n_items, n_neg=4,
                                                   generator=g, positives=sampler)
        Batches(users, items, labels, batch_size=256, generator=g)

    Args:
        ratings: encoded training positives (``user_id``, ``item_id``).
        n_items: number of items.
        kind: ``"pointwise"`` (``(users, items, labels)``, :func:`pointwise_instances`, for
            BCE) or ``"pairwise"`` (``(users, pos, neg)``, :func:`pairwise_instances`, for BPR).
        n_neg: negatives per positive (pairwise: ``neg`` is ``(B,)`` for 1, ``(B, n_neg)``
            otherwise).
        batch_size: rows per batch.
        generator: ``torch.Generator``, int seed (one generator made here, so passes differ
            but the sequence of passes is reproducible) or ``None`` (torch's default).
        positives: what is never a negative (a sparse matrix or a :class:`NegativeSampler`);
            by default the pairs of ``ratings``. Built once, reused by every pass.
        approximate: negatives drawn uniformly from all items, without the check against
            the positives (see :func:`pointwise_instances`); ``positives`` must be ``None``
            and :attr:`sampler` is then a stand-in that only draws.
        drop_last, device: as in :class:`~recs_course.data.Batches`.
    """

    def __init__(
        self,
        ratings: pd.DataFrame,
        n_items: int,
        kind: str = "pointwise",
        *,
        n_neg: int | None = None,
        batch_size: int,
        generator: torch.Generator | int | None = None,
        positives: sp.spmatrix | NegativeSampler | None = None,
        drop_last: bool = False,
        device: str | torch.device | None = None,
        approximate: bool = False,
    ) -> None:
        if kind not in ("pointwise", "pairwise"):
            raise ValueError(f"kind must be 'pointwise' or 'pairwise', got {kind!r}")
        self.kind = kind
        self.n_neg = _check_count(
            (4 if kind == "pointwise" else 1) if n_neg is None else n_neg, "n_neg"
        )
        self.ratings = ratings
        self.n_items = n_items
        # checked once: every pass reuses the indices and the sampler
        self._users, self._items = _encoded_pairs(ratings, n_items, "ratings")
        u = self._users
        self.approximate = check_flag("approximate", approximate)
        self.sampler = _sampler_for(u, positives, ratings, n_items, self.approximate)
        if kind == "pairwise" and self.n_neg == 0:
            raise ValueError("n_neg must be at least 1 for pairs (a positive against a negative)")
        self.generator = torch_generator(generator)
        self.rows = len(u) * (1 + self.n_neg) if kind == "pointwise" else len(u)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.drop_last = check_flag("drop_last", drop_last)
        self.device = None if device is None else get_device(device)

    def draw(self) -> tuple[torch.Tensor, ...]:
        """One epoch's instances, unshuffled (what each pass batches)."""
        draw = _pointwise if self.kind == "pointwise" else _pairwise
        return draw(self._users, self._items, self.n_neg, self.sampler, self.generator)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        yield from Batches(
            *self.draw(),
            batch_size=self.batch_size,
            generator=self.generator,
            drop_last=self.drop_last,
            device=self.device,
        )

    def __len__(self) -> int:
        """Batches per pass (the rule of :class:`~recs_course.data.Batches`)."""
        if self.drop_last:
            return self.rows // self.batch_size
        return -(-self.rows // self.batch_size)

    def __repr__(self) -> str:
        approximate = ", approximate" if self.approximate else ""
        return (
            f"InstanceBatches({self.kind}, n_neg={self.n_neg}{approximate}, rows={self.rows}, "
            f"batch_size={self.batch_size}, batches={len(self)})"
        )
