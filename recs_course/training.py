"""The course's training loop, its history, seeding and checkpoints.

:func:`fit` is one loop for every model of the course: the model and the optimiser are built by
the caller, the loss is a ``(model, batch) -> scalar`` callable (see :mod:`recs_course.losses`),
and the data is any iterable of batches (tuples of tensors), iterated once per epoch. For
implicit feedback, :class:`recs_course.data.InstanceBatches` draws fresh negatives at every
pass (a callable ``epoch -> iterable`` of batches works too)::

    train_data = InstanceBatches(train, n_items, "pointwise", n_neg=4, batch_size=1024,
                                 generator=gen)
    history = fit(model, train_data, "bce", torch.optim.Adam(model.parameters(), lr=1e-3),
                  epochs=20, evaluate=lambda m: evaluate_sampled(m, users, candidates),
                  monitor="HR@10", patience=3)

Each epoch trains on every batch, then calls ``evaluate(model)`` with the model in eval mode
(dropout off) under ``torch.no_grad()``, records the results, keeps a copy of the best weights
according to ``monitor`` and stops after ``patience`` epochs without improvement.

Several optimisers can share the parameters out, each stepped on every batch: sparse embeddings
(``MF(sparse=True)``) need one that takes sparse gradients, the other parameters a dense one::

    model = MF(n_users, n_items, sparse=True)
    sparse = [model.user_embedding.weight, model.item_embedding.weight,
              model.user_bias.weight, model.item_bias.weight]
    history = fit(model, batches, "mse",
                  [torch.optim.SparseAdam(sparse, lr=1e-2),
                   torch.optim.Adam([model.global_bias], lr=1e-2)], epochs=10)
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from .losses import LossFn, get_loss
from .models.base import check_module, check_positive_int, place_model, restored_modes
from .utils import check_flag, check_number, get_device, progress_bar

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "fit",
    "History",
    "NonFiniteLossError",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
]

TrainData = Iterable[Sequence[Tensor]] | Callable[[int], Iterable[Sequence[Tensor]]]
_RESERVED = ("epoch", "loss", "lr", "time")
_MIN_HINTS = ("loss", "rmse", "mse", "mae", "error")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``epoch`` and ``batch`` say where (1-based)."""

    def __init__(self, message: str, epoch: int, batch: int) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


@dataclass
class History:
    """What :func:`fit` recorded.

    Attributes:
        records: one dict per epoch with ``epoch`` (1-based), ``loss`` (mean training loss of the
            epoch, weighted by batch size), the metrics returned by ``evaluate``, ``lr`` (the
            rate of the epoch's last optimiser step, first optimiser, first parameter group) and
            ``time`` (seconds for training plus evaluation).
        lrs: the learning rate of every optimiser step (first optimiser, first parameter group),
            for plots.
        best_epoch: the epoch (1-based) with the best ``monitor`` value, ``None`` without monitor.
        best: the record of that epoch, ``None`` without monitor.
        stopped_early: whether ``patience`` ended the training before ``epochs``.
        monitor, mode: the monitored key and ``"max"`` or ``"min"``.
    """

    records: list[dict[str, float]] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best: dict[str, float] | None = None
    stopped_early: bool = False
    monitor: str | None = None
    mode: str | None = None

    @property
    def epochs(self) -> int:
        """The number of epochs run."""
        return len(self.records)

    def to_frame(self) -> pd.DataFrame:
        """The records as a DataFrame, one row per epoch."""
        import pandas as pd

        if not self.records:
            return pd.DataFrame(columns=["epoch", "loss", "lr", "time"])
        return pd.DataFrame.from_records(self.records)

    def plot(self, metrics: Sequence[str] | None = None, ax: Axes | None = None) -> Axes:
        """Plot the loss and metrics per epoch (see :func:`recs_course.plots.plot_history`)."""
        from .plots import plot_history

        return plot_history(self, metrics=metrics, ax=ax)


# --------------------------------------------------------------------------- batches and data
def _move_batch(batch: Any, device: torch.device) -> tuple[Any, ...]:
    """A batch as a tuple with its tensors on ``device`` (a lone tensor becomes a 1-tuple)."""
    if isinstance(batch, Tensor):
        batch = (batch,)
    if not isinstance(batch, (tuple, list)):
        raise ValueError(
            f"a batch must be a tuple of tensors, got {type(batch).__name__}; "
            "recs_course.data.Batches yields the right thing"
        )
    return tuple(x.to(device, non_blocking=True) if isinstance(x, Tensor) else x for x in batch)


def _epoch_batches(train_data: Any, epoch: int) -> Iterable[Any]:
    """The batches of one epoch: ``train_data`` itself, or ``train_data(epoch)`` for a callable."""
    if hasattr(train_data, "__iter__"):
        return train_data
    if callable(train_data):
        batches = train_data(epoch)
        if not hasattr(batches, "__iter__"):
            raise ValueError(
                f"train_data({epoch}) returned {type(batches).__name__}, not an iterable of "
                "batches: the callable must return the epoch's batches (e.g. a Batches object)"
            )
        return batches
    raise ValueError(
        f"train_data must be an iterable of batches or a callable epoch -> iterable, "
        f"got {type(train_data).__name__}"
    )


def _check_train_data(train_data: Any, epochs: int | None) -> None:
    """Refuse a one-shot iterator (a generator, ``iter(list)``) for more than one epoch
    (``epochs=None``: as many passes as needed, as :func:`~recs_course.schedules.lr_range_test`
    makes, which starts the data again when it runs out).

    An iterator is its own ``__iter__`` and has ``__next__``: ``collections.abc.Iterator``
    recognises it without starting it (a generator's code would run up to its first ``yield``).
    """
    if (epochs is None or epochs > 1) and isinstance(train_data, Iterator):
        raise ValueError(
            "train_data is a one-shot iterator (e.g. a generator): it would be empty from "
            "the second pass over the data on. Pass a list, a Batches object, or a callable "
            "epoch -> iterable that builds the batches of each epoch"
        )


def _batch_size(batch: tuple[Any, ...]) -> int:
    for x in batch:
        if isinstance(x, Tensor):
            return int(x.shape[0]) if x.ndim else 1
    return 1


