"""Data-parallel training of NCF with PyTorch's own ``torch.distributed`` and DDP.

One script, run once per process by ``torchrun`` (or by plain ``python`` for one process)::

    torchrun --standalone --nproc-per-node 2 -m recs_course.distributed --config cfg.json
    python -m recs_course.distributed --config cfg.json            # one process
    python -m recs_course.distributed --config cfg.json --resume   # continue a run

or, from a notebook, :func:`launch` (``launch(DDPConfig(...), nproc=2) -> results dict``). The
setting is the NCF tutorial's: a sample of the users (``user_fraction``), leave-one-out by time
(each user's latest interaction is the test item, optionally the second latest the validation
item), ``n_neg`` negatives per positive drawn afresh every epoch, BCE on logits, and HR@10 /
NDCG@10 of the held-out item ranked among ``eval_negatives`` sampled negatives.

What each process does:

- It reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by ``torchrun``; absent: one
  process, no process group), joins the group with ``init_process_group("nccl")`` on CUDA
  (device ``cuda:LOCAL_RANK``) or ``"gloo"`` on the CPU, where it also runs torch with one
  thread (``torch.set_num_threads(1)``: N processes on N cores, not N x cores threads).
- It prepares the data itself, identically on every rank, from the seed (:func:`prepare_data`):
  nothing is sent between processes but gradients and a few numbers.
- Every epoch the training positives are permuted by a generator seeded from ``(seed, epoch)``,
  the same on every rank, and rank ``r`` takes positions ``r, r + W, r + 2W, ...``
  (:func:`shard_positions`). ``batch_size`` is the *global* batch: each rank takes
  ``batch_size // W`` positives per step, so global batch ``t`` is the same set of positives
  whatever ``W`` is, and 1 and W processes make the same number of optimiser steps over the
  same examples. The permutation is padded to a multiple of ``W`` with markers that carry no
  loss, so that every rank makes the same number of steps (a rank with one step fewer would
  leave the others waiting in an all-reduce forever).
- Each rank draws its batch's negatives on its device with a generator seeded from
  ``(seed, epoch, rank)`` (:func:`draw_negatives`): exact (a draw that is a positive of the user
  is found by ``torch.searchsorted`` in the sorted keys ``user * n_items + item`` and redrawn)
  or, with ``approximate_negatives``, uniform items without the check.
- The model (``GMF`` or ``NeuMF``) is wrapped in ``DistributedDataParallel`` when ``W > 1``.
  Each rank's loss is scaled so that DDP's average of the ranks' gradients is the gradient of
  the mean BCE over the global batch, the gradient one process would compute.
- After each epoch rank 0 evaluates (:func:`recs_course.evaluation.evaluate_sampled` on the
  unwrapped model), writes the checkpoint (model, Adam, epoch, config, records) atomically with
  :func:`recs_course.training.save_checkpoint` and rewrites ``out_dir/results.json``, while the
  other ranks wait at a barrier.
- ``--resume`` loads ``out_dir/checkpoint.pt`` and continues at the next epoch. Since every
  generator is derived from ``(seed, epoch, rank)``, a resumed run reproduces the uninterrupted
  one with the same config and world size.

The results (``out_dir/results.json``, what :func:`launch` returns): the config, ``world_size``,
``backend`` (``"gloo"``, ``"nccl"``, ``None`` for one process), ``device``,
``threads_per_process``, the data's sizes, ``local_batch_size``, ``steps_per_epoch``,
``examples_per_s`` over all epochs, ``final`` (the last epoch's metrics) and ``epochs``, one
record per epoch:

- ``HR@10``, ``NDCG@10`` (and ``valid_HR@10``, ``valid_NDCG@10`` with ``validation``);
- ``loss``: the mean BCE over every row (positives and negatives) of every rank, all-reduced;
- ``train_s``, ``wall_s`` (training, evaluation and checkpoint), ``examples`` (rows: positives
  times ``1 + n_neg``, all ranks), ``examples_per_s`` and ``positives_per_s`` (global);
- ``time``: seconds of the epoch in ``sampling`` (batch indices, negatives, the batch's
  tensors), ``forward`` (model and loss), ``backward`` (which includes DDP's all-reduce of the
  gradients), ``optimizer`` (Adam's step), each the mean over the ranks; ``allreduce_per_step``:
  one ``torch.distributed.all_reduce`` of a flat float32 buffer of the model's size, timed
  alone after the epoch (median of 3), and ``allreduce_estimate`` that times the steps (both
  ``None`` for one process); ``evaluation`` and ``checkpoint`` (rank 0). On CUDA every phase
  ends with ``torch.cuda.synchronize`` so that its time is its own;
- ``peak_memory``: ``maxrss_bytes`` per rank (``resource.getrusage``) and
  ``cuda_max_allocated_bytes`` per rank on GPUs (else ``None``).

What DDP does with embedding tables. Every rank holds a full replica of the model, embedding
tables included, and of the optimiser state. The tables' gradients are dense by default: a
``(n_users, dim)`` tensor that is zero outside the batch's rows, and DDP all-reduces it whole,
every step, like any other parameter, so communication per step grows with the table size, not
with the batch. (DDP puts gradients in buckets of about 25 MiB and all-reduces each bucket as
soon as its gradients are ready during ``backward``, overlapping communication with the rest of
the backward pass; this module passes ``gradient_as_bucket_view=True``, which makes the
gradients views into the buckets instead of a second copy.) An embedding built with
``sparse=True`` (``nn.Embedding`` or ``nn.EmbeddingBag``) gives a sparse gradient holding only
the batch's rows; DDP detects such modules, gives each of those parameters a bucket of its own
and all-reduces it as a sparse tensor. With gloo this was checked here: after ``backward`` each
rank's gradient is sparse and holds the union of the ranks' rows, averaged over the ranks.
The gloo sparse all-reduce gathers every rank's indices and values (an all-gather, pytorch PR
#22036), so its cost grows with the rows touched times W, not with the table. NCCL is
different: the request for a sparse all-reduce in ``ProcessGroupNCCL`` (pytorch issue #22400)
is open, and this module was not run with sparse tables on GPUs; the course's NCF models use
dense tables (``MF(sparse=True)`` is the course's sparse model, trained in one process).

What sharding the tables would change (model parallelism, e.g. TorchRec's
``EmbeddingBagCollection`` with a sharding planner, or a hand-made split): each rank stores only
some rows (row-wise) or columns (column-wise) of each table, plus their gradients and optimiser
state, so memory per rank drops by about W for the tables (:func:`embedding_memory` gives the
bytes). In exchange each step needs an all-to-all: the ids of a batch are sent to the ranks
owning their rows, the looked-up vectors come back, and in the backward pass their gradients go
to the owners, which update their rows locally (a sparse update: no all-reduce of whole tables).
The dense layers (NeuMF's tower) stay data parallel. For the course's data replication is the
right choice: ML-25M's tables at ``dim=32`` are 28 MB of float32
(``embedding_memory(162_541, 59_047, 32, 8)``: 113 MB per rank replicated with gradients and
Adam's two moments, 14 MB row-sharded over 8 ranks); sharding pays off when the tables, not the
batch, fill the device (hundreds of millions of ids).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .utils import atomic_write, check_flag, check_number, check_positive_int

__all__ = [
    "DDPConfig",
    "Prepared",
    "prepare_data",
    "shard_positions",
    "draw_negatives",
    "embedding_memory",
    "launch",
    "save_ratings",
    "read_results",
    "main",
]

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
CHECKPOINT_FILE = "checkpoint.pt"
ERROR_PREFIX = "recs_course.distributed: error:"
MODELS = ("gmf", "neumf")
DEVICES = ("auto", "cpu", "cuda")
MAX_REJECTION_ROUNDS = 10_000
"""Redraw rounds of the exact negatives; a user needs many rounds only when almost every item
is one of their positives (``prepare_data`` refuses users with none left)."""

# Tags of the seeds derived from the config's seed (one stream per purpose).
_PERMUTATION, _NEGATIVES, _TEST_CANDIDATES, _VALID_CANDIDATES, _STEP_NEGATIVES = range(5)
OPTIMIZERS = ("adam", "sgd")
# Fields that may differ between a run and its resumption.
_RESUMABLE = ("epochs", "out_dir")
# torchrun's variables: a child started by plain python must not inherit a parent's.
_DIST_ENV = (
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
    "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
)  # fmt: skip


def derive_seed(*parts: int) -> int:
    """A 64-bit seed mixed from integers (numpy's ``SeedSequence``): ``(seed, tag, epoch,
    rank)`` give unrelated streams, however close the numbers."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)
    return int(state[0])


