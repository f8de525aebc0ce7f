"""Item-to-item models, the strongest simple baselines of current practice: EASE and ItemKNN.

Both score a user by her training items through an ``(I, I)`` matrix of item-to-item weights,
``score(u, j) = sum_i X[u, i] W[i, j]`` with ``X`` the binary ``(U, I)`` training matrix, and
both are computed in closed form by :meth:`from_interactions` (no gradient training, no
``fit``):

- :class:`EASE`, Steck, "Embarrassingly shallow autoencoders for sparse data", WWW 2019: ``W``
  is dense, the ridge regression of every item on all the others with a zero diagonal.
- :class:`ItemKNN`, item-based neighbourhoods (Sarwar et al., WWW 2001; the form RecBole and
  Dacrema et al., RecSys 2019, use as a baseline): ``W`` is the cosine similarity with
  shrinkage, keeping each item's ``k`` nearest neighbours.

State. The binary training matrix ``X`` is kept as CSR parts in non-persistent buffers
(``crow_indices``, ``col_indices``: they follow ``.to(device)`` and stay out of checkpoints,
as the graph models' adjacency and AutoRec's ratings), the weights in persistent buffers
(``weights`` of EASE, ``neighbors``/``similarities`` of ItemKNN: the checkpoint). The
constructor takes the training matrix and starts with zero weights, ready for
``load_state_dict`` / :func:`~recs_course.training.load_checkpoint` (as ``Popularity`` starts at
zero counts); :meth:`from_interactions` computes the weights. The models have no parameters.

Training items are not masked: they get scores like any other item (the evaluators mask them).
A user without training items scores 0 everywhere.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ._interactions import interaction_csr
from .base import (
    Recommender,
    check_non_negative,
    check_positive_int,
    check_real_dtype,
)

__all__ = ["EASE", "ItemKNN"]

#: Devices whose sparse CSR x dense product the models use (elsewhere, e.g. MPS: dense rows).
_CSR_DEVICES = ("cpu", "cuda")


def _interactions_csr(interactions: object, n_users: int, n_items: int) -> sp.csr_matrix:
    """The ``(U, I)`` binary training matrix, checked: a scipy sparse matrix, a numpy array or a
    torch tensor (dense or sparse) whose nonzero entries are the interactions."""
    if isinstance(interactions, Tensor):
        tensor = interactions.detach().to("cpu")
        interactions = tensor.to_dense().numpy() if tensor.layout != torch.strided else tensor
        interactions = np.asarray(interactions)
    if not (sp.issparse(interactions) or isinstance(interactions, np.ndarray)):
        raise ValueError(
            "interactions must be a (n_users, n_items) scipy sparse matrix, numpy array or torch "
            f"tensor, got {type(interactions).__name__}: build it with "
            "recs_course.data.interaction_matrix(train, n_users, n_items, values='ones'), or "
            "use from_interactions(users, items, n_users, n_items)"
        )
    check_real_dtype("interactions", interactions.dtype)
    if interactions.ndim != 2 or tuple(interactions.shape) != (n_users, n_items):
        raise ValueError(
            f"interactions has shape {tuple(interactions.shape)} but (n_users, n_items) = "
            f"({n_users}, {n_items})"
        )
    coo = sp.coo_matrix(interactions)
    if not np.isfinite(coo.data).all():
        raise ValueError("interactions holds NaN or infinite values")
    keep = coo.data != 0  # an explicitly stored zero is no interaction
    return interaction_csr(coo.row[keep], coo.col[keep], n_users, n_items)


class _ItemItem(Recommender):
    """What EASE and ItemKNN share: the binary training matrix ``X`` as CSR parts, and the
    users' rows as a sparse (or dense) matrix for the products."""

    crow_indices: Tensor
    col_indices: Tensor

    def __init__(self, n_users: int, n_items: int, interactions: object) -> None:
        super().__init__(n_users, n_items)
        csr = _interactions_csr(interactions, self.n_users, self.n_items)
        self.register_buffer(
            "crow_indices", torch.from_numpy(csr.indptr.astype(np.int64)), persistent=False
        )
        self.register_buffer(
            "col_indices", torch.from_numpy(csr.indices.astype(np.int64)), persistent=False
        )

    @property
    def n_interactions(self) -> int:
        """The number of distinct training (user, item) pairs."""
        return self.col_indices.numel()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_interactions={self.n_interactions}"

    def interaction_matrix(self) -> sp.csr_matrix:
        """The binary ``(U, I)`` training matrix the model scores with (a scipy CSR copy)."""
        data = np.ones(self.n_interactions, dtype=np.float32)
        return sp.csr_matrix(
            (data, self.col_indices.cpu().numpy(), self.crow_indices.cpu().numpy()),
            shape=(self.n_users, self.n_items),
        )

    def _row_entries(self, users: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The stored entries of the users' rows of ``X``: ``(counts (B,), row_of (E,),
        cols (E,))``, ``row_of`` the position in ``users`` of each entry (no Python loop)."""
        users = users.long()
        starts = self.crow_indices[users]
        counts = self.crow_indices[users + 1] - starts
        total = int(counts.sum())
        row_of = torch.repeat_interleave(
            torch.arange(users.numel(), device=users.device), counts, output_size=total
        )
        first = torch.cumsum(counts, 0) - counts
        positions = starts[row_of] + torch.arange(total, device=users.device) - first[row_of]
        return counts, row_of, self.col_indices[positions]

    def _rows(self, users: Tensor, dtype: torch.dtype) -> Tensor:
        """``X[users]`` as a ``(B, I)`` matrix: sparse CSR on the CPU and CUDA, else dense."""
        counts, row_of, cols = self._row_entries(users)
        device = self.col_indices.device
        values = torch.ones(cols.numel(), dtype=dtype, device=device)
        if device.type not in _CSR_DEVICES:
            dense = torch.zeros(users.numel(), self.n_items, dtype=dtype, device=device)
            dense[row_of, cols] = values
            return dense
        crow = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        with warnings.catch_warnings():  # "sparse CSR support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                crow, cols, values, (users.numel(), self.n_items), check_invariants=False
            )


class EASE(_ItemItem):
    """EASE, the embarrassingly shallow autoencoder (Steck, WWW 2019), in closed form.

    An item-to-item weight matrix ``B (I, I)`` with a zero diagonal reconstructs the binary
    training matrix, ``min_B ||X - X B||^2 + l2 ||B||^2`` s.t. ``diag(B) = 0``, whose solution
    is ``B = I - P diag(1 / diag(P))`` (``B_ij = -P_ij / P_jj`` off the diagonal) with
    ``P = (X^T X + l2 I)^-1``. Scores: ``score(u, j) = (X[u] B)_j``.

    :meth:`from_interactions` computes ``B`` in float64 (``torch.linalg.cholesky`` and
    ``torch.cholesky_inverse``, on the CPU) and stores it in float32, in the persistent buffer
    ``weights`` (the checkpoint, ``I x I`` floats); the training matrix is kept as
    non-persistent CSR buffers (rebuild the model with the same data, then load the
    checkpoint). ``EASE(n_users, n_items, interactions)`` holds zero weights until then.
    ``B`` is dense: above :attr:`max_items` items the model is refused (a ``ValueError`` saying
    what it would cost).

    Args:
        n_users: ``U``; n_items: ``I``.
        interactions: the ``(U, I)`` training matrix (scipy sparse, numpy or torch; nonzero
            entries are interactions, read as 1).
        l2: the L2 penalty ``lambda`` (> 0). The default 500 is the paper's value for
            MovieLens-20M (Netflix: 1000, MSD: 200); tune it on validation data (RecBole's
            default is 250).

    ``l2`` is keyword-only.
    """

    #: The most items EASE accepts (``B`` is dense: ``I^2`` float32 stored, ``2 I^2`` float64
    #: while solving; 20 000 items: 1.5 GiB stored, 6 GiB to solve). Raise it if you have the
    #: memory.
    max_items: int = 20_000

    weights: Tensor

    def __init__(
        self, n_users: int, n_items: int, interactions: object, *, l2: float = 500.0
    ) -> None:
        self._check_size(check_positive_int("n_items", n_items))
        l2 = check_non_negative("l2", l2)
        if l2 <= 0.0:
            raise ValueError(
                f"l2 must be > 0 (X^T X + l2 I must be invertible), got {l2!r}: the paper's "
                "values are in the hundreds (500 for MovieLens-20M)"
            )
        super().__init__(n_users, n_items, interactions)
        self.l2 = l2
        self.register_buffer("weights", torch.zeros(self.n_items, self.n_items))

    @classmethod
    def _check_size(cls, n_items: int) -> None:
        limit = check_positive_int("EASE.max_items", cls.max_items)
        if n_items > limit:
            stored = n_items**2 * 4 / 2**30
            raise ValueError(
                f"EASE needs a dense n_items x n_items matrix: n_items = {n_items} would store "
                f"{stored:.1f} GiB of float32 weights and need about {4 * stored:.1f} GiB of "
                f"float64 to solve, above EASE.max_items = {limit}. Keep fewer items (drop the "
                "rarest), use ItemKNN (sparse), or raise EASE.max_items if you have the memory"
            )

    @classmethod
    def from_interactions(
        cls,
        users: object,
        items: object,
        n_users: int,
        n_items: int,
        *,
        l2: float = 500.0,
    ) -> EASE:
        """Build the model and solve for ``B`` in closed form.

        Args:
            users: ``(E,)`` user indices of the training interactions.
            items: ``(E,)`` item indices (a repeated pair is one interaction).
            n_users: ``U``; n_items: ``I``.
            l2: the L2 penalty (see the class).
        """
        cls._check_size(check_positive_int("n_items", n_items))
        matrix = interaction_csr(users, items, n_users, n_items)
        model = cls(n_users, n_items, matrix, l2=l2)
        model.weights.copy_(model._solve(matrix))
        return model

    def _solve(self, matrix: sp.csr_matrix) -> Tensor:
        """``B`` of the training matrix, computed in float64 on the CPU."""
        binary = matrix.astype(np.float64)
        gram = torch.from_numpy((binary.T @ binary).toarray())
        gram.diagonal().add_(self.l2)
        factor, info = torch.linalg.cholesky_ex(gram)
        if int(info) != 0:  # cannot happen with l2 > 0 unless l2 is tiny against rounding
            raise ValueError(
                f"X^T X + l2 I is not positive definite in float64 (l2 = {self.l2!r}): use a "
                "larger l2"
            )
        precision = torch.cholesky_inverse(factor)
        weights = precision / (-precision.diagonal()).unsqueeze(0)  # B_ij = -P_ij / P_jj
        weights.fill_diagonal_(0.0)
        return weights.float()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, l2={self.l2}"

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)``: ``sum_i X[u, i] B[i, j]`` (one gather of
        the users' training items, no ``(B, I)`` table)."""
        users, items = self._pairs(users, items)
        _, row_of, cols = self._row_entries(users)
        terms = self.weights[cols, items.long()[row_of]]
        return torch.zeros(
            users.numel(), dtype=self.weights.dtype, device=self.weights.device
        ).index_add_(0, row_of, terms)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)``: ``X[users] @ B``, a sparse (CSR) x dense product
        on the CPU and CUDA (a dense one elsewhere)."""
        users = self._users(users)
        return self._rows(users, self.weights.dtype) @ self.weights


class ItemKNN(_ItemItem):
    """Item-based k nearest neighbours with the cosine similarity shrunk towards 0.

    ``sim(i, j) = x_i . x_j / (||x_i|| ||x_j|| + shrink)`` on the binary columns ``x_i`` of the
    training matrix (0 where the denominator is 0: items without training users), never an
    item with itself. Each item ``j`` keeps its ``k`` nearest items ``N_k(j)`` (largest
    similarity; ties go to the smaller item index), and

        ``score(u, j) = sum over the user's training items i in N_k(j) of sim(i, j)``,

    i.e. ``X[u] @ W`` with ``W[i, j] = sim(i, j)`` if ``i in N_k(j)`` else 0: RecBole's ItemKNN
    and the ``ItemKNNCFRecommender`` of Dacrema et al. (RecSys 2019), which keep the top ``k``
    of each column of ``W``.

    Defaults: ``k = 100`` is RecBole's; shrinkage is 0 in RecBole and 100 in Dacrema et al.'s
    framework (searched over 0..1000 there), and ``shrink = 10`` is a small value in between
    that damps similarities resting on a handful of co-occurrences. Tune both on validation
    data.

    State: ``neighbors (I, K)`` (item indices, ascending in each row: :meth:`forward`'s sorted
    search and the CSR product rely on it) and ``similarities (I, K)`` (float32), persistent
    buffers (the checkpoint), with ``K = min(k, I - 1)``; the
    training matrix as non-persistent CSR buffers (see :mod:`recs_course.models.item_item`).
    :meth:`from_interactions` computes them in float64, :attr:`items_per_block` columns of
    ``X^T X`` at a time, with one stable sort per block (no Python loop over items or users).

    Args:
        n_users: ``U``; n_items: ``I``.
        interactions: the ``(U, I)`` training matrix (nonzero entries are interactions).
        k: neighbours kept per item (a positive integer; ``k >= I - 1`` keeps them all).
        shrink: the shrinkage term (a number >= 0).

    ``k`` and ``shrink`` are keyword-only.
    """

    #: The most entries (``I x block``) of one block of similarities computed at once
    #: (``2**24``: 128 MiB of float64).
    max_block_entries: int = 1 << 24

    neighbors: Tensor
    similarities: Tensor

    def __init__(
        self,
        n_users: int,
        n_items: int,
        interactions: object,
        *,
        k: int = 100,
        shrink: float = 10.0,
    ) -> None:
        self.k = check_positive_int("k", k)
        self.shrink = check_non_negative("shrink", shrink)
        super().__init__(n_users, n_items, interactions)
        kept = min(self.k, self.n_items - 1)
        self.register_buffer("neighbors", torch.zeros(self.n_items, kept, dtype=torch.int64))
        self.register_buffer("similarities", torch.zeros(self.n_items, kept))

    @classmethod
    def from_interactions(
        cls,
        users: object,
        items: object,
        n_users: int,
        n_items: int,
        *,
        k: int = 100,
        shrink: float = 10.0,
    ) -> ItemKNN:
        """Build the model: similarities, each item's ``k`` nearest neighbours.

        Args:
            users: ``(E,)`` user indices of the training interactions.
            items: ``(E,)`` item indices (a repeated pair is one interaction).
            n_users: ``U``; n_items: ``I``.
            k: neighbours kept per item; shrink: the shrinkage (see the class).
        """
        matrix = interaction_csr(users, items, n_users, n_items)
        model = cls(n_users, n_items, matrix, k=k, shrink=shrink)
        neighbors, similarities = model._neighbours(matrix)
        model.neighbors.copy_(neighbors)
        model.similarities.copy_(similarities)
        return model

    @property
    def n_neighbors(self) -> int:
        """``K = min(k, I - 1)``, the neighbours stored per item."""
        return self.neighbors.shape[1]

    def _neighbours(self, matrix: sp.csr_matrix) -> tuple[Tensor, Tensor]:
        """``(neighbors (I, K), similarities (I, K))`` of the training matrix, block by block."""
        n_items, kept = self.n_items, self.n_neighbors
        binary = matrix.astype(np.float64)
        by_item = binary.T.tocsr()  # (I, U)
        columns = binary.tocsc()
        norms = torch.from_numpy(np.sqrt(np.asarray(binary.sum(axis=0)).ravel()))
        step = max(1, check_positive_int("max_block_entries", self.max_block_entries) // n_items)
        neighbors, similarities = [], []
        for start in range(0, n_items, step):  # blocks of items, not one item at a time
            stop = min(start + step, n_items)
            block = torch.from_numpy((by_item @ columns[:, start:stop]).toarray()).T  # (b, I)
            denominator = norms[start:stop].unsqueeze(1) * norms.unsqueeze(0) + self.shrink
            sims = torch.where(denominator > 0, block / denominator.clamp(min=1e-300), 0.0)
            own = torch.arange(start, stop)
            sims[own - start, own] = -math.inf  # never an item's own neighbour
            # a stable sort: among equal similarities the smaller item index comes first
            order = torch.sort(sims, dim=1, descending=True, stable=True).indices[:, :kept]
            order = order.sort(dim=1).values  # ascending item indices in each row
            neighbors.append(order)
            similarities.append(sims.gather(1, order))
        return torch.cat(neighbors), torch.cat(similarities).float()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.k}, shrink={self.shrink}"

    def _weights_transposed(self) -> Tensor:
        """``W^T (I, I)``: row ``j`` holds ``sim(i, j)`` at the columns ``i in N_k(j)``; sparse CSR
        on the CPU and CUDA, dense elsewhere."""
        n, kept = self.n_items, self.n_neighbors
        device = self.neighbors.device
        if device.type not in _CSR_DEVICES:
            dense = torch.zeros(n, n, dtype=self.similarities.dtype, device=device)
            rows = torch.arange(n, device=device).repeat_interleave(kept)
            dense[rows, self.neighbors.reshape(-1)] = self.similarities.reshape(-1)
            return dense
        crow = torch.arange(n + 1, device=device) * kept
        with warnings.catch_warnings():  # "sparse CSR support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                crow,
                self.neighbors.reshape(-1),
                self.similarities.reshape(-1),
                (n, n),
                check_invariants=False,
            )

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)``: ``sum_i X[u, i] W[i, j]``, each of the
        users' training items looked up among ``N_k(j)`` by one sorted search (``W``'s entries
        ordered by ``(j, i)``), no ``(B, I)`` table."""
        users, items = self._pairs(users, items)
        _, row_of, cols = self._row_entries(users)
        n, kept = self.n_items, self.n_neighbors
        scores = torch.zeros(
            users.numel(), dtype=self.similarities.dtype, device=self.similarities.device
        )
        if kept == 0 or cols.numel() == 0:
            return scores
        columns = torch.arange(n, device=self.neighbors.device).unsqueeze(1)
        keys = (columns * n + self.neighbors).reshape(-1)  # ascending: rows j, then i
        wanted = items.long()[row_of] * n + cols
        found = torch.searchsorted(keys, wanted).clamp(max=keys.numel() - 1)
        terms = torch.where(
            keys[found] == wanted,
            self.similarities.reshape(-1)[found],
            torch.zeros((), dtype=scores.dtype, device=scores.device),
        )
        return scores.index_add_(0, row_of, terms)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)``: ``X[users] @ W``, computed as ``(W^T X[users]^T)^T``
        with ``W^T`` sparse (``I x K`` entries) on the CPU and CUDA."""
        users = self._users(users)
        dtype = self.similarities.dtype
        weights_t = self._weights_transposed()
        rows = self._rows(users, dtype)
        if rows.layout != torch.strided:
            rows = rows.to_dense()
        return (weights_t @ rows.T).T.contiguous()
