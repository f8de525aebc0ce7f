"""The course's three evaluation protocols, one call each.

Every comparison in the book and in the benchmarks is made on one of these, so that a number
in one chapter can be set beside a number in another::

    from recs_course.protocols import explicit_ratings, sampled_ranking, full_ranking

    protocol = full_ranking(ratings)             # the same splits for the same arguments
    model = ...                                  # trained on protocol.train
    protocol.evaluate(model, "valid")            # early stopping, grids
    protocol.evaluate(model)                     # the test set: recall@20 and NDCG@20

=================  ============================================  =============================
protocol           split                                         metrics
=================  ============================================  =============================
explicit_ratings   random: 20 % of the ratings -> test, 10 % of  RMSE, MAE of the test ratings
                   the rest -> validation                        (``monitor``: RMSE)
sampled_ranking    leave-one-out by time (the NCF protocol):     HR@10, NDCG@10 of the held-out
                   each user's latest interaction -> test, the   item among ``n_neg = 100``
                   second latest -> validation                   sampled negatives
full_ranking       chronological per user: each user's latest    recall@20, NDCG@20, every item
                   20 % -> test, the 10 % before -> validation   ranked, known items masked
item_cold_start    by item: 20 % of the items -> test, 10 % ->   recall@10, NDCG@10 of the test
                   validation, with all their interactions; the  items, ranked among the test
                   rest -> train                                 items only (``"cold"``)
=================  ============================================  =============================

"Latest" breaks ties of timestamps by the larger ``item_id`` (the rule of
:mod:`recs_course.data.splits`). The implicit protocols treat every rating as an interaction
and encode ids on the whole catalogue (a test item with no training interaction is still
ranked, with an untrained embedding), as RecBole does; the explicit protocol encodes on the
training ratings and drops validation and test ratings of unknown users or items (it cannot
predict them). Sampled negatives are never one of the user's interactions in any part.

``seed`` fixes what is random in a protocol: the random split of ``explicit_ratings`` and the
sampled negatives of ``sampled_ranking`` (``full_ranking`` has nothing random; its ``seed`` is
kept for the record). Training seeds are another matter: see :mod:`recs_course.recipes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from torch import nn

from .data import (
    IdEncoder,
    chronological_split,
    interaction_matrix,
    leave_one_out,
    random_split,
    ranking_candidates,
    to_tensors,
)
from .data._common import check_ratings, check_test_size, round_half_up
from .evaluation import evaluate_full, evaluate_ratings, evaluate_sampled
from .metrics import Metrics
from .utils import check_non_negative_int, check_positive_int

__all__ = [
    "Protocol",
    "explicit_ratings",
    "sampled_ranking",
    "full_ranking",
    "item_cold_start",
    "PROTOCOLS",
]

_PARTS = ("valid", "test")


@dataclass(frozen=True, eq=False, repr=False)
class Protocol:
    """A split of one data set with the way to evaluate a model on it.

    Built by :func:`explicit_ratings`, :func:`sampled_ranking` or :func:`full_ranking`; every
    frame is encoded (``user_id`` in ``[0, n_users)``, ``item_id`` in ``[0, n_items)``).

    Attributes:
        name: ``"explicit"``, ``"sampled"``, ``"full"`` or ``"cold"``.
        description: the split and the metrics in one sentence (for tables and captions).
        train, valid, test: the encoded parts. Models train on ``train``; ``valid`` is for
            early stopping and grids; ``test`` is touched once per trained model.
        n_users, n_items: the sizes of the encoding.
        encoder: the fitted :class:`recs_course.data.IdEncoder` (raw ids back from indices).
        metrics: the headline metrics, in order (``("recall@20", "NDCG@20")``).
        monitor: the validation metric early stopping and grids watch.
        higher_is_better: whether larger ``monitor`` values are better.
        seed: the seed the random parts were drawn with.
        k: the cut-off of the ranking metrics (``None`` for explicit ratings).

    A protocol holds plain data only (frames, tensors, sparse matrices), so it can be pickled
    and sent to worker processes (:func:`recs_course.recipes.run` with ``workers``).
    """

    name: str
    description: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    n_users: int
    n_items: int
    encoder: IdEncoder
    metrics: tuple[str, ...]
    monitor: str
    higher_is_better: bool
    seed: int
    k: int | None = None
    # what evaluate needs per part: tensors, candidate lists or CSR matrices (plain data, so
    # that a protocol can be sent to another process)
    _parts: dict[str, tuple] = field(default_factory=dict)

    @property
    def train_valid(self) -> pd.DataFrame:
        """``train`` and ``valid`` together: what a model may know when it is tested."""
        return pd.concat([self.train, self.valid], ignore_index=True)

    def matrix(self, part: str = "train", values: str = "ones") -> sp.csr_matrix:
        """The ``(n_users, n_items)`` CSR matrix of a part (``"train"``, ``"valid"``,
        ``"test"`` or ``"train_valid"``), with ``values`` as in
        :func:`recs_course.data.interaction_matrix` (``"ones"`` or ``"rating"``)."""
        frames = {"train": self.train, "valid": self.valid, "test": self.test}
        if part == "train_valid":
            frame = self.train_valid
        elif part in frames:
            frame = frames[part]
        else:
            raise ValueError(
                f"part must be 'train', 'valid', 'test' or 'train_valid', got {part!r}"
            )
        return interaction_matrix(frame, self.n_users, self.n_items, values=values)

    def evaluate(self, model: nn.Module, part: str = "test", *, device: Any = None) -> Metrics:
        """The protocol's metrics of ``model`` on ``part`` (``"test"`` or ``"valid"``), with
        per-user values (:class:`recs_course.metrics.Metrics`).

        Ranking protocols mask what the model may know: on ``valid`` the training
        interactions, on ``test`` the training and validation ones.
        """
        if part not in _PARTS:
            raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
        data = self._parts[part]
        if self.name == "explicit":
            return evaluate_ratings(model, *data, device=device)
        if self.name == "sampled":
            return evaluate_sampled(model, *data, ks=(self.k,), device=device)
        known, target, *candidates = data
        return evaluate_full(
            model,
            known,
            target,
            ks=(self.k,),
            metrics=("recall", "ndcg"),
            device=device,
            candidates=candidates[0] if candidates else None,
        )

    def evaluator(
        self, part: str = "valid", *, device: Any = None
    ) -> Callable[[nn.Module], Metrics]:
        """``evaluate`` as a one-argument function, for ``fit(evaluate=...)``."""
        if part not in _PARTS:
            raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
        return lambda model: self.evaluate(model, part, device=device)

    def __repr__(self) -> str:
        return (
            f"Protocol({self.name!r}: {len(self.train):,} train, {len(self.valid):,} valid, "
            f"{len(self.test):,} test; {self.n_users} users x {self.n_items} items; "
            f"{', '.join(self.metrics)}; seed {self.seed})"
        )


def _check_seed(seed: object) -> int:
    return check_non_negative_int("seed", seed)


def _fraction(name: str, value: object) -> float:
    try:
        return check_test_size(value)
    except ValueError:
        raise ValueError(
            f"{name} must be a number strictly between 0 and 1 (a share of the ratings), "
            f"got {value!r}"
        ) from None


def explicit_ratings(
    ratings: pd.DataFrame, *, seed: int = 0, test_size: float = 0.2, valid_size: float = 0.1
) -> Protocol:
    """Explicit ratings: a random split, RMSE and MAE.

    ``test_size`` of the ratings (drawn with ``seed``) form the test set, ``valid_size`` of the
    rest (drawn with ``seed + 1``) the validation set. Ids are encoded on the training ratings;
    validation and test ratings of users or items with no training rating are dropped.
    """
    seed = _check_seed(seed)
    test_size, valid_size = _fraction("test_size", test_size), _fraction("valid_size", valid_size)
    check_ratings(ratings, rating=True, unique_pairs="a pair in two parts would leak the answer")
    rest, test = random_split(ratings, test_size=test_size, seed=seed)
    train, valid = random_split(rest, test_size=valid_size, seed=seed + 1)
    encoder = IdEncoder().fit(train)
    train = encoder.transform(train)
    valid = encoder.transform(valid, unknown="drop")
    test = encoder.transform(test, unknown="drop")
    return Protocol(
        name="explicit",
        description=(
            f"explicit ratings: random split, {test_size:.0%} test, {valid_size:.0%} of the "
            "rest validation; RMSE and MAE"
        ),
        train=train,
        valid=valid,
        test=test,
        n_users=encoder.n_users,
        n_items=encoder.n_items,
        encoder=encoder,
        metrics=("RMSE", "MAE"),
        monitor="RMSE",
        higher_is_better=False,
        seed=seed,
        _parts={"valid": to_tensors(valid), "test": to_tensors(test)},
    )


def _implicit(ratings: pd.DataFrame) -> tuple[pd.DataFrame, IdEncoder]:
    check_ratings(ratings, timestamp=True, unique_pairs="a pair in two parts would leak the answer")
    columns = [c for c in ("user_id", "item_id", "rating", "timestamp") if c in ratings]
    frame = ratings[columns]
    return frame, IdEncoder().fit(frame)


def sampled_ranking(
    ratings: pd.DataFrame, *, seed: int = 0, n_neg: int = 100, k: int = 10
) -> Protocol:
    """Implicit feedback, sampled ranking: the NCF protocol.

    Each user's latest interaction is the test item, the second latest the validation item
    (:func:`recs_course.data.leave_one_out` twice); each is ranked among ``n_neg`` negatives
    drawn with ``seed`` (validation) and ``seed + 1`` (test), none of them an interaction of
    the user in any part. Metrics: HR@k and NDCG@k (``monitor``: NDCG@k).
    """
    seed = _check_seed(seed)
    n_neg = check_positive_int("n_neg", n_neg)
    k = check_positive_int("k", k)
    frame, encoder = _implicit(ratings)
    before_test, test = leave_one_out(frame)
    train, valid = leave_one_out(before_test)
    train, valid, test = (encoder.transform(x) for x in (train, valid, test))
    # Only users with a validation item are evaluated on it (a user with 2 interactions has a
    # test and a validation item and 0 training items: still ranked, by an untrained vector).
    valid_users, valid_cands = ranking_candidates(
        valid, encoder.n_items, n_neg, exclude=[train, test], generator=seed
    )
    test_users, test_cands = ranking_candidates(
        test, encoder.n_items, n_neg, exclude=[train, valid], generator=seed + 1
    )

    return Protocol(
        name="sampled",
        description=(
            "implicit, sampled ranking: leave-one-out by time (latest -> test, second latest "
            f"-> validation), {n_neg} sampled negatives; HR@{k} and NDCG@{k}"
        ),
        train=train,
        valid=valid,
        test=test,
        n_users=encoder.n_users,
        n_items=encoder.n_items,
        encoder=encoder,
        metrics=(f"HR@{k}", f"NDCG@{k}"),
        monitor=f"NDCG@{k}",
        higher_is_better=True,
        seed=seed,
        k=k,
        _parts={"valid": (valid_users, valid_cands), "test": (test_users, test_cands)},
    )


def full_ranking(
    ratings: pd.DataFrame,
    *,
    seed: int = 0,
    test_size: float = 0.2,
    valid_size: float = 0.1,
    k: int = 20,
) -> Protocol:
    """Implicit feedback, full ranking on a per-user chronological split.

    Each user's latest ``test_size`` of interactions form the test set and the
    ``valid_size`` of all their interactions just before it the validation set (a share
    ``valid_size / (1 - test_size)`` of what is left). Every item is ranked for every user;
    the items the model may know are masked (training items on validation, training and
    validation items on test). Metrics: recall@k and NDCG@k (``monitor``: NDCG@k).
    ``seed`` is recorded only: nothing here is random.
    """
    seed = _check_seed(seed)
    test_size, valid_size = _fraction("test_size", test_size), _fraction("valid_size", valid_size)
    if test_size + valid_size >= 1:
        raise ValueError(f"test_size + valid_size must be below 1, got {test_size} + {valid_size}")
    k = check_positive_int("k", k)
    frame, encoder = _implicit(ratings)
    before_test, test = chronological_split(frame, test_size=test_size, per_user=True)
    train, valid = chronological_split(
        before_test, test_size=valid_size / (1 - test_size), per_user=True
    )
    train, valid, test = (encoder.transform(x) for x in (train, valid, test))
    shape = (encoder.n_users, encoder.n_items)

    def matrix(df):
        return interaction_matrix(df, *shape, values="ones")

    m_train, m_valid, m_test = matrix(train), matrix(valid), matrix(test)
    m_known = (m_train + m_valid).tocsr()

    return Protocol(
        name="full",
        description=(
            f"implicit, full ranking: each user's latest {test_size:.0%} -> test, the "
            f"{valid_size:.0%} before -> validation; every item ranked, known items masked; "
            f"recall@{k} and NDCG@{k}"
        ),
        train=train,
        valid=valid,
        test=test,
        n_users=encoder.n_users,
        n_items=encoder.n_items,
        encoder=encoder,
        metrics=(f"recall@{k}", f"NDCG@{k}"),
        monitor=f"NDCG@{k}",
        higher_is_better=True,
        seed=seed,
        k=k,
        _parts={"valid": (m_train, m_valid), "test": (m_known, m_test)},
    )


def item_cold_start(
    ratings: pd.DataFrame,
    *,
    seed: int = 0,
    test_size: float = 0.2,
    valid_size: float = 0.1,
    k: int = 10,
) -> Protocol:
    """Implicit feedback, item cold start: some items are never seen in training.

    ``test_size`` of the items (drawn with ``seed``) are *cold test items*: every interaction
    with them is in ``test``, none in ``train``; ``valid_size`` of the items are cold
    validation items in the same way; the interactions with the other items form ``train``.
    Each user with a test interaction ranks the cold test items only (every other item is
    masked: a warm item is not a cold-start answer), and likewise on validation. Metrics:
    recall@k and NDCG@k (``monitor``: NDCG@k). Ids are encoded on the whole catalogue, so a
    cold item has an index (and, in a model with id embeddings, an untrained vector): what a
    model knows of it must come from elsewhere, its features.

    The items are drawn uniformly, not by popularity, so most cold items are rare ones, as new
    items are. The counts are ``floor(share * n_items + 1/2)`` (the course's rounding rule,
    :func:`recs_course.data.splits`), at least one item each, at least ``k`` each, and at
    least one item is left for training.
    """
    seed = _check_seed(seed)
    test_size, valid_size = _fraction("test_size", test_size), _fraction("valid_size", valid_size)
    if test_size + valid_size >= 1:
        raise ValueError(f"test_size + valid_size must be below 1, got {test_size} + {valid_size}")
    k = check_positive_int("k", k)
    frame, encoder = _implicit(ratings)
    n_items = encoder.n_items
    n_test = max(1, int(round_half_up(test_size, n_items)))
    n_valid = max(1, int(round_half_up(valid_size, n_items)))
    if n_items < 3:
        raise ValueError(
            f"the ratings hold {n_items} item(s): item cold start needs at least 3 (one to "
            "train on, one to validate, one to test)"
        )
    if n_test + n_valid >= n_items:
        raise ValueError(
            f"the ratings hold {n_items} items: too few to hold out {n_test} test and "
            f"{n_valid} validation items and still train on one; lower test_size or valid_size"
        )
    order = np.random.default_rng(seed).permutation(n_items)
    part = np.zeros(n_items, dtype=np.int8)  # 0 train, 1 valid, 2 test (by item index)
    part[order[:n_test]] = 2
    part[order[n_test : n_test + n_valid]] = 1
    encoded = encoder.transform(frame)
    where = part[encoded["item_id"].to_numpy()]
    train, valid, test = (encoded[where == p].reset_index(drop=True) for p in (0, 1, 2))
    if k > min(n_test, n_valid):
        raise ValueError(
            f"k = {k} is larger than the {n_test} cold test or the {n_valid} cold validation "
            "items (every model would recall them all): lower k or raise test_size/valid_size"
        )
    shape = (encoder.n_users, n_items)

    def matrix(df):
        return interaction_matrix(df, *shape, values="ones")

    m_train, m_valid, m_test = matrix(train), matrix(valid), matrix(test)
    return Protocol(
        name="cold",
        description=(
            f"implicit, item cold start: {test_size:.0%} of the items -> test, {valid_size:.0%} "
            "-> validation, with all their interactions; each user ranks the cold items only; "
            f"recall@{k} and NDCG@{k}"
        ),
        train=train,
        valid=valid,
        test=test,
        n_users=encoder.n_users,
        n_items=n_items,
        encoder=encoder,
        metrics=(f"recall@{k}", f"NDCG@{k}"),
        monitor=f"NDCG@{k}",
        higher_is_better=True,
        seed=seed,
        k=k,
        _parts={
            "valid": (m_train, m_valid, part == 1),
            "test": ((m_train + m_valid).tocsr(), m_test, part == 2),
        },
    )


#: The protocols by name, as recipes name them.
PROTOCOLS: dict[str, Callable[..., Protocol]] = {
    "explicit": explicit_ratings,
    "sampled": sampled_ranking,
    "full": full_ranking,
    "cold": item_cold_start,
}