# --------------------------------------------------------------------------- optimisers
def _as_optimizers(optimizer: object) -> tuple[torch.optim.Optimizer, ...]:
    """``optimizer`` as a tuple: one optimiser, or a non-empty list or tuple of them."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return (optimizer,)
    hint = (
        "a torch optimizer built on the model's parameters, e.g. "
        "torch.optim.Adam(model.parameters(), lr=1e-3), or a list of them that shares the "
        "parameters out, e.g. [torch.optim.SparseAdam(embeddings), torch.optim.Adam(others)]"
    )
    if isinstance(optimizer, (list, tuple)) and optimizer:
        for k, opt in enumerate(optimizer):
            if not isinstance(opt, torch.optim.Optimizer):
                raise ValueError(f"optimizer[{k}] must be {hint}, got {type(opt).__name__}")
        return tuple(optimizer)
    raise ValueError(f"optimizer must be {hint}, got {optimizer!r:.80}")


def _optimizer_name(optimizers: Sequence[torch.optim.Optimizer], k: int) -> str:
    label = "optimizer" if len(optimizers) == 1 else f"optimizer[{k}]"
    return f"{label} ({type(optimizers[k]).__name__})"


def _sparse_parameters(model: nn.Module) -> set[int]:
    """The ids of the parameters whose gradients are sparse: weights of ``nn.Embedding`` and
    ``nn.EmbeddingBag`` built with ``sparse=True`` (as ``MF(sparse=True)``)."""
    return {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse
    }


#: torch's optimisers that step sparse gradients; its other ones raise at the first step.
_SPARSE_CAPABLE = (torch.optim.SGD, torch.optim.Adagrad, torch.optim.SparseAdam)


def _check_optimizers(model: nn.Module, optimizers: Sequence[torch.optim.Optimizer]) -> None:
    """Check, by identity and before anything trains, that the optimisers share out ``model``'s
    trainable parameters: each one held by exactly one optimiser.

    Refused, with a ``ValueError`` naming the parameter: a parameter in two optimisers (stepped
    twice per batch); a trainable parameter (``requires_grad``) in none (it would get gradients
    and never move: freeze it with ``requires_grad_(False)`` instead); optimisers holding none of
    the model's parameters (built on another model, or on one built before this one); a
    sparse-gradient parameter (``nn.Embedding(sparse=True)``) in one of torch's optimisers that
    cannot step it, and a dense one in ``SparseAdam``. Frozen parameters may be in an optimiser
    or not; parameters that are not the model's (a loss's own) are allowed.
    """
    names = {id(p): name for name, p in model.named_parameters()}
    owner: dict[int, int] = {}
    for k, opt in enumerate(optimizers):
        for group in opt.param_groups:
            for p in group["params"]:
                if owner.setdefault(id(p), k) != k:
                    name = names.get(id(p), f"of shape {tuple(p.shape)}")
                    raise ValueError(
                        f"parameter {name} is in {_optimizer_name(optimizers, owner[id(p)])} "
                        f"and in {_optimizer_name(optimizers, k)}: it would be stepped twice per "
                        "batch. Give each parameter to one optimizer"
                    )
    if not names:
        return  # a model without parameters (Popularity): nothing to train, nothing to check
    model_name = type(model).__name__
    if not owner.keys() & names.keys():
        which = "optimizer holds" if len(optimizers) == 1 else "optimizers hold"
        raise ValueError(
            f"{which} none of this {model_name}'s parameters (was it built on another model, "
            "or on one built before this one?): build it after the model, on model.parameters()"
        )
    left_out = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in owner]
    if left_out:
        raise ValueError(
            f"this {model_name}'s trainable parameters {left_out[:5]} are in no optimizer: they "
            "would get gradients and never change. Add them to an optimizer (each parameter to "
            "exactly one), or freeze them with parameter.requires_grad_(False)"
        )
    sparse = _sparse_parameters(model)
    for k, opt in enumerate(optimizers):
        held = [p for group in opt.param_groups for p in group["params"] if id(p) in names]
        if isinstance(opt, torch.optim.SparseAdam):
            dense = [names[id(p)] for p in held if id(p) not in sparse and p.requires_grad]
            if dense:
                raise ValueError(
                    f"{_optimizer_name(optimizers, k)} holds {dense[:5]}, whose gradients are "
                    "dense: SparseAdam steps only embeddings built with sparse=True. Put the "
                    "other parameters in a second optimizer, e.g. optimizer=["
                    "torch.optim.SparseAdam(sparse_ones), torch.optim.Adam(dense_ones)]"
                )
        elif type(opt).__module__.startswith("torch.optim") and not isinstance(
            opt, _SPARSE_CAPABLE
        ):
            bad = [names[id(p)] for p in held if id(p) in sparse]
            if bad:
                raise ValueError(
                    f"{_optimizer_name(optimizers, k)} cannot step {bad[:5]}, whose gradients "
                    "are sparse (an embedding built with sparse=True): give them to "
                    "torch.optim.SparseAdam, Adagrad or SGD, and the other parameters to this one"
                )


def _own_sparse_grads(params: Sequence[Tensor]) -> None:
    """Give every sparse gradient values of its own (coalesced), before anything changes them
    in place.

    An embedding's sparse gradient keeps the gradient it received as its values: in ``MF`` the
    user and the item bias tables get the very same tensor, so an in-place operation on one
    (``GradScaler.unscale_``, clipping) changes the other too, and unscaling both divides them
    twice. Coalescing makes new values (and sums the rows looked up twice, as the optimisers
    taking sparse gradients do anyway).
    """
    for p in params:
        grad = p.grad
        if grad is not None and grad.is_sparse:
            coalesced = grad.coalesce()
            p.grad = coalesced.clone() if coalesced is grad else coalesced


def _clip_grad_norm(params: Sequence[Tensor], max_norm: float) -> None:
    """``nn.utils.clip_grad_norm_``, which also handles sparse gradients.

    torch's version cannot take the norm of a sparse gradient; those get values of their own
    (:func:`_own_sparse_grads`) scaled with the same formula: every gradient times
    ``min(1, max_norm / (total_norm + 1e-6))``.
    """
    if not any(p.grad is not None and p.grad.is_sparse for p in params):
        nn.utils.clip_grad_norm_(params, max_norm)
        return
    _own_sparse_grads(params)
    grads = [p.grad for p in params if p.grad is not None]
    values = [g._values() if g.is_sparse else g for g in grads]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in values]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for v in values:
        v.mul_(scale.to(v.device, v.dtype))


# --------------------------------------------------------------------------- schedulers
def _scheduler_cadence(scheduler: Any, scheduler_step: str | None) -> str:
    """``"batch"``, ``"epoch"`` or ``"plateau"``: when ``fit`` steps ``scheduler``.

    ``ReduceLROnPlateau`` is stepped once per epoch with the monitored value. Otherwise an
    explicit ``scheduler_step`` decides; without it, schedulers whose steps count optimiser
    steps (``OneCycleLR``, ``CyclicLR``, :class:`recs_course.schedules.ScheduleLR`) are
    stepped per batch and those whose steps count epochs (``StepLR``, ``MultiStepLR``,
    ``ExponentialLR``) per epoch. Any other scheduler is read both ways in practice
    (``CosineAnnealingLR``'s ``T_max``, ``LambdaLR``'s function), so it needs the choice.
    """
    from torch.optim import lr_scheduler as lrs

    from .schedules import ScheduleLR

    name = type(scheduler).__name__
    if isinstance(scheduler, lrs.ReduceLROnPlateau):
        if scheduler_step == "batch":
            raise ValueError(
                "ReduceLROnPlateau is stepped once per epoch with the monitored value (the "
                "training loss without monitor): leave scheduler_step=None or pass 'epoch'"
            )
        return "plateau"
    if scheduler_step is not None:
        return scheduler_step
    if isinstance(scheduler, (lrs.OneCycleLR, lrs.CyclicLR, ScheduleLR)):
        return "batch"
    if isinstance(scheduler, (lrs.StepLR, lrs.MultiStepLR, lrs.ExponentialLR)):
        return "epoch"
    raise ValueError(
        f"fit cannot tell whether this {name} should be stepped after every batch or after "
        "every epoch: pass scheduler_step='batch' if its steps count optimiser steps (as "
        "OneCycleLR's total_steps) or scheduler_step='epoch' if they count epochs (as "
        "StepLR's step_size or CosineAnnealingLR(T_max=epochs))"
    )


class _Schedules:
    """The learning-rate schedulers of one :func:`fit` call and when each one is stepped."""

    def __init__(
        self,
        scheduler: Any,
        scheduler_step: str | None,
        optimizers: Sequence[torch.optim.Optimizer],
    ) -> None:
        if scheduler_step not in (None, "batch", "epoch"):
            raise ValueError(
                f"scheduler_step must be 'batch', 'epoch' or None (decided from the scheduler's "
                f"class), got {scheduler_step!r}"
            )
        if scheduler is None:
            schedulers: list[Any] = []
        elif isinstance(scheduler, (list, tuple)):
            schedulers = list(scheduler)
        else:
            schedulers = [scheduler]
        self.entries: list[tuple[Any, str]] = []
        for s in schedulers:
            if not callable(getattr(s, "step", None)):
                raise ValueError(
                    f"scheduler must be a learning-rate scheduler with a step() method (e.g. "
                    f"torch.optim.lr_scheduler.OneCycleLR or recs_course.schedules.ScheduleLR), "
                    f"a list of them, or None, got {type(s).__name__}"
                )
            stepped = getattr(s, "optimizer", None)
            if isinstance(stepped, torch.optim.Optimizer) and not any(
                stepped is opt for opt in optimizers
            ):
                raise ValueError(
                    f"this {type(s).__name__} was built on another optimizer than the one(s) "
                    "given to fit: its rates would change an optimizer that trains nothing. Build "
                    "the scheduler on the optimizer you pass"
                )
            self.entries.append((s, _scheduler_cadence(s, scheduler_step)))

    def after_batch(self) -> None:
        for scheduler, when in self.entries:
            if when == "batch":
                scheduler.step()

    def after_epoch(self, monitored: float) -> None:
        """Step the per-epoch schedulers; ``ReduceLROnPlateau`` gets ``monitored``."""
        for scheduler, when in self.entries:
            if when == "plateau":
                scheduler.step(monitored)
            elif when == "epoch":
                scheduler.step()


# --------------------------------------------------------------------------- precision
@dataclass
class _Precision:
    """Mixed precision: the ``autocast`` dtype (None: full precision) and, for float16 only, the
    gradient scaler shared by all the optimisers (one ``scale``, one ``step`` per optimiser,
    one ``update`` per batch, as torch's AMP recipe for several optimisers does)."""

    device_type: str
    dtype: torch.dtype | None = None
    scaler: Any = None

    @classmethod
    def choose(cls, device: torch.device, amp: bool) -> _Precision:
        if amp and device.type != "cuda":
            warnings.warn(
                f"amp=True has no effect on {device.type}: fit uses mixed precision on CUDA only",
                UserWarning,
                stacklevel=3,
            )
        if not amp or device.type != "cuda":
            return cls(device.type)
        if torch.cuda.is_bf16_supported():
            return cls("cuda", torch.bfloat16)
        scaler = (
            torch.amp.GradScaler("cuda")
            if hasattr(torch.amp, "GradScaler")
            else torch.cuda.amp.GradScaler()  # torch < 2.3
        )
        return cls("cuda", torch.float16, scaler)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(
        self,
        value: Tensor,
        optimizers: Sequence[torch.optim.Optimizer],
        params: Sequence[Tensor],
        clip_grad: float | None,
    ) -> None:
        """Back-propagate ``value``, clip the gradients' global norm, step every optimiser."""
        if self.scaler is None:
            value.backward()
            if clip_grad is not None:
                _clip_grad_norm(params, clip_grad)
            for opt in optimizers:
                opt.step()
            return
        self.scaler.scale(value).backward()
        _own_sparse_grads(params)  # unscale_ works in place: aliased values would be hit twice
        if clip_grad is not None:
            for opt in optimizers:
                self.scaler.unscale_(opt)
            _clip_grad_norm(params, clip_grad)
        for opt in optimizers:
            self.scaler.step(opt)  # skipped, for every optimiser, when a gradient is not finite
        self.scaler.update()


# --------------------------------------------------------------------------- one epoch
@dataclass
class _Step:
    """One training step on one batch: zero the gradients, compute the loss, step."""

    model: nn.Module
    loss_fn: LossFn
    optimizers: Sequence[torch.optim.Optimizer]
    precision: _Precision
    clip_grad: float | None = None
    params: list[Tensor] = field(init=False)

    def __post_init__(self) -> None:
        self.params = [
            p for opt in self.optimizers for group in opt.param_groups for p in group["params"]
        ]

    def lr(self) -> float:
        """The rate the next step uses: the first optimiser's first parameter group's."""
        return float(self.optimizers[0].param_groups[0]["lr"])

    def __call__(self, batch: tuple[Any, ...]) -> Tensor:
        """The batch's loss (detached, still on the device: reading it would synchronise)."""
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        with self.precision.autocast():
            value = self.loss_fn(self.model, batch)
        if not isinstance(value, Tensor) or value.ndim != 0:
            raise ValueError(
                f"the loss must return a scalar tensor, got {type(value).__name__}"
                + (f" of shape {tuple(value.shape)}" if isinstance(value, Tensor) else "")
            )
        self.precision.backward_and_step(value, self.optimizers, self.params, self.clip_grad)
        return value.detach()


def _read_losses(pending: list[tuple[int, float, Tensor, int]], epoch: int) -> tuple[float, int]:
    """Read the pending batch losses back (one synchronisation), check them and empty the list.

    ``pending`` holds ``(batch number, lr, loss tensor, batch size)``; returns the sum of
    ``loss * size`` and the sum of sizes.
    """
    values = torch.stack([entry[2] for entry in pending]).float().cpu().tolist()
    total, count = 0.0, 0
    for (batch_no, lr, _, size), value in zip(pending, values, strict=True):
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the loss is {value} in epoch {epoch}, batch {batch_no} (learning rate "
                f"{lr:.3g}): lower the learning rate, clip the gradients (clip_grad=...), or "
                "check the inputs (finite ratings and labels, indices in range)",
                epoch=epoch,
                batch=batch_no,
            )
        total += value * size
        count += size
    pending.clear()
    return total, count


def _train_epoch(
    step: _Step,
    train_data: Any,
    epoch: int,
    device: torch.device,
    schedules: _Schedules,
    read_every: int,
    lrs: list[float],
) -> tuple[float, float]:
    """Train on every batch of epoch ``epoch`` (0-based); append each step's rate to ``lrs``.

    The losses stay on the device and are read back every ``read_every`` batches (a
    synchronisation on accelerators), checked finite. Returns the epoch's mean loss weighted by
    batch size and the rate of its last step.
    """
    step.model.train()
    pending: list[tuple[int, float, Tensor, int]] = []  # (batch number, lr, loss, batch size)
    loss_sum, n_seen = 0.0, 0
    lr = step.lr()
    index = -1
    for index, raw in enumerate(_epoch_batches(train_data, epoch)):
        batch = _move_batch(raw, device)
        lr = step.lr()
        value = step(batch)
        lrs.append(lr)
        pending.append((index + 1, lr, value, _batch_size(batch)))
        schedules.after_batch()
        if len(pending) >= read_every:
            total, count = _read_losses(pending, epoch + 1)
            loss_sum, n_seen = loss_sum + total, n_seen + count
    if pending:
        total, count = _read_losses(pending, epoch + 1)
        loss_sum, n_seen = loss_sum + total, n_seen + count
    if index < 0:
        raise ValueError(
            f"train_data gave no batches in epoch {epoch + 1}"
            + (f" (train_data({epoch}) was empty)" if callable(train_data) else "")
        )
    return loss_sum / max(n_seen, 1), lr


# ------------------------------------------------------------- evaluation and early stopping
def _infer_mode(monitor: str) -> str:
    name = monitor.lower()
    return "min" if any(hint in name for hint in _MIN_HINTS) else "max"


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _run_evaluate(evaluate: Callable[[nn.Module], Mapping[str, float]], model: nn.Module) -> dict:
    with restored_modes(model), torch.no_grad():
        model.eval()  # dropout off, batch-norm statistics frozen
        out = evaluate(model)
    if not isinstance(out, Mapping):
        raise ValueError(f"evaluate must return a dict of metric name -> number, got {out!r}")
    metrics: dict[str, float] = {}
    for key, value in out.items():
        if key in _RESERVED:
            raise ValueError(
                f"evaluate returned the key {key!r}, which fit uses for its own column "
                f"({', '.join(_RESERVED)}); rename it, e.g. 'val_{key}'"
            )
        try:
            metrics[str(key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metric {key!r} = {value!r} is not a number") from exc
    return metrics


def _epoch_record(
    epoch: int,
    loss: float,
    lr: float,
    start: float,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None,
    model: nn.Module,
) -> dict[str, float]:
    """The history's row of epoch ``epoch`` (0-based): loss, ``evaluate``'s metrics, lr, time."""
    record: dict[str, float] = {"epoch": epoch + 1, "loss": loss}
    if evaluate is not None:
        record.update(_run_evaluate(evaluate, model))
    record["lr"] = lr
    record["time"] = time.perf_counter() - start
    return record


@dataclass
class _EarlyStopping:
    """The best epoch by ``monitor``, a CPU copy of its weights, and the count of epochs since."""

    monitor: str | None
    mode: str | None
    patience: int | None
    min_delta: float
    restore_best: bool
    best_value: float | None = None
    best_state: dict[str, Tensor] | None = None
    bad_epochs: int = 0

    def update(self, record: dict[str, float], model: nn.Module, history: History) -> float | None:
        """Compare the epoch's record with the best so far; return the monitored value (None
        without ``monitor``)."""
        if self.monitor is None:
            return None
        if self.monitor not in record:
            available = [k for k in record if k not in ("epoch", "lr", "time")]
            raise ValueError(f"monitor={self.monitor!r} is not among {available}")
        current = record[self.monitor]
        if _improved(current, self.best_value, self.mode or "max", self.min_delta):
            self.best_value = current
            history.best_epoch = int(record["epoch"])
            history.best = dict(record)
            self.bad_epochs = 0
            if self.restore_best:
                self.best_state = _cpu_state(model)
        else:
            self.bad_epochs += 1
        return current

    @property
    def exhausted(self) -> bool:
        """``patience`` epochs in a row without an improvement."""
        return self.patience is not None and self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)


# --------------------------------------------------------------------------- progress
def _progress_bar(total: int, progress: bool) -> Any:
    """One bar over the epochs (see :func:`recs_course.utils.progress_bar`)."""
    return progress_bar(
        total, progress=progress, desc="fit", unit="epoch", leave=False, dynamic_ncols=True
    )


def _show_progress(bar: Any, record: Mapping[str, float]) -> None:
    """Advance the bar by one epoch, showing the epoch's loss and metrics."""
    shown = {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "lr", "time")}
    bar.set_postfix(shown, refresh=False)
    bar.update(1)


# --------------------------------------------------------------------------- arguments
@dataclass
class _FitArguments:
    """:func:`fit`'s plain arguments, checked (integers as ``int``, numbers as ``float``)."""

    epochs: int
    mode: str | None
    patience: int | None
    min_delta: float
    clip_grad: float | None
    log_every: int | None


def _check_fit_arguments(
    epochs: object,
    evaluate: object,
    monitor: str | None,
    mode: str | None,
    patience: object,
    min_delta: object,
    clip_grad: object,
    log_every: object,
) -> _FitArguments:
    """Check :func:`fit`'s plain arguments; ``mode`` is inferred from ``monitor`` if None.

    Integers (``epochs``, ``patience``, ``log_every``) by ``models.base.check_positive_int``
    (numpy integers accepted, bool refused), numbers by :func:`recs_course.utils.check_number`.
    """
    epochs = check_positive_int("epochs", epochs)
    if patience is not None:
        patience = check_positive_int("patience", patience)
    if patience is not None and monitor is None:
        raise ValueError("patience needs monitor=...: a key returned by evaluate, or 'loss'")
    if monitor is not None and monitor != "loss" and evaluate is None:
        raise ValueError(
            f"monitor={monitor!r} needs evaluate=... returning it (only 'loss' works without)"
        )
    if mode is None:
        mode = _infer_mode(monitor) if monitor is not None else None
    elif mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    min_delta = check_number("min_delta", min_delta, low=0.0)
    if clip_grad is not None:
        clip_grad = check_number("clip_grad", clip_grad, low=0.0, strict=True, hint=" or None")
    if log_every is not None:
        log_every = check_positive_int("log_every", log_every)
    return _FitArguments(epochs, mode, patience, min_delta, clip_grad, log_every)


# --------------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    train_data: TrainData,
    loss: str | LossFn,
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    epochs: int,
    *,
    scheduler: Any = None,
    scheduler_step: str | None = None,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    monitor: str | None = None,
    mode: str | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    clip_grad: float | None = None,
    amp: bool = False,
    log_every: int | None = None,
) -> History:
    """Train ``model`` for up to ``epochs`` epochs and return its :class:`History`.

    Each epoch trains on every batch (:func:`_train_epoch`: one :class:`_Step` per batch, in
    the :class:`_Precision` chosen), then evaluates and records the epoch
    (:func:`_epoch_record`), keeps the best weights and counts the epochs without improvement
    (:class:`_EarlyStopping`), steps the per-epoch schedulers (:class:`_Schedules`) and
    advances the progress bar.

    Args:
        model: an ``nn.Module`` (anything else is a ``ValueError``, as in the evaluators); the
            loss decides which of its methods are called.
        train_data: an iterable of batches, each a tuple of tensors such as ``(users (B,),
            items (B,), labels (B,))``, iterated once per epoch (a list, a ``Batches``, a
            ``DataLoader``, an ``InstanceBatches`` that draws fresh negatives at every pass; not
            a one-shot iterator such as a generator, unless ``epochs=1``); or a callable
            ``epoch -> iterable`` called with ``epoch = 0, 1, ..., epochs - 1``. Tensors are
            moved to the device with ``non_blocking=True``.
        loss: a name of :func:`recs_course.losses.get_loss` or a callable ``(model, batch)``.
        optimizer: built by the caller on the model's parameters; or a list of optimisers that
            share them out, all zeroed and stepped on every batch, e.g. ``[SparseAdam(sparse
            embeddings), Adam(the rest)]`` for ``MF(sparse=True)``, or a separate optimiser with
            its own rate for the biases. Every trainable parameter (``requires_grad``) of the
            model must be in exactly one of them (frozen ones may be left out).
        epochs: the maximum number of epochs (a positive integer; numpy integers too, as for
            ``patience`` and ``log_every``).
        scheduler: a learning-rate scheduler (or a list of them, e.g. one per optimiser),
            stepped after every optimiser step or after every epoch, see ``scheduler_step``.
            ``ReduceLROnPlateau`` is always stepped once per epoch with the monitored value
            (the training loss without ``monitor``). It must be built on one of the optimisers.
        scheduler_step: ``"batch"`` or ``"epoch"``. ``None`` (default) decides from the
            scheduler's class: per batch for ``OneCycleLR``, ``CyclicLR`` and
            :class:`recs_course.schedules.ScheduleLR` (their steps are optimiser steps), per
            epoch for ``StepLR``, ``MultiStepLR`` and ``ExponentialLR``; any other scheduler
            (``CosineAnnealingLR``, ``LambdaLR``, ...) needs it given.
        evaluate: ``model -> dict[str, float]``, called after each epoch in eval mode under
            ``torch.no_grad()``; its keys become columns of the history (they may not be
            ``epoch``, ``loss``, ``lr``, ``time``).
        monitor: the key that selects the best epoch: a key of ``evaluate``'s dict, or
            ``"loss"`` for the training loss.
        mode: ``"max"`` or ``"min"``; by default ``"min"`` when ``monitor`` contains "loss",
            "rmse", "mse", "mae" or "error", else ``"max"``.
        patience: stop after this many epochs without an improvement of the monitored value
            larger than ``min_delta`` (needs ``monitor``).
        restore_best: load the weights of the best epoch back at the end (a copy kept on the
            CPU), so the model leaves ``fit`` as it was at ``history.best_epoch``.
        device: ``None`` trains where the model already is; otherwise any value of
            :func:`recs_course.utils.get_device` (``"auto"``, ``"cpu"``, ``"cuda"``), and the
            model is moved there (:func:`recs_course.models.base.place_model`, the rule of
            :func:`~recs_course.schedules.lr_range_test` and every ``evaluate_*``).
        progress: show a progress bar over the epochs with the last metrics (a widget in
            notebooks; in a terminal only when stderr is a TTY). ``RECS_COURSE_PROGRESS=0``
            in the environment turns it off everywhere.
        clip_grad: clip the global norm of all the optimisers' gradients (sparse ones
            included) to this value before each step.
        amp: mixed precision on CUDA (bfloat16 where supported, else float16 with one gradient
            scaler for all the optimisers); on other devices it has no effect and a warning
            says so.
        log_every: read the loss back from the device every this many batches to check that
            it is finite (default 20: on accelerators each read is a synchronisation, on the
            CPU reading every batch costs ~25 us a step, 2-3% of a small model's step). A
            non-finite loss is reported with the first batch where it appeared.

    Returns:
        The :class:`History`; its rates are those of the first optimiser's first parameter
        group. Every submodule of the model is left in the train/eval mode it came in (training
        runs in train mode, ``evaluate`` in eval mode).

    Raises:
        NonFiniteLossError: (a ``FloatingPointError``) the loss became NaN or infinite; the
            message says in which epoch and batch. The weights are then probably not finite.
        ValueError: inconsistent arguments (a parameter in two optimisers or a trainable one
            in none, a scheduler whose cadence cannot be told), an epoch without batches, a
            ``monitor`` that ``evaluate`` does not return.
    """
    check_module(model)
    args = _check_fit_arguments(
        epochs, evaluate, monitor, mode, patience, min_delta, clip_grad, log_every
    )
    restore_best = check_flag("restore_best", restore_best)
    progress = check_flag("progress", progress)
    amp = check_flag("amp", amp)
    optimizers = _as_optimizers(optimizer)
    _check_optimizers(model, optimizers)
    schedules = _Schedules(scheduler, scheduler_step, optimizers)
    _check_train_data(train_data, args.epochs)
    loss_fn = get_loss(loss)

    # In place: optimisers built on model.parameters() still hold them after the move.
    dev = place_model(model, device)
    step = _Step(model, loss_fn, optimizers, _Precision.choose(dev, amp), args.clip_grad)
    stopping = _EarlyStopping(monitor, args.mode, args.patience, args.min_delta, restore_best)
    read_every = args.log_every or 20
    history = History(monitor=monitor, mode=args.mode)
    bar = _progress_bar(args.epochs, progress)
    try:
        with restored_modes(model):  # every submodule leaves in the mode it came in
            for epoch in range(args.epochs):
                start = time.perf_counter()
                loss_value, lr = _train_epoch(
                    step, train_data, epoch, dev, schedules, read_every, history.lrs
                )
                record = _epoch_record(epoch, loss_value, lr, start, evaluate, model)
                history.records.append(record)
                current = stopping.update(record, model, history)
                schedules.after_epoch(record["loss"] if current is None else current)
                _show_progress(bar, record)
                if stopping.exhausted:
                    history.stopped_early = epoch + 1 < args.epochs
                    break
    finally:
        bar.close()
    stopping.restore(model)
    return history


