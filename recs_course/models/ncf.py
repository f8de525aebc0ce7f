"""Neural collaborative filtering: GMF, the NCF MLP and NeuMF (He et al., WWW 2017).

All three return logits: train them with ``binary_cross_entropy_with_logits`` (never a sigmoid
followed by ``BCELoss``) and rank by the logit. Initialisation follows the paper's code: normal
embeddings with standard deviation 0.01, Glorot-uniform hidden layers, a LeCun-uniform output
layer, biases at 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import (
    Recommender,
    check_layers,
    check_non_negative,
    check_positive_int,
    check_probability,
    concat_mlp_scores,
)

__all__ = ["GMF", "NCFMLP", "NeuMF"]

EMBEDDING_STD = 0.01


def _embedding(n: int, dim: int) -> nn.Embedding:
    table = nn.Embedding(n, dim)
    nn.init.normal_(table.weight, std=EMBEDDING_STD)
    return table


def _rows(table: nn.Embedding, index: Tensor) -> Tensor:
    """``table(index)``: the rows of an embedding table, the same values bit for bit.

    On the CPU the rows are gathered with ``index_select``, whose backward scatters the
    batch's gradient into a zero table in one call; ``nn.Embedding``'s CPU backward adds the
    rows one at a time. Same gradient, bit for bit; a lookup's forward plus backward costs
    about 0.09 ms instead of 0.17 ms at batch 2048 (NeuMF does four per step), 7% less at
    batch 256. Elsewhere the module is called, whose CUDA backward is deterministic (a CUDA
    ``index_add_`` is not). The course's tables use no ``padding_idx``, ``max_norm`` or
    sparse gradients, so both are the same lookup.
    """
    if index.device.type == "cpu":
        return table.weight.index_select(0, index)
    return table(index)


def _output_layer(in_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, 1)
    nn.init.kaiming_uniform_(layer.weight, a=1.0)  # gain 1: LeCun uniform, as in the paper's code
    nn.init.zeros_(layer.bias)
    return layer


def _check_tower(layers: object) -> tuple[int, ...]:
    layers = check_layers("layers", layers)
    if layers[0] % 2:
        raise ValueError(
            f"layers[0] is the size of the concatenated user and item embeddings and must be "
            f"even, got layers={layers!r}"
        )
    return layers


def _tower(layers: tuple[int, ...], dropout: float) -> nn.Sequential:
    """``Linear -> ReLU -> Dropout`` for each consecutive pair of ``layers``."""
    modules: list[nn.Module] = []
    for in_size, out_size in zip(layers[:-1], layers[1:], strict=True):
        linear = nn.Linear(in_size, out_size)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        # Dropout is always present (p may be 0) so the state-dict keys do not depend on it.
        modules += [linear, nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*modules)


class GMF(Recommender):
    """Generalised matrix factorisation: ``logit(u, i) = h . (p_u * q_i) + b``.

    He et al., "Neural collaborative filtering", WWW 2017, section 3.2.

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
        dim: embedding size ``d`` (the paper's "predictive factors"; 32 in the course).

    Attributes:
        user_embedding ``(U, d)``, item_embedding ``(I, d)``, output ``Linear(d, 1)``.
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 32) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.user_embedding = _embedding(self.n_users, self.dim)
        self.item_embedding = _embedding(self.n_items, self.dim)
        self.output = _output_layer(self.dim)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}"

    def features(self, users: Tensor, items: Tensor) -> Tensor:
        """The element-wise product ``p_u * q_i``: ``(B,), (B,)`` -> ``(B, d)``."""
        users, items = self._pairs(users, items)
        return _rows(self.user_embedding, users) * _rows(self.item_embedding, items)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` logits."""
        return self.output(self.features(users, items)).squeeze(-1)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` logits with one matrix product."""
        weighted = self.user_embedding(self._users(users)) * self.output.weight  # (B, d)
        return weighted @ self.item_embedding.weight.T + self.output.bias


class NCFMLP(Recommender):
    """The NCF multi-layer perceptron: ``[p_u ; q_i]`` -> ReLU tower -> ``Linear(., 1)`` logit.

    He et al., "Neural collaborative filtering", WWW 2017, section 3.3. ``layers[0]`` is the size
    of the concatenated embeddings, so each embedding has ``layers[0] // 2`` dimensions; the
    tower maps ``layers[k] -> layers[k + 1]``.

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
        layers: tower sizes, ``(64, 32, 16, 8)`` as in the paper's MovieLens runs.
        dropout: dropout after each tower layer (0.2 in the course's NeuMF runs).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        layers: Sequence[int] = (64, 32, 16, 8),
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(n_users, n_items)
        self.layers = _check_tower(layers)
        self.dropout = check_probability("dropout", dropout)
        self.dim = self.layers[0] // 2
        self.user_embedding = _embedding(self.n_users, self.dim)
        self.item_embedding = _embedding(self.n_items, self.dim)
        self.tower = _tower(self.layers, self.dropout)
        self.output = _output_layer(self.layers[-1])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, layers={self.layers}"

    def features(self, users: Tensor, items: Tensor) -> Tensor:
        """The tower's output: ``(B,), (B,)`` -> ``(B, layers[-1])``."""
        users, items = self._pairs(users, items)
        x = torch.cat(
            [_rows(self.user_embedding, users), _rows(self.item_embedding, items)], dim=-1
        )
        return self.tower(x)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` logits."""
        return self.output(self.features(users, items)).squeeze(-1)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` logits; the first layer is applied per user and
        per item, not per pair (see :func:`~recs_course.models.base.concat_mlp_scores`)."""
        user_vectors = self.user_embedding(self._users(users))
        if len(self.tower) == 0:  # no hidden layer: the output layer sees [p_u ; q_i] directly
            return concat_mlp_scores(
                user_vectors, self.item_embedding.weight, self.output, nn.Identity()
            ).squeeze(-1)
        head = nn.Sequential(*self.tower[1:], self.output)
        return concat_mlp_scores(
            user_vectors, self.item_embedding.weight, self.tower[0], head
        ).squeeze(-1)


class NeuMF(Recommender):
    """Neural matrix factorisation: GMF and MLP pathways joined by one prediction layer.

    ``logit = h . [p_u^G * q_i^G ; MLP([p_u^M ; q_i^M])] + b`` with separate embeddings for the
    two pathways (He et al., "Neural collaborative filtering", WWW 2017, section 3.4). Build it
    from scratch, or from trained :class:`GMF` and :class:`NCFMLP` with :meth:`from_pretrained`.

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
        dim: GMF embedding size.
        layers: MLP tower sizes (each MLP embedding has ``layers[0] // 2`` dimensions).
        dropout: dropout after each tower layer.

    Attributes:
        gmf_user_embedding, gmf_item_embedding, mlp_user_embedding, mlp_item_embedding, tower,
        output ``Linear(dim + layers[-1], 1)`` (GMF half first).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 32,
        *,
        layers: Sequence[int] = (64, 32, 16, 8),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.layers = _check_tower(layers)
        self.dropout = check_probability("dropout", dropout)
        self.gmf_user_embedding = _embedding(self.n_users, self.dim)
        self.gmf_item_embedding = _embedding(self.n_items, self.dim)
        self.mlp_user_embedding = _embedding(self.n_users, self.layers[0] // 2)
        self.mlp_item_embedding = _embedding(self.n_items, self.layers[0] // 2)
        self.tower = _tower(self.layers, self.dropout)
        self.output = _output_layer(self.dim + self.layers[-1])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, layers={self.layers}"

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` logits."""
        users, items = self._pairs(users, items)
        gmf = _rows(self.gmf_user_embedding, users) * _rows(self.gmf_item_embedding, items)
        mlp = self.tower(
            torch.cat(
                [_rows(self.mlp_user_embedding, users), _rows(self.mlp_item_embedding, items)],
                dim=-1,
            )
        )
        return self.output(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` logits.

        The output layer splits into a GMF half (one matrix product) and an MLP half whose
        first layer is applied per user and per item, not per pair.
        """
        users = self._users(users)
        h_gmf = self.output.weight[:, : self.dim]  # (1, dim)
        h_mlp = self.output.weight[:, self.dim :]  # (1, layers[-1])
        gmf = (self.gmf_user_embedding(users) * h_gmf) @ self.gmf_item_embedding.weight.T
        mlp_user = self.mlp_user_embedding(users)
        mlp_items = self.mlp_item_embedding.weight
        if len(self.tower) == 0:
            split = mlp_user.shape[1]
            mlp = (mlp_user @ h_mlp[:, :split].T) + (mlp_items @ h_mlp[:, split:].T).T
        else:
            tower_out = concat_mlp_scores(
                mlp_user, mlp_items, self.tower[0], nn.Sequential(*self.tower[1:])
            )  # (B, I, layers[-1])
            mlp = tower_out @ h_mlp[0]
        return gmf + mlp + self.output.bias

    @classmethod
    def from_pretrained(
        cls,
        gmf: GMF,
        mlp: NCFMLP,
        *,
        alpha: float = 0.5,
        dropout: float | None = None,
    ) -> NeuMF:
        """A NeuMF initialised from a trained GMF and a trained MLP (NCF paper, section 3.4.1).

        The embeddings and the tower are copied; the prediction layer is
        ``h = [alpha * h_GMF ; (1 - alpha) * h_MLP]`` with bias ``alpha * b_GMF +
        (1 - alpha) * b_MLP``, so the new logit is ``alpha * logit_GMF + (1 - alpha) *
        logit_MLP`` (exactly GMF's for ``alpha=1``, the MLP's for ``alpha=0``). The paper
        then trains NeuMF with plain SGD.

        Args:
            gmf: a trained :class:`GMF`.
            mlp: a trained :class:`NCFMLP` with the same users and items.
            alpha: weight of the GMF pathway, in ``[0, 1]``.
            dropout: tower dropout of the new model (``None``: the MLP's).

        Returns:
            A new NeuMF on GMF's device and dtype, in training mode; the inputs are unchanged.
        """
        if not isinstance(gmf, GMF) or not isinstance(mlp, NCFMLP):
            raise ValueError(
                "from_pretrained(gmf, mlp) needs a GMF and an NCFMLP, got "
                f"{type(gmf).__name__} and {type(mlp).__name__}"
            )
        if (gmf.n_users, gmf.n_items) != (mlp.n_users, mlp.n_items):
            raise ValueError(
                f"GMF has {gmf.n_users} users x {gmf.n_items} items but the MLP has "
                f"{mlp.n_users} x {mlp.n_items}: pre-train both on the same encoded data"
            )
        alpha = check_non_negative("alpha", alpha)
        if alpha > 1:
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        model = cls(
            gmf.n_users,
            gmf.n_items,
            dim=gmf.dim,
            layers=mlp.layers,
            dropout=mlp.dropout if dropout is None else dropout,
        )
        reference = gmf.user_embedding.weight
        model = model.to(device=reference.device, dtype=reference.dtype)
        with torch.no_grad():
            model.gmf_user_embedding.weight.copy_(gmf.user_embedding.weight)
            model.gmf_item_embedding.weight.copy_(gmf.item_embedding.weight)
            model.mlp_user_embedding.weight.copy_(mlp.user_embedding.weight)
            model.mlp_item_embedding.weight.copy_(mlp.item_embedding.weight)
            model.tower.load_state_dict(mlp.tower.state_dict())
            model.output.weight.copy_(
                torch.cat([alpha * gmf.output.weight, (1.0 - alpha) * mlp.output.weight], dim=1)
            )
            model.output.bias.copy_(alpha * gmf.output.bias + (1.0 - alpha) * mlp.output.bias)
        return model
