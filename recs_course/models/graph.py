"""Graph models on the user-item bipartite graph: the normalised adjacency, NGCF and LightGCN.

Nodes ``0 .. U-1`` are the users and ``U .. U+I-1`` the items; ``N = U + I``. The adjacency
is a sparse ``(N, N)`` COO tensor registered as a (non-persistent) buffer, so it follows
``.to(device)`` but is not written into checkpoints: rebuild a model from the same training
interactions before loading its weights. A symmetric adjacency is also kept in CSR form (three
more non-persistent buffers), the format the propagation multiplies with.

Sparse indices are always sorted here, row-major, before a tensor is declared coalesced: the
order of another library is not trusted (scipy 1.10's ``sum_duplicates`` sorts column-first).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import (
    Recommender,
    check_layers,
    check_non_negative,
    check_positive_int,
    check_probability,
    check_real_dtype,
)
from .baselines import as_index_tensor

__all__ = ["normalized_adjacency", "laplacian", "NGCF", "LightGCN"]


def _bipartite_scipy(users: object, items: object, n_users: int, n_items: int) -> sp.csr_matrix:
    """The symmetric 0/1 adjacency ``[[0, R], [R^T, 0]]`` as a scipy CSR matrix."""
    n_users = check_positive_int("n_users", n_users)
    n_items = check_positive_int("n_items", n_items)
    u = as_index_tensor("users", users, n_users).numpy()
    i = as_index_tensor("items", items, n_items).numpy()
    if u.shape != i.shape:
        raise ValueError(f"users and items must have the same length, got {u.size} and {i.size}")
    ones = np.ones(u.size, dtype=np.float32)
    interactions = sp.csr_matrix((ones, (u, i)), shape=(n_users, n_items))
    interactions.data[:] = 1.0  # repeated (user, item) pairs are one edge, not a weight
    return sp.bmat([[None, interactions], [interactions.T, None]], format="csr", dtype=np.float32)


def _scipy_to_torch(matrix: sp.spmatrix) -> Tensor:
    """A scipy sparse matrix as a coalesced float32 COO tensor (indices sorted row-major here)."""
    coo = sp.coo_matrix(matrix)
    coo.sum_duplicates()  # unique (row, col) pairs, in an order that depends on scipy's version
    order = np.lexsort((coo.col, coo.row))  # row-major: what torch means by coalesced
    indices = torch.from_numpy(np.vstack([coo.row[order], coo.col[order]]).astype(np.int64))
    values = torch.from_numpy(coo.data[order].astype(np.float32))
    return torch.sparse_coo_tensor(
        indices, values, coo.shape, is_coalesced=True, check_invariants=False
    )


def normalized_adjacency(
    users: object,
    items: object,
    n_users: int,
    n_items: int,
    self_loops: bool = False,
) -> Tensor:
    """The symmetrically normalised adjacency of the user-item graph.

    ``A = [[0, R], [R^T, 0]]`` with ``R (U, I)`` the 0/1 interaction matrix (a repeated pair is
    one edge), ``D`` its degree matrix, and the result ``D^-1/2 A D^-1/2``: entry ``(u, i)`` is
    ``1 / sqrt(|N_u| |N_i|)``. Nodes without edges get zero rows and columns (not NaN). With
    ``self_loops=True`` the identity is added before normalising (``D~^-1/2 (A + I) D~^-1/2``,
    Kipf & Welling 2017). NGCF's graph Laplacian ``L`` and LightGCN's propagation matrix are this
    matrix without self-loops (Wang et al. 2019 eq. 8; He et al. 2020 eq. 7).

    Args:
        users: ``(E,)`` user indices of the training interactions.
        items: ``(E,)`` item indices.
        n_users: ``U``; n_items: ``I``.
        self_loops: add ``I`` before normalising.

    Returns:
        A coalesced sparse COO ``float32`` tensor of shape ``(U + I, U + I)`` on the CPU.
    """
    adjacency = _bipartite_scipy(users, items, n_users, n_items)
    if self_loops:
        adjacency = adjacency + sp.identity(adjacency.shape[0], dtype=np.float32, format="csr")
    degree = np.asarray(adjacency.sum(axis=1), dtype=np.float64).ravel()
    inv_sqrt = np.zeros_like(degree)
    np.power(degree, -0.5, out=inv_sqrt, where=degree > 0)
    scaling = sp.diags(inv_sqrt)
    return _scipy_to_torch(scaling @ adjacency @ scaling)


def laplacian(
    users: object,
    items: object,
    n_users: int,
    n_items: int,
    self_loops: bool = False,
) -> Tensor:
    """The normalised graph Laplacian ``I - D^-1/2 A D^-1/2`` (sparse COO ``(N, N)``).

    Same arguments as :func:`normalized_adjacency`. Its eigenvalues lie in ``[0, 2]``; NGCF's
    papers call ``D^-1/2 A D^-1/2`` itself "the Laplacian matrix".
    """
    adjacency = normalized_adjacency(users, items, n_users, n_items, self_loops=self_loops)
    size = adjacency.shape[0]
    eye = torch.sparse_coo_tensor(
        torch.arange(size).repeat(2, 1), torch.ones(size), (size, size), check_invariants=False
    )
    return (eye - adjacency).coalesce()


def _as_adjacency(adjacency: object, n_nodes: int) -> Tensor:
    """Check and convert a torch-sparse, scipy-sparse or dense ``(N, N)`` matrix to float32 COO."""
    if sp.issparse(adjacency):
        check_real_dtype("adjacency", adjacency.dtype)
        tensor = _scipy_to_torch(adjacency)
    elif isinstance(adjacency, Tensor):
        check_real_dtype("adjacency", adjacency.dtype)
        tensor = adjacency.detach()
        if tensor.layout != torch.sparse_coo:
            tensor = (
                tensor.to_sparse_coo() if tensor.layout != torch.strided else tensor.to_sparse()
            )
        # A fresh tensor so coalesce() really sorts: one built with is_coalesced=True may lie.
        tensor = torch.sparse_coo_tensor(
            tensor._indices(), tensor._values(), tensor.shape, check_invariants=False
        )
        tensor = tensor.coalesce().to(torch.float32)
    else:
        raise ValueError(
            "adjacency must be a torch sparse tensor or a scipy sparse matrix of shape "
            f"(n_users + n_items, n_users + n_items); got {type(adjacency).__name__}. Build it "
            "with normalized_adjacency(users, items, n_users, n_items)."
        )
    if tuple(tensor.shape) != (n_nodes, n_nodes):
        raise ValueError(
            f"adjacency has shape {tuple(tensor.shape)} but n_users + n_items = {n_nodes}: pass "
            "the (U + I, U + I) matrix from normalized_adjacency, not the (U, I) rating matrix"
        )
    # Once per build (one synchronisation on an accelerator), never per forward.
    finite = torch.isfinite(tensor._values())
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(
            f"adjacency holds {bad} NaN or infinite value(s) (or values too large for float32): "
            "build it with normalized_adjacency(users, items, n_users, n_items)"
        )
    return tensor


def _drop_edges(adjacency: Tensor, p: float) -> Tensor:
    """Keep each stored entry with probability ``1 - p`` and rescale kept ones by ``1/(1-p)``."""
    keep = torch.rand(adjacency.values().shape, device=adjacency.device) >= p
    return torch.sparse_coo_tensor(
        adjacency.indices()[:, keep],
        adjacency.values()[keep] / (1.0 - p),
        adjacency.shape,
        is_coalesced=True,
        check_invariants=False,
    )


def _is_symmetric(matrix: Tensor) -> bool:
    """Whether a coalesced sparse COO matrix equals its transpose (checked once, at build time)."""
    transpose = matrix.t().coalesce()
    return bool(
        torch.equal(matrix.indices(), transpose.indices())
        and torch.equal(matrix.values(), transpose.values())
    )


def _csr_parts(adjacency: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(crow_indices, col_indices, values)`` of a coalesced COO matrix in CSR form."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        csr = adjacency.to_sparse_csr()
    return csr.crow_indices(), csr.col_indices(), csr.values()


class _SymmetricSparseMM(torch.autograd.Function):
    """``A @ X`` for a symmetric sparse CSR ``A``; the gradient is ``A @ dX``.

    ``torch.sparse.mm`` on a COO matrix transposes and re-sorts it in every backward pass; for
    the symmetric normalised adjacency ``A^T = A``, so one CSR copy (kept by the model) serves
    both directions, several times faster on the CPU.
    """

    @staticmethod
    def forward(ctx, csr: Tensor, dense: Tensor) -> Tensor:  # type: ignore[override]
        ctx.csr = csr
        return csr @ dense

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, ctx.csr @ grad


class GraphRecommender(Recommender):
    """Shared machinery of the graph models: ego embeddings, propagation, pair scoring.

    Subclasses implement :meth:`propagate`. Scores are inner products of the propagated
    embeddings, so :meth:`score_all` and :meth:`pair_scores` propagate once per call.
    """

    adjacency: Tensor
    csr_crow_indices: Tensor | None
    csr_col_indices: Tensor | None
    csr_values: Tensor | None

    def __init__(self, n_users: int, n_items: int, adjacency: object, dim: int, reg: float):
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.reg = check_non_negative("reg", reg)
        for name in ("csr_crow_indices", "csr_col_indices", "csr_values"):
            self.register_buffer(name, None, persistent=False)
        self.register_buffer(
            "adjacency", _as_adjacency(adjacency, self.n_users + self.n_items), persistent=False
        )
        self._derive_from_adjacency()
        self.user_embedding = nn.Embedding(self.n_users, self.dim)
        self.item_embedding = nn.Embedding(self.n_items, self.dim)

    @classmethod
    def from_interactions(
        cls, users: object, items: object, n_users: int, n_items: int, **kwargs: object
    ):
        """Build the model on ``normalized_adjacency(users, items, n_users, n_items)``."""
        adjacency = normalized_adjacency(users, items, n_users, n_items)
        return cls(n_users, n_items, adjacency, **kwargs)

    def _derive_from_adjacency(self) -> None:
        """Symmetry flag and CSR copy of :attr:`adjacency`, made once per graph."""
        self._symmetric = _is_symmetric(self.adjacency)
        parts = _csr_parts(self.adjacency) if self._symmetric else (None, None, None)
        self.csr_crow_indices, self.csr_col_indices, self.csr_values = parts

    def __setattr__(self, name: str, value: object) -> None:
        if name == "adjacency" and "adjacency" in self.__dict__.get("_buffers", {}):
            # a new graph: check it, and re-derive what was computed from the old one
            old = self._buffers["adjacency"]
            value = _as_adjacency(value, self.n_users + self.n_items).to(old.device, old.dtype)
            super().__setattr__(name, value)
            self._derive_from_adjacency()
            return
        super().__setattr__(name, value)

    def spmm(self, adjacency: Tensor, dense: Tensor) -> Tensor:
        """``adjacency @ dense`` (``(N, N)`` sparse times ``(N, D)``), differentiable in ``dense``.

        Uses the kept CSR copy, with ``A`` itself as the transpose, when the model's adjacency
        is symmetric (as :func:`normalized_adjacency` is) and ``adjacency`` is that buffer, on
        the CPU or CUDA; otherwise ``torch.sparse.mm``.
        """
        values = self.csr_values
        if (
            self._symmetric
            and values is not None
            and adjacency is self.adjacency
            and dense.device.type in ("cpu", "cuda")
            and dense.dtype == values.dtype
            and dense.device == values.device
        ):
            with warnings.catch_warnings():  # "sparse CSR support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                csr = torch.sparse_csr_tensor(
                    self.csr_crow_indices,
                    self.csr_col_indices,
                    values,
                    adjacency.shape,
                    check_invariants=False,
                )
            return _SymmetricSparseMM.apply(csr, dense)
        return torch.sparse.mm(adjacency, dense)

    def ego_embeddings(self) -> Tensor:
        """Layer-0 embeddings of all nodes, users first: ``(N, dim)``."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final embeddings of all users ``(U, D)`` and all items ``(I, D)``."""
        raise NotImplementedError

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` logits (propagates the whole graph)."""
        users, items = self._pairs(users, items)
        user_emb, item_emb = self.propagate()
        return (user_emb[users] * item_emb[items]).sum(-1)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` logits: one propagation and one matrix product.

        For many batches of users, call :meth:`propagate` once and multiply yourself.
        """
        users = self._users(users)
        user_emb, item_emb = self.propagate()
        return user_emb[users] @ item_emb.T

    def pair_scores(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        """``(pos_scores (B,), neg_scores)`` from one propagation; ``neg`` is ``(B,)``/``(B, K)``."""
        users, pos, neg = self._pair_args(users, pos, neg)
        user_emb, item_emb = self.propagate()
        u = user_emb[users]
        pos_scores = (u * item_emb[pos]).sum(-1)
        if neg.dim() == 2:
            neg_scores = (u.unsqueeze(-2) * item_emb[neg]).sum(-1)
        else:
            neg_scores = (u * item_emb[neg]).sum(-1)
        return pos_scores, neg_scores

    def regularization(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """``reg * (|e_u|^2 + |e_pos|^2 + |e_neg|^2) / 2 / B`` on the batch's ego embeddings."""
        users, pos, neg = self._pair_args(users, pos, neg)
        squares = (
            self.user_embedding(users).pow(2).sum()
            + self.item_embedding(pos).pow(2).sum()
            + self.item_embedding(neg).pow(2).sum()
        )
        return self.reg * squares / 2.0 / max(users.numel(), 1)