# --------------------------------------------------------------------------- seeding
def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, numpy's and torch's global generators (CUDA included).

    It also asks cuDNN for deterministic kernels (``deterministic=True``, ``benchmark=False``),
    which is cheap for the course's models. Together with a single thread count this makes two
    runs of the same CPU training identical; GPU kernels may still differ in the last bits.

    This is the only function of ``recs_course`` that touches global random state, and it does
    so because the reader calls it. Library functions take a ``seed`` or a generator instead:
    pass them the returned ``torch.Generator`` (seeded with ``seed``) for data sampling.

    Returns:
        A new CPU ``torch.Generator`` seeded with ``seed``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global generator is what we reseed
    torch.manual_seed(seed)  # seeds every CUDA device as well
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- checkpoints
_PLAIN_TYPES = (type(None), bool, int, float, str)


def _check_plain(obj: Any, where: str) -> None:
    if type(obj) in _PLAIN_TYPES or isinstance(obj, Tensor):
        return
    if type(obj) in (list, tuple):
        for i, item in enumerate(obj):
            _check_plain(item, f"{where}[{i}]")
        return
    if type(obj) is dict:
        for key, item in obj.items():
            if type(key) not in (str, int):
                raise ValueError(f"{where} has a key {key!r}: only str and int keys can be stored")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise ValueError(
        f"{where} is a {type(obj).__name__}: a checkpoint holds only numbers, strings, None, "
        "lists, tuples, dicts and tensors (use torch.as_tensor for arrays, .item() or float() "
        "for numpy scalars, and plain data for objects), so that it loads with weights_only=True"
    )


