"""Evaluation protocols: rating prediction, sampled ranking and full ranking.

Every function puts the model in eval mode under ``torch.no_grad()``, inside one
``model.scoring_pass()``, restores the training flag of each of its submodules afterwards, and
scores in batches. The model follows the contract of :mod:`recs_course.models`:

* ``model(users (B,), items (B,)) -> scores (B,)``;
* ``model.score_all(users (B,)) -> scores (B, n_items)`` (full ranking only).

Ranking metrics come from :func:`recs_course.metrics.ranking_metrics`, with its pessimistic tie
rule (a tie never favours the relevant item) and its ``-inf`` convention (masked items are not
candidates). Per-user values are averaged at the end over the users that have a relevant
candidate, so the result does not depend on the batch size. Every evaluator returns a
:class:`~recs_course.metrics.Metrics`: a dict of the means, with the per-user values in
``.per_user`` (one row per evaluated user).

``device`` follows the one rule of :func:`recs_course.models.place_model` (as in
:func:`recs_course.training.fit`): ``None`` scores where the model is; any other value
(``"auto"``, ``"cpu"``, ``"cuda"``) moves the model there first and scores there.

Inputs are checked on the CPU before they are sent to the device (so no device synchronisation
per batch): indices with :func:`recs_course.models.check_indices` (integer dtype, shape, values
in ``[0, model.n_users)`` / ``[0, model.n_items)`` when the model has those sizes, else
``>= 0``); scores are compared exactly (integer scores are never cast to float32); NaN scores,
predictions or ratings raise ``ValueError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from .metrics import (
    TOPK_METRICS,
    Metrics,
    _as_real,
    _check_finite,
    _check_ks,
    _check_metrics,
    _check_nan_scores,
    _exact_scores,
    _per_user,
    mae,
    rmse,
)
from .models.base import (
    check_indices,
    check_module,
    check_positive_int,
    place_model,
    restored_modes,
)

__all__ = ["evaluate_ratings", "evaluate_sampled", "evaluate_full", "Metrics"]


# --------------------------------------------------------------------------- helpers
def _check_model(model: object, needs: str = "forward") -> None:
    """``model`` must be a torch module (scored in eval mode, its device read from its weights);
    for full ranking it must also have ``score_all``. Checked before anything else."""
    check_module(model)
    if needs == "score_all" and not callable(getattr(model, "score_all", None)):
        raise ValueError(
            "full ranking needs a model with score_all(users) -> (B, n_items); "
            f"{type(model).__name__} has none (every recs_course Recommender has it)"
        )


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode, no autograd and one scoring pass inside (``model.scoring_pass()``, see
    :class:`recs_course.models.Recommender`: what every batch needs, such as a graph
    propagation, is computed once); every submodule's training flag restored on exit."""
    scoring_pass = getattr(model, "scoring_pass", None)
    with restored_modes(model), torch.no_grad():
        model.eval()
        with scoring_pass() if callable(scoring_pass) else contextlib.nullcontext():
            yield


def _model_size(model: nn.Module, attr: str) -> int | None:
    """``model.n_users`` / ``model.n_items`` when the model has it (a Recommender), else None."""
    value = getattr(model, attr, None)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def _as_index(
    x, name: str, model: nn.Module | None = None, attr: str | None = None, ndim: int = 1
) -> Tensor:
    """Indices as a CPU int64 tensor, checked on the CPU (:func:`check_indices`): in range of
    ``model.<attr>`` when the model has it, else non-negative. Checking before the inputs are
    sent to the device costs no device synchronisation per batch."""
    upper = _model_size(model, attr) if model is not None and attr else None
    what = f"{attr} = {upper} of the model" if upper is not None else None
    if isinstance(x, Tensor):
        x = x.detach().to("cpu")
    return check_indices(name, x, upper, ndim=ndim, what=what).long()


def _check_model_scores(scores: Tensor, what: str, users: Tensor, integers: str = "keep") -> Tensor:
    """A model's scores, exact (see :func:`recs_course.metrics.ranking_metrics`) and NaN-free."""
    scores = _exact_scores(scores.detach(), what, integers=integers)
    _check_nan_scores(scores, what, users)
    return scores


def _flat_scores(out: Tensor, n: int, what: str) -> Tensor:
    if not isinstance(out, Tensor) or out.numel() != n or (out.dim() > 1 and out.shape[0] != n):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{what} must return {n} scores, shape ({n},), got {shape}")
    return out.reshape(n)