def _generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


# --------------------------------------------------------------------------- configuration
def _parse_data(data: object) -> tuple:
    """``("ml", name)``, ``("synthetic", n_users, n_items, n_ratings)`` or
    ``("shaped", name, fraction)``; a ``ValueError`` saying the accepted forms otherwise."""
    forms = (
        '"ml-100k" (or another MovieLens name), "synthetic:<n_users>:<n_items>:<n_ratings>" '
        '(e.g. "synthetic:300:200:6000"), "shaped:<name>:<fraction>" (e.g. '
        '"shaped:ml-1m:0.1") or "file:<path>.npz" (arrays user_id, item_id, timestamp, as '
        "save_ratings writes them)"
    )
    if not isinstance(data, str) or not data:
        raise ValueError(f"data must be a non-empty string, one of {forms}; got {data!r}")
    if data.startswith("file:"):
        path = data[len("file:") :]
        if not path.endswith(".npz"):
            raise ValueError(f"data={data!r}: the file form is file:<path>.npz; {forms}")
        return ("file", path)
    parts = data.split(":")
    if parts[0] == "synthetic":
        try:
            if len(parts) != 4:
                raise ValueError
            n_users, n_items, n_ratings = (int(p) for p in parts[1:])
        except ValueError:
            raise ValueError(
                f"data={data!r}: the synthetic form is synthetic:<n_users>:<n_items>:<n_ratings> "
                'with three integers, e.g. "synthetic:300:200:6000"'
            ) from None
        if min(n_users, n_items, n_ratings) < 1 or not n_users <= n_ratings <= n_users * n_items:
            raise ValueError(
                f"data={data!r}: need positive sizes with n_users <= n_ratings <= n_users * "
                "n_items (every user rates at least once, every pair at most once)"
            )
        return ("synthetic", n_users, n_items, n_ratings)
    if parts[0] == "shaped":
        fraction = None
        if len(parts) == 3 and parts[1]:
            try:
                fraction = float(parts[2])
            except ValueError:
                pass
        if fraction is None or not 0.0 < fraction <= 1.0:
            raise ValueError(
                f"data={data!r}: the shaped form is shaped:<name>:<fraction> with a MovieLens "
                'name and a fraction in (0, 1], e.g. "shaped:ml-1m:0.1"'
            )
        return ("shaped", parts[1], fraction)
    if len(parts) == 1:
        from .data.movielens import REGISTRY

        if data not in REGISTRY:
            raise ValueError(f"data={data!r} is not a dataset name: use one of {forms}")
        return ("ml", data)
    raise ValueError(f"data={data!r} is not understood: use one of {forms}")