class NGCF(GraphRecommender):
    """Neural graph collaborative filtering (Wang, He, Wang, Feng & Chua, SIGIR 2019).

    With ``L`` the normalised adjacency (:func:`normalized_adjacency`) and ``E^0`` the ego
    embeddings, each layer ``k`` computes

    ``E^{k+1} = LeakyReLU((L + I) E^k W1_k + (L E^k * E^k) W2_k)`` (eq. 7, with biases),

    then message dropout; the layer's output is L2-normalised per node before it joins the final
    embedding ``[E^0 ; E^1 ; ... ; E^K]`` (size ``dim + sum(layers)``), while the un-normalised
    ``E^{k+1}`` feeds the next layer, as in the authors' code. The score is the inner product.

    Node dropout, in training mode only, drops each stored entry of ``L`` with probability
    ``node_dropout`` and rescales the rest by ``1 / (1 - node_dropout)`` (the authors' code drops
    edges, not whole nodes); the same dropped ``L`` serves both terms. The LeakyReLU slope is
    0.2 (TensorFlow's default in the authors' code).

    Args:
        n_users: ``U``; n_items: ``I``.
        adjacency: ``(U + I, U + I)`` sparse normalised adjacency (torch or scipy).
        dim: size of the ego embeddings.
        layers: output size of each propagation layer.
        node_dropout: probability of dropping an entry of ``L`` in training.
        message_dropout: dropout on each layer's output in training.
        reg: weight of :meth:`regularization`.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adjacency: object,
        dim: int = 64,
        layers: Sequence[int] = (64, 64, 64),
        node_dropout: float = 0.1,
        message_dropout: float = 0.1,
        reg: float = 1e-5,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__(n_users, n_items, adjacency, dim, reg)
        self.layers = check_layers("layers", layers)
        self.node_dropout = check_probability("node_dropout", node_dropout)
        self.message_dropout = check_probability("message_dropout", message_dropout)
        self.negative_slope = check_non_negative("negative_slope", negative_slope)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        sizes = (self.dim, *self.layers)
        self.sum_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.product_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        for layer in [*self.sum_layers, *self.product_layers]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.dropout = nn.Dropout(self.message_dropout)

    @property
    def out_dim(self) -> int:
        """Size of the final embeddings: ``dim + sum(layers)``."""
        return self.dim + sum(self.layers)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, layers={self.layers}"

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final embeddings: users ``(U, dim + sum(layers))``, items ``(I, dim + sum(layers))``."""
        adjacency = self.adjacency
        if self.training and self.node_dropout > 0:
            adjacency = _drop_edges(adjacency, self.node_dropout)
        ego = self.ego_embeddings()
        outputs = [ego]
        for sum_layer, product_layer in zip(self.sum_layers, self.product_layers, strict=True):
            side = self.spmm(adjacency, ego)  # L E
            ego = F.leaky_relu(
                sum_layer(side + ego) + product_layer(side * ego), self.negative_slope
            )
            ego = self.dropout(ego)
            outputs.append(F.normalize(ego, p=2, dim=1))
        final = torch.cat(outputs, dim=1)
        return final[: self.n_users], final[self.n_users :]


