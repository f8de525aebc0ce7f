"""Synthetic MovieLens-like data: small sets for unit tests (``synthetic_ratings``), data of a
real MovieLens's shape for machines without the download (``movielens_shaped``), and user
subsampling for shrunk runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..utils import check_number, check_positive_int
from ._common import check_ratings, numpy_rng, round_half_up
from .movielens import MovieLens

__all__ = ["SHAPES", "Shape", "movielens_shaped", "synthetic_ratings", "subsample_users"]

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


# --------------------------------------------------------------------------------------------
# Synthetic data of a real MovieLens's shape (Chapter 10: scaling up without the download)


@dataclass(frozen=True)
class Shape:
    """The size and the statistics of a real MovieLens that :func:`movielens_shaped` imitates.

    ``rating_shares`` are the real data set's shares of each of ``rating_values``. A user's
    number of ratings is ``min_per_user`` plus a lognormal share (``activity_sigma``) of the
    rest, at most ``max_user_share`` of the catalogue (the real busiest user's share). An
    item's weight is about ``(1 + rank / (popularity_knee * n_items)) ** -popularity_exponent``
    (rank 0 the most popular item; exactly a Lomax law truncated to the catalogue): flat among
    the blockbusters, then a power law. The popularity parameters were chosen by measuring the
    generated data against the real item statistics (see :func:`movielens_shaped`).
    Timestamps lie in ``[first_time, last_time]`` (the real data set's span).
    """

    n_users: int
    n_items: int
    n_ratings: int
    # The rest defaults to ML-1M's values.
    min_per_user: int = 20
    rating_values: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
    rating_shares: tuple[float, ...] = (0.056163, 0.107533, 0.261142, 0.348897, 0.226265)
    activity_sigma: float = 1.15
    max_user_share: float = 0.63
    popularity_knee: float = 0.02
    popularity_exponent: float = 1.5  # > 1
    first_time: int = 956_703_932  # 2000-04-25
    last_time: int = 1_046_454_590  # 2003-02-28


SHAPES: dict[str, Shape] = {
    # 943 users, 1682 movies; shares of 1..5 stars: 6,110 / 11,370 / 27,145 / 34,174 / 21,201.
    "ml-100k": Shape(
        943, 1682, 100_000,
        rating_shares=(0.0611, 0.1137, 0.27145, 0.34174, 0.21201),
        activity_sigma=1.15, max_user_share=0.44, popularity_knee=0.03, popularity_exponent=1.6,
        first_time=874_724_710, last_time=893_286_638,  # 1997-09-20 to 1998-04-22
    ),
    # 6,040 users, 3,706 movies; shares: 56,174 / 107,557 / 261,197 / 348,971 / 226,310.
    "ml-1m": Shape(
        6040, 3706, 1_000_209,
        rating_shares=(0.056163, 0.107533, 0.261142, 0.348897, 0.226265),
        activity_sigma=1.15, max_user_share=0.63, popularity_knee=0.02, popularity_exponent=1.5,
        first_time=956_703_932, last_time=1_046_454_590,  # 2000-04-25 to 2003-02-28
    ),
    # 162,541 users, 59,047 rated movies; half stars 0.5..5, mean 3.53, 4.0 the most common.
    "ml-25m": Shape(
        162_541, 59_047, 25_000_095,
        rating_values=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
        rating_shares=(0.0157, 0.0311, 0.0160, 0.0656, 0.0505, 0.1959, 0.1271, 0.2656,
                       0.0880, 0.1445),
        activity_sigma=1.39, max_user_share=0.545, popularity_knee=0.005, popularity_exponent=2.2,
        first_time=789_652_009, last_time=1_574_327_703,  # 1995-01-09 to 2019-11-21
    ),
}  # fmt: skip
"""The shapes :func:`movielens_shaped` knows, by the name of the real data set."""

# The genres of ML-25M's movies.csv, in the file's (alphabetical) order, and the share of its
# movies that carry each (a movie has none, ``[]``, where the file says "(no genres listed)").
_ML_GENRES = {
    "Action": 0.118, "Adventure": 0.066, "Animation": 0.047, "Children": 0.047, "Comedy": 0.27,
    "Crime": 0.085, "Documentary": 0.09, "Drama": 0.41, "Fantasy": 0.044, "Film-Noir": 0.006,
    "Horror": 0.096, "IMAX": 0.003, "Musical": 0.017, "Mystery": 0.047, "Romance": 0.124,
    "Sci-Fi": 0.058, "Thriller": 0.139, "War": 0.03, "Western": 0.022,
}  # fmt: skip


def _shaped_user_counts(
    rng: np.random.Generator, shape: Shape, n_users: int, n_ratings: int
) -> np.ndarray:
    """Ratings per user: ``min_per_user`` plus a lognormal share of the rest, rounded to integers
    by largest remainders so that the total is exactly ``n_ratings``, each at most
    ``max_user_share`` of the catalogue (what a capped user would get goes to the others)."""
    cap = max(shape.min_per_user, int(shape.max_user_share * shape.n_items))
    weights = rng.lognormal(0.0, shape.activity_sigma, size=n_users)
    counts = np.full(n_users, shape.min_per_user, dtype=np.int64)
    rest = n_ratings - int(counts.sum())
    while rest > 0:  # rounds of redistribution (a few); each fills every user it can
        room = cap - counts
        w = np.where(room > 0, weights, 0.0)
        share = rest * (w / w.sum())
        extra = np.floor(share).astype(np.int64)
        left = rest - int(extra.sum())
        if left > 0:  # fewer than the users with room: each of them has a fraction > 0
            extra[np.argpartition(extra - share, left - 1)[:left]] += 1
        counts += np.minimum(extra, room)
        rest = n_ratings - int(counts.sum())
    return counts


def _in_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_keys)`` for a sorted ``sorted_keys`` (a binary search each)."""
    if sorted_keys.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, values), sorted_keys.size - 1)
    return sorted_keys[pos] == values


