"""Learning-rate schedules as pure functions of the step, a scheduler that applies them, and the
learning-rate range test.

The schedule functions compute the learning rate of step ``t`` (``t = 0`` before the first
optimiser step) in closed form, for one step or a whole numpy array of steps at once, so a chapter
can plot a schedule without building an optimiser. They follow PyTorch's definitions exactly
(:class:`torch.optim.lr_scheduler.CyclicLR` and
:class:`~torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`): stepping either scheduler ``t``
times leaves the optimiser at the rate the function gives for ``t``. Their argument ``base_lr`` is
always the *low* end of the range and ``max_lr`` the high end.

- :func:`triangular`: from ``base_lr`` up to ``max_lr`` in ``step_size`` steps and back down.
- :func:`triangular2`: the same, with the amplitude halved after each full cycle.
- :func:`exp_range`: the amplitude multiplied by ``gamma ** t``.
- :func:`cosine_restarts`: from ``max_lr`` down to ``base_lr`` along half a cosine in ``t_0``
  steps, then a restart at ``max_lr``; each period is ``t_mult`` times longer than the last (SGDR).

:class:`ScheduleLR` turns any such function into a PyTorch scheduler, and :func:`lr_range_test`
with :func:`suggest_lr` finds a learning rate worth starting from (Smith, "Cyclical learning
rates for training neural networks", 2017).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from .losses import LossFn, get_loss
from .models.base import check_module, check_positive_int, place_model, restored_modes
from .training import (
    _as_optimizers,
    _check_optimizers,
    _check_train_data,
    _epoch_batches,
    _move_batch,
)
from .utils import check_number

__all__ = [
    "triangular",
    "triangular2",
    "exp_range",
    "cosine_restarts",
    "ScheduleLR",
    "lr_range_test",
    "suggest_lr",
]

Steps = int | float | np.ndarray | Sequence[int]


def _steps(step: Steps) -> tuple[np.ndarray, bool]:
    raw = np.asarray(step)
    if raw.dtype.kind not in "iuf":
        raise ValueError(
            f"step must be a number >= 0 or an array of them, got {step!r:.80} (dtype "
            f"{raw.dtype}): pass ints such as 0, 1, 2 or numpy.arange(n)"
        )
    arr = raw.astype(np.float64)
    if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr < 0)):
        raise ValueError("steps must be finite and non-negative (step 0 is the first step)")
    return arr, arr.ndim == 0


def _out(values: np.ndarray, scalar: bool) -> float | np.ndarray:
    return float(values) if scalar else values


def _check_range(base_lr: float, max_lr: float) -> tuple[float, float]:
    hint = " (learning rates are never negative)"
    return (
        check_number("base_lr", base_lr, low=0.0, hint=hint),
        check_number("max_lr", max_lr, low=0.0, hint=hint),
    )


def _cyclic(
    step: Steps,
    base_lr: float,
    max_lr: float,
    step_size: float,
    step_size_down: float | None,
    scale: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> float | np.ndarray:
    t, scalar = _steps(step)
    base_lr, max_lr = _check_range(base_lr, max_lr)
    up = check_number("step_size", step_size, low=0.0, strict=True)
    down = (
        up
        if step_size_down is None
        else check_number("step_size_down", step_size_down, low=0.0, strict=True)
    )
    total = up + down
    ratio = up / total
    cycle = np.floor(1.0 + t / total)  # 1 for the first cycle, as in PyTorch
    x = 1.0 + t / total - cycle  # position in the cycle, in [0, 1)
    height = np.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
    return _out(base_lr + (max_lr - base_lr) * height * scale(cycle, t), scalar)


def triangular(
    step: Steps,
    base_lr: float,
    max_lr: float,
    step_size: float,
    step_size_down: float | None = None,
) -> float | np.ndarray:
    """Triangular cyclical learning rate (``CyclicLR(mode="triangular")``).

    Args:
        step: a step number ``t >= 0`` or an array of them (any shape).
        base_lr: the rate at the bottom of each cycle (the rate of step 0).
        max_lr: the rate at the top, reached after ``step_size`` steps.
        step_size: steps from bottom to top (PyTorch's ``step_size_up``).
        step_size_down: steps from top back to bottom (default: ``step_size``).

    Returns:
        A float for a scalar step, else an array of ``step``'s shape.
    """
    return _cyclic(step, base_lr, max_lr, step_size, step_size_down, lambda c, t: 1.0)


def triangular2(
    step: Steps,
    base_lr: float,
    max_lr: float,
    step_size: float,
    step_size_down: float | None = None,
) -> float | np.ndarray:
    """Triangular cycles whose amplitude halves after each cycle (``mode="triangular2"``).

    Cycle ``c = 1, 2, ...`` peaks at ``base_lr + (max_lr - base_lr) / 2 ** (c - 1)``. Arguments and
    return value as in :func:`triangular`.
    """
    return _cyclic(
        # 0.5 ** (c - 1) rather than 1 / 2 ** (c - 1): the same powers of two, but after
        # ~1000 cycles it underflows quietly to 0 where 2 ** (c - 1) overflows with a warning.
        step,
        base_lr,
        max_lr,
        step_size,
        step_size_down,
        lambda c, t: 0.5 ** (c - 1.0),
    )


def exp_range(
    step: Steps,
    base_lr: float,
    max_lr: float,
    step_size: float,
    gamma: float,
    step_size_down: float | None = None,
) -> float | np.ndarray:
    """Triangular cycles whose amplitude decays as ``gamma ** step`` (``mode="exp_range"``).

    Args:
        gamma: the decay per step, in (0, 1] (``0.9995`` roughly halves it in 1400 steps).

    Other arguments and the return value as in :func:`triangular`.
    """
    gamma = check_number("gamma", gamma, low=0.0, strict=True)
    if gamma > 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    return _cyclic(step, base_lr, max_lr, step_size, step_size_down, lambda c, t: gamma**t)


def cosine_restarts(
    step: Steps,
    base_lr: float,
    max_lr: float,
    t_0: int,
    t_mult: int = 1,
) -> float | np.ndarray:
    """Cosine annealing with warm restarts (SGDR, ``CosineAnnealingWarmRestarts``).

    Within a period of ``T_i`` steps the rate falls from ``max_lr`` to ``base_lr`` along
    ``base_lr + (max_lr - base_lr) * (1 + cos(pi * T_cur / T_i)) / 2`` and restarts at ``max_lr``.
    The first period lasts ``t_0`` steps, each next one ``t_mult`` times longer.

    Args:
        step: a step number ``t >= 0`` or an array of them.
        base_lr: the minimum rate (PyTorch's ``eta_min``).
        max_lr: the rate at each restart (the optimiser's rate in PyTorch).
        t_0: steps in the first period (a positive integer).
        t_mult: growth factor of the periods (an integer ``>= 1``).

    Returns:
        A float for a scalar step, else an array of ``step``'s shape.
    """
    t, scalar = _steps(step)
    base_lr, max_lr = _check_range(base_lr, max_lr)
    t_0 = check_positive_int("t_0", t_0)
    t_mult = check_positive_int("t_mult", t_mult)
    if t_mult == 1:
        period = np.full_like(t, float(t_0))
        t_cur = np.mod(t, t_0)
    else:
        # Restart n starts at t_0 * (t_mult**n - 1) / (t_mult - 1); the logarithm gives n up to
        # rounding, corrected below so that restarts land exactly on their step.
        n = np.floor(np.log(t / t_0 * (t_mult - 1) + 1.0) / math.log(t_mult))

        def start(k: np.ndarray) -> np.ndarray:
            return t_0 * (float(t_mult) ** k - 1.0) / (t_mult - 1)

        n = np.where(t >= start(n + 1), n + 1, n)
        n = np.where(t < start(n), n - 1, n)
        t_cur = t - start(n)
        period = t_0 * float(t_mult) ** n
    return _out(base_lr + (max_lr - base_lr) * (1.0 + np.cos(np.pi * t_cur / period)) / 2.0, scalar)


class ScheduleLR(LRScheduler):
    """A PyTorch scheduler that sets the rate of step ``t`` to ``schedule(t, **kwargs)``.

    ``t`` counts the calls to :meth:`step` (``t = 0`` right after construction), so
    ``ScheduleLR(opt, triangular, base_lr=1e-4, max_lr=1e-2, step_size=100)`` stepped once per
    batch gives exactly the rates of
    ``CyclicLR(opt, 1e-4, 1e-2, step_size_up=100, cycle_momentum=False)``. Every parameter group
    gets the same rate; for group-specific rates use :class:`torch.optim.lr_scheduler.LambdaLR`.

    Args:
        optimizer: the optimiser whose rates are set.
        schedule: ``schedule(step, **kwargs) -> float``, e.g. one of this module's functions.
        last_epoch: the index of the last step when resuming (``-1``: start afresh).
        **kwargs: the schedule's other arguments.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: Callable[..., float | np.ndarray],
        last_epoch: int = -1,
        **kwargs: Any,
    ) -> None:
        if not callable(schedule):
            raise ValueError(f"schedule must be callable, got {type(schedule).__name__}")
        self.schedule = schedule
        self.schedule_kwargs = kwargs
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state without the schedule function (plain data, as ``LambdaLR``).

        It can go into :func:`recs_course.training.save_checkpoint`; on loading, build the
        scheduler with the same function and call ``load_state_dict``.
        """
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "schedule")}

    def get_lr(self) -> list[float]:
        """The rates of step ``self.last_epoch`` for every parameter group."""
        try:
            lr = float(self.schedule(self.last_epoch, **self.schedule_kwargs))
        except TypeError as exc:  # missing or unknown keyword arguments of the schedule
            raise ValueError(
                f"ScheduleLR could not call the schedule with step={self.last_epoch} and "
                f"{sorted(self.schedule_kwargs)}: {exc}; pass its other arguments as keywords, "
                "e.g. ScheduleLR(opt, triangular, base_lr=1e-4, max_lr=1e-2, step_size=100)"
            ) from None
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"the schedule gave learning rate {lr} at step {self.last_epoch}")
        return [lr for _ in self.optimizer.param_groups]


def lr_range_test(
    model: nn.Module,
    train_data: Iterable[Sequence[Tensor]] | Callable[[int], Iterable[Sequence[Tensor]]],
    loss: str | LossFn,
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    num_steps: int = 100,
    smooth: float = 0.05,
    diverge: float = 4.0,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Train with an exponentially growing learning rate and record the loss of each step.

    Step ``i`` uses ``start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))`` for every
    parameter group (of every optimiser, when several share the parameters out). The loss is
    smoothed by a bias-corrected exponential moving average with weight ``smooth`` on the newest
    batch; the test stops early once the smoothed loss exceeds ``diverge`` times its minimum (or
    the loss is not finite). The batches of ``train_data`` are reused from the start when it
    runs out (a callable gets epoch numbers 0, 1, ...), so a one-shot iterator (a generator,
    ``iter(list)``) is refused, as by :func:`~recs_course.training.fit` for several epochs.

    The model's weights, the train/eval mode of each of its submodules and the optimisers'
    states (rates included) are restored afterwards: the test only looks.

    Args:
        model, train_data, loss, optimizer, device: as in :func:`recs_course.training.fit`
            (one optimiser or a list of them, checked by the same rules; ``device`` by
            :func:`recs_course.models.base.place_model`).
        start_lr, end_lr: the first and the last rate tried, ``0 < start_lr < end_lr``.
        num_steps: the number of steps (batches), at least 2.
        smooth: weight of the newest loss in the moving average, in (0, 1].
        diverge: stop when the smoothed loss exceeds this multiple of its minimum (> 1).

    Returns:
        A DataFrame with one row per step taken and columns ``lr``, ``loss``, ``smoothed``
        (``frame.attrs["smooth"]`` records ``smooth`` for :func:`suggest_lr`).
    """
    check_module(model)
    start_lr = check_number("start_lr", start_lr, low=0.0, strict=True)
    end_lr = check_number("end_lr", end_lr, low=0.0, strict=True)
    if not start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr=} and {end_lr=}")
    num_steps = check_positive_int("num_steps", num_steps)
    if num_steps < 2:
        raise ValueError(f"num_steps must be at least 2 (start_lr and end_lr), got {num_steps}")
    smooth = check_number("smooth", smooth, low=0.0, strict=True)
    if smooth > 1:
        raise ValueError(f"smooth must be in (0, 1], got {smooth}")
    diverge = check_number("diverge", diverge, low=1.0, strict=True)
    optimizers = _as_optimizers(optimizer)
    _check_optimizers(model, optimizers)
    _check_train_data(train_data, epochs=None)
    loss_fn = get_loss(loss)
    dev = place_model(model, device)

    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_opts = [copy.deepcopy(opt.state_dict()) for opt in optimizers]
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    rows: list[tuple[float, float, float]] = []
    avg, best = 0.0, math.inf
    try:
        with restored_modes(model):  # every submodule's train/eval flag, as it came in
            model.train()
            batches = _cycle_batches(train_data)
            for i, lr in enumerate(lrs):
                for opt in optimizers:
                    for group in opt.param_groups:
                        group["lr"] = float(lr)
                batch = _move_batch(next(batches), dev)
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                value = loss_fn(model, batch)
                current = float(value.detach())
                if not math.isfinite(current):
                    rows.append((float(lr), current, math.nan))
                    break
                value.backward()
                for opt in optimizers:
                    opt.step()
                avg = (1.0 - smooth) * avg + smooth * current
                smoothed = avg / (1.0 - (1.0 - smooth) ** (i + 1))
                rows.append((float(lr), current, smoothed))
                best = min(best, smoothed)
                if smoothed > diverge * best:
                    break
    finally:
        model.load_state_dict(saved_model)
        for opt, state in zip(optimizers, saved_opts, strict=True):
            opt.load_state_dict(state)
    frame = pd.DataFrame(rows, columns=["lr", "loss", "smoothed"])
    frame.attrs["smooth"] = smooth
    return frame


def _cycle_batches(train_data: Any) -> Any:
    epoch = 0
    while True:
        empty = True
        for batch in _epoch_batches(train_data, epoch):
            empty = False
            yield batch
        if empty:
            raise ValueError(
                f"train_data gave no batches in pass {epoch + 1} over the data"
                + (f" (train_data({epoch}) was empty)" if callable(train_data) else "")
            )
        epoch += 1


def suggest_lr(frame: pd.DataFrame, method: str = "steepest") -> float:
    """Suggest a learning rate from the result of :func:`lr_range_test`.

    ``method="steepest"`` (default) returns the rate where the smoothed loss falls fastest: the
    most negative slope of ``smoothed`` against ``log10(lr)``, looked for between the first
    reliable step and the minimum of the smoothed loss. The first smoothed values average few
    batches and are noisy: the first ``1 / smooth`` steps, the memory of the moving average, are
    skipped (``smooth`` read from ``frame.attrs``, else 10% of the rows). Each slope is a
    difference over a window of about 5% of the points on either side, so that the
    batch-to-batch noise left in the smoothed loss does not win over the real descent.
    ``method="min/10"`` returns a tenth of the rate at the minimum of the smoothed loss, the rule
    of thumb of fastai's first versions; it is the more cautious of the two when the minimum is
    sharp and the descent short.

    Raises:
        ValueError: ``frame`` is not a range test's result, ``method`` is unknown, or too few
            finite rows to read a slope from (run the test for longer or with a lower
            ``start_lr``).
    """
    if not isinstance(frame, pd.DataFrame) or not {"lr", "smoothed"} <= set(frame.columns):
        raise ValueError("frame must be the DataFrame returned by lr_range_test")
    if method not in ("steepest", "min/10"):
        raise ValueError(f"unknown method {method!r}: use 'steepest' or 'min/10'")
    data = frame[np.isfinite(frame["smoothed"].to_numpy(dtype=float))]
    lr = data["lr"].to_numpy(dtype=float)
    smoothed = data["smoothed"].to_numpy(dtype=float)
    if len(lr) < 3:
        raise ValueError(
            f"only {len(lr)} finite points in the range test: use more steps or a lower start_lr"
        )
    lowest = int(np.argmin(smoothed))
    if method == "min/10":
        return float(lr[lowest] / 10.0)
    x = np.log10(lr)
    half = max(1, len(x) // 20)
    idx = np.arange(len(x))
    left = np.clip(idx - half, 0, len(x) - 1)
    right = np.clip(idx + half, 0, len(x) - 1)
    slope = (smoothed[right] - smoothed[left]) / (x[right] - x[left])
    smooth = frame.attrs.get("smooth")
    skip_start = int(round(1.0 / smooth)) if smooth else len(x) // 10
    start = min(max(0, skip_start), max(0, lowest - 1))
    candidates = np.arange(start, max(lowest, start + 1))
    return float(lr[candidates[np.argmin(slope[candidates])]])