def _per_user_errors(users: Tensor, pred: Tensor, ratings: Tensor) -> pd.DataFrame:
    """Per-user RMSE and MAE of rating predictions (one ``index_add`` per sum, no loop)."""
    uniq, inv = torch.unique(users, return_inverse=True)
    err = pred.to(torch.float64) - ratings.to(torch.float64)
    n = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, torch.ones_like(err))
    sq = torch.zeros_like(n).index_add_(0, inv, err * err)
    ab = torch.zeros_like(n).index_add_(0, inv, err.abs())
    return pd.DataFrame(
        {
            "user": uniq.numpy(),
            "n_ratings": n.numpy().astype(np.int64),
            "RMSE": (sq / n).sqrt().numpy(),
            "MAE": (ab / n).numpy(),
        }
    )


def _collect(chunks: list[dict[str, Tensor]], users: list[Tensor]) -> Metrics:
    keys = list(chunks[0])
    values = {k: torch.cat([c[k].to("cpu", torch.float64) for c in chunks]) for k in keys}
    if all(bool(torch.isnan(v).all()) for v in values.values()):
        raise ValueError(
            "no evaluated user has a relevant candidate (every relevant item scored -inf?): "
            "the metrics are undefined"
        )
    return Metrics.from_per_user(torch.cat([u.cpu() for u in users]), values)


# --------------------------------------------------------------------------- protocols
def evaluate_ratings(
    model: nn.Module,
    users,
    items,
    ratings,
    *,
    pairs_per_batch: int = 65536,
    device: str | torch.device | None = None,
) -> Metrics:
    """RMSE and MAE of a rating model on ``(user, item, rating)`` triples.

    Args:
        model: ``model(users (B,), items (B,)) -> predicted ratings (B,)``.
        users: ``(N,)`` user indices (tensor or array).
        items: ``(N,)`` item indices.
        ratings: ``(N,)`` true ratings.
        pairs_per_batch: (user, item) pairs scored per forward call.
        device: ``None`` (the model's device) or a device the model is moved to (see the module
            docstring).

    Returns:
        ``Metrics({"RMSE": ..., "MAE": ...})`` over all pairs; ``.per_user`` has ``user``,
        ``n_ratings``, ``RMSE`` and ``MAE`` of each user's own pairs.
    """
    _check_model(model)
    step = check_positive_int("pairs_per_batch", pairs_per_batch)
    dev = place_model(model, device)
    u = _as_index(users, "users", model, "n_users")
    i = _as_index(items, "items", model, "n_items")
    r = _as_real("ratings", ratings)
    if u.dim() != 1 or u.shape != i.shape or u.shape != r.shape:
        raise ValueError(
            "users, items and ratings must be 1-D of the same length, got shapes "
            f"{tuple(u.shape)}, {tuple(i.shape)}, {tuple(r.shape)}"
        )
    if u.numel() == 0:
        raise ValueError("no ratings to evaluate")
    _check_finite("ratings", r, "keep finite ratings only (drop the rows without a rating first)")
    preds = []
    with _eval_mode(model):
        for start in range(0, u.numel(), step):
            bu, bi = u[start : start + step], i[start : start + step]
            out = model(bu.to(dev), bi.to(dev))
            preds.append(
                _flat_scores(out, bu.numel(), "model(users, items)").to("cpu", torch.float64)
            )
    pred = torch.cat(preds)
    _check_finite(
        "model(users, items)", pred, "its predictions are undefined (did training diverge?)"
    )
    return Metrics({"RMSE": rmse(pred, r), "MAE": mae(pred, r)}, _per_user_errors(u, pred, r))


