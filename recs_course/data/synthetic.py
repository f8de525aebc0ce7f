"""A synthetic MovieLens-like dataset for unit tests, and user subsampling for shrunk runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils import check_number, check_positive_int
from ._common import check_ratings, numpy_rng, round_half_up
from .movielens import MovieLens

__all__ = ["synthetic_ratings", "subsample_users"]

GENRES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Horror", "Romance", "Sci-Fi", "Thriller",
)  # fmt: skip
_OCCUPATIONS = ("student", "engineer", "artist", "educator", "other", "writer", "retired")


def _per_user_counts(rng: np.random.Generator, n_users: int, n_items: int, n_ratings: int):
    """Ratings per user: heavy-tailed, at least ``min(5, n_ratings // n_users)``, and at most
    half the items (as in MovieLens, where the busiest user rated 44%) unless ``n_ratings``
    needs more, so that every user keeps negatives to sample."""
    base = min(5, n_ratings // n_users, n_items)
    cap = n_items if 2 * n_ratings > n_users * n_items else max(base, -(-n_items // 2))
    weights = rng.lognormal(0.0, 1.0, size=n_users)
    counts = np.full(n_users, base, dtype=np.int64)
    rest = n_ratings - counts.sum()
    while rest > 0:  # rounds of redistribution; each fills every user it can
        room = cap - counts
        w = np.where(room > 0, weights, 0.0)
        extra = np.minimum(rng.multinomial(rest, w / w.sum()), room)
        counts += extra
        rest = n_ratings - counts.sum()
    return counts


def synthetic_ratings(
    n_users: int = 200,
    n_items: int = 300,
    n_ratings: int = 5000,
    dim: int = 4,
    seed: int = 0,
) -> MovieLens:
    """A deterministic MovieLens-like dataset with learnable structure.

    Ratings come from a low-rank model ``3.5 + b_u + b_i + p_u . q_i + noise`` (``dim`` latent
    factors) rounded and clipped to the integers 1..5 (stored as float32). Items have a
    Zipf-like popularity (item ``k``-th most popular drawn with weight ``1 / k``); users have a
    heavy-tailed number of ratings, at least ``min(5, n_ratings // n_users)`` each and at most
    half the items (unless ``n_ratings`` exceeds half of all pairs), so every user keeps
    negatives. Each (user, item) pair occurs at most once; timestamps strictly increase within
    each user.

    Ids are raw ids like MovieLens's: ``1..n_users`` and ``1..n_items`` (encode them with
    ``IdEncoder`` before using them as indices). Every user has ratings; rarely drawn items may
    have none (they are still in ``items``).

    Returns:
        ``MovieLens(name="synthetic")`` with ``ratings`` (``n_ratings`` rows, sorted by
        ``user_id`` then ``timestamp``), ``items`` (``item_id``, ``title`` = ``"Item 17"``,
        ``year``, ``genres`` from each item's strongest latent factor, sometimes two) and
        ``users`` (``user_id``, ``age``, ``gender``, ``occupation``, ``zip_code``).
    """
    n_users = check_positive_int("n_users", n_users)
    n_items = check_positive_int("n_items", n_items)
    dim = check_positive_int("dim", dim)
    n_ratings = check_positive_int("n_ratings", n_ratings)
    if not n_users <= n_ratings <= n_users * n_items:
        raise ValueError(
            f"n_ratings={n_ratings} must lie between n_users={n_users} (one rating each) and "
            f"n_users * n_items={n_users * n_items} (every pair rated once)"
        )
    rng = numpy_rng(seed)

    # Latent structure.
    p = rng.normal(0.0, 1.0 / np.sqrt(dim), size=(n_users, dim)) * 1.2
    q = rng.normal(0.0, 1.0 / np.sqrt(dim), size=(n_items, dim)) * 1.2
    b_u = rng.normal(0.0, 0.4, size=n_users)
    b_i = rng.normal(0.0, 0.4, size=n_items)

    # Zipf popularity over a random ordering of the items.
    rank = rng.permutation(n_items) + 1
    log_pop = -np.log(rank.astype(np.float64))

    # Each user's items: weighted sampling without replacement by the Gumbel-top-k trick,
    # a block of users at a time (no loop over users or ratings).
    counts = _per_user_counts(rng, n_users, n_items, n_ratings)
    users_out, items_out = [], []
    block = max(1, 2_000_000 // n_items)
    for start in range(0, n_users, block):
        stop = min(n_users, start + block)
        keys = log_pop + rng.gumbel(size=(stop - start, n_items))
        order = np.argsort(-keys, axis=1, kind="stable")
        take = np.arange(n_items)[None, :] < counts[start:stop, None]
        rows, cols = np.nonzero(take)
        users_out.append(rows + start)
        items_out.append(order[rows, cols])
    u = np.concatenate(users_out)
    i = np.concatenate(items_out)

    score = 3.5 + b_u[u] + b_i[i] + np.einsum("nd,nd->n", p[u], q[i])
    score += rng.normal(0.0, 0.5, size=score.shape)
    rating = np.clip(np.rint(score), 1, 5).astype(np.float32)

    # Timestamps: each user starts somewhere in 1998-2000 and rates in a random order, with
    # gaps of at least one second.
    order = np.lexsort((rng.random(len(u)), u))
    u, i, rating = u[order], i[order], rating[order]
    gaps = 1 + rng.exponential(3600.0, size=len(u)).astype(np.int64)
    csum = np.cumsum(gaps)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    offset = csum - np.repeat(csum[starts] - gaps[starts], counts)
    t0 = 883_612_800 + rng.integers(0, 2 * 365 * 86_400, size=n_users)
    timestamp = t0[u] + offset

    ratings = pd.DataFrame(
        {
            "user_id": (u + 1).astype(np.int64),
            "item_id": (i + 1).astype(np.int64),
            "rating": rating,
            "timestamp": timestamp.astype(np.int64),
        }
    )

    # Items: genres follow the latent factors so side information carries signal.
    proj = rng.normal(size=(dim, len(GENRES)))
    affinity = q @ proj
    first = np.argmax(affinity, axis=1)
    second = np.argsort(-affinity, axis=1)[:, 1]
    two = rng.random(n_items) < 0.3
    names = np.asarray(GENRES, dtype=object)
    genres = [
        [names[a], names[b]] if t else [names[a]]
        for a, b, t in zip(first.tolist(), second.tolist(), two.tolist(), strict=True)
    ]
    items = pd.DataFrame(
        {
            "item_id": np.arange(1, n_items + 1, dtype=np.int64),
            "title": [f"Item {k}" for k in range(1, n_items + 1)],
            "year": pd.array(rng.integers(1950, 2001, size=n_items), dtype="Int64"),
            "genres": pd.Series(genres, dtype=object).to_numpy(),
        }
    )
    users = pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1, dtype=np.int64),
            "age": rng.integers(15, 70, size=n_users).astype(np.int64),
            "gender": np.where(rng.random(n_users) < 0.5, "F", "M").tolist(),
            "occupation": np.asarray(_OCCUPATIONS, dtype=object)[
                rng.integers(0, len(_OCCUPATIONS), size=n_users)
            ].tolist(),
            "zip_code": [f"{z:05d}" for z in rng.integers(0, 100_000, size=n_users)],
        }
    )
    return MovieLens(
        ratings=ratings, items=items, users=users, name="synthetic", source="synthetic"
    )


def subsample_users(
    ratings: pd.DataFrame,
    n_users: int | None = None,
    frac: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Keep a random subset of users with all their ratings (for shrunk runs).

    Give exactly one of ``n_users`` (how many users to keep) or ``frac`` (which fraction, in
    ``(0, 1]``, of the ``n`` users; at least one user). ``frac`` is rounded by the splits' rule:
    ``floor(frac * n + 1/2)`` (half up), ``frac`` read as the decimal Python writes for it, in
    exact integers (``0.5`` of 5 users keeps 3). The choice depends only on the set of users
    and ``seed``; the kept rows stay in their original order, with a fresh index. The input is
    not modified.

    Returns:
        A new ratings frame with the same columns.
    """
    user = check_ratings(ratings, ids=("user_id",)).user  # integer ids (NaN is an error)
    if (n_users is None) == (frac is None):
        raise ValueError("give exactly one of n_users or frac")
    users = np.unique(user)
    if n_users is not None:
        k = check_positive_int("n_users", n_users)
        if k > len(users):
            raise ValueError(
                f"n_users={n_users} is more than the {len(users)} users in the ratings"
            )
    else:
        hint = " in (0, 1] (the fraction of the users kept)"
        if check_number("frac", frac, low=0.0, strict=True, hint=hint) > 1:
            raise ValueError(f"frac must be in (0, 1], got {frac!r}")
        k = max(1, int(round_half_up(frac, len(users))))
    chosen = numpy_rng(seed).choice(users, size=k, replace=False)
    keep = np.isin(user, chosen)
    return ratings.loc[keep].reset_index(drop=True)
