"""Non-learned baselines."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .base import Recommender, check_pair_shapes

__all__ = ["Popularity", "as_index_tensor"]


def as_index_tensor(name: str, values: object, upper: int) -> Tensor:
    """Convert indices (tensor, array or list) to a 1-D CPU ``int64`` tensor in ``[0, upper)``."""
    if isinstance(values, Tensor):
        tensor = values.detach().to("cpu")
    else:
        array = np.asarray(values)
        if array.size == 0:
            array = array.astype(np.int64)
        if not array.flags.writeable:  # e.g. a pandas column: torch would warn about it
            array = array.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer indices, got dtype {tensor.dtype}")
    tensor = tensor.reshape(-1).to(torch.int64)
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= upper):
        raise ValueError(
            f"{name} must lie in [0, {upper}), found values in [{int(tensor.min())}, "
            f"{int(tensor.max())}]: encode ids with IdEncoder and pass the matching sizes"
        )
    return tensor


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
        check_pair_shapes(users, items)
        return self._scores()[items]

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)``, each row the popularity vector (a fresh tensor)."""
        return self._scores().unsqueeze(0).repeat(users.numel(), 1)
