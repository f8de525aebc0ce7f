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
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ._common import (
    ENCODE_HINT,
    as_index_array,
    check_dim,
    check_index_range,
    check_ratings,
    torch_generator,
)

__all__ = [
    "NegativeSampler",
    "sample_negatives",
    "pointwise_instances",
    "pairwise_instances",
    "ranking_candidates",
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
    ) -> torch.Tensor:
        """Negatives for each entry of ``users``.

        Args:
            users: ``(B,)`` user indices (tensor, array or list); may repeat.
            n_neg: negatives per entry.
            generator: a ``torch.Generator``, an int seed, or ``None`` for torch's default
                generator (consumed, never reseeded).
            replace: ``True``: ``n_neg`` independent uniform negatives (a row may repeat an
                item). ``False``: ``n_neg`` distinct negatives per row, in random order.

        Returns:
            ``(B, n_neg)`` LongTensor; entry ``[b, j]`` is never a positive of ``users[b]``.
        """
        n_neg = _check_count(n_neg, "n_neg")
        users_t = torch.as_tensor(self._user_indices(users, "users"))
        out = torch.empty((len(users_t), n_neg), dtype=torch.int64)
        self._sample_into(out, users_t, torch_generator(generator), replace)
        return out

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
        traffic of int64, which is most of the cost.
        """
        n = self.n_items
        member = self._member
        base = (users * n).to(torch.int32)  # row offsets in the table, (B,)
        items = torch.randint(0, n, (len(users), n_neg), generator=g, dtype=torch.int32)
        flat = items.view(-1)
        hit = member.index_select(0, (items + base[:, None]).view(-1))
        todo = torch.nonzero(hit).squeeze(1)  # positions whose draw was a positive
        for _ in range(MAX_ROUNDS):
            if todo.numel() == 0:
                return items
            cand = torch.randint(0, n, todo.shape, generator=g, dtype=torch.int32)
            hit = member.index_select(0, base.index_select(0, todo // n_neg) + cand)
            ok = torch.nonzero(~hit).squeeze(1)
            flat.index_copy_(0, todo.index_select(0, ok), cand.index_select(0, ok))
            todo = todo[hit]
        if todo.numel():  # users with few negatives: draw them exactly, no more rounds
            u = users[todo // n_neg]
            flat[todo] = self._kth_negative(u, self._uniform_below(self.pool[u], g)).to(torch.int32)
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


def _sampler_for(r_users: np.ndarray, positives, r: pd.DataFrame, n_items: int) -> NegativeSampler:
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
    positives_csr: sp.spmatrix | NegativeSampler,
    n_neg: int,
    generator: torch.Generator | int | None = None,
    replace: bool = True,
) -> torch.Tensor:
    """``(len(users), n_neg)`` LongTensor of items each user has not interacted with.

    ``positives_csr`` is the ``(n_users, n_items)`` sparse matrix of positives (or a prebuilt
    :class:`NegativeSampler`, cheaper when called every epoch). ``replace=False`` makes the
    negatives of a row distinct. Raises ``ValueError`` for a user without negatives, or with
    fewer than ``n_neg`` of them when ``replace=False``.
    """
    sampler = (
        positives_csr
        if isinstance(positives_csr, NegativeSampler)
        else NegativeSampler(positives_csr)
    )
    return sampler.sample(users, n_neg, generator=generator, replace=replace)


def pointwise_instances(
    r: pd.DataFrame,
    n_items: int,
    n_neg: int = 4,
    generator: torch.Generator | int | None = None,
    positives: sp.spmatrix | NegativeSampler | None = None,
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

    Returns:
        ``(users, items, labels)``: ``users``/``items`` LongTensors and ``labels`` float32, all
        of shape ``(N * (1 + n_neg),)`` with ``N = len(r)``: the ``N`` positives first, then
        the negatives (shuffle with :class:`Batches`).
    """
    u, i = _encoded_pairs(r, n_items, "r")
    n_neg = _check_count(n_neg, "n_neg")
    sampler = _sampler_for(u, positives, r, n_items)
    n = len(u)
    users = torch.empty(n * (1 + n_neg), dtype=torch.int64)
    items = torch.empty(n * (1 + n_neg), dtype=torch.int64)
    users[:n] = torch.from_numpy(u)
    items[:n] = torch.from_numpy(i)
    users[n:].view(n, n_neg).copy_(users[:n, None].expand(n, n_neg))
    sampler._sample_into(items[n:].view(n, n_neg), users[:n], torch_generator(generator), True)
    labels = torch.zeros(n * (1 + n_neg), dtype=torch.float32)
    labels[:n] = 1.0
    return users, items, labels


def pairwise_instances(
    r: pd.DataFrame,
    n_items: int,
    generator: torch.Generator | int | None = None,
    positives: sp.spmatrix | NegativeSampler | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One epoch of BPR triples: each row of ``r`` with one fresh negative.

    Arguments as in :func:`pointwise_instances`.

    Returns:
        ``(users, pos_items, neg_items)`` LongTensors of shape ``(len(r),)``.
    """
    u, i = _encoded_pairs(r, n_items, "r")
    sampler = _sampler_for(u, positives, r, n_items)
    users = torch.from_numpy(u)
    neg = sampler.sample(users, 1, generator=generator)[:, 0]
    return users, torch.from_numpy(i), neg


def ranking_candidates(
    train: pd.DataFrame,
    test: pd.DataFrame,
    n_items: int,
    n_neg: int = 99,
    seed: int | torch.Generator = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate lists for sampled ranking evaluation (HR@k / NDCG@k, the NCF protocol).

    For each row of ``test`` (encoded; one per user after :func:`leave_one_out`): the held-out
    item in column 0, then ``n_neg`` distinct items that user has not interacted with in
    ``train`` or ``test``, in random order. Fixed by ``seed``; memory grows with the number of
    ratings and test rows, never with users x items.

    Returns:
        ``(users, candidates)``: ``(U,)`` and ``(U, 1 + n_neg)`` LongTensors, ``U = len(test)``.

    Raises:
        ValueError: a user with fewer than ``n_neg`` negatives (naming the user), indices out
            of range, or missing columns.
    """
    n_neg = _check_count(n_neg, "n_neg")
    tr_u, tr_i = _encoded_pairs(train, n_items, "train")
    te_u, te_i = _encoded_pairs(test, n_items, "test")
    all_u = np.concatenate([tr_u, te_u])
    all_i = np.concatenate([tr_i, te_i])
    both = pd.DataFrame({"user_id": all_u, "item_id": all_i})
    sampler = NegativeSampler.from_ratings(both, n_items)
    g = torch_generator(seed, "seed")
    if g is None:
        raise ValueError("seed must be an int or a torch.Generator, got None")
    users = torch.from_numpy(te_u)
    neg = sampler.sample(users, n_neg, generator=g, replace=False)
    return users, torch.cat([torch.from_numpy(te_i)[:, None], neg], dim=1)
