"""Loss functions of the course, all with one signature: ``loss(model, batch) -> scalar tensor``.

A loss receives the model and one batch (a tuple of tensors already on the model's device) and
returns the mean loss of the batch, ready for ``.backward()``. Taking the model rather than its
scores lets a loss call what it needs: ``model(users, items)`` for pointwise losses,
``model.pair_scores`` for BPR, ``model.masked_loss`` for AutoRec.

- ``"mse"``: batch ``(users, items, ratings)``, mean of ``(model(users, items) - ratings)**2``;
- ``"bce"``: batch ``(users, items, labels)``, binary cross-entropy on logits;
- ``"bpr"``: batch ``(users, pos, neg)``, ``-logsigmoid(s_pos - s_neg)``;
- ``"masked_mse"``: batch ``(rows,)``, ``model.masked_loss(rows)`` (AutoRec).

Regularisation, one rule: every loss over (user, item) pairs adds the model's penalty of the
rows its batch touches, ``model.regularization(users, *items)`` (``(users, items)`` for MSE
and BCE, ``(users, pos, neg)`` for BPR), when the model has that method. Recommenders return 0
by default (MF and the NCF models are regularised through the optimiser's ``weight_decay``),
the graph models their ``reg`` times the L2 norm of the batch's ego embeddings, whatever the
loss. ``masked_mse_loss`` adds nothing: its batch is rows of the rating matrix, not pairs, and
AutoRec is regularised through ``weight_decay`` or the objective a chapter writes.

The numerically stable forms are used throughout: ``binary_cross_entropy_with_logits`` rather
than ``sigmoid`` followed by ``log``, and ``logsigmoid`` rather than ``log(sigmoid(x))``, which
returns ``-inf`` as soon as ``sigmoid(x)`` rounds to 0 (``x`` below about -104 in float32).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LossFn", "mse_loss", "bce_loss", "bpr_loss", "masked_mse_loss", "get_loss", "LOSSES"]

LossFn = Callable[[nn.Module, Sequence[Tensor]], Tensor]
"""The type of a loss: ``(model, batch) -> scalar tensor``."""


def _unpack(batch: Sequence[Tensor], n: int, name: str, fields: str) -> tuple[Tensor, ...]:
    if not isinstance(batch, (tuple, list)) or len(batch) != n:
        got = f"{len(batch)} tensors" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"{name} expects a batch of {n} tensors ({fields}), got {got}")
    return tuple(batch)


def _full(t: Tensor) -> Tensor:
    """Scores in at least float32: under mixed precision a model may return float16/bfloat16."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _check_same_shape(scores: Tensor, target: Tensor, name: str, what: str) -> None:
    # A (B, 1) prediction against a (B,) target broadcasts to (B, B) and silently trains on
    # the wrong loss: refuse it.
    if scores.shape != target.shape:
        raise ValueError(
            f"{name}: the model returned scores of shape {tuple(scores.shape)} but the {what} have "
            f"shape {tuple(target.shape)}; forward(users, items) must return shape (B,)"
        )


_LABELS_ASYNC = "bce_loss: labels must lie in [0, 1]: run with " + (
    "recs_course.models.index_checks('always') to see the values"
)


def _labels_within(low: Tensor, high: Tensor) -> Tensor:
    return (low >= 0) & (high <= 1)  # false for NaN as well


def _assert_labels_async(labels: Tensor) -> None:
    """On CUDA: assert ``0 <= labels <= 1`` on the device, without a synchronisation."""
    from .models.base import assert_within

    assert_within(labels, _labels_within, _LABELS_ASYNC)