def evaluate_sampled(
    model: nn.Module,
    users,
    candidates,
    ks: int | Sequence[int] = (10,),
    *,
    metrics: str | Sequence[str] = ("hr", "ndcg"),
    users_per_batch: int = 1024,
    device: str | torch.device | None = None,
) -> Metrics:
    """Sampled ranking: rank each user's held-out item among its sampled negatives.

    Row ``u`` of ``candidates`` holds the held-out positive in column 0 and ``C - 1`` negatives
    (see :func:`recs_course.data.ranking_candidates`). Every pair is scored with
    ``model(users.repeat_interleave(C), candidates.flatten())``, a batch of users at a time,
    and column 0 is the only relevant item. Ties are pessimistic: a positive scored equal to a
    negative ranks below it, so a constant model gets ``HR@k = 0`` when ``k < C``.

    Args:
        model: pair scorer ``model(users (B,), items (B,)) -> (B,)``.
        users: ``(U,)`` user indices.
        candidates: ``(U, C)`` item indices, column 0 the positive; a row holding its positive
            again among its negatives is a ``ValueError`` (the tie would rank it below itself).
        ks: cut-offs, each ``1 <= k <= C``.
        metrics: see :func:`recs_course.metrics.ranking_metrics` (with one positive, recall@k
            equals HR@k and MAP@k equals MRR@k).
        users_per_batch: users per forward call (``users_per_batch * C`` pairs).
        device: ``None`` (the model's device) or a device the model is moved to (see the module
            docstring).

    Returns:
        ``Metrics({"HR@10": ..., "NDCG@10": ..., ...})``, means over users; ``.per_user`` has
        one row per row of ``candidates``.
    """
    _check_model(model)
    step = check_positive_int("users_per_batch", users_per_batch)
    dev = place_model(model, device)
    u = _as_index(users, "users", model, "n_users")
    c = _as_index(candidates, "candidates", model, "n_items", ndim=2)
    if c.dim() != 2 or u.dim() != 1 or u.shape[0] != c.shape[0]:
        raise ValueError(
            "users must be (U,) and candidates (U, C) with column 0 the held-out item, got "
            f"shapes {tuple(u.shape)} and {tuple(c.shape)}"
        )
    if u.numel() == 0 or c.shape[1] == 0:
        raise ValueError("no user or no candidate to evaluate")
    # The held-out item again among its row's negatives ties with itself, and pessimistic ties
    # rank it below: HR@1 = 0 whatever the model. One vectorised comparison on the CPU.
    repeated = (c[:, 1:] == c[:, :1]).any(dim=1)
    if bool(repeated.any()):
        row = int(repeated.nonzero()[0, 0])
        raise ValueError(
            f"candidates: {int(repeated.sum())} row(s) hold their held-out item (column 0) again "
            f"among the negatives, e.g. row {row} (user {int(u[row])}, item {int(c[row, 0])}): "
            "the negatives must differ from the positive (recs_course.data.ranking_candidates "
            "draws them so)"
        )
    n_users, n_cand = c.shape
    names = _check_metrics(metrics)
    ks_t = _check_ks(ks, n_cand) if any(m in TOPK_METRICS for m in names) else ()
    chunks, batch_users = [], []
    with _eval_mode(model):
        for start in range(0, n_users, step):
            bu = u[start : start + step].to(dev)
            bc = c[start : start + step].to(dev)
            b = bu.shape[0]
            out = model(bu.repeat_interleave(n_cand), bc.reshape(-1))
            scores = _flat_scores(out, b * n_cand, "model(users, items)").reshape(b, n_cand)
            scores = _check_model_scores(scores, "the scores of model(users, items)", bu)
            relevant = torch.zeros(b, n_cand, dtype=torch.bool, device=scores.device)
            relevant[:, 0] = True
            values, _ = _per_user(scores, relevant, ks_t, names)
            chunks.append(values)
            batch_users.append(bu.cpu())
    return _collect(chunks, batch_users)