class LightGCN(GraphRecommender):
    """LightGCN (He, Deng, Wang, Li, Zhang & Wang, SIGIR 2020).

    ``E^{k+1} = A E^k`` with ``A`` the normalised adjacency, no weights and no non-linearity;
    the final embedding is the mean ``(E^0 + ... + E^K) / (K + 1)`` and the score the inner
    product. Ego embeddings start normal with standard deviation 0.1, as in the authors' code.

    Args:
        n_users: ``U``; n_items: ``I``.
        adjacency: ``(U + I, U + I)`` sparse normalised adjacency (torch or scipy).
        dim: embedding size.
        n_layers: number of propagation steps ``K`` (0 gives plain MF).
        reg: weight of :meth:`regularization` (the paper's ``lambda``, 1e-4).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adjacency: object,
        dim: int = 64,
        n_layers: int = 3,
        reg: float = 1e-4,
    ) -> None:
        super().__init__(n_users, n_items, adjacency, dim, reg)
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 0:
            raise ValueError(f"n_layers must be an integer >= 0, got {n_layers!r}")
        self.n_layers = n_layers
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, n_layers={self.n_layers}"

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final embeddings: users ``(U, dim)``, items ``(I, dim)``."""
        layer = self.ego_embeddings()
        total = layer
        for _ in range(self.n_layers):
            layer = self.spmm(self.adjacency, layer)
            total = total + layer
        final = total / (self.n_layers + 1)
        return final[: self.n_users], final[self.n_users :]