def _check_labels(labels: Tensor) -> None:
    """Refuse BCE labels outside ``[0, 1]`` (ratings 1-5 give a negative loss that keeps falling).

    The policy of the index checks (:func:`recs_course.models.index_checks`, through
    :func:`recs_course.models.base.value_range`): a CPU tensor is checked at once (one
    ``aminmax``); on CUDA in ``"auto"`` mode the range is asserted on the device (no
    synchronisation per batch); ``"always"`` reads the values back anywhere, ``"never"`` skips
    the value check. NaN labels are refused too.
    """
    from .models.base import value_range

    if labels.dtype == torch.bool:
        return  # 0/1 by construction
    if labels.dtype.is_complex:
        raise ValueError(f"bce_loss: labels must be real numbers in [0, 1], got {labels.dtype}")
    found = value_range(labels, _labels_within, _LABELS_ASYNC)
    if found is None:
        return
    low, high = found
    if not (low >= 0 and high <= 1):  # false for NaN as well
        raise ValueError(
            f"bce_loss: labels must lie in [0, 1] (1 for an interaction, 0 for a sampled "
            f"negative), found values in [{low:g}, {high:g}]: binarise ratings with "
            "recs_course.data.to_implicit and draw negatives with "
            "recs_course.data.pointwise_instances, or train ratings with the 'mse' loss"
        )


def _regularized(loss: Tensor, model: nn.Module, users: Tensor, *items: Tensor) -> Tensor:
    """``loss + model.regularization(users, *items)`` (see the module docstring).

    Skipped, with the same result, for a model without the method and for a
    :class:`~recs_course.models.Recommender` that keeps the base class's 0 (no call, so no
    second index check per batch).
    """
    penalty = getattr(model, "regularization", None)
    if penalty is None:
        return loss
    from .models.base import Recommender

    if getattr(type(model), "regularization", None) is Recommender.regularization:
        return loss
    return loss + penalty(users, *items)


