r"""Rating and ranking metrics, computed for a whole batch of users at once.

Rating metrics (:func:`rmse`, :func:`mae`) compare predicted and true ratings. Ranking metrics
(:func:`ranking_metrics`) take a score matrix ``scores`` of shape ``(U, I)`` (one row per user,
one column per candidate item) and a boolean matrix ``relevant`` of the same shape, and compute
every metric for every cut-off ``k`` with a single ``topk`` of size ``K = max(ks)``, a hit
matrix and cumulative sums, the pattern RecBole's evaluator uses.

Notation for one user: ``rel_r`` is 1 when the item at rank ``r`` (1-based) of the user's ranked
list is relevant, ``hits@k = sum_{r<=k} rel_r``, ``n_rel`` the number of relevant candidates.

=============== ================================================================
key             definition
=============== ================================================================
``HR@k``        :math:`\mathbb{1}[\text{hits@k} > 0]`
``recall@k``    :math:`\text{hits@k} / n_{rel}`
``precision@k`` :math:`\text{hits@k} / k`
``NDCG@k``      :math:`\text{DCG@k}/\text{IDCG@k}`, with
                :math:`\text{DCG@k} = \sum_{r\le k} rel_r / \log_2(r+1)` and
                :math:`\text{IDCG@k} = \sum_{r\le \min(n_{rel},k)} 1/\log_2(r+1)`
``MAP@k``       :math:`\frac{1}{\min(n_{rel},k)} \sum_{r\le k} \text{precision@r}\cdot rel_r`
``MRR@k``       :math:`1/r^*` where :math:`r^*` is the rank of the first relevant item,
                0 when :math:`r^* > k`
``MRR``         the same without cut-off (``"mrr_full"``): :math:`1/r^*` over the whole list
``AUC``         fraction of (relevant, irrelevant) candidate pairs in which the relevant
                item scores higher; a tie counts 1/2
=============== ================================================================

Conventions shared by every ranking metric:

* **Ties are pessimistic and deterministic.** Items are ranked by score, descending; among
  items with *equal* scores the irrelevant ones come first. In other words the ranking is a
  stable sort on the key ``(score descending, relevant ascending)``: a model never gains from a
  tie. A model that returns a constant score therefore gets ``HR@k = 0`` as soon as there are at
  least ``k`` irrelevant candidates (``torch.topk`` alone would break the tie arbitrarily, and
  in the sampled protocol, where the positive sits in column 0, it tends to pick it). With a
  single relevant item of score ``s`` its rank is ``1 + #(irrelevant > s) + #(irrelevant == s)``.
  AUC is the exception defined by its own formula: a tied pair counts 1/2 (Mann-Whitney U).
* **``-inf`` means "not a candidate".** Items whose score is ``-inf`` (for example the
  training items masked by :func:`recs_course.evaluation.evaluate_full`) are excluded: a
  relevant item with score ``-inf`` is dropped from the user's relevant set (it counts neither
  in ``n_rel`` nor as a hit), and ``-inf`` items take no part in AUC's pairs. They can still
  fill the end of a top-k list when fewer than ``k`` candidates are left, as misses.
  ``NaN`` scores are an error (``ValueError``): a NaN has no place in an order.
* **Scores are compared exactly as given**: integer scores stay integers and float64 stays
  float64 (no float32 cast, where scores of ``2**24`` and above, or closer than ``1e-7``
  relatively, would tie).
* **Users without a relevant candidate are excluded**: their per-user values are ``NaN``
  (:attr:`Metrics.per_user`) and the means are over the other users. AUC is also ``NaN`` for a user
  whose candidates are all relevant (no pair to compare). If no user has a relevant candidate,
  :func:`ranking_metrics` raises ``ValueError``.

Popularity of the recommendations ("the curse of popularity"): :func:`popularity_profile` takes
the ``(U, K)`` top-K item indices and each item's training count (its popularity) and returns

* ``"mean popularity rank"``: mean popularity rank of the recommended items (1 = most popular,
  ties share the mean of their ranks); ``"mean popularity percentile"``: the same divided by
  the catalogue size ``I``;
* ``"coverage"``: share of the ``I`` items recommended to at least one user;
* ``"gini"``: Gini index of how often each item is recommended (0 = evenly, near 1 = a few items
  take every slot);
* ``"share of top 10% items"``: share of the recommended entries among the ``ceil(I / 10)``
  most popular items.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "Metrics",
    "rmse",
    "mae",
    "ranking_metrics",
    "RANKING_METRICS",
    "TOPK_METRICS",
    "metric_keys",
    "pessimistic_hits",
    "nanmean",
    "popularity_profile",
]

#: Metrics with a cut-off ``k``: name accepted by :func:`ranking_metrics` -> key prefix.
TOPK_METRICS: dict[str, str] = {
    "hr": "HR",
    "ndcg": "NDCG",
    "recall": "recall",
    "precision": "precision",
    "map": "MAP",
    "mrr": "MRR",
}
#: Metrics over the whole ranked list: name -> key.
FULL_METRICS: dict[str, str] = {"mrr_full": "MRR", "auc": "AUC"}
#: Every metric name :func:`ranking_metrics` accepts.
RANKING_METRICS: tuple[str, ...] = (*TOPK_METRICS, *FULL_METRICS)


# --------------------------------------------------------------------------- rating metrics
def _as_real(name: str, values) -> Tensor:
    """A tensor of real numbers (bool, integer or float; any shape), else ``ValueError``."""
    if isinstance(values, Tensor):
        tensor = values.detach()
    else:
        # np.array copies: a pandas column's array is read-only and torch would warn about it
        array = np.array(values)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
        tensor = torch.from_numpy(array)
    if tensor.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    return tensor


def _check_no_nan(name: str, values: Tensor, what: str) -> None:
    """``ValueError`` naming ``name`` if ``values`` holds a NaN (one reduction, one sync)."""
    if values.is_floating_point() and bool(torch.isnan(values).any()):
        count = int(torch.isnan(values).sum())
        raise ValueError(f"{name} contains {count} NaN value(s) out of {values.numel()}: {what}")


def _check_finite(name: str, values: Tensor, what: str) -> None:
    """``ValueError`` naming ``name`` if ``values`` holds a NaN or an infinity (one reduction).

    An infinite rating or prediction makes RMSE and MAE ``inf`` or ``nan`` (``inf - inf``):
    a number that looks like a result but is none.
    """
    _check_no_nan(name, values, what)
    if values.is_floating_point() and not bool(torch.isfinite(values).all()):
        count = int(torch.isinf(values).sum())
        raise ValueError(
            f"{name} contains {count} infinite value(s) out of {values.numel()}: {what}"
        )


def _as_float64_pair(pred, target) -> tuple[Tensor, Tensor]:
    p, t = _as_real("pred", pred), _as_real("target", target)
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    if p.numel() == 0:
        raise ValueError("pred and target are empty: there is nothing to evaluate")
    p, t = p.to("cpu", torch.float64), t.to("cpu", torch.float64)
    _check_finite("pred", p, "the model's predictions are undefined there (did training diverge?)")
    _check_finite("target", t, "keep finite ratings only (drop the rows without a rating first)")
    return p, t


def rmse(pred, target) -> float:
    r"""Root mean squared error :math:`\sqrt{\frac1n\sum_i (\hat y_i - y_i)^2}`.

    Args:
        pred: predictions, a tensor or array of any shape ``S``.
        target: true values, same shape ``S``.

    Returns:
        A Python float (computed in float64 on the CPU).

    Raises:
        ValueError: if the shapes differ, the inputs are empty, not real numbers or hold NaN
            or an infinity (naming ``pred`` or ``target``).
    """
    p, t = _as_float64_pair(pred, target)
    return math.sqrt(float(((p - t) ** 2).mean()))


def mae(pred, target) -> float:
    r"""Mean absolute error :math:`\frac1n\sum_i |\hat y_i - y_i|` (see :func:`rmse`)."""
    p, t = _as_float64_pair(pred, target)
    return float((p - t).abs().mean())


# --------------------------------------------------------------------------- validation
def _check_ks(ks: int | Iterable[int], n_items: int | None = None) -> tuple[int, ...]:
    """Return the cut-offs as a tuple of distinct ints (order kept); check ``1 <= k <= n_items``."""
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (int(ks),)
    try:
        ks = tuple(ks)
    except TypeError as exc:
        raise ValueError(f"ks must be an int or a sequence of ints, got {ks!r}") from exc
    if not ks:
        raise ValueError("ks is empty: give at least one cut-off, e.g. ks=(10,)")
    out: list[int] = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"every cut-off k must be an int, got {k!r}")
        k = int(k)
        if k < 1:
            raise ValueError(f"cut-off k must be at least 1, got {k}")
        if n_items is not None and k > n_items:
            raise ValueError(
                f"cut-off k={k} is larger than the number of items ({n_items}): use k <= {n_items}"
            )
        if k not in out:
            out.append(k)
    return tuple(out)


def _check_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """The metric names, lower-cased, each once: a name or an iterable of names, else a
    ``ValueError`` naming ``metrics``."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    elif not isinstance(metrics, Iterable):
        raise ValueError(
            f"metrics must be a metric name or a sequence of them such as ('hr', 'ndcg'), got "
            f"{type(metrics).__name__}: choose among {', '.join(RANKING_METRICS)}"
        )
    out: list[str] = []
    for m in metrics:
        if not isinstance(m, str) or m.lower() not in RANKING_METRICS:
            raise ValueError(f"unknown metric {m!r}: choose among {', '.join(RANKING_METRICS)}")
        if m.lower() not in out:
            out.append(m.lower())
    if not out:
        raise ValueError(f"metrics is empty: choose among {', '.join(RANKING_METRICS)}")
    return tuple(out)


