"""Schedules equal PyTorch's schedulers step for step; the range test only looks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts, CyclicLR

from recs_course.schedules import (
    ScheduleLR,
    cosine_restarts,
    exp_range,
    lr_range_test,
    suggest_lr,
    triangular,
    triangular2,
)

N_STEPS = 600


def _rates(make_optimizer, make_scheduler, n=N_STEPS) -> np.ndarray:
    """The learning rate used by each of ``n`` optimiser steps."""
    param = nn.Parameter(torch.zeros(2))
    optimizer = make_optimizer([param])
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(n):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(rates)


OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.1),
    "adam": lambda params: torch.optim.Adam(params, lr=0.1),
}

CYCLIC = [
    ("triangular", triangular, {}),
    ("triangular2", triangular2, {}),
    ("exp_range", exp_range, {"gamma": 0.997}),
]


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize(("mode", "fn", "extra"), CYCLIC, ids=[c[0] for c in CYCLIC])
@pytest.mark.parametrize(("up", "down"), [(50, None), (30, 70)])
def test_cyclic_functions_match_torch_cycliclr(opt, mode, fn, extra, up, down):
    torch_rates = _rates(
        OPTIMIZERS[opt],
        lambda o: CyclicLR(
            o,
            base_lr=1e-4,
            max_lr=1e-2,
            step_size_up=up,
            step_size_down=down,
            mode=mode,
            gamma=extra.get("gamma", 1.0),
            cycle_momentum=False,
        ),
    )
    steps = np.arange(N_STEPS)
    ours = fn(steps, 1e-4, 1e-2, up, step_size_down=down, **extra)
    assert np.allclose(ours, torch_rates, rtol=1e-12, atol=0)
    via_scheduler = _rates(
        OPTIMIZERS[opt],
        lambda o: ScheduleLR(
            o, fn, base_lr=1e-4, max_lr=1e-2, step_size=up, step_size_down=down, **extra
        ),
    )
    assert np.allclose(via_scheduler, torch_rates, rtol=1e-12, atol=0)


@pytest.mark.parametrize("t_mult", [1, 2, 3])
def test_cosine_restarts_matches_torch(t_mult):
    torch_rates = _rates(
        OPTIMIZERS["adam"],
        lambda o: CosineAnnealingWarmRestarts(o, T_0=7, T_mult=t_mult, eta_min=1e-3),
    )
    ours = cosine_restarts(np.arange(N_STEPS), 1e-3, 0.1, 7, t_mult)
    assert np.allclose(ours, torch_rates, rtol=1e-12, atol=1e-15)
    # restarts land exactly on their step: 0, 7, 7 + 7 * t_mult, ...
    starts = np.cumsum([0] + [7 * t_mult**k for k in range(4)])
    assert np.all(ours[starts] == 0.1)
    via_scheduler = _rates(
        OPTIMIZERS["sgd"],
        lambda o: ScheduleLR(o, cosine_restarts, base_lr=1e-3, max_lr=0.1, t_0=7, t_mult=t_mult),
    )
    assert np.allclose(via_scheduler, torch_rates, rtol=1e-12, atol=1e-15)


def test_scalars_give_floats_and_arrays_keep_their_shape():
    steps = np.arange(12).reshape(3, 4)
    for fn, args in [
        (triangular, (1e-3, 1e-2, 5)),
        (triangular2, (1e-3, 1e-2, 5)),
        (exp_range, (1e-3, 1e-2, 5, 0.9)),
        (cosine_restarts, (1e-3, 1e-2, 5, 2)),
    ]:
        grid = fn(steps, *args)
        assert grid.shape == (3, 4)
        one = fn(7, *args)
        assert isinstance(one, float) and one == grid[1, 3]


def test_shapes_of_the_cycles():
    base, top, size = 0.001, 0.005, 250
    # triangular: base at 0, top at step_size, base again at 2 * step_size
    assert triangular([0, 250, 500, 125], base, top, size) == pytest.approx(
        [base, top, base, (base + top) / 2]
    )
    # triangular2: the peak of cycle c is base + (top - base) / 2 ** (c - 1)
    peaks = triangular2(size + 2 * size * np.arange(4), base, top, size)
    assert peaks == pytest.approx(base + (top - base) / 2.0 ** np.arange(4))
    # exp_range: the amplitude at step t is scaled by gamma ** t
    t = np.array([250, 750, 1250])
    assert exp_range(t, base, top, size, 0.999) == pytest.approx(base + (top - base) * 0.999**t)
    # cosine: max_lr at each restart, the midpoint of a period halfway between
    assert cosine_restarts([0, 50, 100], base, top, 100) == pytest.approx(
        [top, (top + base) / 2, top]
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-negative"):
        triangular(-1, 1e-3, 1e-2, 10)
    with pytest.raises(ValueError, match="positive"):
        triangular(0, 1e-3, 1e-2, 0)
    with pytest.raises(ValueError, match="gamma"):
        exp_range(0, 1e-3, 1e-2, 10, gamma=1.5)
    with pytest.raises(ValueError, match="t_0"):
        cosine_restarts(0, 1e-3, 1e-2, t_0=0)
    with pytest.raises(ValueError, match="t_mult"):
        cosine_restarts(0, 1e-3, 1e-2, t_0=10, t_mult=0)
    with pytest.raises(ValueError, match="learning rates"):
        triangular(0, -1e-3, 1e-2, 10)


def test_schedule_lr_state_dict_is_plain_data():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = ScheduleLR(optimizer, triangular, base_lr=1e-3, max_lr=1e-2, step_size=10)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    assert "schedule" not in state and "optimizer" not in state
    other = ScheduleLR(
        torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1),
        triangular,
        base_lr=1e-3,
        max_lr=1e-2,
        step_size=10,
    )
    other.load_state_dict(state)
    assert other.last_epoch == 3 and other.schedule is triangular


# --------------------------------------------------------------------------- range test
def _regression(seed: int = 0, n: int = 512, dim: int = 8):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen)
    y = x @ torch.randn(dim, generator=gen) + 0.1 * torch.randn(n, generator=gen)
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, n, 32)]
    return x, y, batches


def _linear_loss(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x).squeeze(-1), y)


def test_lr_range_test_restores_model_and_optimizer():
    torch.manual_seed(0)
    _, _, batches = _regression()
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1), nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for batch in batches[:3]:  # give Adam some state
        optimizer.zero_grad()
        _linear_loss(model, batch).backward()
        optimizer.step()
    model.eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = [optimizer.state[p]["exp_avg"].clone() for p in model.parameters()]

    frame = lr_range_test(model, batches, _linear_loss, optimizer, num_steps=40)

    assert list(frame.columns) == ["lr", "loss", "smoothed"]
    assert len(frame) > 10
    assert np.all(np.diff(frame["lr"]) > 0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), k
    for p, m in zip(model.parameters(), moments, strict=True):
        assert torch.equal(optimizer.state[p]["exp_avg"], m)
    assert optimizer.param_groups[0]["lr"] == 3e-3
    assert not model.training


def test_lr_range_test_finds_a_sane_rate_and_stops_on_divergence():
    torch.manual_seed(0)
    x, y, batches = _regression()
    model = nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    frame = lr_range_test(
        model, batches, _linear_loss, optimizer, start_lr=1e-5, end_lr=100.0, num_steps=120
    )
    # SGD on this problem diverges for rates above ~1: the test stops well before 100
    assert len(frame) < 120
    assert frame["lr"].iloc[-1] < 20
    suggestion = suggest_lr(frame)
    assert 1e-3 < suggestion < 1.0
    assert 1e-4 < suggest_lr(frame, method="min/10") < 1.0
    # and the suggested rate does train the model
    before = _linear_loss(model, (x, y)).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=suggestion)
    for _ in range(3):
        for batch in batches:
            optimizer.zero_grad()
            _linear_loss(model, batch).backward()
            optimizer.step()
    assert _linear_loss(model, (x, y)).item() < 0.1 * before


def test_lr_range_test_cycles_through_short_data_and_calls_callables_per_epoch():
    _, _, batches = _regression(n=64)  # 2 batches
    seen = []

    def data(epoch):
        seen.append(epoch)
        return batches

    model = nn.Linear(8, 1)
    frame = lr_range_test(
        model,
        data,
        _linear_loss,
        torch.optim.SGD(model.parameters(), lr=0.1),
        num_steps=7,
        end_lr=1e-3,
    )
    assert len(frame) == 7
    assert seen == [0, 1, 2, 3]


def test_suggest_lr_on_a_known_curve():
    lr = np.logspace(-5, 0, 51)
    # a loss that falls fastest at log10(lr) = -3 and is lowest at -1
    x = np.log10(lr)
    smoothed = 1.0 - np.tanh(2.0 * (x + 3.0)) + 0.5 * np.clip(x + 1.0, 0, None) ** 2 * 10
    smoothed[x > -1] = smoothed[x > -1] + 2 * (x[x > -1] + 1)
    frame = pd.DataFrame({"lr": lr, "loss": smoothed, "smoothed": smoothed})
    assert suggest_lr(frame) == pytest.approx(1e-3)
    lowest = lr[np.argmin(smoothed)]
    assert suggest_lr(frame, method="min/10") == pytest.approx(lowest / 10)
    with pytest.raises(ValueError, match="method"):
        suggest_lr(frame, method="median")
    with pytest.raises(ValueError, match="finite points"):
        suggest_lr(frame.iloc[:2])


def test_lr_range_test_reads_device_and_optimizer_by_fits_rules():
    _, _, batches = _regression(n=64)
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 1))
    frame = lr_range_test(
        model, batches, _linear_loss, torch.optim.SGD(model.parameters()), num_steps=5,
        device="auto",  # models.base.place_model: "auto" is CUDA, MPS or the CPU
    )  # fmt: skip
    assert len(frame) == 5
    with pytest.raises(ValueError, match="gpu"):
        lr_range_test(model, batches, _linear_loss, torch.optim.SGD(model.parameters()),
                      device="gpu")  # fmt: skip
    with pytest.raises(ValueError, match=r"\['1\.weight', '1\.bias'\] are in no optimizer"):
        lr_range_test(model, batches, _linear_loss, torch.optim.SGD(model[0].parameters()))
    # two optimizers sharing the parameters out: both get every rate and are restored
    first, second = torch.optim.SGD(model[0].parameters()), torch.optim.Adam(model[1].parameters())
    frame = lr_range_test(model, batches, _linear_loss, [first, second], num_steps=5)
    assert len(frame) == 5 and first.param_groups[0]["lr"] == 1e-3
    assert second.param_groups[0]["lr"] == 1e-3 and second.state_dict()["state"] == {}


def test_suggest_lr_has_two_methods_and_no_other_knob():
    lr = np.logspace(-5, 0, 51)
    frame = pd.DataFrame({"lr": lr, "loss": -np.log10(lr), "smoothed": -np.log10(lr)})
    for method in ("min10", "MIN/10", None):
        with pytest.raises(ValueError, match=r"unknown method .*use 'steepest' or 'min/10'"):
            suggest_lr(frame, method=method)
    with pytest.raises(TypeError, match="skip_start"):
        suggest_lr(frame, skip_start=3)  # removed: never used; the skip is 1 / smooth steps
    with pytest.raises(ValueError, match="frame must be the DataFrame returned by lr_range_test"):
        suggest_lr(frame[["lr"]])


def test_integer_arguments_take_numpy_integers():
    assert cosine_restarts(np.int64(5), 0.0, 1.0, np.int64(10), np.int32(2)) == pytest.approx(
        cosine_restarts(5, 0.0, 1.0, 10, 2)
    )
    _, _, batches = _regression(n=64)
    model = nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    frame = lr_range_test(model, batches, _linear_loss, optimizer, num_steps=np.int64(4))
    assert len(frame) == 4
    for bad, message in (
        (1, "num_steps must be at least 2"),
        (True, "num_steps must be a positive integer"),
        (4.0, "num_steps must be a positive integer"),
    ):
        with pytest.raises(ValueError, match=message):
            lr_range_test(model, batches, _linear_loss, optimizer, num_steps=bad)
    with pytest.raises(ValueError, match=r"smooth must be a finite positive number"):
        lr_range_test(model, batches, _linear_loss, optimizer, smooth="0.1")
