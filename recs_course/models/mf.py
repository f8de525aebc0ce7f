"""Matrix factorisation and the embedding MLP for explicit ratings."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..utils import check_flag
from .base import (
    Recommender,
    check_layers,
    check_non_negative,
    check_positive_int,
    check_probability,
    check_y_range,
    concat_mlp_scores,
    scale_to_range,
)

__all__ = ["MF", "EmbeddingMLP"]


class MF(Recommender):
    """Matrix factorisation: ``score(u, i) = p_u . q_i + b_u + b_i + mu``.

    Koren, Bell & Volinsky, "Matrix factorization techniques for recommender systems", IEEE
    Computer 2009. With ``y_range=(low, high)`` the score passes through fastai's scaled sigmoid
    ``low + (high - low) * sigmoid(score)`` (Howard & Gugger 2020; ``(0.5, 5.5)`` lets a 1-5 scale
    reach its ends). Without ``y_range`` the score is a rating (MSE) or a logit (BCE / BPR).

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
        dim: embedding size ``d``.
        biases: add a user bias, an item bias and a global bias.
        y_range: ``None`` or ``(low, high)`` for the scaled sigmoid.
        init_std: standard deviation of the normal initialisation of the embeddings (the biases
            start at 0).
        sparse: sparse gradients for the embedding tables and the per-user / per-item biases
            (``nn.Embedding(..., sparse=True)``: a batch's gradient holds only the rows it
            touches). Optimise them with ``torch.optim.SGD``, ``SparseAdam`` or ``Adagrad``;
            ``global_bias`` stays dense. ``score_all`` reads the item table whole (dense
            gradients): train through ``forward`` / ``pair_scores``.

    The options after ``dim`` are keyword-only.

    Attributes:
        user_embedding: ``nn.Embedding(U, d)``; ``item_embedding``: ``nn.Embedding(I, d)``.
        user_bias, item_bias: ``nn.Embedding(U, 1)``, ``nn.Embedding(I, 1)`` (if ``biases``).
        global_bias: scalar parameter (if ``biases``); set it to the mean rating to start there.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 32,
        *,
        biases: bool = True,
        y_range: tuple[float, float] | None = None,
        init_std: float = 0.01,
        sparse: bool = False,
    ) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.y_range = check_y_range(y_range)
        init_std = check_non_negative("init_std", init_std)
        self.biases = check_flag("biases", biases)
        self.sparse = check_flag("sparse", sparse)
        self.user_embedding = nn.Embedding(self.n_users, self.dim, sparse=self.sparse)
        self.item_embedding = nn.Embedding(self.n_items, self.dim, sparse=self.sparse)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.item_embedding.weight, std=init_std)
        if self.biases:
            self.user_bias = nn.Embedding(self.n_users, 1, sparse=self.sparse)
            self.item_bias = nn.Embedding(self.n_items, 1, sparse=self.sparse)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
            self.global_bias = nn.Parameter(torch.zeros(()))

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, dim={self.dim}, biases={self.biases}, y_range={self.y_range}"
        )

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` scores."""
        users, items = self._pairs(users, items)
        score = (self.user_embedding(users) * self.item_embedding(items)).sum(-1)
        if self.biases:
            score = (
                score
                + self.user_bias(users).squeeze(-1)
                + self.item_bias(items).squeeze(-1)
                + self.global_bias
            )
        return scale_to_range(score, self.y_range)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` with one matrix product."""
        users = self._users(users)
        score = self.user_embedding(users) @ self.item_embedding.weight.T
        if self.biases:
            score = (
                score
                + self.user_bias(users)  # (B, 1)
                + self.item_bias.weight.T  # (1, I)
                + self.global_bias
            )
        return scale_to_range(score, self.y_range)


class EmbeddingMLP(Recommender):
    """An MLP on concatenated user and item embeddings that predicts ratings.

    ``[p_u ; q_i]`` -> embedding dropout -> ``(Linear -> ReLU -> Dropout)`` per hidden layer ->
    ``Linear(., 1)`` -> ``low + (high - low) * sigmoid(.)``. The "MLP" pathway of He et al.,
    "Neural collaborative filtering" (WWW 2017), trained on ratings with MSE as in fastai's
    collaborative-filtering net (Howard & Gugger 2020).

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
        dim: size of each embedding (the MLP's input is ``2 * dim``).
        hidden: hidden layer sizes.
        dropout: dropout after each hidden layer: one probability, or one per hidden layer.
        embed_dropout: dropout on the concatenated embeddings.
        y_range: ``(low, high)`` of the ratings, or ``None`` for an unbounded output.
        init_std: standard deviation of the normal initialisation of the embeddings.

    The options after ``dim`` are keyword-only. Hidden layers use Kaiming initialisation (ReLU),
    the output layer Xavier, biases start at 0.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 16,
        *,
        hidden: Sequence[int] = (64, 32, 16),
        dropout: float | Sequence[float] = 0.3,
        embed_dropout: float = 0.05,
        y_range: tuple[float, float] | None = (1.0, 5.0),
        init_std: float = 0.05,
    ) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.hidden = check_layers("hidden", hidden)
        if isinstance(dropout, Sequence) and not isinstance(dropout, (str, bytes)):
            if len(dropout) != len(self.hidden):
                raise ValueError(
                    f"dropout has {len(dropout)} values but hidden has {len(self.hidden)} "
                    "layers: give one probability per hidden layer, or a single number"
                )
            dropouts = tuple(check_probability(f"dropout[{k}]", p) for k, p in enumerate(dropout))
        else:
            dropouts = (check_probability("dropout", dropout),) * len(self.hidden)
        self.dropout = dropouts
        self.embed_dropout = check_probability("embed_dropout", embed_dropout)
        self.y_range = check_y_range(y_range)
        init_std = check_non_negative("init_std", init_std)

        self.user_embedding = nn.Embedding(self.n_users, self.dim)
        self.item_embedding = nn.Embedding(self.n_items, self.dim)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.item_embedding.weight, std=init_std)
        self.embedding_dropout = nn.Dropout(self.embed_dropout)
        layers: list[nn.Module] = []
        size = 2 * self.dim
        for width, p in zip(self.hidden, dropouts, strict=True):
            linear = nn.Linear(size, width)
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.ReLU(), nn.Dropout(p)]
            size = width
        self.hidden_layers = nn.Sequential(*layers)
        self.output = nn.Linear(size, 1)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, y_range={self.y_range}"

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` predicted ratings."""
        users, items = self._pairs(users, items)
        x = torch.cat([self.user_embedding(users), self.item_embedding(items)], dim=-1)
        x = self.hidden_layers(self.embedding_dropout(x))
        return scale_to_range(self.output(x).squeeze(-1), self.y_range)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` predicted ratings.

        The first layer is applied per user and per item rather than per pair; in training mode
        with embedding dropout the pairs go through :meth:`forward` instead.
        """
        if self.training and self.embed_dropout > 0:
            return super().score_all(users)
        users = self._users(users)
        head = nn.Sequential(*self.hidden_layers[1:], self.output)
        first = self.hidden_layers[0]
        scores = concat_mlp_scores(
            self.user_embedding(users), self.item_embedding.weight, first, head
        )
        return scale_to_range(scores.squeeze(-1), self.y_range)