def metric_keys(ks: int | Iterable[int], metrics: str | Iterable[str]) -> list[str]:
    """The keys :func:`ranking_metrics` returns, in order: e.g. ``["HR@10", "NDCG@10"]``."""
    names = _check_metrics(metrics)
    ks_t = _check_ks(ks) if any(m in TOPK_METRICS for m in names) else ()
    keys: list[str] = []
    for m in names:
        if m in TOPK_METRICS:
            keys.extend(f"{TOPK_METRICS[m]}@{k}" for k in ks_t)
        else:
            keys.append(FULL_METRICS[m])
    return keys


def _check_scores_relevant(scores, relevant) -> tuple[Tensor, Tensor]:
    scores = _as_matrix("scores", scores)
    relevant = _as_matrix("relevant", relevant)
    if scores.dim() != 2:
        raise ValueError(
            f"scores must be a 2-D (users, items) matrix, got shape {tuple(scores.shape)}"
        )
    if relevant.shape != scores.shape:
        raise ValueError(
            f"relevant must have the shape of scores {tuple(scores.shape)}, "
            f"got {tuple(relevant.shape)}"
        )
    if relevant.dtype != torch.bool:
        raise ValueError(
            f"relevant must be a bool tensor, got {relevant.dtype}: "
            "pass e.g. relevant > 0 (graded relevance is not supported)"
        )
    scores = _exact_scores(scores, "scores")
    if scores.shape[1] == 0:
        raise ValueError("scores has no item column: there is nothing to rank")
    if relevant.device != scores.device:
        relevant = relevant.to(scores.device)
    _check_nan_scores(scores, "scores")
    return scores.detach(), relevant


