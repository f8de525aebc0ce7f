"""Non-learned baselines."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._interactions import interaction_csr
from .base import Recommender

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Recommend the items most users interacted with in training, the same list for everyone.

    The baseline the NCF paper calls ItemPop (He et al., WWW 2017). The score of ``(u, i)`` is
    the number of distinct training users of item ``i``. Build it from the training
    interactions with :meth:`from_interactions`. The model has no parameters: its only state is
    the ``counts`` buffer, which is saved in checkpoints (``Popularity(n_users, n_items)``
    starts at zero, ready for ``load_state_dict``), moves with ``.to(device)`` and tells
    evaluators the device (see :func:`~recs_course.models.model_device`).

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
    """

    counts: Tensor

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.register_buffer("counts", torch.zeros(self.n_items))

    @classmethod
    def from_interactions(
        cls, users: object, items: object, n_users: int, n_items: int
    ) -> Popularity:
        """Count each item's distinct training users (a repeated pair counts once).

        Args:
            users: ``(E,)`` user indices of the training interactions.
            items: ``(E,)`` item indices.
            n_users: ``U``; n_items: ``I``.
        """
        matrix = interaction_csr(users, items, n_users, n_items)
        model = cls(n_users, n_items)
        counts = np.bincount(matrix.indices, minlength=model.n_items)  # one entry per pair
        model.counts.copy_(torch.from_numpy(counts))
        return model

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)`` (ignored), ``items (B,)`` -> ``(B,)`` popularity scores."""
        users, items = self._pairs(users, items)
        return self.counts[items]

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)``, each row the popularity vector (a fresh tensor)."""
        users = self._users(users)
        return self.counts.unsqueeze(0).repeat(users.numel(), 1)
