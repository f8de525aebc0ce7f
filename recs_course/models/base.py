"""The contract every recommender of the course follows, and argument checks shared by the models.

A :class:`Recommender` scores (user, item) pairs. Shapes: ``users`` and ``items`` are integer
tensors of shape ``(B,)`` holding 0-based indices; scores are float tensors of shape ``(B,)``
(logits for implicit-feedback models, ratings for explicit ones).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Recommender", "model_device"]

#: The most (user, item) pairs the fallback :meth:`Recommender.score_all` scores in one call.
MAX_PAIRS_PER_CHUNK = 1 << 20


def model_device(module: nn.Module) -> torch.device:
    """The device of a module: that of its first parameter, else its first buffer, else the CPU.

    Works for modules without parameters (such as :class:`~recs_course.models.Popularity`), where
    ``next(module.parameters())`` would raise ``StopIteration``.
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


class Recommender(nn.Module):
    """Base class of the course's models.

    Subclasses implement :meth:`forward` and may override :meth:`score_all` (one matmul where the
    model allows it), :meth:`pair_scores` (graph models propagate once for both item sets) and
    :meth:`regularization`.

    Args:
        n_users: number of users ``U`` (user indices are ``0 .. U-1``).
        n_items: number of items ``I`` (item indices are ``0 .. I-1``).
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = check_positive_int("n_users", n_users)
        self.n_items = check_positive_int("n_items", n_items)

    @property
    def device(self) -> torch.device:
        """The device the model lives on (see :func:`model_device`)."""
        return model_device(self)

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}"

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Score pairs: ``users (B,)``, ``items (B,)`` -> ``(B,)`` float scores."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def score_all(self, users: Tensor) -> Tensor:
        """Score every item for each user: ``users (B,)`` -> ``(B, n_items)``.

        This fallback calls :meth:`forward` on chunks of items (at most ``2**20`` pairs a call);
        models with a factorised score override it with one matrix product. The result is a fresh
        tensor that callers may modify in place (for example to mask training items with -inf).
        """
        users = users.reshape(-1)
        n_batch = users.numel()
        items = torch.arange(self.n_items, device=users.device)
        step = max(1, MAX_PAIRS_PER_CHUNK // max(n_batch, 1))
        chunks = []
        for start in range(0, self.n_items, step):
            chunk = items[start : start + step]
            pair_users = users.repeat_interleave(chunk.numel())
            pair_items = chunk.repeat(n_batch)
            chunks.append(self(pair_users, pair_items).reshape(n_batch, chunk.numel()))
        return torch.cat(chunks, dim=1)

    def pair_scores(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        """Scores of positive and negative items for BPR-style losses.

        Args:
            users: ``(B,)`` user indices.
            pos: ``(B,)`` positive item indices.
            neg: ``(B,)`` negative item indices, or ``(B, K)`` for ``K`` negatives per user.

        Returns:
            ``(pos_scores (B,), neg_scores)`` with ``neg_scores`` shaped like ``neg``.
        """
        check_pair_shapes(users, pos, "pos")
        pos_scores = self(users, pos)
        if neg.dim() == users.dim() + 1:
            expanded = users.unsqueeze(-1).expand_as(neg)
            neg_scores = self(expanded.reshape(-1), neg.reshape(-1)).reshape(neg.shape)
        else:
            neg_scores = self(users, neg)
        return pos_scores, neg_scores

    def regularization(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """Penalty added to a pairwise loss for this batch: a scalar tensor, 0 by default."""
        return torch.zeros((), device=users.device)


# ---------------------------------------------------------------------------------------------
# Argument checks. They raise ValueError with a message that says what to pass instead.


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer, else raise ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        number = operator.index(value)  # accepts int and numpy integers, rejects floats
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(number)


def check_probability(name: str, value: object) -> float:
    """Return a dropout probability in ``[0, 1)`` as a float, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the probability of dropping), got {value!r}")
    return value


def check_non_negative(name: str, value: object) -> float:
    """Return a finite number ``>= 0`` as a float (regularisation weights), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_layers(name: str, layers: object, min_len: int = 1) -> tuple[int, ...]:
    """Return a tuple of positive layer sizes, else raise ``ValueError``."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ValueError(
            f"{name} must be a sequence of positive integers such as (64, 32, 16, 8), "
            f"got {layers!r}"
        )
    if len(layers) < min_len:
        raise ValueError(f"{name} needs at least {min_len} layer size(s), got {layers!r}")
    return tuple(check_positive_int(f"{name}[{k}]", size) for k, size in enumerate(layers))


def check_y_range(y_range: object) -> tuple[float, float] | None:
    """Return ``None`` or a ``(low, high)`` pair of finite floats with ``low < high``."""
    if y_range is None:
        return None
    if isinstance(y_range, (str, bytes)) or not isinstance(y_range, Sequence) or len(y_range) != 2:
        raise ValueError(f"y_range must be None or a pair (low, high), got {y_range!r}")
    low, high = (float(v) for v in y_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"y_range must be finite with low < high, got {y_range!r}")
    return low, high


def check_pair_shapes(users: Tensor, items: Tensor, items_name: str = "items") -> None:
    """Raise ``ValueError`` unless ``users`` and ``items`` have the same shape (no device sync)."""
    if users.shape != items.shape:
        raise ValueError(
            f"users and {items_name} must have the same shape, got {tuple(users.shape)} and "
            f"{tuple(items.shape)}"
        )


def concat_mlp_scores(
    user_vectors: Tensor,
    item_vectors: Tensor,
    first: nn.Linear,
    rest: nn.Module,
    max_pairs: int = MAX_PAIRS_PER_CHUNK,
) -> Tensor:
    """``rest(first([u ; i]))`` for every (user, item) pair without building the concatenation.

    ``first([u ; i]) = W_u u + W_i i + b``, so the first layer costs one product per user and one
    per item instead of one per pair; ``rest`` runs on ``(B, chunk, h)`` blocks of at most
    ``max_pairs`` pairs. Valid whenever nothing acts on ``[u ; i]`` before ``first`` (no input
    dropout in training mode).

    Args:
        user_vectors: ``(B, d_u)``; item_vectors: ``(I, d_i)``.
        first: ``Linear(d_u + d_i, h)``; rest: maps ``(..., h)`` to ``(..., k)``.

    Returns:
        ``(B, I, k)``.
    """
    split = user_vectors.shape[-1]
    user_part = user_vectors @ first.weight[:, :split].T + first.bias  # (B, h)
    item_part = item_vectors @ first.weight[:, split:].T  # (I, h)
    step = max(1, max_pairs // max(user_part.shape[0], 1))
    blocks = [
        rest(user_part.unsqueeze(1) + item_part[start : start + step].unsqueeze(0))
        for start in range(0, item_part.shape[0], step)
    ]
    return torch.cat(blocks, dim=1)


def scale_to_range(logits: Tensor, y_range: tuple[float, float] | None) -> Tensor:
    """``low + (high - low) * sigmoid(logits)`` (fastai's scaled sigmoid), or ``logits``."""
    if y_range is None:
        return logits
    low, high = y_range
    return torch.sigmoid(logits) * (high - low) + low