ARCHITECTURE_KEY = "architecture"
"""Checkpoint entry holding ``repr(model)`` (its class and options), checked by
:func:`load_checkpoint` with ``strict=True``."""


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer] | None = None,
    **extra: Any,
) -> Path:
    """Save ``{"model": state_dict, "optimizer": state_dict, **extra}`` atomically.

    The file is written to a temporary file in the same folder and renamed over ``path``
    (``os.replace``), so an interrupted save never leaves a truncated checkpoint. The parent
    folder is created if needed.

    Args:
        path: the file to write (``.pt`` by convention).
        model: its ``state_dict()`` is stored under ``"model"``.
        optimizer: its ``state_dict()``, if given, under ``"optimizer"``; for a list of
            optimisers (as :func:`fit` takes), the list of their state dicts, in order.
        **extra: plain data to store beside them (epoch, history records, config): numbers,
            strings, None, lists, tuples, dicts and tensors only, which is what
            ``torch.load(weights_only=True)`` can read back without unpickling code.

    Returns:
        The path written.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(
            f"path must be the file to write (a str or pathlib.Path), got {path!r:.80}"
        )
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model must be the torch module whose weights are saved, got {type(model).__name__}"
        )
    if optimizer is not None:
        optimizers = _as_optimizers(optimizer)
    _check_plain(extra, "extra")
    reserved = sorted(set(extra) & {"model", "optimizer", ARCHITECTURE_KEY})
    if reserved:
        raise ValueError(f"extra entries may not be called {reserved}: the checkpoint uses them")
    # The model's options (repr: sizes, y_range, n_layers, ...), checked when loading: weights
    # of the same shapes loaded into a model built with other options would change its scores.
    payload: dict[str, Any] = {"model": model.state_dict(), ARCHITECTURE_KEY: repr(model)}
    if optimizer is not None:
        states = [opt.state_dict() for opt in optimizers]
        payload["optimizer"] = states[0] if isinstance(optimizer, torch.optim.Optimizer) else states
    payload.update(extra)
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"path {path} is a folder: pass a file name inside it, e.g. {path / 'model.pt'}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _describe_unreadable(path: Path) -> str:
    """What a file that ``torch.load`` cannot read looks like, from its size and first bytes."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(64)
    if head.startswith(b"PK"):
        kind = "a zip archive that torch cannot read: truncated, corrupt or not from torch.save"
    elif head.startswith(b"\x80"):
        kind = "a pickle that torch.load cannot read: truncated, or not from torch.save"
    elif b"\x00" not in head and all(chr(b).isprintable() or b in b"\t\n\r" for b in head[:48]):
        kind = f"a text file starting {head[:24].decode('latin-1')!r}"
    else:
        kind = "unrecognised binary data"
    return f"{kind}, {size} bytes"


