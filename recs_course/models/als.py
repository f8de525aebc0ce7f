"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren and Volinsky,
"Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008).

Every (user, item) pair counts: an observed pair with strength ``r_ui > 0`` (1 for a plain
interaction, or a count, a rating, a play time) has preference ``p_ui = 1`` and confidence
``c_ui = 1 + alpha * r_ui``; every other pair has ``p_ui = 0`` and ``c_ui = 1``. The model
minimises

    sum over all (u, i) of c_ui (p_ui - x_u . y_i)**2  +  reg (sum_u |x_u|**2 + sum_i |y_i|**2)

by alternating exact solves: with the item factors ``Y`` fixed the objective is a ridge
regression per user, ``x_u = (Y^T C_u Y + reg I)^-1 Y^T C_u p_u``, and symmetrically for the
items. :func:`solve_factors` is one such half-step, :func:`als_loss` the objective,
:class:`ALS` the model (built and fitted by :meth:`ALS.from_interactions`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from ._interactions import interaction_csr
from .base import (
    Recommender,
    check_non_negative,
    check_non_negative_int,
    check_positive_int,
    renamed_arguments,
)

__all__ = ["ALS", "solve_factors", "als_loss"]

#: The most entries (rows x padded row length x factors, or rows x factors x factors) of one
#: chunk of a half-step or of the loss, on the CPU: 1 MB per float32 temporary (reused memory,
#: in cache; chunks of 64 MB were slower on ml-100k, their fresh pages cost more than the
#: Python loop over 16 times fewer chunks).
MAX_CHUNK_ENTRIES = 1 << 18
#: The same on an accelerator, where larger batches keep the device busy (64 MB per float32
#: temporary).
MAX_CHUNK_ENTRIES_ACCELERATOR = 1 << 24


def _budget(device: torch.device) -> int:
    return MAX_CHUNK_ENTRIES if device.type == "cpu" else MAX_CHUNK_ENTRIES_ACCELERATOR


_DTYPES = (torch.float32, torch.float64)


def _strengths(matrix: object, name: str = "strengths") -> sp.csr_matrix:
    """``matrix`` as a float64 CSR copy without stored zeros, its values checked finite and
    ``>= 0`` (a ``ValueError`` naming ``name``)."""
    if not sp.issparse(matrix):
        raise ValueError(
            f"{name} must be a scipy sparse matrix of interaction strengths, got "
            f"{type(matrix).__name__}"
        )
    csr = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    csr.sum_duplicates()
    if csr.nnz and not np.isfinite(csr.data).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    if csr.nnz and csr.data.min() < 0:
        raise ValueError(
            f"{name} must be >= 0 (strengths r of confidence c = 1 + alpha * r), found "
            f"{csr.data.min():g}"
        )
    csr.eliminate_zeros()  # a zero strength is no interaction: p = 0, c = 1
    csr.sort_indices()
    return csr


def _check_alpha_reg(reg: object, alpha: object) -> tuple[float, float]:
    return check_non_negative("reg", reg), check_non_negative("alpha", alpha)


class _Rows:
    """The rows of a strength matrix (users, or items for the transpose) in padded chunks, built
    once and reused by every half-step.

    Rows are sorted by their number of entries and grouped into buckets of lengths in
    ``(2**(k-1), 2**k]``; each bucket is cut into chunks of at most :data:`MAX_CHUNK_ENTRIES`
    entries (``rows x max(length, f) x f``; :data:`MAX_CHUNK_ENTRIES_ACCELERATOR` off the
    CPU). A chunk holds ``rows (B,)``, the padded column indices ``cols (B, L)`` and two
    weights per entry, zero on the padding: ``sqrt(alpha r)`` (for ``Y^T (C_u - I) Y``) and
    ``c = 1 + alpha r`` (for ``Y^T C_u p_u``). Padding costs at most as much as the entries
    themselves; rows without entries are left out (their solution is 0).
    """

    def __init__(
        self,
        csr: sp.csr_matrix,
        alpha: float,
        dim: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        budget = _budget(device)
        self.n_rows = csr.shape[0]
        counts = np.diff(csr.indptr)
        nonempty = np.flatnonzero(counts)
        order = nonempty[np.argsort(counts[nonempty], kind="stable")]
        lengths = counts[order]
        buckets = np.ceil(np.log2(lengths)).astype(np.int64) if lengths.size else lengths
        self.chunks: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
        for start, stop in _runs(buckets):
            width = int(lengths[stop - 1])  # the longest row of the bucket
            per_chunk = max(1, budget // (max(width, dim) * dim))
            for first in range(start, stop, per_chunk):
                part = slice(first, min(first + per_chunk, stop))
                chunk = self._chunk(csr, order[part], lengths[part], width, alpha, device, dtype)
                self.chunks.append(chunk)

    @staticmethod
    def _chunk(csr, rows, lengths, width, alpha, device, dtype):
        steps = np.arange(width)
        valid = steps[None, :] < lengths[:, None]  # (B, L)
        positions = np.where(valid, csr.indptr[rows][:, None] + steps[None, :], 0)
        cols = csr.indices[positions].astype(np.int64)
        strength = np.where(valid, csr.data[positions], 0.0)
        root = np.sqrt(alpha * strength)  # 0 on the padding
        confidence = np.where(valid, 1.0 + alpha * strength, 0.0)
        as_tensor = lambda a, t=dtype: torch.as_tensor(a, dtype=t).to(device)  # noqa: E731
        return (
            as_tensor(rows, torch.int64),
            as_tensor(cols, torch.int64),
            as_tensor(root),
            as_tensor(confidence),
        )

    def solve(self, fixed: Tensor, reg: float) -> Tensor:
        """Each row's exact least-squares factors given the other side's ``fixed (n, f)``:
        ``(fixed^T C fixed + reg I) x = fixed^T C p`` with ``fixed^T C fixed = fixed^T fixed +
        fixed^T (C - I) fixed``, the shared Gram matrix computed once, the sparse correction one
        batched product per chunk, then a batched Cholesky solve."""
        dim = fixed.shape[1]
        gram = fixed.T @ fixed
        gram.diagonal().add_(reg)
        out = fixed.new_zeros(self.n_rows, dim)
        failed = []
        for rows, cols, root, confidence in self.chunks:
            gathered = fixed[cols]  # (B, L, f)
            weighted = gathered * root.unsqueeze(-1)
            system = torch.baddbmm(gram, weighted.mT, weighted)  # (B, f, f)
            rhs = torch.bmm(confidence.unsqueeze(1), gathered).mT  # (B, f, 1)
            factor, info = torch.linalg.cholesky_ex(system)
            out[rows] = torch.cholesky_solve(rhs, factor).squeeze(-1)
            failed.append(info.ne(0).any())
        if failed and bool(torch.stack(failed).any()):
            raise ValueError(
                f"the least-squares systems are not positive definite (reg = {reg:g}): use reg > 0"
            )
        return out


def _runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of equal values in a sorted array."""
    if keys.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(keys)) + 1
    bounds = np.concatenate(([0], cuts, [keys.size]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _loss(
    coo: tuple[Tensor, Tensor, Tensor], users: Tensor, items: Tensor, reg: float, alpha: float
) -> float:
    """The objective, in float64 (float32 on MPS, which has no float64): the sum of ``s**2``
    over all pairs is ``trace(X^T X Y^T Y)``, and the observed pairs correct their term to
    ``c (1 - s)**2``; the pairs are read in chunks (:func:`_budget`)."""
    rows, cols, strength = coo
    wide = torch.float32 if users.device.type == "mps" else torch.float64
    x, y = users.to(wide), items.to(wide)
    total = ((x.T @ x) * (y.T @ y)).sum()
    step = max(1, _budget(x.device) // max(x.shape[1], 1))
    for start in range(0, rows.numel(), step):
        part = slice(start, start + step)
        scores = (x[rows[part]] * y[cols[part]]).sum(-1)
        confidence = 1.0 + alpha * strength[part]
        total += (confidence * (1.0 - scores) ** 2 - scores**2).sum()
    total += reg * (x.square().sum() + y.square().sum())
    return float(total)


def _observed(csr: sp.csr_matrix, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    coo = csr.tocoo()
    return (
        torch.as_tensor(coo.row.astype(np.int64)).to(device),
        torch.as_tensor(coo.col.astype(np.int64)).to(device),
        torch.as_tensor(coo.data, dtype=torch.float64).to(
            device, torch.float32 if device.type == "mps" else torch.float64
        ),
    )


def _check_factors(name: str, factors: object, rows: int) -> Tensor:
    if not isinstance(factors, Tensor) or factors.dim() != 2 or not factors.is_floating_point():
        raise ValueError(f"{name} must be a 2-D float tensor of factors")
    if factors.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got shape {tuple(factors.shape)}")
    return factors.detach()


def solve_factors(
    strengths: sp.spmatrix, fixed: Tensor, *, reg: float = 0.01, alpha: float = 1.0
) -> Tensor:
    """One ALS half-step: every row's factors that minimise the objective with ``fixed`` fixed.

    For the users, ``solve_factors(R, Y)``; for the items, ``solve_factors(R.T, X)``.

    Args:
        strengths: ``(n, m)`` scipy sparse matrix of interaction strengths ``r >= 0`` (stored
            zeros are no interaction).
        fixed: ``(m, f)`` float tensor, the other side's factors.
        reg: the weight of the squared norms; alpha: confidence ``c = 1 + alpha r``.

    Returns:
        ``(n, f)`` factors on ``fixed``'s device, in its dtype (rows without entries get 0).
    """
    reg, alpha = _check_alpha_reg(reg, alpha)
    csr = _strengths(strengths)
    fixed = _check_factors("fixed", fixed, csr.shape[1])
    with torch.no_grad():
        rows = _Rows(csr, alpha, fixed.shape[1], fixed.device, fixed.dtype)
        return rows.solve(fixed, reg)


def als_loss(
    strengths: sp.spmatrix,
    user_factors: Tensor,
    item_factors: Tensor,
    *,
    reg: float = 0.01,
    alpha: float = 1.0,
) -> float:
    """The ALS objective ``sum c_ui (p_ui - x_u . y_i)**2 + reg (|X|**2 + |Y|**2)`` over every
    (user, item) pair, computed in float64 without forming the ``(U, I)`` matrix.

    Args:
        strengths: ``(U, I)`` scipy sparse matrix of strengths ``r >= 0``.
        user_factors: ``(U, f)``; item_factors: ``(I, f)``, on one device.
        reg, alpha: as in :meth:`ALS.from_interactions`.
    """
    reg, alpha = _check_alpha_reg(reg, alpha)
    csr = _strengths(strengths)
    users = _check_factors("user_factors", user_factors, csr.shape[0])
    items = _check_factors("item_factors", item_factors, csr.shape[1])
    if users.shape[1] != items.shape[1]:
        raise ValueError(
            f"user_factors and item_factors must have as many columns, got {users.shape[1]} "
            f"and {items.shape[1]}"
        )
    with torch.no_grad():
        return _loss(_observed(csr, users.device), users, items, reg, alpha)


class ALS(Recommender):
    """Weighted matrix factorisation of implicit feedback fitted by alternating least squares
    (Hu, Koren and Volinsky, ICDM 2008): the score of ``(u, i)`` is ``x_u . y_i``.

    Build and fit it with :meth:`from_interactions`. The factors are learned by closed-form
    solves, not by gradients: ``user_factors (U, dim)`` and ``item_factors (I, dim)`` are frozen
    parameters (``requires_grad=False``), saved in ``state_dict`` (checkpoints), moved by
    ``.to(device)``; ``ALS(n_users, n_items, dim)`` starts at zero, ready for
    ``load_state_dict``. (``model.requires_grad_(True)`` makes them trainable, e.g. to fine-tune
    with :func:`~recs_course.training.fit`.) ``model.losses`` holds the objective (see
    :func:`als_loss`) at the initial factors and after each iteration of the fit, as floats; it
    is not part of the checkpoint.

    Args:
        n_users: ``U``; n_items: ``I``.
        dim: the number of factors ``f`` (``factors`` in the ``implicit`` library).
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.user_factors = nn.Parameter(torch.zeros(self.n_users, self.dim), requires_grad=False)
        self.item_factors = nn.Parameter(torch.zeros(self.n_items, self.dim), requires_grad=False)
        self.losses: tuple[float, ...] = ()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}"

    @classmethod
    @renamed_arguments(
        values="the strengths of the interactions are called ratings= (as in "
        "AutoRec.from_interactions; values= names a mode of recs_course.data.interaction_matrix)",
        factors="the number of factors is called dim= (as in MF and LightGCN)",
        regularization="the weight of the squared norms is called reg=",
    )
    def from_interactions(
        cls,
        users: object,
        items: object,
        n_users: int,
        n_items: int,
        dim: int = 64,
        *,
        ratings: object = None,
        reg: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        init_std: float = 0.1,
        generator: int | torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
    ) -> ALS:
        """Fit the model on the training interactions: ``iterations`` rounds of exact solves,
        all users given the items, then all items given the users.

        The solve is exact, as in the paper (the ``implicit`` library's ``use_cg=False``), not
        its conjugate-gradient approximation (``use_cg=True``, 3 steps warm-started from the
        last factors): batched over users, the ``(f, f)`` systems are a few BLAS calls per chunk
        of rows (one product for every row's ``Y^T (C_u - I) Y``, one batched Cholesky), cheap
        at the course's sizes (``f = 64``), and exact solves make each half-step the minimum
        over its block, so the objective never increases (``model.losses``). The shared
        ``Y^T Y`` is computed once per half-step (the paper's speed-up); the per-row part costs
        ``nnz f**2``. Rows are chunked to bound memory (:data:`MAX_CHUNK_ENTRIES`); there is no
        Python loop over users.

        Defaults: ``reg``, ``alpha`` and ``iterations`` are the ``implicit`` library's
        (``regularization=0.01``, ``alpha=1.0``, ``iterations=15``; its ``factors`` is 100),
        but its confidence is ``alpha * r`` (the strengths it is given, scaled), not the
        paper's ``1 + alpha * r``: give ``implicit`` the matrix ``1 + alpha * R`` on the
        observed pairs, with its ``alpha=1.0``, for the same objective. The paper used
        ``alpha = 40`` on watching times.

        Args:
            users: ``(E,)`` user indices of the training interactions.
            items: ``(E,)`` item indices.
            n_users: ``U``; n_items: ``I``.
            dim: the number of factors.
            ratings: ``None`` (every distinct pair has strength 1; a repeated pair is one
                interaction) or ``(E,)`` strengths ``r >= 0``, one per pair (counts, ratings);
                a zero strength is no interaction.
            reg: the weight ``>= 0`` of the squared norms of all factors.
            alpha: confidence ``c = 1 + alpha * r`` of an observed pair (``>= 0``).
            iterations: rounds of (users, items) solves, ``>= 0`` (0: the initial factors).
            init_std: the standard deviation ``> 0`` of the normal initial factors (the users'
                are drawn first, then the items'; only the items' matter, the users are
                solved first). ALS stops short of a minimum, and where it gets depends on the
                start. On ml-100k's training split (64 factors, 15 iterations) 0.1 ends 11%
                lower than 0.01 at ``reg=0.1, alpha=10`` and 1% lower at the defaults, 2%
                lower than ``implicit``'s uniform ``[0, 0.01)`` start at the defaults, with
                recall@20 equal within seed noise (0.001-0.002).
            generator: a ``torch.Generator``, an int seed, or ``None`` (torch's default
                generator, as every model's initial weights).
            dtype: ``torch.float32`` (as ``implicit``) or ``torch.float64``, of the factors and
                the solves.
            device: where to fit and keep the model (``None``: the CPU; else read by
                :func:`recs_course.utils.get_device`, ``"auto"`` included).
        """
        from ..data._common import torch_generator
        from ..utils import check_number, get_device

        dim = check_positive_int("dim", dim)
        reg, alpha = _check_alpha_reg(reg, alpha)
        iterations = check_non_negative_int("iterations", iterations)
        init_std = check_number("init_std", init_std, low=0.0, strict=True)
        gen = torch_generator(generator)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        dev = torch.device("cpu") if device is None else get_device(device)
        matrix = interaction_csr(users, items, n_users, n_items, ratings)
        csr = _strengths(matrix, "ratings")

        model = cls(n_users, n_items, dim).to(device=dev, dtype=dtype)
        with torch.no_grad():
            for factors in (model.user_factors, model.item_factors):
                draw = torch.randn(factors.shape, generator=gen, dtype=torch.float64)
                factors.copy_(draw.mul_(init_std))
            observed = _observed(csr, dev)
            losses = [_loss(observed, model.user_factors, model.item_factors, reg, alpha)]
            if iterations:
                by_user = _Rows(csr, alpha, dim, dev, dtype)
                by_item = _Rows(csr.T.tocsr(), alpha, dim, dev, dtype)
            for _ in range(iterations):
                model.user_factors.copy_(by_user.solve(model.item_factors, reg))
                model.item_factors.copy_(by_item.solve(model.user_factors, reg))
                losses.append(_loss(observed, model.user_factors, model.item_factors, reg, alpha))
        model.losses = tuple(losses)
        return model

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` scores ``x_u . y_i``."""
        users, items = self._pairs(users, items)
        return (self.user_factors[users] * self.item_factors[items]).sum(-1)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` scores, one matrix product (a fresh tensor)."""
        users = self._users(users)
        return self.user_factors[users] @ self.item_factors.T