def _as_matrix(name: str, values) -> Tensor:
    if isinstance(values, Tensor):
        return values
    try:
        return torch.as_tensor(np.array(values))  # np.array: a writable copy
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be a (users, items) matrix, got {values!r:.80}") from exc


def _check_nan_scores(scores: Tensor, name: str, users: Tensor | None = None) -> None:
    """Refuse NaN scores: a NaN has no rank (it compares false to everything).

    ``users``: the user of each row, for the message (default: the row numbers).
    """
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        nan = torch.isnan(scores)
        rows = nan.any(1).nonzero().flatten().cpu()
        where = "user(s)" if users is not None else "row(s)"
        ids = (users.cpu()[rows] if users is not None else rows)[:5].tolist()
        raise ValueError(
            f"{name} contain NaN for {int(nan.sum())} (user, item) pair(s), in {where} "
            f"{ids}{' ...' if rows.numel() > 5 else ''}: rankings are undefined. Mask items "
            "that are not candidates with -inf; a model that returns NaN has diverged"
        )


def _exact_scores(scores: Tensor, name: str = "scores", integers: str = "keep") -> Tensor:
    """Scores in a dtype in which they compare exactly as given (same order, same ties).

    float16 and bfloat16 become float32 (which holds them exactly); float32 and float64 are
    unchanged (never downcast); integers become ``int64`` (``integers="keep"``) or, where
    ``-inf`` must be written into them (``integers="float64"``, the full-ranking mask), float64,
    which holds integers exactly up to ``2**53`` (beyond that: ``ValueError``; MPS, without
    float64, computes on the CPU). bool and complex scores raise ``ValueError``.
    """
    if scores.dtype == torch.bool or scores.is_complex():
        raise ValueError(f"{name} must be real numbers, got dtype {scores.dtype}")
    if scores.dtype in (torch.float16, torch.bfloat16):
        return scores.to(torch.float32)
    if scores.is_floating_point():
        return scores
    scores = scores.to(torch.int64)
    if integers == "keep" or scores.numel() == 0:
        return scores
    low, high = torch.aminmax(scores)
    if max(-int(low), int(high)) > 2**53:
        raise ValueError(
            f"{name} are integers beyond 2**53 in absolute value, which float64 (needed to mask "
            "training items with -inf) cannot hold exactly: return float scores, or rescale them"
        )
    if scores.device.type == "mps":
        scores = scores.cpu()
    return scores.to(torch.float64)