def _csr_rows_mask(m: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> Tensor:
    """Dense ``(len(rows), n_cols)`` bool mask of the nonzero entries of some CSR rows."""
    sub = m[rows]
    counts = np.diff(sub.indptr)
    r = np.repeat(np.arange(len(rows)), counts)
    keep = sub.data != 0
    mask = torch.zeros(len(rows), m.shape[1], dtype=torch.bool)
    mask[torch.from_numpy(r[keep]), torch.from_numpy(sub.indices[keep].astype(np.int64))] = True
    return mask.to(device)


def _as_csr(m, name: str) -> sp.csr_matrix:
    if not sp.issparse(m):
        raise ValueError(
            f"{name} must be a scipy sparse (users x items) matrix, got {type(m).__name__}"
        )
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {m.shape}")
    return sp.csr_matrix(m)


def _outside_candidates(candidates, n_items: int) -> Tensor | None:
    """``None``, or the ``(1, I)`` bool mask of the items *not* in ``candidates``."""
    if candidates is None:
        return None
    if isinstance(candidates, Tensor):
        candidates = candidates.detach().cpu().numpy()
    mask = np.array(candidates)  # a copy: read-only or reversed arrays are fine
    if mask.dtype != np.bool_ or mask.shape != (n_items,):
        raise ValueError(
            f"candidates must be a ({n_items},) bool mask of the items that may be ranked, got "
            f"dtype {mask.dtype} and shape {mask.shape}"
        )
    if not mask.any():
        raise ValueError("candidates holds no item: there is nothing to rank")
    return torch.from_numpy(~mask).unsqueeze(0)


def evaluate_full(
    model: nn.Module,
    train,
    test,
    ks: int | Sequence[int] = (20,),
    *,
    metrics: str | Sequence[str] = ("recall", "ndcg", "precision", "hr"),
    users=None,
    users_per_batch: int = 1024,
    device: str | torch.device | None = None,
    candidates=None,
) -> Metrics:
    """Full ranking: rank every item for each user, training items masked out.

    For each batch of users, ``model.score_all(batch) -> (B, I)`` scores every item, the user's
    training items (nonzero entries of its ``train`` row) are set to ``-inf`` so they are never
    recommended nor counted, and the relevant items are the nonzero entries of its ``test`` row
    (densified one batch at a time). A test item that is also a training item is therefore
    masked and not counted (keep train and test disjoint).

    Args:
        model: implements ``score_all(users (B,)) -> (B, I)``.
        train: ``(U, I)`` scipy sparse matrix of training interactions.
        test: ``(U, I)`` scipy sparse matrix of test interactions.
        ks: cut-offs, each ``1 <= k <= I``.
        metrics: see :func:`recs_course.metrics.ranking_metrics`.
        users: user indices to evaluate (default all), each at most once (a repeated user is a
            ``ValueError``: it would count several times in the mean); users without a test
            item are skipped.
        users_per_batch: users per ``score_all`` call (the model computes what every batch
            shares once per evaluation: see :meth:`recs_course.models.Recommender.scoring_pass`).
        device: ``None`` (the model's device) or a device the model is moved to (see the module
            docstring).
        candidates: ``None`` (every item) or a ``(I,)`` bool mask of the items that may be
            ranked; the others are masked for every user, as training items are (a test item
            outside it is not counted). The item-cold-start protocol ranks its cold items only.

    Returns:
        ``Metrics({"recall@20": ..., "NDCG@20": ..., ...})``, means over the users with a test
        item; ``.per_user`` has one row per evaluated user.
    """
    _check_model(model, "score_all")
    step = check_positive_int("users_per_batch", users_per_batch)
    dev = place_model(model, device)
    train, test = _as_csr(train, "train"), _as_csr(test, "test")
    if train.shape != test.shape:
        raise ValueError(
            f"train and test must have the same shape, got {train.shape} and {test.shape}"
        )
    n_users, n_items = train.shape
    names = _check_metrics(metrics)
    ks_t = _check_ks(ks, n_items) if any(m in TOPK_METRICS for m in names) else ()
    outside = _outside_candidates(candidates, n_items)
    has_test = np.diff(test.indptr) > 0
    if users is None:
        eval_users = np.flatnonzero(has_test)
    else:
        if isinstance(users, Tensor):
            users = users.detach().to("cpu")
        what = "the rows of train and test"
        eval_users = check_indices("users", users, n_users, what=what).long().numpy()
        # A repeated user would count several times in the mean: refuse it (np.unique sorts,
        # one O(n log n) pass on the CPU).
        unique, counts = np.unique(eval_users, return_counts=True)
        if unique.size != eval_users.size:
            raise ValueError(
                f"users holds {eval_users.size - unique.size} repeated index(es), e.g. "
                f"{int(unique[np.argmax(counts > 1)])}: each user would count several times in "
                "the mean; pass each user once (numpy.unique(users))"
            )
        eval_users = eval_users[has_test[eval_users]]
    if eval_users.size == 0:
        raise ValueError("no user to evaluate has a test item")
    model_users = _model_size(model, "n_users")
    if model_users is not None and eval_users.max() >= model_users:
        raise ValueError(
            f"users to evaluate go up to {eval_users.max()} but the model has n_users = "
            f"{model_users}: train and test have {n_users} rows; build the model and the "
            "matrices from the same IdEncoder (or pass users=... within the model's users)"
        )
    chunks, batch_users = [], []
    with _eval_mode(model):
        for start in range(0, eval_users.size, step):
            rows = eval_users[start : start + step]
            bu = torch.from_numpy(rows.astype(np.int64))
            scores = model.score_all(bu.to(dev))
            if not isinstance(scores, Tensor) or scores.shape != (rows.size, n_items):
                got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
                raise ValueError(
                    f"score_all must return shape ({rows.size}, {n_items}) = (batch, n_items of "
                    f"train/test), got {got}"
                )
            # float64 for integer scores: -inf is written into them below
            scores = _check_model_scores(
                scores, "the scores of model.score_all(users)", bu, integers="float64"
            )
            # out of place: score_all may return a cached tensor
            masked = _csr_rows_mask(train, rows, scores.device)
            if outside is not None:
                masked |= outside.to(scores.device)
            scores = scores.masked_fill(masked, float("-inf"))
            relevant = _csr_rows_mask(test, rows, scores.device)
            values, _ = _per_user(scores, relevant, ks_t, names)
            chunks.append(values)
            batch_users.append(bu)
    return _collect(chunks, batch_users)
