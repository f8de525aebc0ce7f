"""Loss functions of the course, all with one signature: ``loss(model, batch) -> scalar tensor``.

A loss receives the model and one batch (a tuple of tensors already on the model's device) and
returns the mean loss of the batch, ready for ``.backward()``. Taking the model rather than its
scores lets a loss call what it needs: ``model(users, items)`` for pointwise losses,
``model.pair_scores`` for BPR, ``model.masked_loss`` for AutoRec.

- ``"mse"``: batch ``(users, items, ratings)``, mean of ``(model(users, items) - ratings)**2``;
- ``"bce"``: batch ``(users, items, labels)``, binary cross-entropy on logits;
- ``"bpr"``: batch ``(users, pos, neg)``, ``-logsigmoid(s_pos - s_neg)``;
- ``"masked_mse"``: batch ``(rows,)``, ``model.masked_loss(rows)`` (AutoRec).

:class:`PartialCreditBPR` (built with item metadata, so not a name of :func:`get_loss`) is BPR
in which a negative sharing metadata with its positive (a genre) is penalised less.

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

__all__ = [
    "LossFn",
    "mse_loss",
    "bce_loss",
    "bpr_loss",
    "PartialCreditBPR",
    "masked_mse_loss",
    "get_loss",
    "LOSSES",
]

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


def _pair_differences(
    model: nn.Module, batch: Sequence[Tensor], name: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(users, pos, neg, s_pos - s_neg)`` of a BPR batch, the difference shaped like ``neg``
    (``(B,)``, or ``(B, K)``: each positive against each of its ``K`` negatives)."""
    users, pos, neg = _unpack(batch, 3, name, "users, positive items, negative items")
    if hasattr(model, "pair_scores"):
        pos_scores, neg_scores = model.pair_scores(users, pos, neg)
    elif isinstance(neg, Tensor) and neg.dim() == 2 and isinstance(users, Tensor):
        if neg.shape[0] != users.shape[0]:
            raise ValueError(
                f"{name}: neg must have shape (B,) or (B, K) with B = {users.shape[0]} (one row "
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
            f"{name}: scores have shape {tuple(pos_scores.shape)} for {tuple(users.shape)} "
            "users; the model must return one score per (user, item) pair, shape (B,)"
        )
    if neg_scores.dim() == 2:
        # (B, K) negatives: each positive against each of its K negatives, explicitly
        # broadcast (never a silent (B,) - (B, 1) -> (B, B) broadcast).
        if neg_scores.shape[0] != pos_scores.shape[0]:
            raise ValueError(
                f"{name}: negative scores have shape {tuple(neg_scores.shape)} for "
                f"{pos_scores.shape[0]} positives: neg must be (B,) or (B, K)"
            )
        diff = pos_scores.unsqueeze(1) - neg_scores
    else:
        _check_same_shape(pos_scores, neg_scores, name, "negative scores")
        diff = pos_scores - neg_scores
    return users, pos, neg, diff


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
    users, pos, neg, diff = _pair_differences(model, batch, "bpr_loss")
    return _regularized(-F.logsigmoid(diff).mean(), model, users, pos, neg)