def _work_dtype(device: torch.device) -> torch.dtype:
    # MPS has no float64; everywhere else the per-user values are computed in float64.
    return torch.float32 if device.type == "mps" else torch.float64


# --------------------------------------------------------------------------- ranking core
def pessimistic_hits(scores: Tensor, relevant: Tensor, k: int) -> Tensor:
    """Hit matrix of the top ``k`` of every row under the pessimistic tie rule.

    The ranking is the stable sort of each row on ``(score descending, relevant ascending)``:
    among tied scores, irrelevant items come first. Computed with one ``torch.topk`` of size
    ``k`` and two sorts of the ``(U, k)`` slice, then corrected for the tie group that straddles
    position ``k`` (``topk`` may have picked any of its members) with counts over the full row:
    position ``p`` (0-based) of that group, whose first position is ``g``, is a hit iff
    ``p - g >= #(irrelevant items of the row with that score)``.

    Args:
        scores: ``(U, I)`` real scores (floating or integer, compared exactly), no NaN.
        relevant: ``(U, I)`` bool; leave ``-inf`` items out of it (as :func:`ranking_metrics`
            does), they then count as misses.
        k: ``1 <= k <= I``.

    Returns:
        ``(U, k)`` bool tensor: entry ``[u, r]`` tells whether the item at rank ``r + 1`` of user
        ``u``'s list is relevant.

    Raises:
        ValueError: bad shapes or dtypes, NaN scores, or ``k`` outside ``[1, I]``.
    """
    scores, relevant = _check_scores_relevant(scores, relevant)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int, got {k!r}")
    (k,) = _check_ks(k, scores.shape[1])
    return _pessimistic_hits(scores, relevant, k)


def _pessimistic_hits(scores: Tensor, relevant: Tensor, k: int) -> Tensor:
    """:func:`pessimistic_hits` of checked arguments."""
    vals, idx = scores.topk(k, dim=1, largest=True, sorted=True)  # (U, k), vals descending
    rel_top = relevant.gather(1, idx)
    # Re-order the slice by (score desc, relevant asc): a stable sort on the secondary key,
    # then a stable sort on the primary key. Exact for every tie group fully inside the slice.
    o1 = torch.sort(rel_top.to(torch.uint8), dim=1, stable=True).indices
    v1, r1 = vals.gather(1, o1), rel_top.gather(1, o1)
    o2 = torch.sort(v1, dim=1, descending=True, stable=True).indices
    hits = r1.gather(1, o2)  # vals is already sorted, so v1.gather(1, o2) equals vals
    # The tie group of the k-th value t may continue beyond the slice: fill its slots with the
    # irrelevant members of the *whole row* first.
    t = vals[:, -1:]  # (U, 1)
    first = (vals > t).sum(1, keepdim=True)  # position where t's group starts
    n_irr_t = ((scores == t) & ~relevant).sum(1, keepdim=True)
    pos = torch.arange(k, device=scores.device).unsqueeze(0)
    return torch.where(vals == t, (pos - first) >= n_irr_t, hits)