def _not_a_checkpoint(path: object, why: str) -> ValueError:
    return ValueError(
        f"{path} is not a recs_course checkpoint ({why}): load a file written by "
        "save_checkpoint(path, model, ...), or save it again"
    )


def _check_model_state(path: object, state: Any, model: nn.Module, strict: bool) -> None:
    """Refuse, before anything is loaded, a state dict that does not fit ``model``."""
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise _not_a_checkpoint(
            path, f"its 'model' entry is a {type(state).__name__}, not a state dict"
        )
    expected = model.state_dict()
    name = type(model).__name__
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"this {name} has {len(missing)} entries the file lacks {missing[:5]}")
        if unexpected:
            parts.append(
                f"the file has {len(unexpected)} entries this {name} lacks {unexpected[:5]}"
            )
        raise ValueError(
            f"{path} was saved from another model: {'; '.join(parts)}. Build the same model "
            "(class and options such as biases or layers) as the one saved, or pass "
            "strict=False to load only the matching entries"
        )
    for key, mine in expected.items():
        stored = state.get(key)
        if key not in state or not isinstance(mine, Tensor):
            continue
        if not isinstance(stored, Tensor):
            raise _not_a_checkpoint(
                path, f"entry {key!r} is a {type(stored).__name__}, not a tensor"
            )
        if stored.shape != mine.shape:
            raise ValueError(
                f"{path} was saved from a model with {key} of shape {tuple(stored.shape)}; this "
                f"{name} has {tuple(mine.shape)}: build the model with the same sizes (n_users, "
                "n_items, dim, layers, ...) as the saved one"
            )