@dataclass(frozen=True)
class DDPConfig:
    """Everything a run depends on, as plain values (stored in ``config.json``, the checkpoint
    and the results). Checked at construction: a ``ValueError`` names the field and what to do.

    Attributes:
        data: ``"ml-100k"`` (any name of :func:`recs_course.data.load_movielens`),
            ``"synthetic:<n_users>:<n_items>:<n_ratings>"``
            (:func:`recs_course.data.synthetic_ratings` with ``seed``) or
            ``"shaped:<name>:<fraction>"`` (``recs_course.data.synthetic.movielens_shaped``,
            imported when used).
        user_fraction: fraction of the users kept (:func:`recs_course.data.subsample_users`
            with ``seed``; 1.0 keeps all), in ``(0, 1]``.
        model: ``"gmf"`` (:class:`recs_course.models.GMF`) or ``"neumf"``
            (:class:`recs_course.models.NeuMF`, default tower).
        dim: embedding size (GMF's; NeuMF's GMF half).
        n_neg: negatives per training positive, drawn afresh each epoch.
        epochs: epochs to train (with ``--resume``: up to this epoch in all).
        batch_size: the *global* batch, in positives: each of the W processes takes
            ``batch_size // W``, so it must be a multiple of W.
        lr: Adam's learning rate.
        seed: the seed of the training (model initialisation, permutations, negatives) and,
            unless ``data_seed`` is given, of the data; an integer in ``[0, 2**32)``.
        eval_negatives: sampled negatives ranked with each held-out item (99: HR@10 of a random
            ranking is 10 / 100).
        out_dir: folder of ``config.json``, ``checkpoint.pt`` and ``results.json``.
        approximate_negatives: draw negatives uniformly without checking them against the user's
            positives (a draw is a positive with probability ``deg(u) / n_items``).
        max_batches: at most this many steps per epoch (``None``: all), for tests and
            benchmarks.
        validation: hold out each user's second latest interaction too, evaluated as
            ``valid_HR@10`` / ``valid_NDCG@10`` each epoch beside the test metrics.
        device: ``"auto"`` (``cuda:LOCAL_RANK`` with NCCL when CUDA is available, else the CPU
            with gloo), ``"cpu"`` (gloo, even on a GPU machine) or ``"cuda"``.
        data_seed: the seed of the data (synthetic ratings, the user sample, the evaluation
            candidates); ``None``: ``seed``. Fix it to compare training seeds on the same data.
        optimizer: ``"adam"`` or ``"sgd"`` (plain SGD: its step is proportional to the
            gradient, so a wrongly averaged gradient shows in the weights; Adam's hardly does).
        same_negatives: every rank draws the negatives of the whole global batch from a
            generator of ``(seed, epoch, step)`` and keeps its own rows, so that 1 and W
            processes train on identical examples (W times the sampling work): for checking
            that they compute the same weights.
    """

    data: str = "ml-100k"
    user_fraction: float = 0.2
    model: str = "gmf"
    dim: int = 32
    n_neg: int = 4
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    eval_negatives: int = 99
    out_dir: str = "ddp_run"
    approximate_negatives: bool = False
    max_batches: int | None = None
    validation: bool = False
    device: str = "auto"
    data_seed: int | None = None
    optimizer: str = "adam"
    same_negatives: bool = False

    def __post_init__(self) -> None:
        _parse_data(self.data)
        fraction = check_number(
            "user_fraction", self.user_fraction, low=0.0, strict=True,
            hint=" in (0, 1] (the fraction of the users kept)",
        )  # fmt: skip
        if fraction > 1:
            raise ValueError(
                f"user_fraction must be in (0, 1] (the fraction of the users kept), got "
                f"{self.user_fraction!r}"
            )
        object.__setattr__(self, "user_fraction", fraction)
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        for name in ("dim", "n_neg", "epochs", "batch_size", "eval_negatives"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        lr = check_number("lr", self.lr, low=0.0, strict=True, hint=" (Adam's learning rate)")
        object.__setattr__(self, "lr", lr)
        for name in ("seed", "data_seed"):
            seed = getattr(self, name)
            if seed is None and name == "data_seed":
                continue
            if (
                isinstance(seed, bool)
                or not isinstance(seed, (int, np.integer))
                or not (0 <= seed < 2**32)
            ):
                raise ValueError(f"{name} must be an integer in [0, 2**32), got {seed!r}")
            object.__setattr__(self, name, int(seed))
        if isinstance(self.out_dir, os.PathLike):
            object.__setattr__(self, "out_dir", os.fspath(self.out_dir))
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise ValueError(
                f"out_dir must be the folder of the run's files (a non-empty path), got "
                f"{self.out_dir!r}"
            )
        for name in ("approximate_negatives", "validation", "same_negatives"):
            check_flag(name, getattr(self, name))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.max_batches is not None:
            object.__setattr__(
                self, "max_batches", check_positive_int("max_batches", self.max_batches)
            )
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")

    @property
    def data_rng_seed(self) -> int:
        """The seed of the data: ``data_seed``, else ``seed``."""
        return self.seed if self.data_seed is None else self.data_seed

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON and checkpoint friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DDPConfig:
        """A config from a dict such as :meth:`to_dict` returns (missing fields: defaults)."""
        if not isinstance(values, Mapping):
            raise ValueError(f"a config must be a dict of fields, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}: the fields are {sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any) -> DDPConfig:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)


def check_world_size(config: DDPConfig, world_size: int) -> int:
    """Check that ``config.batch_size`` splits evenly over ``world_size`` processes; returns
    the per-process batch."""
    world_size = check_positive_int("world_size", world_size)
    if config.batch_size % world_size:
        lower = config.batch_size // world_size * world_size
        raise ValueError(
            f"batch_size={config.batch_size} is the global batch, split evenly over the "
            f"{world_size} processes: make it a multiple of {world_size} (e.g. "
            f"{lower or world_size} or {lower + world_size}), or change the number of processes"
        )
    return config.batch_size // world_size


# --------------------------------------------------------------------------- data
@dataclass
class Prepared:
    """The data of a run, identical on every rank (CPU tensors).

    Attributes:
        users, items: ``(N,)`` int64 training positives (encoded).
        keys: sorted unique ``users * n_items + items`` (the membership test of the exact
            negatives).
        n_users, n_items: sizes of the encoding (fitted on the training rows).
        test_users, test_candidates: ``(U,)`` and ``(U, 1 + eval_negatives)``, column 0 the
            held-out item (:func:`recs_course.data.ranking_candidates`).
        valid_users, valid_candidates: the same for validation, ``None`` without.
    """

    users: Tensor
    items: Tensor
    keys: Tensor
    n_users: int
    n_items: int
    test_users: Tensor
    test_candidates: Tensor
    valid_users: Tensor | None = None
    valid_candidates: Tensor | None = None


_FILE_COLUMNS = ("user_id", "item_id", "timestamp")


def save_ratings(ratings, path: str | os.PathLike[str]) -> Path:
    """Write the ``user_id``, ``item_id`` and ``timestamp`` columns of a ratings frame to an
    ``.npz`` file (atomically), for ``DDPConfig(data=f"file:{path}")``: every process then
    reads the same prepared data instead of building it again. Returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end with .npz, got {str(path)!r}")
    missing = [c for c in _FILE_COLUMNS if c not in getattr(ratings, "columns", ())]
    if missing:
        raise ValueError(
            f"ratings must be a frame with the columns {_FILE_COLUMNS}; missing {missing}"
        )
    columns = {c: ratings[c].to_numpy(dtype=np.int64) for c in _FILE_COLUMNS}
    atomic_write(path, lambda handle: np.savez(handle, **columns))
    return path


def _read_ratings_file(path: str):
    import pandas as pd

    try:
        with np.load(path, allow_pickle=False) as stored:
            columns = {c: stored[c] for c in _FILE_COLUMNS}
    except FileNotFoundError:
        raise ValueError(f"data file {path!r} does not exist: write it with save_ratings") from None
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(
            f"data file {path!r} is not a ratings file of save_ratings (arrays "
            f"{_FILE_COLUMNS}): {exc}"
        ) from None
    return pd.DataFrame(columns).assign(rating=np.float32(1.0))


def load_ratings(config: DDPConfig):
    """The ratings frame of ``config.data`` (raw ids)."""
    spec = _parse_data(config.data)
    if spec[0] == "file":
        return _read_ratings_file(spec[1])
    if spec[0] == "synthetic":
        from .data import synthetic_ratings

        return synthetic_ratings(*spec[1:], seed=config.data_rng_seed).ratings
    if spec[0] == "shaped":
        try:
            from .data.synthetic import movielens_shaped
        except ImportError:
            raise ValueError(
                f"data={config.data!r} needs recs_course.data.synthetic.movielens_shaped, which "
                "this version of recs_course does not have: use a synthetic:... or MovieLens "
                "data string instead"
            ) from None
        made = movielens_shaped(spec[1], fraction=spec[2], seed=config.data_rng_seed)
        return getattr(made, "ratings", made)
    from .data import load_movielens

    return load_movielens(spec[1]).ratings


def prepare_data(config: DDPConfig) -> Prepared:
    """Sample the users, split by time, encode, draw the evaluation candidates: the same on
    every rank, from ``config.data_rng_seed`` alone."""
    from .data import IdEncoder, leave_one_out, ranking_candidates, subsample_users

    ratings = load_ratings(config)
    if config.user_fraction < 1.0:
        ratings = subsample_users(ratings, frac=config.user_fraction, seed=config.data_rng_seed)
    train, test = leave_one_out(ratings)
    valid = None
    if config.validation:
        train, valid = leave_one_out(train)
    enc = IdEncoder().fit(train)
    train = enc.transform(train)
    test = enc.transform(test, unknown="drop")
    n_users, n_items = enc.n_users, enc.n_items
    if len(test) == 0:
        raise ValueError(
            f"data={config.data!r} with user_fraction={config.user_fraction} leaves no test "
            "user (users need two interactions, and test items seen in training): keep more "
            "users or more data"
        )
    users = torch.from_numpy(train["user_id"].to_numpy(dtype=np.int64, copy=True))
    items = torch.from_numpy(train["item_id"].to_numpy(dtype=np.int64, copy=True))
    keys = torch.unique(users * n_items + items)  # sorted
    degree = torch.bincount(keys // n_items, minlength=n_users)
    if bool((degree >= n_items).any()):
        user = int(torch.nonzero(degree >= n_items)[0, 0])
        raise ValueError(
            f"user {int(enc.inverse_users(np.array([user]))[0])} interacted with every one of "
            f"the {n_items} items: there is no negative to draw. Drop such users first"
        )
    seed = config.data_rng_seed
    if valid is not None:
        valid = enc.transform(valid, unknown="drop")
    test_exclude = [train] if valid is None else [train, valid]
    test_users, test_candidates = ranking_candidates(
        test, n_items, config.eval_negatives, exclude=test_exclude,
        generator=derive_seed(seed, _TEST_CANDIDATES),
    )  # fmt: skip
    out = Prepared(users, items, keys, n_users, n_items, test_users, test_candidates)
    if valid is not None and len(valid):
        out.valid_users, out.valid_candidates = ranking_candidates(
            valid, n_items, config.eval_negatives, exclude=[train, test],
            generator=derive_seed(seed, _VALID_CANDIDATES),
        )  # fmt: skip
    return out


# --------------------------------------------------------------------------- sharding, negatives
def shard_positions(n: int, world_size: int, rank: int, *, seed: int, epoch: int) -> Tensor:
    """Rank ``rank``'s share of epoch ``epoch``: indices into the ``n`` training positives.

    A permutation of ``0..n-1`` from a CPU generator seeded from ``(seed, epoch)`` (the same on
    every rank), padded with ``-1`` up to a multiple of ``world_size``; rank ``r`` takes the
    positions ``r, r + W, ...``. So every rank gets ``ceil(n / W)`` entries, the real ones of the
    ranks are disjoint and together cover every positive once, and at most one entry per rank,
    its last, is a ``-1`` marker (a padding entry that carries no loss).

    Returns:
        ``(ceil(n / world_size),)`` int64 CPU tensor.
    """
    n = int(n)
    world_size = check_positive_int("world_size", world_size)
    if (
        isinstance(rank, bool)
        or not isinstance(rank, (int, np.integer))
        or not (0 <= rank < world_size)
    ):
        raise ValueError(f"rank must be an integer in [0, {world_size}), got {rank!r}")
    return _epoch_order(n, world_size, seed=seed, epoch=epoch)[rank::world_size].clone()


def _epoch_order(n: int, world_size: int, *, seed: int, epoch: int) -> Tensor:
    """The epoch's permutation of the positives, padded with ``-1`` to a multiple of W; global
    batch ``t`` of a global batch size ``B`` is its slice ``[t B, (t + 1) B)``."""
    perm = torch.randperm(n, generator=_generator(derive_seed(seed, _PERMUTATION, epoch)))
    padded = -(-n // world_size) * world_size
    if padded > n:
        perm = torch.cat([perm, torch.full((padded - n,), -1, dtype=torch.int64)])
    return perm


def draw_negatives(
    users: Tensor,
    n_items: int,
    n_neg: int,
    *,
    keys: Tensor | None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(B, n_neg)`` uniform negatives of ``users`` ``(B,)``, on ``users``' device.

    With ``keys`` (sorted unique ``user * n_items + item`` of the positives, on the same
    device): exact. Every draw is looked up with one ``torch.searchsorted``; only the draws
    that hit a positive are redrawn, round after round (a loop over rounds, never over users),
    so each negative is uniform over the user's non-positives. ``keys=None``: approximate,
    uniform over all items (a draw is a positive with probability ``deg(u) / n_items``).
    """
    device = users.device
    shape = (users.shape[0], n_neg)
    neg = torch.randint(0, n_items, shape, generator=generator, device=device)
    if keys is None or keys.numel() == 0 or neg.numel() == 0:
        return neg
    last = keys.numel() - 1
    base = (users * n_items)[:, None].expand(shape)
    query = base + neg
    hit = keys[torch.searchsorted(keys, query).clamp_(max=last)] == query
    where = hit.nonzero(as_tuple=True)
    for _ in range(MAX_REJECTION_ROUNDS):
        if where[0].numel() == 0:
            return neg
        redraw = torch.randint(0, n_items, (where[0].numel(),), generator=generator, device=device)
        neg[where] = redraw
        query = base[where] + redraw
        still = keys[torch.searchsorted(keys, query).clamp_(max=last)] == query
        where = (where[0][still], where[1][still])
    raise RuntimeError(
        f"{where[0].numel()} negatives still collide with positives after "
        f"{MAX_REJECTION_ROUNDS} rounds: some users have almost no negatives; drop them or use "
        "approximate_negatives=True"
    )


# --------------------------------------------------------------------------- memory
_OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "sgd": 0, "sgd_momentum": 1, "adagrad": 1}


def embedding_memory(
    n_users: int,
    n_items: int,
    dim: int,
    world_size: int,
    dtype_bytes: int = 4,
    optimizer: str = "adam",
) -> dict[str, Any]:
    """Bytes per rank of a user and an item table, replicated (DDP) or row-sharded.

    Parameters, their (dense) gradients and the optimiser's state (Adam: two moments per
    parameter; SGD without momentum: none) for ``(n_users + n_items) * dim`` values.
    Replicated, every rank holds all rows; row-sharded, each rank holds ``ceil(n_users / W)``
    user rows and ``ceil(n_items / W)`` item rows (the largest share). Not counted: DDP's
    communication buckets (none with ``gradient_as_bucket_view=True``), activations, the dense
    layers.

    Returns:
        ``{"replicated": {...}, "row_sharded": {...}, "rows": ..., "rows_per_rank": ...,
        "bytes_per_row": ..., "optimizer_states": ..., "world_size": ...}``, each of the two
        dicts with ``parameters``, ``gradients``, ``optimizer_state`` and ``total`` in bytes.
    """
    n_users = check_positive_int("n_users", n_users)
    n_items = check_positive_int("n_items", n_items)
    dim = check_positive_int("dim", dim)
    world_size = check_positive_int("world_size", world_size)
    dtype_bytes = check_positive_int("dtype_bytes", dtype_bytes)
    if optimizer not in _OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZER_STATES)}, got {optimizer!r}")
    states = _OPTIMIZER_STATES[optimizer]
    row = dim * dtype_bytes

    def breakdown(rows: int) -> dict[str, int]:
        params = rows * row
        return {
            "parameters": params,
            "gradients": params,
            "optimizer_state": states * params,
            "total": (2 + states) * params,
        }

    rows = n_users + n_items
    per_rank = -(-n_users // world_size) + -(-n_items // world_size)
    return {
        "replicated": breakdown(rows),
        "row_sharded": breakdown(per_rank),
        "rows": rows,
        "rows_per_rank": per_rank,
        "bytes_per_row": row,
        "optimizer_states": states,
        "world_size": world_size,
    }


# --------------------------------------------------------------------------- processes
@dataclass
class _Context:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: one process, no process group

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def barrier(self) -> None:
        if not self.distributed:
            return
        import torch.distributed as dist

        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def sync(self) -> None:
        """Wait for the device's queued work (a no-op on the CPU), so that times are right."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={value!r} must be an integer (torchrun sets it)"
        ) from None


def _start(config: DDPConfig) -> _Context:
    """Read torchrun's variables, pick the device, join the process group."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(
            f"RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world_size} are not a valid "
            "process layout: start the processes with torchrun (or plain python for one)"
        )
    check_world_size(config, world_size)
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise ValueError('device="cuda" but CUDA is not available here: use "auto" or "cpu"')
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s) are "
                "visible: start at most one process per GPU (--nproc-per-node), or use "
                'device="cpu"'
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = None
    if world_size > 1:
        import torch.distributed as dist

        backend = "nccl" if use_cuda else "gloo"
        if not dist.is_available():
            raise ValueError("this torch build has no torch.distributed: run one process")
        dist.init_process_group(backend=backend)
    return _Context(rank, world_size, local_rank, device, backend)