def _topk_per_user(
    hits: Tensor, n_rel: Tensor, ks: Sequence[int], names: Sequence[str], dtype: torch.dtype
) -> dict[str, Tensor]:
    """Every top-k metric for every k from the ``(U, K)`` hit matrix, via cumulative sums."""
    K = hits.shape[1]
    dev = hits.device
    h = hits.to(dtype)
    cum = h.cumsum(1)  # hits@r for r = 1..K
    rank = torch.arange(1, K + 1, device=dev, dtype=dtype)
    cols = torch.tensor([k - 1 for k in ks], device=dev)
    kk = torch.tensor(list(ks), device=dev, dtype=dtype)
    n_rel_f = n_rel.to(dtype).unsqueeze(1)  # (U, 1)
    # min(n_rel, k), at least 1 so that users without relevant items do not divide by zero
    # (their values are replaced by NaN afterwards).
    m = torch.minimum(n_rel.unsqueeze(1), cols.unsqueeze(0) + 1).clamp(min=1)  # (U, len(ks))
    out: dict[str, Tensor] = {}
    hits_k = cum[:, cols]  # (U, len(ks))
    for name in names:
        if name == "hr":
            v = (hits_k > 0).to(dtype)
        elif name == "recall":
            v = hits_k / n_rel_f.clamp(min=1)
        elif name == "precision":
            v = hits_k / kk
        elif name == "ndcg":
            disc = 1.0 / torch.log2(rank + 1.0)
            dcg = (h * disc).cumsum(1)[:, cols]
            idcg = disc.cumsum(0)[m - 1]  # IDCG@k over min(n_rel, k) items
            v = dcg / idcg
        elif name == "map":
            v = ((cum / rank) * h).cumsum(1)[:, cols] / m.to(dtype)
        elif name == "mrr":
            first_hit = h * (cum == 1)  # 1 at the first relevant position only
            v = (first_hit / rank).cumsum(1)[:, cols]
        else:  # pragma: no cover - names are validated
            raise AssertionError(name)
        for j, k in enumerate(ks):
            out[f"{TOPK_METRICS[name]}@{k}"] = v[:, j]
    return out


def _mrr_full(scores: Tensor, rel: Tensor, candidate: Tensor, dtype: torch.dtype) -> Tensor:
    """``1 / rank`` of the first relevant item over the whole list (pessimistic ties)."""
    lowest = float("-inf") if scores.is_floating_point() else torch.iinfo(scores.dtype).min
    neg_inf = torch.tensor(lowest, device=scores.device, dtype=scores.dtype)
    best = torch.where(rel, scores, neg_inf).amax(1, keepdim=True)  # best relevant score
    above = (scores > best).sum(1) + ((scores == best) & ~rel & candidate).sum(1)
    return 1.0 / (1.0 + above.to(dtype))


def _auc(scores: Tensor, rel: Tensor, candidate: Tensor, dtype: torch.dtype) -> Tensor:
    """Per-user AUC from average ranks (Mann-Whitney U), in exact integer arithmetic.

    With ascending 1-based ranks, tied scores sharing their average rank, and ``R`` the sum of
    the relevant items' ranks among the candidates, ``AUC = (R - n_pos (n_pos + 1) / 2) /
    (n_pos n_neg)``. Twice the average rank of score ``s`` is ``#(< s) + #(<= s) + 1``; the
    ``-inf`` items all rank below every candidate, so they shift each candidate's rank by their
    count and are subtracted.
    """
    srt = scores.sort(dim=1).values.contiguous()
    s = scores.contiguous()
    lt = torch.searchsorted(srt, s, right=False)
    le = torch.searchsorted(srt, s, right=True)
    twice_rank = lt + le + 1  # int64
    n_pos = rel.sum(1)
    n_excl = (~candidate).sum(1)
    n_neg = candidate.sum(1) - n_pos
    twice_r = torch.where(rel, twice_rank, torch.zeros_like(twice_rank)).sum(1) - 2 * n_pos * n_excl
    twice_u = twice_r - n_pos * (n_pos + 1)
    denom = 2 * n_pos * n_neg
    auc = twice_u.to(dtype) / denom.to(dtype).clamp(min=1)
    return torch.where(denom > 0, auc, torch.full_like(auc, float("nan")))


def _per_user(
    scores: Tensor, relevant: Tensor, ks: tuple[int, ...], names: tuple[str, ...]
) -> tuple[dict[str, Tensor], Tensor]:
    """Per-user values (device tensors, NaN for users without relevant items) and that mask."""
    dtype = _work_dtype(scores.device)
    candidate = scores != float("-inf")
    rel = relevant & candidate
    n_rel = rel.sum(1)
    has_rel = n_rel > 0
    values: dict[str, Tensor] = {}
    topk_names = tuple(m for m in names if m in TOPK_METRICS)
    if topk_names:
        hits = _pessimistic_hits(scores, rel, max(ks))
        values.update(_topk_per_user(hits, n_rel, ks, topk_names, dtype))
    if "mrr_full" in names:
        values["MRR"] = _mrr_full(scores, rel, candidate, dtype)
    if "auc" in names:
        values["AUC"] = _auc(scores, rel, candidate, dtype)
    nan = torch.tensor(float("nan"), device=scores.device, dtype=dtype)
    ordered: dict[str, Tensor] = {}
    for m in names:  # keys in the order metrics were asked for
        keys = [f"{TOPK_METRICS[m]}@{k}" for k in ks] if m in TOPK_METRICS else [FULL_METRICS[m]]
        for key in keys:
            ordered[key] = torch.where(has_rel, values[key], nan)
    return ordered, has_rel