def _check_optimizer_state(
    path: object, state: object, optimizer: torch.optim.Optimizer, label: str = "optimizer"
) -> None:
    """Refuse an optimizer state that does not fit ``optimizer``, before anything is loaded.

    torch checks the numbers of groups and parameters, but loads the state of another optimizer
    class without complaint (an Adam state into SGD fails only at the first ``step``, with a
    ``KeyError``). The hyper-parameter names of each group tell the classes apart.
    """
    fix = "build the optimizer as when saving (same class, on the same parameters and groups)"
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError(f"{path}: its {label} entry is not an optimizer state_dict")
    current = optimizer.param_groups
    if len(groups) != len(current):
        raise ValueError(
            f"{path}: its {label} state has {len(groups)} parameter groups, this "
            f"{type(optimizer).__name__} has {len(current)}: {fix}"
        )
    for i, (saved, mine) in enumerate(zip(groups, current, strict=True)):
        saved_keys, my_keys = set(saved) - {"params"}, set(mine) - {"params"}
        # Another torch version may add or drop a setting of the same class (torch fills in
        # defaults); another class has settings of its own on both sides.
        if saved_keys - my_keys and my_keys - saved_keys:
            raise ValueError(
                f"{path}: its {label} state is of another optimizer class than this "
                f"{type(optimizer).__name__} (group {i} has the settings "
                f"{sorted(saved_keys - my_keys)} this one lacks, and lacks "
                f"{sorted(my_keys - saved_keys)}): {fix}"
            )
        if len(saved.get("params", ())) != len(mine["params"]):
            raise ValueError(
                f"{path}: group {i} of its {label} state has {len(saved.get('params', ()))} "
                f"parameters, this optimizer's has {len(mine['params'])}: {fix}"
            )


