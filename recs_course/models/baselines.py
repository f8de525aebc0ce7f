"""Non-learned baselines."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .base import Recommender, check_indices

__all__ = ["Popularity", "as_index_tensor"]


def as_index_tensor(name: str, values: object, upper: int) -> Tensor:
    """Indices (tensor, array or list, any shape) as a flat CPU ``int64`` tensor in ``[0, upper)``.

    For interaction lists (:meth:`Popularity.fit`, the graph adjacency), checked on the CPU by
    :func:`~recs_course.models.base.check_indices`.
    """
    if isinstance(values, Tensor):
        values = values.detach().to("cpu")
    what = f"n_{name} = {upper}" if name in ("users", "items") else None
    tensor = check_indices(name, values, upper, ndim=None, what=what)
    return tensor.reshape(-1).to(torch.int64)


class Popularity(Recommender):
    """Recommend the items most users interacted with in training, the same list for everyone.

    The baseline the NCF paper calls ItemPop (He et al., WWW 2017). The score of ``(u, i)`` is
    the number of distinct training users of item ``i`` (``transform="count"``) or its
    ``log1p`` (``transform="log"``); both rank the same. The model has no parameters: its only
    state is the ``counts`` buffer, which moves with ``.to(device)`` and tells evaluators the
    device (see :func:`~recs_course.models.model_device`). Fit it with :meth:`fit` or build it
    with :meth:`from_interactions`.

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
        transform: ``"count"`` or ``"log"``.
    """

    counts: Tensor

    def __init__(
        self, n_users: int, n_items: int, transform: Literal["count", "log"] = "count"
    ) -> None:
        super().__init__(n_users, n_items)
        if transform not in ("count", "log"):
            raise ValueError(f"transform must be 'count' or 'log', got {transform!r}")
        self.transform = transform
        self.register_buffer("counts", torch.zeros(self.n_items))

    def fit(self, users: object, items: object) -> Popularity:
        """Count each item's distinct training users (repeated pairs count once); returns self.

        Args:
            users: ``(N,)`` user indices of the training interactions.
            items: ``(N,)`` item indices.
        """
        users_t = as_index_tensor("users", users, self.n_users)
        items_t = as_index_tensor("items", items, self.n_items)
        if users_t.shape != items_t.shape:
            raise ValueError(
                f"users and items must have the same length, got {users_t.numel()} and "
                f"{items_t.numel()}"
            )
        pairs = torch.unique(users_t * self.n_items + items_t)
        counts = torch.bincount(pairs % self.n_items, minlength=self.n_items)
        self.counts.copy_(counts.to(self.counts.dtype))
        return self

    @classmethod
    def from_interactions(
        cls,
        users: object,
        items: object,
        n_users: int,
        n_items: int,
        transform: Literal["count", "log"] = "count",
    ) -> Popularity:
        """``Popularity(n_users, n_items, transform).fit(users, items)``."""
        return cls(n_users, n_items, transform=transform).fit(users, items)

    def _scores(self) -> Tensor:
        return torch.log1p(self.counts) if self.transform == "log" else self.counts

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)`` (ignored), ``items (B,)`` -> ``(B,)`` popularity scores."""
        users, items = self._pairs(users, items)
        return self._scores()[items]

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)``, each row the popularity vector (a fresh tensor)."""
        users = self._users(users)
        return self._scores().unsqueeze(0).repeat(users.numel(), 1)