class Metrics(dict):
    """What every evaluation returns: the means, and the per-user values behind them.

    A ``dict`` of metric name to mean over users (``{"HR@10": 0.65, "NDCG@10": 0.38}``): index
    it, print it, compare it (``a["HR@10"] > b["HR@10"]``, ``a == b``) like any dict. Its
    attribute ``per_user`` is a ``pandas.DataFrame`` with one row per evaluated user, a
    ``user`` column and one float64 column per metric (``NaN`` for a user the metric is
    undefined for, who is left out of the mean), so that two models evaluated on the same users
    can be compared user by user. This is the one way to ask for per-user results.
    """

    def __init__(self, means: dict[str, float], per_user: pd.DataFrame) -> None:
        super().__init__(means)
        self.per_user = per_user

    @classmethod
    def from_per_user(cls, users: Tensor, values: dict[str, Tensor]) -> Metrics:
        """Means over users (``NaN`` entries left out) of per-user ``(U,)`` tensors."""
        import pandas as pd

        frame = pd.DataFrame({"user": users.to("cpu", torch.int64).numpy()})
        means = {}
        for key, v in values.items():
            v = v.to("cpu", torch.float64)
            frame[key] = v.numpy()
            means[key] = nanmean(v)
        return cls(means, frame)

    def __repr__(self) -> str:
        body = ", ".join(f"{k!r}: {v:.4f}" for k, v in self.items())
        return f"Metrics({{{body}}}, users={len(self.per_user)})"

    def __reduce__(self):  # pickling keeps the per-user table
        return (type(self), (dict(self), self.per_user))


def ranking_metrics(
    scores: Tensor,
    relevant: Tensor,
    ks: int | Sequence[int] = (10,),
    metrics: str | Sequence[str] = ("hr", "ndcg", "recall", "precision", "map", "mrr"),
) -> Metrics:
    """Ranking metrics of a batch of users, all cut-offs at once.

    See the module docstring for the definitions, the pessimistic tie rule and how ``-inf``
    scores are treated.

    Args:
        scores: ``(U, I)`` real scores (tensor or array), compared exactly as given: integers
            stay integers, float64 stays float64 (float16 and bfloat16 become float32, which
            holds them exactly). ``-inf`` marks an item that is not a candidate; ``NaN`` is an
            error (``ValueError``).
        relevant: ``(U, I)`` bool, ``True`` for the items that count as hits.
        ks: cut-offs, each ``1 <= k <= I``; duplicates are dropped.
        metrics: names among ``"hr", "ndcg", "recall", "precision", "map", "mrr"`` (one value per
            k each) and ``"mrr_full"``, ``"auc"`` (whole list, keys ``"MRR"`` and ``"AUC"``).

    Returns:
        A :class:`Metrics`: the means over users that have at least one relevant candidate
        (AUC: and at least one irrelevant one), keyed like ``"HR@10"``, ``"NDCG@10"``,
        ``"recall@20"``, ``"precision@20"``, ``"MAP@10"``, ``"MRR@10"``, ``"MRR"``, ``"AUC"``, in
        the order of ``metrics`` then ``ks``; ``.per_user`` holds one row per row of ``scores``
        (``user`` is the row number), ``NaN`` for users without a relevant candidate.

    Raises:
        ValueError: bad shapes or dtypes, NaN scores, a cut-off outside ``[1, I]``, an unknown
            metric, or no user with a relevant candidate.

    Example:
        >>> import torch
        >>> scores = torch.tensor([[0.9, 0.8, 0.1], [0.5, 0.5, 0.5]])
        >>> relevant = torch.tensor([[False, True, False], [True, False, False]])
        >>> m = ranking_metrics(scores, relevant, ks=2, metrics=("hr",))
        >>> m["HR@2"], m.per_user["HR@2"].tolist()
        (0.5, [1.0, 0.0])
    """
    scores, relevant = _check_scores_relevant(scores, relevant)
    names = _check_metrics(metrics)
    ks_t = _check_ks(ks, scores.shape[1]) if any(m in TOPK_METRICS for m in names) else ()
    values, has_rel = _per_user(scores, relevant, ks_t, names)
    if not bool(has_rel.any()):
        raise ValueError(
            "no user has a relevant candidate item (relevant is all False, or every relevant "
            "item has score -inf): the metrics are undefined"
        )
    return Metrics.from_per_user(torch.arange(scores.shape[0]), values)