def _check_map_location(map_location: object) -> object:
    """``map_location`` checked before the file is read, with a ``ValueError`` naming it.

    Accepted: a device as :func:`recs_course.utils.get_device` reads it (``torch.device`` or a
    string such as ``"cpu"``, ``"cuda:0"``; CUDA or MPS only where available; ``"auto"`` is
    resolved to a device), a dict or a callable (torch's other forms), or None.
    """
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return map_location
    if not isinstance(map_location, (str, torch.device)):
        raise ValueError(
            f"map_location must be a device such as 'cpu' or 'cuda', got "
            f"{type(map_location).__name__}: use map_location='cpu'"
        )
    try:
        return get_device(map_location)
    except ValueError as exc:
        raise ValueError(f"map_location={map_location!r} cannot be used: {exc}") from None


def _optimizer_states(
    path: object,
    checkpoint: dict[str, Any],
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
) -> list[Any]:
    """The stored optimiser states as a list, matched with ``optimizer``: one state for one
    optimiser, a list of as many for a list."""
    if "optimizer" not in checkpoint:
        raise ValueError(f"{path} holds no optimizer state: save it with optimizer=...")
    stored = checkpoint["optimizer"]
    fix = "pass them as when saving: save_checkpoint(path, model, optimizer) stores one state"
    fix += ", save_checkpoint(path, model, [opt_a, opt_b]) a list"
    if isinstance(optimizer, torch.optim.Optimizer):
        if isinstance(stored, list):
            raise ValueError(
                f"{path} holds the states of {len(stored)} optimizers, and one optimizer was "
                f"given: {fix}"
            )
        return [stored]
    if not isinstance(stored, list):
        raise ValueError(
            f"{path} holds the state of one optimizer, and a list of {len(optimizer)} was "
            f"given: {fix}"
        )
    if len(stored) != len(optimizer):
        raise ValueError(
            f"{path} holds the states of {len(stored)} optimizers, and {len(optimizer)} were "
            f"given: {fix}"
        )
    return stored


