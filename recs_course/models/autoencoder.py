"""AutoRec: autoencoders that reconstruct rows of the rating matrix (Sedhain et al., WWW 2015)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from ._interactions import interaction_csr
from .base import (
    Recommender,
    check_layers,
    check_positive_int,
    check_probability,
    check_real_dtype,
    check_y_range,
    renamed_arguments,
)

__all__ = ["AutoRec", "masked_mse"]

_ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def masked_mse(
    pred: Tensor, target: Tensor, mask: Tensor, reduction: Literal["mean", "sum"] = "mean"
) -> Tensor:
    """Squared error over the observed entries only.

    Args:
        pred: ``(B, D)`` reconstructions.
        target: ``(B, D)`` ratings; entries where ``mask`` is false are ignored, whatever they are.
        mask: ``(B, D)`` bool, true where a rating was observed.
        reduction: ``"mean"`` (over observed entries; 0 when there are none) or ``"sum"``
            (the AutoRec paper's objective, without its weight penalty).

    Returns:
        A scalar tensor.
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(
            f"mask must be a bool tensor, true where a rating was observed, got {got}: for a 0/1 "
            "tensor pass mask != 0 (a weight such as 0.5 is not an observation mask)"
        )
    if not (pred.shape == target.shape == mask.shape):
        raise ValueError(
            f"pred, target and mask must have the same shape, got {tuple(pred.shape)}, "
            f"{tuple(target.shape)} and {tuple(mask.shape)}"
        )
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    # where() rather than multiplication, so a NaN or inf in an unobserved target cannot leak in
    squared = torch.where(
        mask, (pred - target) ** 2, torch.zeros((), dtype=pred.dtype, device=pred.device)
    )
    total = squared.sum()
    if reduction == "sum":
        return total
    return total / mask.sum().clamp(min=1)


def _ratings_to_csr(ratings: object, n_users: int, n_items: int) -> sp.csr_matrix:
    """The ``(U, I)`` rating matrix as scipy CSR; stored entries are the observed ratings.

    Its entries go through :func:`~recs_course.models._interactions.interaction_csr`, the
    checks of :meth:`AutoRec.from_interactions` (finite values, one rating per pair).
    """
    if isinstance(ratings, (Tensor, np.ndarray)) or sp.issparse(ratings):
        check_real_dtype("ratings", ratings.dtype)
        if ratings.ndim != 2:
            raise ValueError(
                f"ratings must be a 2-D (n_users, n_items) matrix, got shape {tuple(ratings.shape)}"
            )
    if sp.issparse(ratings):
        coo = sp.coo_matrix(ratings)  # stored entries, repeated ones included
        rows, cols, values, shape = coo.row, coo.col, coo.data, coo.shape
    elif isinstance(ratings, Tensor):
        tensor = ratings.detach().to("cpu")
        if tensor.layout == torch.strided:
            coo = sp.coo_matrix(tensor.numpy())  # dense input: zeros mean "not rated"
            rows, cols, values, shape = coo.row, coo.col, coo.data, coo.shape
        else:
            tensor = tensor.to_sparse_coo()  # not coalesced: a repeated entry is not summed
            (rows, cols), values = tensor._indices().numpy(), tensor._values().numpy()
            shape = tuple(tensor.shape)
    elif isinstance(ratings, np.ndarray):
        coo = sp.coo_matrix(ratings)
        rows, cols, values, shape = coo.row, coo.col, coo.data, coo.shape
    else:
        raise ValueError(
            "ratings must be a scipy sparse matrix, a torch tensor (sparse or dense) or a numpy "
            f"array of shape (n_users, n_items); got {type(ratings).__name__}. Build one with "
            "recs_course.data.interaction_matrix(train, n_users, n_items)."
        )
    if shape != (n_users, n_items):
        raise ValueError(
            f"ratings has shape {shape} but (n_users, n_items) = ({n_users}, {n_items})"
        )
    return interaction_csr(rows, cols, n_users, n_items, values)


class AutoRec(Recommender):
    """Item- or user-based AutoRec, with an optional deep, dropout-regularised variant.

    Item-based (I-AutoRec, ``based="item"``): each item's vector of ratings from all ``U`` users
    is one input row; the network ``h(r) = f(W g(V r + mu) + b)`` reconstructs it, the loss
    counts observed entries only (:meth:`masked_loss`), and the prediction for ``(u, i)`` is
    entry ``u`` of item ``i``'s reconstruction (Sedhain, Menon, Sanner & Xie, "AutoRec:
    autoencoders meet collaborative filtering", WWW 2015; ``g`` sigmoid, ``f`` identity, 500
    hidden units, the weight penalty left to the optimiser's ``weight_decay``). User-based
    (U-AutoRec) swaps the roles.

    A tuple ``hidden``, e.g. ``(512, 256, 512)`` with ``activation="selu"`` and ``dropout=0.5``,
    gives the deep autoencoder of Kuchaiev & Ginsburg, "Training deep autoencoders for
    collaborative filtering" (2017): dropout acts on the code, the output of the middle hidden
    layer (index ``(len(hidden) - 1) // 2``).

    The training ratings are stored (CSR arrays as non-persistent buffers, moved by
    ``.to(device)``, not saved in checkpoints), so the model turns indices into input rows itself.
    Build it from interaction lists with :meth:`from_interactions` (the constructor the graph
    models and ``Popularity`` share), or from the ``(U, I)`` rating matrix.

    Fallback: a pair whose user or item has no training rating has no information in the input
    (its reconstruction is untrained); :meth:`forward` and :meth:`score_all` predict the mean
    training rating there. With ``clip=(low, high)`` they also clip predictions to the range (a
    hard clamp, where ``y_range`` in MF and EmbeddingMLP is a scaled sigmoid);
    :meth:`reconstruct` and :meth:`masked_loss` never clip.

    Item-based scoring reconstructs every item a batch touches; inside :meth:`scoring_pass` (an
    evaluation) every item is reconstructed once for the whole pass instead. Where every item is
    reconstructed (item-based :meth:`score_all`, the pass's table) it goes
    :attr:`items_per_chunk` items at a time.

    Args:
        n_users: ``U``; n_items: ``I``.
        ratings: the ``(U, I)`` training ratings: scipy sparse (stored entries are observed),
            torch sparse, or dense (zeros mean unobserved). One entry per pair.
        hidden: hidden layer size(s).
        based: ``"item"`` (rows are items, inputs of size ``U``) or ``"user"``.
        dropout: dropout on the code (the middle hidden layer's output), in training.
        activation: hidden activation: sigmoid, relu, selu, elu, tanh or identity.
        output_activation: activation of the reconstruction (``"identity"`` in the paper).
        clip: ``None`` or ``(low, high)`` to clip predictions, e.g. ``(1.0, 5.0)`` (formerly
            ``y_range``, a name that in this package means a scaled sigmoid).

    The options after ``ratings`` are keyword-only.
    """

    #: How many items an item-based model reconstructs in one network call where it
    #: reconstructs every item (:meth:`score_all`, the table of a :meth:`scoring_pass`): the
    #: memory of a call is about ``items_per_chunk * (n_users + hidden)`` floats.
    items_per_chunk: int = 1024

    #: The most entries (``n_items * n_users``) of the reconstruction table an item-based
    #: model keeps for a scoring pass (``2**28``: 1 GiB in float32); above it, every call
    #: reconstructs what it needs, as outside a pass.
    max_pass_entries: int = 1 << 28

    crow_indices: Tensor
    col_indices: Tensor
    values: Tensor
    user_known: Tensor
    item_known: Tensor
    mean_rating: Tensor

    @renamed_arguments(
        y_range="AutoRec's clipping range is now called clip=(low, high) (in recs_course, "
        "`y_range` is a scaled sigmoid, as in MF and EmbeddingMLP)"
    )
    def __init__(
        self,
        n_users: int,
        n_items: int,
        ratings: object,
        *,
        hidden: int | Sequence[int] = 500,
        based: Literal["item", "user"] = "item",
        dropout: float = 0.0,
        activation: str = "sigmoid",
        output_activation: str = "identity",
        clip: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(n_users, n_items)
        if based not in ("item", "user"):
            raise ValueError(f"based must be 'item' or 'user', got {based!r}")
        for name, value in (("activation", activation), ("output_activation", output_activation)):
            if value not in _ACTIVATIONS:
                raise ValueError(f"{name} must be one of {sorted(_ACTIVATIONS)}, got {value!r}")
        if isinstance(hidden, Sequence) and not isinstance(hidden, (str, bytes)):
            self.hidden = check_layers("hidden", hidden)
        else:
            self.hidden = (check_positive_int("hidden", hidden),)
        self.based = based
        self.dropout = check_probability("dropout", dropout)
        self.activation = activation
        self.output_activation = output_activation
        self.clip = check_y_range(clip, "clip")

        csr = _ratings_to_csr(ratings, self.n_users, self.n_items)
        rows = csr.T.tocsr() if based == "item" else csr  # one row per training example
        rows.sort_indices()
        self.n_rows, self.n_inputs = rows.shape
        self.register_buffer(
            "crow_indices", torch.from_numpy(rows.indptr.astype(np.int64)), persistent=False
        )
        self.register_buffer(
            "col_indices", torch.from_numpy(rows.indices.astype(np.int64)), persistent=False
        )
        self.register_buffer(
            "values", torch.from_numpy(rows.data.astype(np.float32)), persistent=False
        )
        self.register_buffer(
            "user_known", torch.from_numpy(np.diff(csr.indptr) > 0), persistent=False
        )
        self.register_buffer(
            "item_known",
            torch.from_numpy(np.bincount(csr.indices, minlength=self.n_items) > 0),
            persistent=False,
        )
        mean = float(csr.data.mean()) if csr.nnz else 0.0
        self.register_buffer("mean_rating", torch.tensor(mean), persistent=False)

        code = (len(self.hidden) - 1) // 2
        layers: list[nn.Module] = []
        size = self.n_inputs
        for k, width in enumerate(self.hidden):
            layers += [nn.Linear(size, width), _ACTIVATIONS[activation]()]
            if k == code:
                layers.append(nn.Dropout(self.dropout))
            size = width
        layers += [nn.Linear(size, self.n_inputs), _ACTIVATIONS[output_activation]()]
        self.network = nn.Sequential(*layers)
        for module in self.network:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    @classmethod
    @renamed_arguments(
        values="the ratings of the interactions are called ratings= (values= names a mode in "
        "recs_course.data.interaction_matrix)"
    )
    def from_interactions(
        cls,
        users: object,
        items: object,
        n_users: int,
        n_items: int,
        *,
        ratings: object,
        **kwargs: object,
    ) -> AutoRec:
        """Build the model on the ratings of interaction lists (one rating per pair).

        Args:
            users: ``(E,)`` user indices of the training ratings.
            items: ``(E,)`` item indices.
            n_users: ``U``; n_items: ``I``.
            ratings: ``(E,)`` the ratings (finite numbers).
            **kwargs: the model's other arguments (``hidden``, ``based``, ``clip``, ...).
        """
        matrix = interaction_csr(users, items, n_users, n_items, ratings)
        return cls(n_users, n_items, matrix, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, based={self.based!r}, hidden={self.hidden}, "
            f"clip={self.clip}, n_ratings={self.values.numel()}"
        )

    def rows(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Dense input rows and their observed masks.

        Args:
            idx: ``(B,)`` row indices: items for ``based="item"``, users for ``"user"``.

        Returns:
            ``(ratings (B, D), mask (B, D) bool)`` with ``D`` the input size (``U`` for
            item-based, ``I`` for user-based); unobserved entries are 0.
        """
        return self._rows(self._row_index(idx))

    def _row_index(self, idx: object) -> Tensor:
        """``idx (B,)`` checked as row indices: items for ``based="item"``, users for ``"user"``."""
        kind = "items" if self.based == "item" else "users"
        what = f"the rows of based={self.based!r} are {kind}: n_{kind} = {self.n_rows}"
        return self._index("idx", idx, self.n_rows, what)

    def _rows(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`rows` without the index check."""
        starts = self.crow_indices[idx]
        counts = self.crow_indices[idx + 1] - starts
        total = int(counts.sum())
        row_of = torch.repeat_interleave(
            torch.arange(idx.numel(), device=idx.device), counts, output_size=total
        )
        first = torch.cumsum(counts, 0) - counts  # where each row's entries start in the output
        offset = torch.arange(total, device=idx.device) - first[row_of]
        positions = starts[row_of] + offset
        columns = self.col_indices[positions]
        dense = torch.zeros(
            idx.numel(), self.n_inputs, dtype=self.values.dtype, device=self.values.device
        )
        mask = torch.zeros(idx.numel(), self.n_inputs, dtype=torch.bool, device=self.values.device)
        dense[row_of, columns] = self.values[positions]
        mask[row_of, columns] = True
        return dense, mask

    def autoencode(self, inputs: Tensor) -> Tensor:
        """Run the network on dense rows: ``(B, D)`` -> ``(B, D)``."""
        return self.network(inputs)

    def reconstruct(self, idx: Tensor) -> Tensor:
        """Dense reconstruction of the given rows: ``(B,)`` -> ``(B, D)`` (no clipping)."""
        inputs, _ = self.rows(idx)
        return self.network(inputs)

    def _reconstruct(self, idx: Tensor) -> Tensor:
        """:meth:`reconstruct` of indices known to be valid."""
        return self.network(self._rows(idx)[0])

    def masked_loss(self, idx: Tensor, reduction: Literal["mean", "sum"] = "mean") -> Tensor:
        """Squared reconstruction error of rows ``idx (B,)`` over their observed entries.

        ``"mean"`` averages over the batch's observed ratings (an MSE on the rating scale);
        ``"sum"`` is the paper's objective. See :func:`masked_mse`.
        """
        inputs, mask = self.rows(idx)
        return masked_mse(self.network(inputs), inputs, mask, reduction=reduction)

    def _finish(self, pred: Tensor, users: Tensor, items: Tensor) -> Tensor:
        """Fallback for users or items without training ratings, then clipping."""
        known = self.user_known[users] & self.item_known[items]
        pred = torch.where(known, pred, self.mean_rating.to(pred.dtype))
        if self.clip is not None:
            pred = pred.clamp(*self.clip)
        return pred

    def scoring_pass(self) -> contextlib.AbstractContextManager[None]:
        """A block (``with model.scoring_pass():``) in which item-based AutoRec reconstructs every
        item once.

        The first score inside (``forward`` or ``score_all``) reconstructs all items (``(I, U)``,
        :attr:`items_per_chunk` items at a time) and every later one in the block reads that
        table, as long as the model is in eval mode, autograd is off and the weights stay the
        same (what the evaluators of :mod:`recs_course.evaluation` do); the table is dropped on
        exit. Outside the block, and for user-based AutoRec (whose rows are the users being
        scored, nothing to share) or a table above :attr:`max_pass_entries` entries, every call
        reconstructs what it needs.
        """
        return self._sharing_pass()

    def _pass_table(self) -> Tensor | None:
        """Every item's reconstruction ``(I, U)`` for the scoring pass, or None (see
        :meth:`scoring_pass`)."""
        if (
            self.based != "item"
            or not self._sharing()
            or self.n_items * self.n_users > self.max_pass_entries
        ):
            return None
        return self._pass_value("reconstructions", self._reconstruct_all_items)

    def _item_chunks(self, device: torch.device) -> list[Tensor]:
        """Every item index, in chunks of :attr:`items_per_chunk` (checked: a positive int)."""
        step = check_positive_int("AutoRec.items_per_chunk", self.items_per_chunk)
        return list(torch.arange(self.n_items, device=device).split(step))

    def _reconstruct_all_items(self) -> Tensor:
        """``(I, U)``: every item's reconstruction, :attr:`items_per_chunk` items at a time."""
        chunks = self._item_chunks(self.values.device)
        return torch.cat([self._reconstruct(chunk) for chunk in chunks])

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` predicted ratings.

        Each distinct row (item for item-based, user for user-based) is reconstructed once (in
        a scoring pass, item-based AutoRec reads its table of every item's reconstruction).
        """
        users, items = self._pairs(users, items)
        table = self._pass_table()
        if table is not None:
            return self._finish(table[items, users], users, items)
        rows, cols = (items, users) if self.based == "item" else (users, items)
        unique, inverse = torch.unique(rows, return_inverse=True)
        pred = self._reconstruct(unique)[inverse, cols]
        return self._finish(pred, users, items)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` predicted ratings.

        User-based: the users' own reconstructions. Item-based: every item is reconstructed
        (:attr:`items_per_chunk` items at a time) and the users' columns kept, ``O(I x U)`` per
        call, or once per :meth:`scoring_pass`.
        """
        users = self._users(users)
        all_items = torch.arange(self.n_items, device=users.device)
        table = self._pass_table() if self.based == "item" else None
        if table is not None:
            pred = table[:, users].T.contiguous()
        elif self.based == "user":
            pred = self._reconstruct(users)
        else:
            chunks = [
                self._reconstruct(chunk)[:, users] for chunk in self._item_chunks(users.device)
            ]
            pred = torch.cat(chunks, dim=0).T.contiguous()
        grid_users = users.unsqueeze(1).expand(-1, self.n_items)
        grid_items = all_items.unsqueeze(0).expand(users.numel(), -1)
        return self._finish(pred, grid_users, grid_items)