def nanmean(values: Tensor) -> float:
    """Mean of the non-NaN entries of a 1-D tensor as a float (``nan`` if there are none).

    Arrays and lists of real numbers are accepted too; anything else is a ``ValueError``.
    """
    if not isinstance(values, Tensor):
        if isinstance(values, (str, bytes)) or values is None:
            raise ValueError(f"values must be a tensor or array of numbers, got {values!r:.80}")
        try:
            values = _as_real("values", values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"values must be a tensor or array of numbers: {exc}") from None
    elif values.is_complex():
        raise ValueError(f"values must hold real numbers, got dtype {values.dtype}")
    if not values.is_floating_point():
        values = values.to(torch.float64)
    ok = ~torch.isnan(values)
    if not bool(ok.any()):
        return float("nan")
    return float(values[ok].to(torch.float64).mean())


# --------------------------------------------------------------------------- popularity
def _as_numpy(name: str, values, what: str) -> np.ndarray:
    """``values`` (tensor, array, list) as a numpy array on the CPU, else ``ValueError``."""
    if isinstance(values, Tensor):
        tensor = values.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.to(torch.float32)
        return tensor.numpy()
    if isinstance(values, (str, bytes)) or values is None:
        raise ValueError(f"{name} must be {what}, got {values!r:.80}")
    try:
        return np.array(values)  # a copy: never a view of the caller's data
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be {what}, got {values!r:.80}") from exc


def _check_counts(counts, n_items) -> np.ndarray:
    """``counts`` as a 1-D int64 or float64 array of finite numbers >= 0, else ``ValueError``."""
    from recs_course.utils import check_positive_int

    c = _as_numpy("counts", counts, "a 1-D array of item popularities (interaction counts)")
    if c.ndim != 1:
        raise ValueError(
            f"counts must be 1-D, one popularity per item, got shape {c.shape}: pass e.g. "
            "np.bincount(train_items, minlength=n_items)"
        )
    if c.size == 0:
        raise ValueError("counts is empty: pass one popularity per item of the catalogue")
    if c.dtype.kind not in "iuf":
        raise ValueError(f"counts must hold real numbers (interaction counts), got {c.dtype}")
    if c.dtype.kind == "f":
        c = c.astype(np.float64)
        if np.isnan(c).any():
            raise ValueError(
                f"counts contains {int(np.isnan(c).sum())} NaN value(s): every item needs a "
                "popularity (use 0 for items without a training interaction)"
            )
        if np.isinf(c).any():
            raise ValueError("counts contains an infinity: popularities must be finite numbers")
    else:
        c = c.astype(np.int64 if c.dtype.itemsize < 8 or c.dtype.kind == "i" else np.float64)
    if (c < 0).any():
        bad = int(np.flatnonzero(c < 0)[0])
        raise ValueError(
            f"counts must be >= 0 (numbers of training interactions), got {c[bad]} for item {bad}"
        )
    if n_items is not None:
        n_items = check_positive_int("n_items", n_items)
        if n_items != c.size:
            raise ValueError(
                f"n_items={n_items} but counts has {c.size} entries: counts must hold one "
                "popularity per item of the catalogue (or leave n_items out)"
            )
    return c


def _check_recommended(recommended, n_items: int) -> np.ndarray:
    """``recommended`` as a ``(U, K)`` int64 array of distinct items per row, else ValueError."""
    r = _as_numpy("recommended", recommended, "a (users, K) matrix of item indices")
    if r.ndim != 2:
        raise ValueError(
            f"recommended must be a 2-D (users, K) matrix of item indices, got shape {r.shape}: "
            "for a single user pass recommended[None] (or .reshape(1, -1))"
        )
    if r.size == 0:
        raise ValueError(
            f"recommended is empty (shape {r.shape}): at least one user and K >= 1 are needed"
        )
    if r.dtype.kind not in "iu":
        raise ValueError(
            f"recommended must hold integer item indices, got dtype {r.dtype}: pass "
            "torch.topk(scores, K).indices (or convert with .long() / .astype(int))"
        )
    bad = (r < 0) | (r >= n_items)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise ValueError(
            f"recommended holds item indices outside [0, {n_items}): {r[row, col]} in row {row} "
            f"({int(bad.sum())} entries in all). Items are numbered 0..n_items-1 and counts "
            "must cover the whole catalogue"
        )
    r = r.astype(np.int64)
    ordered = np.sort(r, axis=1)
    repeat = ordered[:, 1:] == ordered[:, :-1]
    if repeat.any():
        row, col = (int(i[0]) for i in np.nonzero(repeat))
        raise ValueError(
            f"recommended row {row} lists item {ordered[row, col]} more than once: each row "
            "must be a user's top-K list of distinct items (e.g. torch.topk(scores, K).indices)"
        )
    return r