# --------------------------------------------------------------------------- model
def _build_model(config: DDPConfig, n_users: int, n_items: int) -> nn.Module:
    """The model, initialised from ``config.seed`` without changing torch's global generator."""
    from .models import GMF, NeuMF

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.model == "gmf":
            return GMF(n_users, n_items, dim=config.dim)
        return NeuMF(n_users, n_items, dim=config.dim)


def _maxrss_bytes() -> int:
    try:
        import resource
    except ImportError:  # Windows
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024


def _atomic_write_json(path: Path, payload: Any) -> None:
    """``payload`` as JSON, written atomically (:func:`recs_course.utils.atomic_write`)."""
    text = json.dumps(payload, indent=1).encode("utf-8")
    atomic_write(path, lambda handle: handle.write(text))


# --------------------------------------------------------------------------- the run
class _Trainer:
    """One process's share of a run (see the module docstring)."""

    def __init__(self, config: DDPConfig, ctx: _Context, resume: bool) -> None:
        self.config, self.ctx = config, ctx
        self.out = Path(config.out_dir)
        self.local_batch = config.batch_size // ctx.world_size
        if resume and not (self.out / CHECKPOINT_FILE).exists():
            raise ValueError(
                f"--resume: there is no {CHECKPOINT_FILE} in {self.out} to resume from: run "
                "without --resume to start, or point out_dir at the run to continue"
            )
        self.data = prepare_data(config)
        d = self.data
        self.users = d.users.to(ctx.device)
        self.items = d.items.to(ctx.device)
        self.keys = None if config.approximate_negatives else d.keys.to(ctx.device)
        self.module = _build_model(config, d.n_users, d.n_items).to(ctx.device)
        if config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.module.parameters(), lr=config.lr)
        else:
            self.optimizer = torch.optim.Adam(self.module.parameters(), lr=config.lr)
        self.records: list[dict[str, Any]] = []
        self.resumed_at: list[int] = []
        self.start_epoch = 1
        if resume:
            self._resume()
        elif ctx.rank == 0:
            for name in (CHECKPOINT_FILE, RESULTS_FILE):
                (self.out / name).unlink(missing_ok=True)
        self.model: nn.Module = self.module
        if ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.model = DDP(
                self.module,
                device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                gradient_as_bucket_view=True,
            )
        self.n_params = sum(p.numel() for p in self.module.parameters())
        n = d.users.numel()
        per_rank = -(-n // ctx.world_size)
        steps = -(-per_rank // self.local_batch)
        self.steps = steps if config.max_batches is None else min(steps, config.max_batches)

    # ----------------------------------------------------------------- resume
    def _resume(self) -> None:
        from .training import load_checkpoint, read_checkpoint

        path = self.out / CHECKPOINT_FILE
        stored = read_checkpoint(path)
        saved = stored.get("config")
        if not isinstance(saved, dict):
            raise ValueError(f"{path} holds no config: it was not written by this module")
        mine = self.config.to_dict()
        differ = sorted(
            k for k in set(mine) | set(saved) if k not in _RESUMABLE and saved.get(k) != mine.get(k)
        )
        if differ:
            shown = ", ".join(f"{k}: {saved.get(k)!r} -> {mine.get(k)!r}" for k in differ)
            raise ValueError(
                f"--resume: the config differs from the checkpoint's in {shown}; only epochs "
                "may change: resume with the run's config (its config.json), or start a new "
                "run in another out_dir"
            )
        load_checkpoint(path, self.module, self.optimizer)
        # The checkpoint's records, or results.json's when it has the same epochs: it is
        # written after the checkpoint and adds the last save's time to the last record.
        records = list(stored.get("records", []))
        try:
            written = read_results(self.out).get("epochs", [])[: len(records)]
        except ValueError:
            written = []
        same = [r.get("epoch") for r in written] == [r.get("epoch") for r in records]
        self.records = written if same else records
        self.resumed_at = list(stored.get("resumed_at", [])) + [int(stored["epoch"]) + 1]
        self.start_epoch = int(stored["epoch"]) + 1

    # ----------------------------------------------------------------- one epoch
    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg, ctx = self.config, self.ctx
        W, b, k = ctx.world_size, self.local_batch, cfg.n_neg
        n = self.data.users.numel()
        shard = shard_positions(n, W, ctx.rank, seed=cfg.seed, epoch=epoch)
        padded_last = bool(shard[-1] < 0)  # padding can only be a rank's last entry
        shard = shard.to(ctx.device)
        gen = _generator(derive_seed(cfg.seed, _NEGATIVES, epoch, ctx.rank), ctx.device)
        if cfg.same_negatives:  # the whole epoch's order, to draw each global batch's negatives
            order = _epoch_order(n, W, seed=cfg.seed, epoch=epoch).to(ctx.device)
        labels = torch.zeros(b, 1 + k, device=ctx.device)
        labels[:, 0] = 1.0
        times = dict.fromkeys(("sampling", "forward", "backward", "optimizer"), 0.0)
        loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
        real_positives = 0
        self.model.train()
        ctx.barrier()
        start = time.perf_counter()
        for t in range(self.steps):
            t0 = time.perf_counter()
            idx = shard[t * b : (t + 1) * b]
            m = idx.numel()
            # Real positives in global batch t: padded positions [tB, tB + W m) minus padding.
            real = min(n, t * b * W + W * m) - t * b * W
            pos = idx.clamp(min=0)
            u, i = self.users[pos], self.items[pos]
            if cfg.same_negatives:
                # Every rank draws the negatives of the whole global batch t from a generator
                # of (seed, epoch, t), in the global order, and keeps its own rows (r::W): the
                # examples do not depend on the number of processes.
                # Padding (-1) only ends the order: draw for the real positions alone, so that
                # W = 1 (no padding) draws the same numbers, then pad with rows carrying no loss.
                block = order[t * b * W : min(t * b * W + W * m, n)]
                step_gen = _generator(derive_seed(cfg.seed, _STEP_NEGATIVES, epoch, t), ctx.device)
                neg_all = draw_negatives(
                    self.users[block], self.data.n_items, k, keys=self.keys, generator=step_gen
                )
                if neg_all.shape[0] < W * m:
                    neg_all = torch.cat([neg_all, neg_all[: W * m - neg_all.shape[0]]])
                neg = neg_all[ctx.rank :: W]
            else:
                neg = draw_negatives(u, self.data.n_items, k, keys=self.keys, generator=gen)
            batch_u = u[:, None].expand(m, 1 + k).reshape(-1)
            batch_i = torch.cat([i[:, None], neg], dim=1).reshape(-1)
            ctx.sync()
            t1 = time.perf_counter()
            logits = self.model(batch_u, batch_i).view(m, 1 + k)
            per_row = F.binary_cross_entropy_with_logits(logits, labels[:m], reduction="none")
            if padded_last and t * b + m == shard.numel():  # the batch holding the marker
                per_row = per_row * (idx >= 0)[:, None]
            local_sum = per_row.sum()
            # DDP averages the W ranks' gradients: W * (local sum) / (global rows) averages to
            # the gradient of the mean over the global batch's rows.
            loss = local_sum * (W / (real * (1 + k)))
            ctx.sync()
            t2 = time.perf_counter()
            loss.backward()
            ctx.sync()
            t3 = time.perf_counter()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            loss_sum += local_sum.detach()
            real_positives += real
            ctx.sync()
            t4 = time.perf_counter()
            times["sampling"] += t1 - t0
            times["forward"] += t2 - t1
            times["backward"] += t3 - t2
            times["optimizer"] += t4 - t3
        # The epoch's mean loss over all ranks' rows, and the phases' times averaged over ranks.
        stats = torch.tensor(
            [float(loss_sum), *times.values()], dtype=torch.float64, device=ctx.device
        )
        if ctx.distributed:
            import torch.distributed as dist

            dist.all_reduce(stats)
            stats[1:] /= W
        train_s = time.perf_counter() - start
        rows = real_positives * (1 + k)
        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": float(stats[0]) / rows if rows else float("nan"),
            "steps": self.steps,
            "positives": real_positives,
            "examples": rows,
            "train_s": train_s,
            "examples_per_s": rows / train_s if train_s > 0 else None,
            "positives_per_s": real_positives / train_s if train_s > 0 else None,
            "time": {name: float(v) for name, v in zip(times, stats[1:].tolist(), strict=True)},
        }
        record["time"].update(self._time_allreduce())
        return record

    def _time_allreduce(self) -> dict[str, float | None]:
        """All-reduce alone: a flat float32 buffer of the model's gradient size, timed (median
        of three calls after one warm-up), and that time times the steps of an epoch."""
        ctx = self.ctx
        if not ctx.distributed:
            return {"allreduce_per_step": None, "allreduce_estimate": None}
        import torch.distributed as dist

        flat = torch.zeros(self.n_params, dtype=torch.float32, device=ctx.device)
        spans = []
        for trial in range(4):
            ctx.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(flat)
            ctx.sync()
            if trial:
                spans.append(time.perf_counter() - t0)
        per_step = float(np.median(spans))
        return {"allreduce_per_step": per_step, "allreduce_estimate": per_step * self.steps}

    def _memory(self) -> dict[str, Any]:
        ctx = self.ctx
        cuda = ctx.device.type == "cuda"
        mine = torch.tensor(
            [_maxrss_bytes(), torch.cuda.max_memory_allocated(ctx.device) if cuda else 0],
            dtype=torch.int64,
            device=ctx.device,
        )
        if ctx.distributed:
            import torch.distributed as dist

            parts = [torch.zeros_like(mine) for _ in range(ctx.world_size)]
            dist.all_gather(parts, mine)
            table = torch.stack(parts).cpu()
        else:
            table = mine.cpu()[None]
        return {
            "maxrss_bytes": table[:, 0].tolist(),
            "cuda_max_allocated_bytes": table[:, 1].tolist() if cuda else None,
        }

    def _evaluate(self) -> dict[str, float]:
        from .evaluation import evaluate_sampled

        d = self.data
        out = {}
        metrics = evaluate_sampled(self.module, d.test_users, d.test_candidates, ks=(10,))
        out.update({name: float(v) for name, v in metrics.items()})
        if d.valid_users is not None:
            valid = evaluate_sampled(self.module, d.valid_users, d.valid_candidates, ks=(10,))
            out.update({f"valid_{name}": float(v) for name, v in valid.items()})
        return out

    def _popularity(self) -> dict[str, float]:
        """HR@10 and NDCG@10 of ranking the same candidates by training popularity: the
        yardstick of the sampled protocol (a long tail makes most sampled negatives obscure)."""
        from .evaluation import evaluate_sampled
        from .models import Popularity

        if getattr(self, "_popularity_metrics", None) is None:
            d = self.data
            model = Popularity.from_interactions(
                d.users.numpy(), d.items.numpy(), d.n_users, d.n_items
            )
            metrics = evaluate_sampled(model, d.test_users, d.test_candidates, ks=(10,))
            self._popularity_metrics = {name: float(v) for name, v in metrics.items()}
        return self._popularity_metrics

    def summary(self) -> dict[str, Any]:
        ctx, d = self.ctx, self.data
        records = self.records
        examples = sum(r["examples"] for r in records)
        seconds = sum(r["train_s"] for r in records)
        final = records[-1] if records else {}
        return {
            "config": self.config.to_dict(),
            "world_size": ctx.world_size,
            "backend": ctx.backend,
            "device": str(ctx.device) if ctx.device.type == "cpu" else ctx.device.type,
            "threads_per_process": torch.get_num_threads(),
            "n_users": d.n_users,
            "n_items": d.n_items,
            "n_train": int(d.users.numel()),
            "n_test_users": int(d.test_users.numel()),
            "local_batch_size": self.local_batch,
            "steps_per_epoch": self.steps,
            "parameters": self.n_params,
            "resumed_at": self.resumed_at,
            "examples_per_s": examples / seconds if seconds > 0 else None,
            "popularity": self._popularity() if ctx.rank == 0 else None,
            "final": {k: v for k, v in final.items() if k in ("epoch", "loss") or "@" in k},
            "epochs": records,
        }

    def run(self) -> dict[str, Any]:
        from .training import save_checkpoint

        cfg, ctx = self.config, self.ctx
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            record = self._train_epoch(epoch)
            record["peak_memory"] = self._memory()
            if ctx.rank == 0:
                t0 = time.perf_counter()
                record.update(self._evaluate())
                t1 = time.perf_counter()
                record["time"]["evaluation"] = t1 - t0
                record["time"]["checkpoint"] = None  # known after the save
                record["wall_s"] = t1 - epoch_start
                self.records.append(record)
                save_checkpoint(
                    self.out / CHECKPOINT_FILE, self.module, self.optimizer,
                    epoch=epoch, config=cfg.to_dict(), world_size=ctx.world_size,
                    saved_by_rank=ctx.rank, records=self.records, resumed_at=self.resumed_at,
                )  # fmt: skip
                record["time"]["checkpoint"] = time.perf_counter() - t1
                record["wall_s"] = time.perf_counter() - epoch_start
                _atomic_write_json(self.out / RESULTS_FILE, self.summary())
                print(
                    f"epoch {epoch}/{cfg.epochs}: loss {record['loss']:.4f}  "
                    f"HR@10 {record['HR@10']:.4f}  NDCG@10 {record['NDCG@10']:.4f}  "
                    f"{record['examples_per_s']:.0f} examples/s  ({record['wall_s']:.2f} s)",
                    flush=True,
                )
            ctx.barrier()
        if ctx.rank == 0 and self.start_epoch > cfg.epochs:
            _atomic_write_json(self.out / RESULTS_FILE, self.summary())
        return self.summary()


# --------------------------------------------------------------------------- entry points
def read_config(path: str | os.PathLike[str]) -> DDPConfig:
    """A config from a JSON file written by :func:`launch` (or by hand)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist: write one (launch does)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config file {path} is not readable JSON: {exc}") from None
    return DDPConfig.from_dict(values)


def read_results(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The results JSON of a run (``out_dir/results.json``)."""
    path = Path(out_dir) / RESULTS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist: the run has not finished an epoch") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not readable JSON: {exc}") from None


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Run one process of a training run (``python -m recs_course.distributed --config
    cfg.json [--resume]``, under torchrun or alone): the results dict on rank 0 (what it wrote
    to ``results.json``), ``None`` on the other ranks."""
    parser = argparse.ArgumentParser(
        prog="python -m recs_course.distributed",
        description="Data-parallel NCF training with torch.distributed (run under torchrun).",
    )
    parser.add_argument("--config", required=True, help="a JSON file of DDPConfig fields")
    parser.add_argument("--resume", action="store_true", help="continue from out_dir's checkpoint")
    args = parser.parse_args(argv)
    config = read_config(args.config)
    threads = torch.get_num_threads()
    ctx = _start(config)
    try:
        if ctx.device.type == "cpu":
            torch.set_num_threads(1)  # one thread per process: W processes share the cores
        if ctx.rank == 0:
            print(
                f"recs_course.distributed: {ctx.world_size} process(es), backend "
                f"{ctx.backend or 'none (one process)'}, device {ctx.device.type}"
                + (", 1 torch thread per process" if ctx.device.type == "cpu" else ""),
                flush=True,
            )
        results = _Trainer(config, ctx, args.resume).run()
        return results if ctx.rank == 0 else None
    finally:
        torch.set_num_threads(threads)
        if ctx.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def _cli() -> int:
    try:
        main()
    except (ValueError, FileNotFoundError) as exc:
        print(f"{ERROR_PREFIX} {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


def launch(
    config: DDPConfig,
    nproc: int = 1,
    *,
    resume: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run :func:`main` in ``nproc`` fresh processes and return the results dict.

    Writes ``config`` to ``out_dir/config.json`` and runs ``python -m torch.distributed.run
    --standalone --nproc-per-node=N -m recs_course.distributed --config ...`` (``nproc=1``:
    plain ``python -m recs_course.distributed``), with this environment plus ``PYTHONPATH``
    (so the children import this ``recs_course``) and ``OMP_NUM_THREADS=1``.

    Args:
        config: the run.
        nproc: processes (ranks) on this machine; ``config.batch_size`` must be a multiple.
        resume: continue from ``out_dir``'s checkpoint (``--resume``).
        timeout: seconds before the processes are killed (a ``RuntimeError``); ``None``: no
            limit.

    Returns:
        The parsed ``out_dir/results.json``.

    Raises:
        ValueError: a bad argument (before anything starts).
        RuntimeError: the processes failed (the children's error lines and the tail of their
            stderr) or ran past ``timeout``.
    """
    if not isinstance(config, DDPConfig):
        raise ValueError(f"config must be a DDPConfig, got {type(config).__name__}")
    nproc = check_positive_int("nproc", nproc)
    check_world_size(config, nproc)
    resume = check_flag("resume", resume)
    if timeout is not None:
        timeout = check_number("timeout", timeout, low=0.0, strict=True, hint=" (seconds)")
    out = Path(config.out_dir)
    path = out / CONFIG_FILE
    _atomic_write_json(path, config.to_dict())
    if nproc == 1:
        cmd = [sys.executable, "-m", "recs_course.distributed"]
    else:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "recs_course.distributed",
        ]  # fmt: skip
    cmd += ["--config", str(path)] + (["--resume"] if resume else [])
    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"
    # Python >= 3.11: do not put the working directory first on sys.path, so that the children
    # import the recs_course this function belongs to, not a folder of that name in the cwd.
    env["PYTHONSAFEPATH"] = "1"
    posix = os.name == "posix"
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=posix,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except BaseException as exc:  # timeout, KeyboardInterrupt: stop every process we started
        if posix:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            proc.kill()
        proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise RuntimeError(
                f"the run did not finish within timeout={timeout} s and was stopped: raise "
                "timeout, or lower epochs / max_batches"
            ) from None
        raise
    if proc.returncode != 0:
        ours = [line for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
        cause = ours[0][len(ERROR_PREFIX) :].strip() if ours else "see the stderr below"
        tail = stderr[-4000:]
        raise RuntimeError(
            f"recs_course.distributed with {nproc} process(es) failed (exit status "
            f"{proc.returncode}): {cause}\n--- end of stderr ---\n{tail}"
        )
    return read_results(out)


if __name__ == "__main__":
    sys.exit(_cli())