def _ranges(sorted_keys: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Indices into ``sorted_keys`` of the values in ``[lo[j], hi[j])`` for each ``j``, and the
    ``j`` of each (no loop)."""
    start = np.searchsorted(sorted_keys, lo)
    lens = np.searchsorted(sorted_keys, hi) - start
    owner = np.repeat(np.arange(len(lo)), lens)
    idx = np.repeat(start - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
    return idx, owner


class _Popularity:
    """Item popularity by rank (0 the most popular): a Lomax law truncated to ``[0, n)``, so
    that rank ``r`` has probability ``(G(r) - G(r + 1)) / (1 - G(n))`` with the survival
    function ``G(x) = (1 + x / (knee * n)) ** -(exponent - 1)``: about
    ``(1 + r / (knee * n)) ** -exponent``, flat among the first ``knee * n`` ranks, then a
    power law. Draws with replacement by the closed-form inverse CDF (no search)."""

    def __init__(self, n: int, knee: float, exponent: float):
        self.n, self.scale, self.shape = n, knee * n, exponent - 1.0
        survival = np.exp(-self.shape * np.log1p(np.arange(n + 1.0) / self.scale))
        self.mass = 1.0 - survival[-1]
        self.p = (survival[:-1] - survival[1:]) / self.mass

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        u = rng.random(size)
        u *= self.mass
        x = np.log1p(-u, out=u)
        x *= -1.0 / self.shape
        x = np.expm1(x, out=x)
        x *= self.scale
        return np.minimum(x.astype(np.int64), self.n - 1)


_TOP_UP_ROUNDS = 6  # draws with replacement for the light users, then Gumbel-top-k for the rest
_GUMBEL_BLOCK = 4_000_000  # entries of a block of (users x items) Gumbel keys


def _shaped_pairs(
    rng: np.random.Generator, counts: np.ndarray, pop: _Popularity, heavy: int
) -> np.ndarray:
    """Each user's ``counts[u]`` distinct item ranks, drawn by weighted sampling without
    replacement (successive sampling: each next item with probability proportional to
    ``pop.p`` among the items the user has not rated yet).

    Returns the keys ``user * n_items + rank``, one per rating, in no particular order.

    Two exact, vectorised ways to draw the same thing. Users with at most ``heavy`` ratings:
    draws with replacement from the whole catalogue, in each user's draw order, keeping the
    first draw of each item; a user left short draws again (about as many draws as it lacks
    divided by the probability mass of the items it has not rated yet), ``_TOP_UP_ROUNDS``
    times at most. The others, and anyone still short after those rounds: the Gumbel-top-k
    trick over the items they have not rated (``log p + Gumbel noise``, the largest keys), a
    block of users at a time. Both continue the same successive sampling, so the result's law
    does not depend on which way a user took.
    """
    n_users, n, p = len(counts), pop.n, pop.p

    # Round 1: every light user draws as many items as it needs, with replacement.
    light = counts <= heavy
    keys = np.repeat(np.flatnonzero(light) * n, counts[light])
    keys += pop.draw(rng, len(keys))
    keys.sort(kind="stable")  # grouped by user already: numpy's stable sort is fast on that
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    user, item = np.divmod(keys, n)
    have = np.bincount(user, minlength=n_users)
    free = 1.0 - np.bincount(user, weights=p[item], minlength=n_users)
    del user, item
    need = np.where(light, counts - have, 0)

    extra = np.empty(0, dtype=np.int64)  # keys found by the top-up rounds, sorted
    for _ in range(_TOP_UP_ROUNDS):
        short = np.flatnonzero(need > 0)
        if short.size == 0:
            break
        n_draws = np.ceil(1.1 * need[short] / np.maximum(free[short], 1e-9)).astype(np.int64)
        n_draws = np.minimum(n_draws + 2, 8 * n)
        new = np.repeat(short * n, n_draws) + pop.draw(rng, int(n_draws.sum()))
        new = new[~(_in_sorted(new, keys) | _in_sorted(new, extra))]
        _, first = np.unique(new, return_index=True)  # the first draw of each pair
        new = new[np.sort(first)]  # in draw order: grouped by user, ascending
        user = new // n
        rank = np.arange(len(new)) - np.searchsorted(user, user)  # k-th new item of its user
        new = new[rank < need[user]]
        user, item = np.divmod(new, n)
        extra = np.sort(np.concatenate([extra, new]))
        need -= np.bincount(user, minlength=n_users)
        free -= np.bincount(user, weights=p[item], minlength=n_users)

    # Gumbel-top-k for the heavy users and whoever is still short.
    rest = np.flatnonzero(~light | (need > 0))
    need = np.where(light, need, counts)
    log_p = np.log(p)
    found = []
    block = max(1, _GUMBEL_BLOCK // n)
    for start in range(0, len(rest), block):  # blocks of users
        users = rest[start : start + block]
        g = rng.gumbel(size=(len(users), n))
        g += log_p
        for held in (keys, extra):  # the items these users already have are out
            idx, row = _ranges(held, users * n, (users + 1) * n)
            g[row, held[idx] % n] = -np.inf
        order = np.argsort(-g, axis=1)
        rows, cols = np.nonzero(np.arange(n)[None, :] < need[users][:, None])
        found.append(users[rows] * n + order[rows, cols])
    return np.concatenate([keys, extra, *found])


def _shaped_timestamps(rng: np.random.Generator, shape: Shape, counts: np.ndarray) -> np.ndarray:
    """Strictly increasing timestamps within each user (rows grouped by user, in order).

    A user's ratings span a lognormal time (median a week: many rate everything in a day,
    some over years; at least 30 s a rating), starting at a uniform time of the real data
    set's span; the gaps between ratings are lognormal too (bursts of ratings, long pauses).
    """
    n_users, total = len(counts), int(counts.sum())
    period = shape.last_time - shape.first_time
    span = np.exp(rng.normal(np.log(7 * 86_400), 2.5, size=n_users))
    span = np.clip(span, 30.0 * counts, period).astype(np.int64)
    start = shape.first_time + (rng.random(n_users) * (period - span + 1)).astype(np.int64)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    last = first + counts - 1
    csum = rng.lognormal(0.0, 2.0, size=total)
    csum[first] = 0.0  # each user's first rating is at its start
    np.cumsum(csum, out=csum)
    # Position in the user's span in [0, 1], times the room left once each rating has its own
    # second: floor(...) + rank is then strictly increasing, from start to start + span.
    scale = (span - (counts - 1)) / np.maximum(csum[last] - csum[first], 1e-300)
    csum -= np.repeat(csum[first], counts)
    csum *= np.repeat(scale, counts)
    out = csum.astype(np.int64)
    del csum
    out += np.arange(total)
    out += np.repeat(start - first, counts)
    return out


def _shaped_ratings(
    rng: np.random.Generator,
    shape: Shape,
    user: np.ndarray,
    item: np.ndarray,
    popularity: np.ndarray,
    n_users: int,
) -> np.ndarray:
    """Ratings with structure and the real marginal: a latent score
    ``b_u + b_i + p_u . q_i + noise`` (8 factors; popular items score a little higher, as in
    MovieLens), cut at the quantiles of ``rating_shares`` (the share of each value is the real
    one, up to ties)."""
    dim, n_items = 8, len(popularity)
    p = rng.normal(0.0, 0.55 / np.sqrt(dim), size=(n_users, dim)).astype(np.float32)
    q = rng.normal(0.0, 1.0, size=(n_items, dim)).astype(np.float32)
    log_pop = np.log(popularity)
    tilt = (log_pop - log_pop.mean()) / (log_pop.std() + 1e-12)
    b_u = rng.normal(0.0, 0.45, size=n_users).astype(np.float32)
    b_i = (rng.normal(0.0, 0.45, size=n_items) + 0.2 * tilt).astype(np.float32)
    score = np.empty(len(user), dtype=np.float32)
    step = 2_000_000
    for lo in range(0, len(user), step):  # blocks of ratings (the factors' rows fit in memory)
        u, i = user[lo : lo + step], item[lo : lo + step]
        s = b_u[u] + b_i[i] + np.einsum("nd,nd->n", p[u], q[i])
        noise = rng.standard_normal(size=len(u), dtype=np.float32)
        noise *= 0.75
        s += noise
        score[lo : lo + step] = s
    shares = np.asarray(shape.rating_shares, dtype=np.float64)
    cuts = np.quantile(score, np.cumsum(shares / shares.sum())[:-1]).astype(np.float32)
    values = np.asarray(shape.rating_values, dtype=np.float32)
    return values[np.searchsorted(cuts, score, side="right")]


def _shaped_items(rng: np.random.Generator, n_items: int, last_year: int) -> pd.DataFrame:
    """The items table: ``"Movie 17"`` titles, years skewed to recent ones (1% missing), and
    ML-25M's genres with their shares (independent draws; a movie may have none)."""
    item_id = np.arange(1, n_items + 1, dtype=np.int64)
    year = pd.array(
        np.clip(last_year - rng.exponential(18.0, size=n_items).astype(np.int64), 1902, None),
        dtype="Int64",
    )
    year[rng.random(n_items) < 0.01] = pd.NA
    names = list(_ML_GENRES)
    flags = rng.random((n_items, len(names))) < np.array(list(_ML_GENRES.values()))
    rows, cols = np.nonzero(flags)
    labels = np.asarray(names, dtype=object)[cols]
    ends = np.cumsum(np.bincount(rows, minlength=n_items))[:-1]
    genres = [list(g) for g in np.split(labels, ends)]  # one list object per item
    return pd.DataFrame(
        {
            "item_id": item_id,
            "title": ("Movie " + pd.Series(item_id).astype(str)).to_numpy(dtype=object),
            "year": year,
            "genres": pd.Series(genres, dtype=object).to_numpy(),
        }
    )