def popularity_profile(recommended, counts, *, n_items=None) -> dict[str, float]:
    """How popular the items of a model's top-K lists are ("the curse of popularity").

    A model can score well on accuracy by recommending the same few blockbusters to everyone.
    These numbers say how far it does: how popular the recommended items are, how much of the
    catalogue it ever shows, and how unevenly it spreads its recommendation slots.

    Popularity ranks: rank 1 is the most popular item (largest count); tied items share the
    mean of their ranks (``scipy.stats.rankdata(-counts)``, ``"average"``), so no value depends
    on the order of ties. The "top 10%" items are the ``ceil(I / 10)`` items of largest count;
    ties at that boundary are broken by the smaller item index.

    Args:
        recommended: ``(U, K)`` integer tensor or array, ``U >= 1``, ``K >= 1``: row ``u`` is
            user ``u``'s top-K item indices (as ``torch.topk(scores, K).indices``), each in
            ``[0, I)``, no item twice in a row.
        counts: ``(I,)`` non-negative finite numbers: each item's number of training
            interactions (its popularity), for the whole catalogue.
        n_items: the catalogue size ``I``; defaults to ``len(counts)``, and must equal it if
            given.

    Returns:
        A plain dict of floats:

        * ``"mean popularity rank"``: the mean popularity rank of the ``U * K`` recommended
          entries (1 = most popular; small = popular).
        * ``"mean popularity percentile"``: the same divided by ``I``, in ``(0, 1]``:
          comparable across catalogues.
        * ``"coverage"``: the share of the ``I`` items recommended to at least one user.
        * ``"gini"``: the Gini index of how often each of the ``I`` items is recommended (never
          recommended: 0 times), ``sum_i (2i - I - 1) x_i / (I * sum x)`` over the sorted
          counts ``x_1 <= ... <= x_I``: 0 when every item is recommended equally often, near 1
          when a few items take all the slots.
        * ``"share of top 10% items"``: the share of the ``U * K`` entries that are among the
          top 10% most popular items.

    Raises:
        ValueError: ``recommended`` not 2-D, empty, not integers, out of ``[0, I)`` or with an
            item twice in a row (naming the first bad row); ``counts`` not 1-D, empty, not
            numbers, negative, NaN or infinite; ``n_items`` not ``len(counts)``.

    Example:
        >>> import torch
        >>> counts = torch.tensor([50, 30, 30, 5, 1])  # items 1 and 2 tie: rank 2.5 each
        >>> recommended = torch.tensor([[0, 1], [0, 2]])
        >>> {k: round(v, 3) for k, v in popularity_profile(recommended, counts).items()}
        ... # doctest: +NORMALIZE_WHITESPACE
        {'mean popularity rank': 1.75, 'mean popularity percentile': 0.35, 'coverage': 0.6,
         'gini': 0.5, 'share of top 10% items': 0.5}
    """
    c = _check_counts(counts, n_items)
    n = c.size
    r = _check_recommended(recommended, n)
    # average ranks of -counts: 1 + #(larger) + (#(equal) - 1) / 2
    ascending = np.sort(c)
    right = np.searchsorted(ascending, c, side="right")
    left = np.searchsorted(ascending, c, side="left")
    rank = (n - right) + (right - left + 1) / 2.0
    mean_rank = float(rank[r].mean())
    times = np.bincount(r.ravel(), minlength=n)  # how often each item is recommended
    x = np.sort(times).astype(np.float64)
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    gini = float((weights * x).sum() / (n * x.sum()))
    top = np.zeros(n, dtype=bool)
    top[np.argsort(-c, kind="stable")[: -(-n // 10)]] = True  # ceil(n / 10), exact in ints
    return {
        "mean popularity rank": mean_rank,
        "mean popularity percentile": mean_rank / n,
        "coverage": float((times > 0).mean()),
        "gini": gini,
        "share of top 10% items": float(top[r].mean()),
    }
