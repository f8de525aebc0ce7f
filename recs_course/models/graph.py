"""Graph models on the user-item bipartite graph: the normalised adjacency, NGCF and LightGCN.

Nodes ``0 .. U-1`` are the users and ``U .. U+I-1`` the items; ``N = U + I``. A model keeps
its sparse ``(N, N)`` adjacency in non-persistent buffers, so it follows ``.to(device)`` but is
not written into checkpoints: rebuild a model from the same training interactions
(``from_interactions``) before loading its weights. It is kept in one format, the one the
propagation multiplies with on the model's device: CSR (``int32`` indices) for a symmetric graph
on the CPU or CUDA, COO otherwise (see :class:`GraphRecommender`).

Sparse indices are always sorted here, row-major, before a tensor is declared coalesced: the
order of another library is not trusted (scipy 1.10's ``sum_duplicates`` sorts column-first).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._interactions import interaction_csr
from .base import (
    Recommender,
    check_layers,
    check_non_negative,
    check_non_negative_int,
    check_positive_int,
    check_probability,
    check_real_dtype,
    renamed_arguments,
)

__all__ = ["normalized_adjacency", "laplacian", "NGCF", "LightGCN"]


def _bipartite_scipy(users: object, items: object, n_users: int, n_items: int) -> sp.csr_matrix:
    """The symmetric 0/1 adjacency ``[[0, R], [R^T, 0]]`` as a scipy CSR matrix."""
    interactions = interaction_csr(users, items, n_users, n_items)
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


def normalized_adjacency(users: object, items: object, n_users: int, n_items: int) -> Tensor:
    """The symmetrically normalised adjacency of the user-item graph.

    ``A = [[0, R], [R^T, 0]]`` with ``R (U, I)`` the 0/1 interaction matrix (a repeated pair is
    one edge), ``D`` its degree matrix, and the result ``D^-1/2 A D^-1/2``: entry ``(u, i)`` is
    ``1 / sqrt(|N_u| |N_i|)``. Nodes without edges get zero rows and columns (not NaN). NGCF's
    graph Laplacian ``L`` and LightGCN's propagation matrix are this matrix, without self-loops
    (Wang et al. 2019 eq. 8; He et al. 2020 eq. 7).

    Args:
        users: ``(E,)`` user indices of the training interactions.
        items: ``(E,)`` item indices.
        n_users: ``U``; n_items: ``I``.

    Returns:
        A coalesced sparse COO ``float32`` tensor of shape ``(U + I, U + I)`` on the CPU.
    """
    adjacency = _bipartite_scipy(users, items, n_users, n_items)
    degree = np.asarray(adjacency.sum(axis=1), dtype=np.float64).ravel()
    inv_sqrt = np.zeros_like(degree)
    np.power(degree, -0.5, out=inv_sqrt, where=degree > 0)
    scaling = sp.diags(inv_sqrt)
    return _scipy_to_torch(scaling @ adjacency @ scaling)


def laplacian(users: object, items: object, n_users: int, n_items: int) -> Tensor:
    """The normalised graph Laplacian ``I - D^-1/2 A D^-1/2`` (sparse COO ``(N, N)``).

    Same arguments as :func:`normalized_adjacency`. Its eigenvalues lie in ``[0, 2]``; NGCF's
    papers call ``D^-1/2 A D^-1/2`` itself "the Laplacian matrix".
    """
    adjacency = normalized_adjacency(users, items, n_users, n_items)
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


def _drop_values(values: Tensor, p: float) -> Tensor:
    """:func:`_drop_edges` on the stored values of a CSR matrix: the same draws (one uniform per
    stored entry, in row-major order), dropped entries kept as explicit zeros (same structure)."""
    keep = torch.rand(values.shape, device=values.device) >= p
    return torch.where(
        keep, values / (1.0 - p), torch.zeros((), dtype=values.dtype, device=values.device)
    )


def _is_symmetric(matrix: Tensor) -> bool:
    """Whether a coalesced sparse COO matrix equals its transpose (checked once, at build time)."""
    transpose = matrix.t().coalesce()
    return bool(
        torch.equal(matrix.indices(), transpose.indices())
        and torch.equal(matrix.values(), transpose.values())
    )


_INT32_MAX = 2**31 - 1


def _csr_parts(adjacency: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(crow_indices, col_indices, values)`` of a coalesced COO matrix in CSR form.

    The indices are ``int32`` when they fit (always, for graphs of encoded ids with fewer than
    ``2**31`` edges): the CPU kernel (MKL's LP64 interface) takes ``int32`` and would convert
    ``int64`` indices on every product; cuSPARSE takes both.
    """
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        csr = adjacency.to_sparse_csr()
    crow, col = csr.crow_indices(), csr.col_indices()
    if adjacency._nnz() <= _INT32_MAX and adjacency.shape[0] <= _INT32_MAX:
        crow, col = crow.to(torch.int32), col.to(torch.int32)
    return crow, col, csr.values()