def movielens_shaped(name: str = "ml-25m", *, fraction: float = 1.0, seed: int = 0) -> MovieLens:
    """Synthetic ratings with the shape of a real MovieLens (for machines without the data).

    The counts are the real data set's (:data:`SHAPES`): ``"ml-100k"`` (943 users, 1,682
    items, 100,000 ratings), ``"ml-1m"`` (6,040, 3,706, 1,000,209), ``"ml-25m"`` (162,541,
    59,047, 25,000,095). As in the real sets every user has at least 20 ratings and users'
    activity is heavy-tailed: 20 plus a lognormal share of the rest, rounded so that the total
    is exact, at most the real busiest user's share of the catalogue. Items' popularity is
    skewed (:class:`Shape`: flat among the blockbusters, then a power law; which item id is
    popular is random). Each user's items are drawn by weighted sampling without replacement,
    so pairs are unique and the busiest users reach far into the long tail; some rarely drawn
    items get no rating (``items`` still lists the whole catalogue). Ratings come from a user
    bias, an item bias (a little higher for popular items) and 8 latent factors plus noise,
    cut so that the shares of the rating values are the real ones (ml-25m: half stars 0.5 to
    5, mean 3.53, 4.0 the most common; the others 1 to 5). Timestamps strictly increase within
    each user (in a random order of their items) and lie in the real data set's span.

    Measured on the full ml-25m shape (seed 0; ``python -m benchmarks.bench_parse``), real
    ML-25M in brackets: ratings per user min 20, median 71, mean 153.8, max 32,180 (20, 71,
    153.8, 32,202); 58,055 of the 59,047 movies rated (59,047), half of them fewer than 10
    times (median 10), item Gini 0.948 (0.942), the most popular 1% of the movies hold 59% of
    the ratings, the most rated movie is rated by 36% of the users (Forrest Gump: 81,491, 50%;
    the real top is peakier); mean rating 3.534 (3.534). ml-1m: user median 94, item median 96
    (123.5), item Gini 0.64 (0.634), the most rated 3,615 (3,428). Generating the full ml-25m
    shape takes about 12 s of CPU (17 s on a busy 2-core machine) and 1.4 GB at peak:
    everything is vectorised (blocks of users or ratings, never a loop over them).

    Args:
        name: one of :data:`SHAPES`.
        fraction: in ``(0, 1]``: keep this share of the users and of the ratings (the
            catalogue keeps its size), each rounded half up (at least one user, 20 ratings
            each), for quick runs.
        seed: an int ``>= 0`` or a ``numpy.random.Generator``; the same seed gives the same
            data.

    Returns:
        ``MovieLens(name=f"{name}-shaped", source="synthetic", users=None)`` with ``ratings``
        (``user_id``, ``item_id`` raw ids ``1..n`` int64, ``rating`` float32, ``timestamp``
        int64; rows sorted by user then time) and ``items`` (``item_id`` ``1..n_items``,
        ``title`` ``"Movie 17"``, ``year`` Int64, ``genres`` a list of str).

    Raises:
        ValueError: an unknown ``name`` (the message lists the known ones), ``fraction``
            outside ``(0, 1]``, or a bad ``seed``.
    """
    if not isinstance(name, str) or name not in SHAPES:
        raise ValueError(
            f"unknown MovieLens shape {name!r}: choose one of {sorted(SHAPES)} (the real data "
            "set whose sizes and statistics to imitate)"
        )
    what = "the share of the users and ratings kept"
    if check_number("fraction", fraction, low=0.0, strict=True, hint=f" in (0, 1] ({what})") > 1:
        raise ValueError(f"fraction must be in (0, 1] ({what}), got {fraction!r}")
    rng = numpy_rng(seed)
    shape = SHAPES[name]
    n_users = max(1, int(round_half_up(fraction, shape.n_users)))
    n_ratings = max(shape.min_per_user * n_users, int(round_half_up(fraction, shape.n_ratings)))
    n_items = shape.n_items

    counts = _shaped_user_counts(rng, shape, n_users, n_ratings)
    # Item weights by popularity rank; which item has which rank is random.
    pop = _Popularity(n_items, shape.popularity_knee, shape.popularity_exponent)
    item_of_rank = rng.permutation(n_items)
    keys = _shaped_pairs(rng, counts, pop, heavy=max(shape.min_per_user, n_items // 16))

    # Rows by user, in a random order within each user (that order is the time order): one
    # sort of (user, random bits, item) packed into an int64.
    item_bits = int(n_items - 1).bit_length()
    rand_bits = 63 - int(n_users - 1).bit_length() - item_bits
    packed, rank = np.divmod(keys, n_items)
    del keys
    packed <<= rand_bits + item_bits
    packed |= rank
    del rank
    packed |= rng.integers(0, 1 << rand_bits, size=len(packed), dtype=np.int64) << item_bits
    packed.sort(kind="stable")  # mostly grouped by user already: fast
    user = packed >> (rand_bits + item_bits)
    packed &= (1 << item_bits) - 1
    item = item_of_rank[packed]  # 0-based item index of each row
    del packed
    popularity = np.empty(n_items)
    popularity[item_of_rank] = pop.p

    rating = _shaped_ratings(rng, shape, user, item, popularity, n_users)
    timestamp = _shaped_timestamps(rng, shape, counts)
    ratings = pd.DataFrame(
        {
            "user_id": user + 1,
            "item_id": item + 1,
            "rating": rating,
            "timestamp": timestamp,
        },
        copy=False,
    )
    last_year = int(pd.Timestamp(shape.last_time, unit="s").year)
    items = _shaped_items(rng, n_items, last_year)
    return MovieLens(
        ratings=ratings, items=items, users=None, name=f"{name}-shaped", source="synthetic"
    )