class PartialCreditBPR:
    """BPR in which a negative that shares metadata with its positive is penalised less.

    The "partial credit" of Collie's losses (the tutorial's chapter 9 source): a sampled
    negative of the same genre as the positive is a milder mistake than one of another genre.
    For a positive ``i`` and a negative ``j`` the *credit* is
    ``c(i, j) = sum_k weights[k] * match_k(i, j)`` in ``[0, 1]`` (``match_k`` is 1 when items
    ``i`` and ``j`` share field ``k``: equal labels, or a common ``True`` column of a multi-hot
    row), and with ``d = s_ui - s_uj``:

    - ``mode="weight"`` (default): the BPR term is scaled down,
      ``(1 - c) * -logsigmoid(d)``; a full match (``c = 1``) is no mistake at all;
    - ``mode="target"``: the term is the cross-entropy of ``sigmoid(d)`` against the target
      ``t = 1 - c`` (Collie's "ideal difference"), ``-(t logsigmoid(d) + (1 - t)
      logsigmoid(-d))``: minimal where ``sigmoid(d) = t``, so a same-genre negative is asked
      to score close to the positive rather than far below it.

    Without a match (``c = 0``) both are BPR's ``-logsigmoid(d)``. The ``B`` (or ``B x K``)
    terms are averaged (weights do not renormalise the mean) and the model's
    ``regularization(users, pos, neg)`` is added, as :func:`bpr_loss` does.

    Args:
        metadata: per item, ``(I,)`` integer labels (a match is equal labels; a negative label,
            e.g. ``FeatureBags.labels``' ``-1`` for unknown, never matches) or an ``(I, G)``
            bool multi-hot matrix (a match is at least one common column, e.g.
            ``FeatureBags.multi_hot("genres")``); or a dict ``{name: such a tensor}``.
        weight: the credit of a match, in ``[0, 1]``: a number for one tensor, a dict
            ``{name: weight}`` (same keys) for a dict, the weights summing to at most 1. The
            tutorial's setting: first genre, ``0.4``.
        mode: ``"weight"`` or ``"target"`` (above).

    Use it as a loss: ``fit(model, InstanceBatches(train, n_items, "pairwise", ...),
    PartialCreditBPR(bags.multi_hot("genres"), 0.4), optimizer, epochs)``.
    """

    MODES = ("weight", "target")

    def __init__(
        self,
        metadata: Tensor | dict[str, Tensor],
        weight: float | dict[str, float] = 0.4,
        *,
        mode: str = "weight",
    ) -> None:
        from .utils import check_number

        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        if isinstance(metadata, dict):
            if not isinstance(weight, dict) or set(weight) != set(metadata):
                raise ValueError(
                    "with a dict of metadata, weight must be a dict with the same keys "
                    f"({sorted(map(str, metadata))}), got {weight!r}"
                )
            fields = {str(k): (metadata[k], weight[k]) for k in metadata}
        else:
            if isinstance(weight, dict):
                raise ValueError("weight must be a number for one metadata tensor, got a dict")
            fields = {"metadata": (metadata, weight)}
        if not fields:
            raise ValueError("metadata must hold at least one field")
        self.fields: dict[str, tuple[Tensor, float]] = {}
        n_items = None
        for name, (table, w) in fields.items():
            label = "metadata" if name == "metadata" else f"metadata[{name!r}]"
            w = check_number(f"weight of {label}", w, low=0.0)
            table = self._check_table(label, table)
            if n_items is not None and table.shape[0] != n_items:
                raise ValueError(
                    f"{label} has {table.shape[0]} rows, the other metadata {n_items}: one row "
                    "per item everywhere"
                )
            n_items = table.shape[0]
            self.fields[name] = (table, w)
        total = sum(w for _, w in self.fields.values())
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"the weights sum to {total:g}: the credit of a negative that matches on every "
                "field must stay at most 1 (a full match is no mistake; more would reward it)"
            )
        self.n_items = int(n_items)
        self._on: dict[torch.device, list[tuple[Tensor, float]]] = {}

    @staticmethod
    def _check_table(label: str, table: object) -> Tensor:
        if not isinstance(table, Tensor):
            raise ValueError(
                f"{label} must be a tensor: (I,) integer labels or an (I, G) bool multi-hot "
                f"matrix, got {type(table).__name__}"
            )
        if table.dim() == 1 and not table.dtype.is_floating_point and table.dtype != torch.bool:
            if table.dtype.is_complex:
                raise ValueError(f"{label} must hold integer labels, got {table.dtype}")
            return table.detach().to("cpu", torch.int64)
        if table.dim() == 2 and table.dtype == torch.bool:
            return table.detach().to("cpu")
        raise ValueError(
            f"{label} must be (I,) integer labels or an (I, G) bool multi-hot matrix, got "
            f"{table.dtype} of shape {tuple(table.shape)} (a float one-hot matrix: use "
            ".bool(); labels: .long())"
        )

    def _tables(self, device: torch.device) -> list[tuple[Tensor, float]]:
        if device not in self._on:
            self._on[device] = [(t.to(device), w) for t, w in self.fields.values()]
        return self._on[device]

    def credit(self, pos: Tensor, neg: Tensor) -> Tensor:
        """``c(pos, neg)`` in ``[0, 1]``, shaped like ``neg`` (``(B,)`` or ``(B, K)``; ``pos``
        is ``(B,)``): the summed weights of the fields on which the two items match."""
        from .models.base import check_indices

        what = f"the metadata's {self.n_items} rows"
        pos = check_indices("pos", pos, self.n_items, what=what)
        neg = check_indices("neg", neg, self.n_items, ndim=(1, 2), what=what)
        if neg.shape[0] != pos.shape[0]:
            raise ValueError(
                f"neg must have shape (B,) or (B, K) with B = {pos.shape[0]}, got "
                f"{tuple(neg.shape)}"
            )
        p = pos if neg.dim() == 1 else pos.unsqueeze(1).expand_as(neg)
        credit = torch.zeros(neg.shape, device=neg.device)
        for table, w in self._tables(neg.device):
            if table.dim() == 1:
                a, b = table[p], table[neg]
                match = (a == b) & (a >= 0)
            else:
                match = (table[p] & table[neg]).any(dim=-1)
            credit = credit + w * match
        return credit

    def __call__(self, model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
        name = "PartialCreditBPR"
        users, pos, neg, diff = _pair_differences(model, batch, name)
        n_items = getattr(model, "n_items", None)
        if n_items is not None and n_items != self.n_items:
            raise ValueError(
                f"{name}: the metadata has {self.n_items} rows but the model {n_items} items: "
                "one row per item, in the model's item order"
            )
        credit = self.credit(pos, neg).to(diff.dtype)
        if self.mode == "weight":
            terms = (1.0 - credit) * -F.logsigmoid(diff)
        else:
            target = 1.0 - credit
            terms = -(target * F.logsigmoid(diff) + (1.0 - target) * F.logsigmoid(-diff))
        return _regularized(terms.mean(), model, users, pos, neg)

    def __repr__(self) -> str:
        weights = ", ".join(f"{k}: {w:g}" for k, (_, w) in self.fields.items())
        return f"PartialCreditBPR({weights}; mode={self.mode!r})"


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