def _csr_to_coo(crow: Tensor, col: Tensor, values: Tensor) -> Tensor:
    """The coalesced COO form of square CSR parts (elementwise ops only: works on any device)."""
    n = crow.numel() - 1
    counts = (crow[1:] - crow[:-1]).long()
    rows = torch.repeat_interleave(
        torch.arange(n, device=crow.device), counts, output_size=col.numel()
    )  # output_size: no device synchronisation
    indices = torch.stack([rows, col.long()])
    return torch.sparse_coo_tensor(
        indices, values, (n, n), is_coalesced=True, check_invariants=False
    )


def _csr_matrix(crow: Tensor, col: Tensor, values: Tensor) -> Tensor:
    n = crow.numel() - 1
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


def _autocast_off(device_type: str):
    """A block without autocast on ``device_type`` when it is on, else a no-op block."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        enabled = (
            torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()
        )
    except RuntimeError:  # a device type autocast does not know
        enabled = False
    return torch.autocast(device_type, enabled=False) if enabled else contextlib.nullcontext()


class _SymmetricSparseMM(torch.autograd.Function):
    """``A @ X`` for a CSR matrix ``A`` whose sparsity pattern is symmetric; the gradient is
    ``A^T @ dX``.

    ``A^T`` has the same CSR structure as ``A``; its values are ``A``'s permuted by
    ``transpose`` (the position of each entry's mirror image), or ``A``'s own values when
    ``transpose`` is ``None`` (``A^T = A``: the normalised adjacency). ``torch.sparse.mm`` on a
    COO matrix instead transposes and re-sorts it in every backward pass, several times slower
    on the CPU.
    """

    @staticmethod
    def forward(ctx, crow, col, values, transpose, dense):  # type: ignore[override]
        ctx.save_for_backward(crow, col, values, transpose)
        return _csr_matrix(crow, col, values) @ dense

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        crow, col, values, transpose = ctx.saved_tensors
        if transpose is not None:
            values = values[transpose]
        with _autocast_off(grad.device.type):
            return None, None, None, None, _csr_matrix(crow, col, values) @ grad


#: Devices whose sparse CSR product the graph models use (elsewhere, e.g. MPS: COO).
_CSR_DEVICES = ("cpu", "cuda")


class GraphRecommender(Recommender):
    """Shared machinery of the graph models: ego embeddings, propagation, pair scoring.

    Subclasses implement :meth:`propagate`. Scores are inner products of the propagated
    embeddings: :meth:`forward`, :meth:`score_all` and :meth:`pair_scores` propagate once per
    call, and once per :meth:`scoring_pass` (an evaluation) whatever the number of calls.

    The adjacency is kept in one format, the one its product uses, as non-persistent buffers
    (they follow ``.to(device)`` / ``.double()`` and stay out of ``state_dict``): a symmetric
    graph (as :func:`normalized_adjacency` builds) on the CPU or CUDA as CSR parts
    (``csr_crow_indices``, ``csr_col_indices`` in ``int32``, ``csr_values``), made once per graph
    and never converted per product; an asymmetric graph, or any graph on another device (MPS),
    as a coalesced COO tensor (``adjacency_coo``). :attr:`adjacency` reads it as COO whatever
    the storage; assigning ``model.adjacency = ...`` checks and stores a new graph.
    """

    adjacency_coo: Tensor | None
    csr_crow_indices: Tensor | None
    csr_col_indices: Tensor | None
    csr_values: Tensor | None
    csr_transpose: Tensor | None

    def __init__(
        self, n_users: int, n_items: int, adjacency: object, dim: int, *, reg: float
    ) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.reg = check_non_negative("reg", reg)
        for name in (
            "adjacency_coo",
            "csr_crow_indices",
            "csr_col_indices",
            "csr_values",
            "csr_transpose",
        ):
            self.register_buffer(name, None, persistent=False)
        self._store_adjacency(_as_adjacency(adjacency, self.n_users + self.n_items))
        self.user_embedding = nn.Embedding(self.n_users, self.dim)
        self.item_embedding = nn.Embedding(self.n_items, self.dim)

    @classmethod
    def from_interactions(
        cls, users: object, items: object, n_users: int, n_items: int, **kwargs: object
    ):
        """Build the model on ``normalized_adjacency(users, items, n_users, n_items)``.

        Args:
            users: ``(E,)`` user indices of the training interactions.
            items: ``(E,)`` item indices (a repeated pair is one edge).
            n_users: ``U``; n_items: ``I``.
            **kwargs: the model's other arguments (``dim``, ``reg``, ...).
        """
        adjacency = normalized_adjacency(users, items, n_users, n_items)
        return cls(n_users, n_items, adjacency, **kwargs)

    # -- the adjacency, in the format its product uses -------------------------------------------
    @property
    def adjacency(self) -> Tensor:
        """The ``(N, N)`` adjacency as a coalesced sparse COO tensor, on the model's device.

        A view of the stored format: the COO buffer itself, or a COO tensor made from the CSR
        parts on each access (for reading; the propagation uses the CSR parts directly).
        """
        if self.adjacency_coo is not None:
            return self.adjacency_coo
        return _csr_to_coo(self.csr_crow_indices, self.csr_col_indices, self.csr_values)

    @adjacency.setter
    def adjacency(self, value: object) -> None:
        """A new graph: checked like the constructor's, on the old one's device and dtype."""
        old = self.csr_values if self.csr_values is not None else self.adjacency_coo
        tensor = _as_adjacency(value, self.n_users + self.n_items)
        self._store_adjacency(tensor.to(old.device, old.dtype))

    def _store_adjacency(self, coo: Tensor) -> None:
        """Keep a checked, coalesced COO adjacency in the format its device's product uses."""
        self._symmetric = _is_symmetric(coo)
        self.adjacency_coo, self.csr_transpose = coo, None
        self.csr_crow_indices = self.csr_col_indices = self.csr_values = None
        self._settle_format()
        self.__dict__.pop("_pass_values", None)  # a new graph: nothing shared survives

    def _settle_format(self) -> None:
        """CSR for a symmetric graph on the CPU or CUDA, else COO; the other format dropped."""
        stored = self.csr_values if self.csr_values is not None else self.adjacency_coo
        wants_csr = self._symmetric and stored.device.type in _CSR_DEVICES
        if wants_csr and self.csr_values is None:
            parts = _csr_parts(self.adjacency_coo)
            self.csr_crow_indices, self.csr_col_indices, self.csr_values = parts
            self.adjacency_coo = None
        elif not wants_csr and self.csr_values is not None:
            self.adjacency_coo = self.adjacency
            self.csr_crow_indices = self.csr_col_indices = self.csr_values = None
            self.csr_transpose = None

    def _apply(self, fn, *args, **kwargs):
        # .to(device), .double(), ...: the buffers follow, then the format follows the device
        result = super()._apply(fn, *args, **kwargs)
        self._settle_format()
        return result

    def _csr_transpose_order(self) -> Tensor:
        """Position of each stored entry's mirror image, for the transpose of a CSR matrix with
        this graph's (symmetric) pattern and other values: made at the first node dropout."""
        if self.csr_transpose is None:
            crow, col = self.csr_crow_indices, self.csr_col_indices.long()
            n = crow.numel() - 1
            counts = (crow[1:] - crow[:-1]).long()
            rows = torch.repeat_interleave(
                torch.arange(n, device=col.device), counts, output_size=col.numel()
            )
            self.csr_transpose = torch.argsort(col * n + rows)  # row-major order of (col, row)
        return self.csr_transpose

    def _operator(self, node_dropout: float = 0.0) -> Callable[[Tensor], Tensor]:
        """``dense -> A @ dense`` with the model's adjacency ``A``, differentiable in ``dense``.

        With ``node_dropout = p > 0`` each stored entry of ``A`` is dropped with probability
        ``p`` and the others rescaled by ``1 / (1 - p)``, once for every product of the returned
        function (one propagation).

        The product runs in the adjacency's dtype (float32, or float64 after ``.double()``):
        a float16/bfloat16 ``dense`` (under ``torch.autocast``) is cast up and the result is
        float32, as autocast does for sums. Autocast is off inside: it would cast the sparse
        matrix to half precision, for which the CPU kernel does not exist and whose sums over
        thousands of neighbours would lose digits.
        """
        if self.csr_values is not None:  # symmetric, CPU or CUDA: the kept CSR parts
            crow, col, values = self.csr_crow_indices, self.csr_col_indices, self.csr_values
            transpose = None
            if node_dropout > 0:
                values = _drop_values(values, node_dropout)
                transpose = self._csr_transpose_order()  # A dropped is no longer symmetric

            def product(dense: Tensor) -> Tensor:
                dtype = torch.promote_types(dense.dtype, values.dtype)
                with _autocast_off(dense.device.type):
                    return _SymmetricSparseMM.apply(
                        crow, col, values.to(dtype), transpose, dense.to(dtype)
                    )

            return product
        matrix = self.adjacency_coo
        if node_dropout > 0:
            matrix = _drop_edges(matrix, node_dropout)

        def coo_product(dense: Tensor) -> Tensor:
            dtype = torch.promote_types(dense.dtype, matrix.dtype)
            with _autocast_off(dense.device.type):
                return torch.sparse.mm(matrix.to(dtype), dense.to(dtype))

        return coo_product

    def spmm(self, dense: Tensor) -> Tensor:
        """``A @ dense`` with the model's adjacency ``A``: ``(N, N)`` times ``(N, D)``.

        Differentiable in ``dense``. A symmetric graph on the CPU or CUDA multiplies its kept
        CSR parts (``A`` serves as its own transpose in the backward pass), anything else uses
        ``torch.sparse.mm`` on the COO tensor. The product runs in the adjacency's dtype,
        float32 by default, also under ``torch.autocast``: half-precision input is cast up and
        the result is float32 (see :meth:`_operator`).
        """
        return self._operator()(dense)

    # -- scores ------------------------------------------------------------------------------
    def ego_embeddings(self) -> Tensor:
        """Layer-0 embeddings of all nodes, users first: ``(N, dim)``."""
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final embeddings of all users ``(U, D)`` and all items ``(I, D)``."""
        raise NotImplementedError

    def scoring_pass(self) -> contextlib.AbstractContextManager[None]:
        """A block (``with model.scoring_pass():``) in which the graph is propagated once.

        The first score inside (``forward``, ``score_all`` or ``pair_scores``) propagates; every
        later one in the block reuses the propagation, as long as the model is in eval mode,
        autograd is off and the weights stay the same (what the evaluators of
        :mod:`recs_course.evaluation` do: one propagation per evaluation, at any batch size).
        The propagation is dropped on exit. Outside the block (training) every call propagates.
        """
        return self._sharing_pass()

    def _propagated(self) -> tuple[Tensor, Tensor]:
        """:meth:`propagate`, once per scoring pass (see :meth:`scoring_pass`)."""
        return self._pass_value("propagation", self.propagate)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` logits (propagates the whole graph)."""
        users, items = self._pairs(users, items)
        user_emb, item_emb = self._propagated()
        return (user_emb[users] * item_emb[items]).sum(-1)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` logits: one propagation and one matrix product.

        Inside :meth:`scoring_pass`, one propagation serves every call.
        """
        users = self._users(users)
        user_emb, item_emb = self._propagated()
        return user_emb[users] @ item_emb.T

    def pair_scores(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        """``(pos_scores (B,), neg_scores)`` from one propagation; ``neg`` is ``(B,)``/``(B, K)``."""
        users, pos, neg = self._pair_args(users, pos, neg)
        user_emb, item_emb = self._propagated()
        u = user_emb[users]
        pos_scores = (u * item_emb[pos]).sum(-1)
        if neg.dim() == 2:
            neg_scores = (u.unsqueeze(-2) * item_emb[neg]).sum(-1)
        else:
            neg_scores = (u * item_emb[neg]).sum(-1)
        return pos_scores, neg_scores

    def regularization(self, users: Tensor, *items: Tensor) -> Tensor:
        """``reg * (sum |e_u|^2 + sum |e_i|^2) / 2 / B`` on the batch's ego embeddings.

        Args:
            users: ``(B,)``.
            *items: each ``(B,)`` or ``(B, K)``: ``(items,)`` from the pointwise losses,
                ``(pos, neg)`` from BPR; every index counts once per occurrence.
        """
        users, items = self._item_args(users, items)
        squares = self.user_embedding(users).pow(2).sum()
        for array in items:
            squares = squares + self.item_embedding(array).pow(2).sum()
        return self.reg * squares / 2.0 / max(users.numel(), 1)


class NGCF(GraphRecommender):
    """Neural graph collaborative filtering (Wang, He, Wang, Feng & Chua, SIGIR 2019).

    With ``L`` the normalised adjacency (:func:`normalized_adjacency`) and ``E^0`` the ego
    embeddings, each layer ``k`` computes

    ``E^{k+1} = LeakyReLU((L + I) E^k W1_k + (L E^k * E^k) W2_k)`` (eq. 7, with biases),

    then message dropout; the layer's output is L2-normalised per node before it joins the final
    embedding ``[E^0 ; E^1 ; ... ; E^K]`` (size ``dim + sum(layer_dims)``), while the
    un-normalised ``E^{k+1}`` feeds the next layer, as in the authors' code. The score is the
    inner product.

    Node dropout, in training mode only, drops each stored entry of ``L`` with probability
    ``node_dropout`` and rescales the rest by ``1 / (1 - node_dropout)`` (the authors' code drops
    edges, not whole nodes); the same dropped ``L`` serves both terms and every layer. The
    LeakyReLU's slope is :attr:`NEGATIVE_SLOPE` (0.2, TensorFlow's default in the authors' code).

    Under ``torch.autocast`` the products with ``L`` run in float32 (see
    :meth:`GraphRecommender.spmm`), the linear layers in the autocast dtype.

    Args:
        n_users: ``U``; n_items: ``I``.
        adjacency: ``(U + I, U + I)`` sparse normalised adjacency (torch or scipy).
        dim: size of the ego embeddings.
        layer_dims: output size of each propagation layer (their number is the depth ``K``).
            Formerly ``layers``, a name that in this package means an MLP tower
            (:class:`~recs_course.models.NCFMLP`).
        node_dropout: probability of dropping an entry of ``L`` in training.
        message_dropout: dropout on each layer's output in training.
        reg: weight of :meth:`regularization`.

    The options after ``dim`` are keyword-only.
    """

    #: The slope of the LeakyReLU for negative inputs (Wang et al. 2019; TensorFlow's default
    #: in the authors' code).
    NEGATIVE_SLOPE = 0.2

    @renamed_arguments(
        layers="NGCF's propagation output sizes are now called layer_dims (in recs_course, "
        "`layers` is an MLP tower, as in NCFMLP and NeuMF)"
    )
    def __init__(
        self,
        n_users: int,
        n_items: int,
        adjacency: object,
        dim: int = 64,
        *,
        layer_dims: Sequence[int] = (64, 64, 64),
        node_dropout: float = 0.1,
        message_dropout: float = 0.1,
        reg: float = 1e-5,
    ) -> None:
        super().__init__(n_users, n_items, adjacency, dim, reg=reg)
        self.layer_dims = check_layers("layer_dims", layer_dims)
        self.node_dropout = check_probability("node_dropout", node_dropout)
        self.message_dropout = check_probability("message_dropout", message_dropout)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        sizes = (self.dim, *self.layer_dims)
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
        """Size of the final embeddings: ``dim + sum(layer_dims)``."""
        return self.dim + sum(self.layer_dims)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, layer_dims={self.layer_dims}"

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final embeddings: users ``(U, out_dim)``, items ``(I, out_dim)``."""
        product = self._operator(self.node_dropout if self.training else 0.0)
        ego = self.ego_embeddings()
        outputs = [ego]
        for sum_layer, product_layer in zip(self.sum_layers, self.product_layers, strict=True):
            side = product(ego)  # L E
            ego = F.leaky_relu(
                sum_layer(side + ego) + product_layer(side * ego), self.NEGATIVE_SLOPE
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

    The options after ``dim`` are keyword-only.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adjacency: object,
        dim: int = 64,
        *,
        n_layers: int = 3,
        reg: float = 1e-4,
    ) -> None:
        super().__init__(n_users, n_items, adjacency, dim, reg=reg)
        self.n_layers = check_non_negative_int("n_layers", n_layers)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}, n_layers={self.n_layers}"

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final embeddings: users ``(U, dim)``, items ``(I, dim)``."""
        product = self._operator()
        layer = self.ego_embeddings()
        total = layer
        for _ in range(self.n_layers):
            layer = product(layer)
            total = total + layer
        final = total / (self.n_layers + 1)
        return final[: self.n_users], final[self.n_users :]