def _read_checkpoint(path: str | os.PathLike[str], map_location: object) -> dict[str, Any]:
    """The dict a :func:`save_checkpoint` file holds, read with ``weights_only=True``; every
    problem with the file (missing, empty, unreadable, not a checkpoint) is the error
    :func:`load_checkpoint` documents."""
    map_location = _check_map_location(map_location)
    if isinstance(path, (str, os.PathLike)):
        file = Path(path)
        if not file.exists():
            raise FileNotFoundError(
                f"no checkpoint file at {path}: check the path (save_checkpoint(path, model) "
                "writes one)"
            )
        if file.is_dir():
            raise ValueError(f"{path} is a folder: pass the checkpoint file inside it")
        if file.stat().st_size == 0:
            raise _not_a_checkpoint(path, "empty file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not a refused object: unreadable data
            why = _describe_unreadable(Path(path)) if isinstance(path, (str, os.PathLike)) else ""
            raise _not_a_checkpoint(path, why or "unreadable") from exc
        raise ValueError(
            f"{path} holds objects that weights_only loading refuses to unpickle (they could run "
            "code): it was not written by save_checkpoint. Only if you trust its source, read "
            "it with torch.load(path, weights_only=False)"
        ) from exc
    except Exception as exc:  # EOFError, KeyError, torch's stream RuntimeError, ...
        if "deserialize object on" in str(exc) or "map_location" in str(exc):
            raise ValueError(
                f"{path}: its tensors cannot be loaded with map_location={map_location!r} "
                f"({exc}); use map_location='cpu'"
            ) from exc
        why = _describe_unreadable(Path(path)) if isinstance(path, (str, os.PathLike)) else ""
        raise _not_a_checkpoint(path, why or f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(checkpoint, dict):
        raise _not_a_checkpoint(
            path, f"it holds a {type(checkpoint).__name__}, not the dict save_checkpoint writes"
        )
    if "model" not in checkpoint:
        if checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
            raise ValueError(
                f"{path} holds a bare state dict (torch.save(model.state_dict())), not a "
                "checkpoint of save_checkpoint: load it with "
                "model.load_state_dict(torch.load(path, weights_only=True))"
            )
        keys = sorted(map(str, checkpoint))[:8]
        raise _not_a_checkpoint(path, f"no 'model' entry; its keys are {keys}")
    return checkpoint


def read_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """The extra entries of a checkpoint, without a model to load it into.

    What :func:`load_checkpoint` returns, read the same way (``torch.load(weights_only=True)``:
    no pickle, no code runs) and with the same checks of the file, for what is needed *before*
    a model can be built: a hybrid model's ``config()`` and its feature encoders'
    ``to_dict()``, saved with ``save_checkpoint(path, model, hybrid=model.config(), ...)``::

        stored = read_checkpoint(path)
        model = HybridMF.from_config(stored["hybrid"])
        load_checkpoint(path, model)

    Args:
        path: the checkpoint file.
        map_location: as in :func:`load_checkpoint`.

    Returns:
        Everything but ``"model"``, ``"optimizer"`` and ``"architecture"``.
    """
    checkpoint = _read_checkpoint(path, map_location)
    return {
        k: v for k, v in checkpoint.items() if k not in ("model", "optimizer", ARCHITECTURE_KEY)
    }


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer] | None = None,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    The file is read with ``torch.load(weights_only=True)``, which rebuilds tensors and plain
    data but refuses to unpickle arbitrary objects: loading a checkpoint cannot run code.
    Everything is checked before the model is changed: a file that is empty, truncated, not a
    torch file or not a checkpoint, or whose weights do not fit the model (other entries, other
    shapes), raises ``ValueError`` naming the file and the problem; a missing file raises
    ``FileNotFoundError``.

    Args:
        path: the checkpoint file.
        model: receives the stored weights (``load_state_dict(strict=strict)``); tensors are
            copied onto the model's own device whatever ``map_location`` is.
        optimizer: receives the stored optimiser state, if given; a list of optimisers
            receives the list that ``save_checkpoint`` wrote for one (same length, same order;
            one optimiser for a list, or a list for one, is a ``ValueError``).
        map_location: where the stored tensors are loaded first (the CPU by default): a device
            as :func:`recs_course.utils.get_device` reads it (checked before the file is read:
            ``"gpu"`` or an unavailable CUDA is a ``ValueError`` naming ``map_location``), or
            torch's dict or callable forms.
        strict: refuse entries that the model lacks or that the file lacks (shapes are checked
            either way).

    Returns:
        The extra entries stored with the weights (everything but ``"model"`` and
        ``"optimizer"``).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model must be the torch module to load the weights into, got {type(model).__name__}"
        )
    strict = check_flag("strict", strict)
    optimizers = () if optimizer is None else _as_optimizers(optimizer)
    checkpoint = _read_checkpoint(path, map_location)
    _check_model_state(path, checkpoint["model"], model, strict)
    saved_architecture = checkpoint.get(ARCHITECTURE_KEY)
    if strict and isinstance(saved_architecture, str) and saved_architecture != repr(model):
        raise ValueError(
            f"{path} was saved from a model built with other options:\n{saved_architecture}\n"
            f"this model is\n{model!r}\nbuild the model as when saving (or pass strict=False "
            "to load the weights all the same)"
        )
    states = [] if optimizer is None else _optimizer_states(path, checkpoint, optimizer)
    for k, (state, opt) in enumerate(zip(states, optimizers, strict=True)):
        label = "optimizer" if len(optimizers) == 1 else f"optimizer[{k}]"
        _check_optimizer_state(path, state, opt, label)
    try:
        model.load_state_dict(checkpoint["model"], strict=strict)
    except RuntimeError as exc:  # what the checks above may not foresee
        raise ValueError(f"{path} does not fit this {type(model).__name__}: {exc}") from exc
    for state, opt in zip(states, optimizers, strict=True):
        try:
            opt.load_state_dict(state)
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
            raise ValueError(
                f"{path}: its optimizer state does not fit this optimizer ({exc}): build the "
                "optimizer as when saving (same class, on the same parameters and groups)"
            ) from exc
    return {
        k: v for k, v in checkpoint.items() if k not in ("model", "optimizer", ARCHITECTURE_KEY)
    }