def mse_loss(model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
    """Mean squared error of predicted ratings, plus the model's regularisation.

    Args:
        model: scores pairs with ``model(users (B,), items (B,)) -> (B,)``; if it has
            ``regularization(users, items) -> scalar``, that term is added.
        batch: ``(users (B,), items (B,), ratings (B,))``.

    Returns:
        ``mean((model(users, items) - ratings) ** 2) + model.regularization(users, items)``,
        a scalar tensor.
    """
    users, items, ratings = _unpack(batch, 3, "mse_loss", "users, items, ratings")
    pred = _full(model(users, items))
    _check_same_shape(pred, ratings, "mse_loss", "ratings")
    return _regularized(F.mse_loss(pred, ratings.to(pred.dtype)), model, users, items)


def bce_loss(model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
    """Binary cross-entropy of implicit feedback, computed on logits, plus the regularisation.

    Args:
        model: returns logits ``model(users (B,), items (B,)) -> (B,)`` (no sigmoid inside); if
            it has ``regularization(users, items) -> scalar``, that term is added (a graph
            model's ``reg`` applies under BCE as under BPR).
        batch: ``(users (B,), items (B,), labels (B,))`` with labels in {0, 1} (or in [0, 1]);
            other labels (ratings 1-5, NaN) are a ``ValueError`` naming ``labels`` (on CUDA a
            device-side assertion, as for the index checks).

    Returns:
        ``mean(-y log sigmoid(s) - (1 - y) log(1 - sigmoid(s)))`` through
        ``F.binary_cross_entropy_with_logits`` (finite for any finite logit), plus
        ``model.regularization(users, items)``.
    """
    users, items, labels = _unpack(batch, 3, "bce_loss", "users, items, labels")
    logits = _full(model(users, items))
    _check_same_shape(logits, labels, "bce_loss", "labels")
    _check_labels(labels)
    loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return _regularized(loss, model, users, items)


def bpr_loss(model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
    """Bayesian personalised ranking: a user's positive item should outscore a negative one.

    With ``K`` negatives per positive (``neg_items`` of shape ``(B, K)``, as
    ``pairwise_instances(..., n_neg=K)`` draws) every positive is compared with each of its
    negatives and the ``B x K`` terms are averaged: the sampled view of BPR's sum over all
    unobserved items.

    Args:
        model: either provides ``pair_scores(users, pos, neg) -> (pos_scores (B,), neg_scores
            (B,) or (B, K))`` (graph models propagate once for both; every Recommender has it)
            or is called as ``model(users, items)`` on the positives and on the negatives. If
            it has ``regularization(users, pos, neg) -> scalar``, that term is added.
        batch: ``(users (B,), pos_items (B,), neg_items (B,) or (B, K))``.

    Returns:
        ``mean(-logsigmoid(pos_scores - neg_scores)) + model.regularization(users, pos, neg)``.
    """
    users, pos, neg = _unpack(batch, 3, "bpr_loss", "users, positive items, negative items")
    if hasattr(model, "pair_scores"):
        pos_scores, neg_scores = model.pair_scores(users, pos, neg)
    elif isinstance(neg, Tensor) and neg.dim() == 2 and isinstance(users, Tensor):
        if neg.shape[0] != users.shape[0]:
            raise ValueError(
                f"bpr_loss: neg must have shape (B,) or (B, K) with B = {users.shape[0]} (one row "
                f"of negatives per user), got {tuple(neg.shape)}"
            )
        pos_scores = model(users, pos)
        flat_users = users.unsqueeze(-1).expand_as(neg).reshape(-1)
        neg_scores = model(flat_users, neg.reshape(-1)).reshape(neg.shape)
    else:
        pos_scores, neg_scores = model(users, pos), model(users, neg)
    pos_scores, neg_scores = _full(pos_scores), _full(neg_scores)
    if pos_scores.shape != users.shape:
        raise ValueError(
            f"bpr_loss: scores have shape {tuple(pos_scores.shape)} for {tuple(users.shape)} "
            "users; the model must return one score per (user, item) pair, shape (B,)"
        )
    if neg_scores.dim() == 2:
        # (B, K) negatives: each positive against each of its K negatives, explicitly
        # broadcast (never a silent (B,) - (B, 1) -> (B, B) broadcast).
        if neg_scores.shape[0] != pos_scores.shape[0]:
            raise ValueError(
                f"bpr_loss: negative scores have shape {tuple(neg_scores.shape)} for "
                f"{pos_scores.shape[0]} positives: neg must be (B,) or (B, K)"
            )
        diff = pos_scores.unsqueeze(1) - neg_scores
    else:
        _check_same_shape(pos_scores, neg_scores, "bpr_loss", "negative scores")
        diff = pos_scores - neg_scores
    return _regularized(-F.logsigmoid(diff).mean(), model, users, pos, neg)


def masked_mse_loss(model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
    """Masked reconstruction error of an autoencoder (AutoRec), over observed ratings only.

    The one loss without ``model.regularization``: its batch is rows, not (user, item) pairs
    (regularise AutoRec with the optimiser's ``weight_decay`` or your own objective).

    Args:
        model: provides ``masked_loss(rows (B,)) -> scalar``; the model holds the rating matrix
            and knows which entries of each row are observed.
        batch: ``(rows (B,),)``: indices of the rows (users or items) in the batch.
    """
    (rows,) = _unpack(batch, 1, "masked_mse_loss", "row indices")
    if not hasattr(model, "masked_loss"):
        raise ValueError(
            f"masked_mse_loss needs a model with a masked_loss(rows) method (AutoRec); "
            f"{type(model).__name__} has none"
        )
    return model.masked_loss(rows)


LOSSES: dict[str, LossFn] = {
    "mse": mse_loss,
    "bce": bce_loss,
    "bpr": bpr_loss,
    "masked_mse": masked_mse_loss,
}
"""The losses by name, as accepted by :func:`get_loss`."""


def get_loss(loss: str | LossFn) -> LossFn:
    """Return the loss callable for a name (``"mse"``, ``"bce"``, ``"bpr"``, ``"masked_mse"``).

    A callable is returned unchanged, so ``fit(..., loss=my_loss)`` works with any
    ``(model, batch) -> scalar tensor`` function.
    """
    if callable(loss):
        return loss
    if isinstance(loss, str):
        key = loss.lower().replace("-", "_")
        if key in LOSSES:
            return LOSSES[key]
    raise ValueError(
        f"unknown loss {loss!r}: use one of {sorted(LOSSES)} or a callable (model, batch) -> "
        "scalar tensor"
    )
