"""The training loop: it trains, stops early with the best weights, steps schedulers as told,
evaluates with dropout off, catches NaNs, seeds reproducibly and checkpoints safely."""

from __future__ import annotations

import copy
import math
import os
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recs_course import training
from recs_course.models import MF
from recs_course.schedules import ScheduleLR, lr_range_test, triangular
from recs_course.training import (
    History,
    NonFiniteLossError,
    _Precision,
    _progress_bar,
    fit,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)

N_USERS, N_ITEMS = 30, 40


class TinyMF(nn.Module):
    """A matrix factorisation with the course's model interface."""

    def __init__(self, dim: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.user = nn.Embedding(N_USERS, dim)
        self.item = nn.Embedding(N_ITEMS, dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.dropout(self.user(users)) * self.item(items)).sum(-1)

    def pair_scores(self, users, pos, neg):
        return self(users, pos), self(users, neg)

    def regularization(self, users, *items):  # the losses add it for (users, items) too
        return torch.zeros(())


def _ratings(n: int = 600, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(N_USERS, 3, generator=gen)
    v = torch.randn(N_ITEMS, 3, generator=gen)
    users = torch.randint(N_USERS, (n,), generator=gen)
    items = torch.randint(N_ITEMS, (n,), generator=gen)
    return users, items, (u[users] * v[items]).sum(-1)


def _batches(tensors, batch_size: int = 100, generator: torch.Generator | None = None):
    n = tensors[0].shape[0]
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return [tuple(t[order[i : i + batch_size]] for t in tensors) for i in range(0, n, batch_size)]


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_trains_and_records_every_epoch():
    torch.manual_seed(0)
    model = TinyMF()
    data = _batches(_ratings())
    history = fit(
        model, data, "mse", torch.optim.Adam(model.parameters(), lr=0.05), 15, progress=False
    )
    losses = [r["loss"] for r in history.records]
    assert len(losses) == 15 and history.epochs == 15
    assert losses[-1] < 0.3 * losses[0]
    assert [r["epoch"] for r in history.records] == list(range(1, 16))
    assert len(history.lrs) == 15 * len(data)
    assert history.best_epoch is None and history.best is None and not history.stopped_early
    frame = history.to_frame()
    assert list(frame.columns) == ["epoch", "loss", "lr", "time"]
    assert (frame["time"] > 0).all()


def test_epoch_loss_is_weighted_by_batch_size():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

    def loss(model, batch):  # each batch's loss is its first value; sizes 3 and 1
        return batch[0][0].float() + 0 * model.w

    data = [(torch.tensor([1.0, 1.0, 1.0]),), (torch.tensor([5.0]),)]
    model = Constant()
    history = fit(model, data, loss, torch.optim.SGD(model.parameters(), lr=0.1), 1, progress=False)
    assert history.records[0]["loss"] == pytest.approx((3 * 1.0 + 1 * 5.0) / 4)


def test_early_stopping_restores_the_weights_of_the_best_epoch():
    torch.manual_seed(0)
    model = TinyMF()
    data = _batches(_ratings())
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.9, 0.95])
    snapshots = []

    def evaluate(m):
        snapshots.append(_weights(m))
        return {"score": next(scores)}

    history = fit(
        model,
        data,
        "mse",
        torch.optim.Adam(model.parameters(), lr=0.05),
        6,
        evaluate=evaluate,
        monitor="score",
        patience=2,
        progress=False,
    )
    assert [r["score"] for r in history.records] == [0.1, 0.3, 0.2, 0.25]
    assert history.stopped_early and history.best_epoch == 2
    assert history.best == history.records[1] and history.mode == "max"
    final = _weights(model)
    for key, value in final.items():
        assert torch.equal(value, snapshots[1][key])
    assert not torch.equal(final["user.weight"], snapshots[3]["user.weight"])


def test_restore_best_false_keeps_the_last_weights_and_min_delta_counts():
    torch.manual_seed(0)
    model = TinyMF()
    values = iter([1.0, 0.5, 0.49, 0.48, 0.1])
    snapshots = []

    def evaluate(m):
        snapshots.append(_weights(m))
        return {"val_rmse": next(values)}

    history = fit(
        model,
        _batches(_ratings()),
        "mse",
        torch.optim.SGD(model.parameters(), lr=0.1),
        5,
        evaluate=evaluate,
        monitor="val_rmse",  # mode inferred: "min"
        patience=2,
        min_delta=0.05,  # 0.49 and 0.48 are no real improvement on 0.5
        restore_best=False,
        progress=False,
    )
    assert history.mode == "min" and history.best_epoch == 2 and history.epochs == 4
    assert torch.equal(_weights(model)["item.weight"], snapshots[-1]["item.weight"])


def test_monitor_loss_without_evaluate():
    torch.manual_seed(0)
    model = TinyMF()
    history = fit(
        model,
        _batches(_ratings()),
        "mse",
        torch.optim.Adam(model.parameters(), lr=0.05),
        4,
        monitor="loss",
        progress=False,
    )
    assert history.mode == "min"
    assert history.best_epoch == int(np.argmin([r["loss"] for r in history.records])) + 1


@pytest.mark.parametrize("where", ["batch", "epoch"])
def test_scheduler_steps_per_batch_or_per_epoch(where):
    model = TinyMF()
    data = _batches(_ratings(), batch_size=150)  # 4 batches
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5**t)
    history = fit(
        model, data, "mse", optimizer, 3, scheduler=scheduler, scheduler_step=where, progress=False
    )
    if where == "batch":
        assert scheduler.last_epoch == 12
        expected = 0.1 * 0.5 ** np.arange(12)
    else:
        assert scheduler.last_epoch == 3
        expected = 0.1 * 0.5 ** np.repeat(np.arange(3), 4)
    assert np.allclose(history.lrs, expected)
    # an epoch's lr is the rate of its last step
    assert np.allclose([r["lr"] for r in history.records], expected[3::4])


def test_reduce_on_plateau_is_stepped_with_the_monitored_value():
    model = TinyMF()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=0.5, patience=0
    )
    fit(
        model,
        _batches(_ratings()),
        "mse",
        optimizer,
        4,
        scheduler=scheduler,  # scheduler_step=None: ReduceLROnPlateau is stepped per epoch
        evaluate=lambda m: {"HR@10": 0.5},  # never improves after the first epoch
        monitor="HR@10",
        progress=False,
    )
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_evaluate_runs_in_eval_mode_without_gradients_and_training_with_dropout():
    torch.manual_seed(0)
    model = TinyMF(dropout=0.5)
    users, items, ratings = _ratings(200)
    modes = []

    def loss(m, batch):
        modes.append(m.training)
        return nn.functional.mse_loss(m(batch[0], batch[1]), batch[2])

    def evaluate(m):
        assert not m.training
        assert not torch.is_grad_enabled()
        pred = m(users, items)
        # dropout is off: the scores are the plain dot products, twice the same
        plain = (m.user(users) * m.item(items)).sum(-1)
        assert torch.equal(pred, plain) and torch.equal(m(users, items), pred)
        return {"val_loss": float(nn.functional.mse_loss(pred, ratings))}

    history = fit(
        model,
        _batches((users, items, ratings)),
        loss,
        torch.optim.Adam(model.parameters(), lr=0.01),
        2,
        evaluate=evaluate,
        progress=False,
    )
    assert all(modes) and len(modes) == 4
    assert model.training  # it came in training mode
    assert "val_loss" in history.records[0]
    model.eval()
    fit(
        model,
        _batches((users, items, ratings)),
        loss,
        torch.optim.SGD(model.parameters(), 0.01),
        1,
        progress=False,
    )
    assert not model.training  # and leaves in the mode it came in


def test_callable_train_data_receives_the_epoch_numbers():
    seen = []
    ratings = _ratings()

    def data(epoch):
        seen.append(epoch)
        return _batches(ratings, generator=torch.Generator().manual_seed(epoch))

    model = TinyMF()
    fit(model, data, "mse", torch.optim.SGD(model.parameters(), lr=0.1), 5, progress=False)
    assert seen == [0, 1, 2, 3, 4]


def test_one_shot_iterators_and_empty_epochs_are_refused():
    model = TinyMF()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = (b for b in _batches(_ratings()))
    with pytest.raises(ValueError, match="one-shot"):
        fit(model, generator, "mse", optimizer, 2, progress=False)
    with pytest.raises(ValueError, match=r"no batches in epoch 1 \(train_data\(0\)"):
        fit(model, lambda epoch: [], "mse", optimizer, 2, progress=False)


@pytest.mark.parametrize("log_every", [None, 3])
def test_nan_loss_raises_with_epoch_and_batch(log_every):
    calls = {"n": 0}

    def loss(m, batch):
        calls["n"] += 1
        value = nn.functional.mse_loss(m(batch[0], batch[1]), batch[2])
        return value * math.nan if calls["n"] == 6 + 2 else value  # epoch 2, batch 2

    model = TinyMF()
    data = _batches(_ratings())  # 6 batches
    with pytest.raises(FloatingPointError, match=r"epoch 2, batch 2.*lower the learning rate") as e:
        fit(
            model,
            data,
            loss,
            torch.optim.SGD(model.parameters(), lr=0.1),
            3,
            progress=False,
            log_every=log_every,
        )
    assert isinstance(e.value, NonFiniteLossError)
    assert (e.value.epoch, e.value.batch) == (2, 2)


def test_clip_grad_bounds_each_step():
    model = TinyMF()
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    data = _batches(_ratings(), batch_size=600)  # one batch: one step
    fit(
        model,
        data,
        "mse",
        torch.optim.SGD(model.parameters(), lr=1.0),
        1,
        clip_grad=1e-3,
        progress=False,
    )
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert 0 < torch.linalg.vector_norm(after - before) <= 1e-3 * (1 + 1e-5)


def test_amp_on_cpu_is_a_no_op_with_a_warning():
    torch.manual_seed(0)
    model = TinyMF()
    with pytest.warns(UserWarning, match="no effect on cpu"):
        history = fit(
            model,
            _batches(_ratings()),
            "mse",
            torch.optim.SGD(model.parameters(), 0.1),
            1,
            amp=True,
            device="cpu",
            progress=False,
        )
    assert math.isfinite(history.records[0]["loss"])


def test_argument_errors():
    model = TinyMF()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = _batches(_ratings())
    cases = [
        ({"patience": 2}, "patience needs monitor"),
        ({"monitor": "HR@10"}, "needs evaluate"),
        (
            {"evaluate": lambda m: {"HR@10": 1.0}, "monitor": "NDCG@10"},
            r"not among \['loss', 'HR@10'\]",
        ),
        ({"evaluate": lambda m: {"loss": 1.0}}, "rename it"),
        ({"scheduler_step": "step"}, "scheduler_step"),
        ({"mode": "maximum", "monitor": "loss"}, "mode"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            fit(model, data, "mse", optimizer, 2, progress=False, **kwargs)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, data, "mse", optimizer, 0, progress=False)


def test_progress_false_prints_nothing_and_the_environment_switches_it_off(capfd, monkeypatch):
    model = TinyMF()
    fit(
        model,
        _batches(_ratings()),
        "mse",
        torch.optim.SGD(model.parameters(), lr=0.1),
        2,
        evaluate=lambda m: {"HR@10": 0.1},
        progress=False,
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    monkeypatch.setenv("RECS_COURSE_PROGRESS", "0")
    bar = _progress_bar(3, progress=True)
    assert bar.disable
    bar.close()


def test_seed_everything_makes_training_reproducible():
    def run():
        gen = seed_everything(123)
        model = TinyMF(dropout=0.2)  # initialisation and dropout use the global generator
        ratings = _ratings()

        def data(epoch):
            return _batches(ratings, generator=gen)

        history = fit(
            model, data, "mse", torch.optim.Adam(model.parameters(), lr=0.01), 3, progress=False
        )
        draws = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
        return history, _weights(model), draws

    (h1, w1, d1), (h2, w2, d2) = run(), run()
    strip = [{k: v for k, v in r.items() if k != "time"} for r in h1.records]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in h2.records]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert d1 == d2
    gen = seed_everything(5)
    assert torch.equal(
        torch.rand(3, generator=gen), torch.rand(3, generator=torch.Generator().manual_seed(5))
    )
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TinyMF()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = fit(model, _batches(_ratings()), "mse", optimizer, 2, progress=False)
    path = save_checkpoint(
        tmp_path / "runs" / "mf.pt",
        model,
        optimizer,
        epoch=2,
        records=history.records,
        config={"dim": 4, "lr": 0.01, "name": "mf"},
        mask=torch.tensor([True, False]),
    )
    assert path.exists() and os.listdir(path.parent) == ["mf.pt"]  # no temporary left

    other = TinyMF()
    other_opt = torch.optim.Adam(other.parameters(), lr=0.5)
    extra = load_checkpoint(path, other, other_opt)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters(), strict=True)
    )
    assert other_opt.param_groups[0]["lr"] == 0.01
    first = next(iter(model.parameters()))
    assert torch.equal(
        other_opt.state[next(iter(other.parameters()))]["exp_avg"],
        optimizer.state[first]["exp_avg"],
    )
    assert extra["epoch"] == 2 and extra["records"] == history.records
    assert extra["config"]["name"] == "mf" and torch.equal(
        extra["mask"], torch.tensor([True, False])
    )
    save_checkpoint(tmp_path / "bare.pt", model)
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(tmp_path / "bare.pt", TinyMF(), torch.optim.SGD(other.parameters(), 0.1))


def test_checkpoint_extras_must_be_plain_data(tmp_path):
    model = TinyMF()
    for bad, where in [
        (np.zeros(3), "extra\\['array'\\]"),
        ({"inner": [1, np.float64(2.0)]}, r"extra\['array'\]\['inner'\]\[1\]"),
        (pd.DataFrame({"a": [1]}), "DataFrame"),
    ]:
        with pytest.raises(ValueError, match=where):
            save_checkpoint(tmp_path / "x.pt", model, array=bad)
    assert os.listdir(tmp_path) == []


UNPICKLED: list[str] = []


def _mark(text: str) -> str:
    UNPICKLED.append(text)
    return text


class Payload:
    """An object whose unpickling runs code (here only a harmless marker)."""

    def __reduce__(self):
        return (_mark, ("code ran",))


def test_load_checkpoint_refuses_arbitrary_pickled_objects(tmp_path):
    model = TinyMF()
    path = tmp_path / "evil.pt"
    torch.save({"model": model.state_dict(), "payload": Payload()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_checkpoint(path, TinyMF())
    assert UNPICKLED == []
    torch.load(path, weights_only=False)  # what load_checkpoint refuses to do
    assert UNPICKLED == ["code ran"]


def test_history_frame_and_plot():
    import matplotlib.pyplot as plt

    history = History(
        records=[
            {"epoch": 1, "loss": 1.0, "HR@10": 0.2, "lr": 0.1, "time": 0.5},
            {"epoch": 2, "loss": 0.5, "HR@10": 0.3, "lr": 0.1, "time": 0.5},
        ],
        best_epoch=2,
    )
    assert history.to_frame()["HR@10"].tolist() == [0.2, 0.3]
    assert list(History().to_frame().columns) == ["epoch", "loss", "lr", "time"]
    ax = history.plot(metrics=["HR@10"])
    assert [line.get_label() for line in ax.lines] == ["HR@10", "best epoch (2)"]
    plt.close(ax.figure)


# --------------------------------------------------------------------------- devices
def test_fit_and_lr_range_test_place_the_model_by_the_one_rule(monkeypatch):
    assert not hasattr(training, "_resolve_device")  # models.base.place_model is the one rule
    calls = []
    real = training.place_model

    def spy(model, device):
        calls.append(device)
        return real(model, device)

    monkeypatch.setattr(training, "place_model", spy)
    model = TinyMF()
    history = fit(
        model,
        _batches(_ratings()),
        "mse",
        torch.optim.SGD(model.parameters(), lr=0.1),
        1,
        device="auto",  # the CPU here: "auto" is accepted as everywhere else
        progress=False,
    )
    assert calls == ["auto"] and math.isfinite(history.records[0]["loss"])
    frame = lr_range_test(
        model, _batches(_ratings()), "mse", torch.optim.SGD(model.parameters()), device="auto"
    )
    assert len(frame) > 0
    with pytest.raises(ValueError, match="gpu"):
        fit(model, [], "mse", torch.optim.SGD(model.parameters()), 1, device="gpu")


# --------------------------------------------------------------------------- one-shot data
def test_a_one_shot_iterator_is_recognised_without_starting_it():
    started = []

    def batches():
        started.append(True)
        yield from _batches(_ratings())

    model = TinyMF()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for one_shot in (batches(), iter(_batches(_ratings())), map(tuple, _batches(_ratings()))):
        with pytest.raises(ValueError, match="one-shot iterator"):
            fit(model, one_shot, "mse", optimizer, 2, progress=False)
    assert started == []  # the generator's code never ran
    # one epoch of a generator is fine
    fit(model, batches(), "mse", optimizer, 1, progress=False)
    assert started == [True]


# --------------------------------------------------------------------------- schedulers
def _scheduled_lrs(make_scheduler, **kwargs):
    model = TinyMF()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = make_scheduler(optimizer)
    data = _batches(_ratings(), batch_size=150)  # 4 batches
    history = fit(model, data, "mse", optimizer, 3, scheduler=scheduler, progress=False, **kwargs)
    return scheduler, history


@pytest.mark.parametrize(
    ("make", "steps"),
    [
        (lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=12), 12),
        (lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=3), 12),
        (lambda o: ScheduleLR(o, triangular, base_lr=0.01, max_lr=0.1, step_size=3), 12),
        (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5), 3),
        (lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[1, 2]), 3),
        (lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.5), 3),
    ],
    ids=["OneCycleLR", "CyclicLR", "ScheduleLR", "StepLR", "MultiStepLR", "ExponentialLR"],
)
def test_known_schedulers_are_stepped_per_batch_or_per_epoch_by_default(make, steps):
    scheduler, history = _scheduled_lrs(make)
    assert scheduler.last_epoch == steps
    if steps == 3:  # per epoch: the rate is constant within an epoch
        assert np.allclose(history.lrs, np.repeat([r["lr"] for r in history.records], 4))


def test_an_ambiguous_scheduler_needs_scheduler_step_and_an_explicit_choice_wins():
    def cosine(o):
        return torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3)

    with pytest.raises(ValueError, match=r"CosineAnnealingLR.*scheduler_step='epoch'"):
        _scheduled_lrs(cosine)
    with pytest.raises(ValueError, match=r"LambdaLR.*scheduler_step='batch'"):
        _scheduled_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 0.5**t))
    assert _scheduled_lrs(cosine, scheduler_step="epoch")[0].last_epoch == 3
    assert _scheduled_lrs(cosine, scheduler_step="batch")[0].last_epoch == 12

    def step_lr(o):
        return torch.optim.lr_scheduler.StepLR(o, step_size=4)

    assert _scheduled_lrs(step_lr, scheduler_step="batch")[0].last_epoch == 12


def test_scheduler_mistakes_are_refused():
    def plateau(o):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(o)

    with pytest.raises(ValueError, match="ReduceLROnPlateau is stepped once per epoch"):
        _scheduled_lrs(plateau, scheduler_step="batch")
    _scheduled_lrs(plateau, scheduler_step="epoch")
    model = TinyMF()
    stale = torch.optim.SGD(TinyMF().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="built on another optimizer"):
        fit(
            model,
            _batches(_ratings()),
            "mse",
            torch.optim.SGD(model.parameters(), lr=0.1),
            1,
            scheduler=torch.optim.lr_scheduler.StepLR(stale, 1),
            progress=False,
        )


def test_a_list_of_schedulers_one_per_optimizer():
    model = TinyMF()
    first = torch.optim.SGD([model.user.weight], lr=0.1)
    second = torch.optim.SGD([model.item.weight], lr=0.2)
    schedulers = [
        torch.optim.lr_scheduler.OneCycleLR(first, max_lr=0.1, total_steps=12),
        torch.optim.lr_scheduler.StepLR(second, step_size=1, gamma=0.5),
    ]
    data = _batches(_ratings(), batch_size=150)  # 4 batches
    history = fit(model, data, "mse", [first, second], 3, scheduler=schedulers, progress=False)
    assert schedulers[0].last_epoch == 12 and schedulers[1].last_epoch == 3
    assert second.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5**3)
    reference = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=0.1, total_steps=12)
    expected = []
    for _ in range(12):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        onecycle.step()
    assert np.allclose(history.lrs, expected)  # the rates of the first optimizer


# --------------------------------------------------------------------------- several optimizers
def _mf_pair(seed: int = 0) -> tuple[MF, MF]:
    """The same MF twice, with dense and with sparse embedding gradients."""
    torch.manual_seed(seed)
    dense = MF(N_USERS, N_ITEMS, dim=4, init_std=0.1)
    sparse = MF(N_USERS, N_ITEMS, dim=4, init_std=0.1, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


def _tables(model: MF) -> list[nn.Parameter]:
    """The embedding tables (factors and biases): sparse gradients with sparse=True."""
    return [
        model.user_embedding.weight,
        model.item_embedding.weight,
        model.user_bias.weight,
        model.item_bias.weight,
    ]


def _covering_ratings(n: int = 600):
    """Ratings in which every user and every item appears."""
    users = torch.arange(n) % N_USERS
    items = (torch.arange(n) * 7) % N_ITEMS
    gen = torch.Generator().manual_seed(1)
    u, v = torch.randn(N_USERS, 3, generator=gen), torch.randn(N_ITEMS, 3, generator=gen)
    return users, items, 3.0 + (u[users] * v[items]).sum(-1)


def test_sparse_mf_with_sparse_adam_matches_dense_adam_when_every_row_is_in_the_batch():
    # SparseAdam updates the moments of the rows in the batch only ("lazy" Adam); when every
    # row is in every batch it is Adam, up to where eps enters the denominator.
    dense, sparse = _mf_pair()
    data = [_covering_ratings()]  # one batch holding every user and item
    h_dense = fit(dense, data, "mse", torch.optim.Adam(dense.parameters(), lr=0.05), 40,
                  progress=False)  # fmt: skip
    optimizers = [
        torch.optim.SparseAdam(_tables(sparse), lr=0.05),
        torch.optim.Adam([sparse.global_bias], lr=0.05),
    ]
    h_sparse = fit(sparse, data, "mse", optimizers, 40, progress=False)
    dense_losses = [r["loss"] for r in h_dense.records]
    sparse_losses = [r["loss"] for r in h_sparse.records]
    assert sparse_losses[-1] < 0.2 * sparse_losses[0]
    assert np.allclose(sparse_losses, dense_losses, rtol=1e-3)
    for (name, a), b in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        assert torch.allclose(a, b, atol=2e-3), name  # about 3e-4 apart after 40 steps
    assert h_sparse.lrs == [0.05] * 40


@pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")  # Adagrad's, torch's
@pytest.mark.parametrize("variant", ["sparse_adam", "adagrad", "sgd"])
def test_sparse_mf_trains_with_mini_batches_as_well_as_dense_adam(variant):
    dense, sparse = _mf_pair(seed=3)
    ratings = _covering_ratings()
    gen = torch.Generator().manual_seed(0)

    def data(epoch):
        return _batches(ratings, batch_size=50, generator=gen)

    fit(dense, data, "mse", torch.optim.Adam(dense.parameters(), lr=0.05), 30, progress=False)
    if variant == "sparse_adam":  # embeddings and biases with their own rates
        optimizers = [
            torch.optim.SparseAdam(_tables(sparse)[:2], lr=0.05),
            torch.optim.SparseAdam(_tables(sparse)[2:], lr=0.1),
            torch.optim.Adam([sparse.global_bias], lr=0.1),
        ]
    elif variant == "adagrad":
        optimizers = [torch.optim.Adagrad(_tables(sparse), lr=0.3),
                      torch.optim.Adam([sparse.global_bias], lr=0.1)]  # fmt: skip
    else:  # one optimizer that takes both kinds of gradients
        optimizers = torch.optim.SGD(sparse.parameters(), lr=0.05, momentum=0.9)
    gen.manual_seed(0)
    history = fit(sparse, data, "mse", optimizers, 30, progress=False)
    if variant == "sparse_adam":
        assert set(history.lrs) == {0.05}  # the first optimizer's rate
    losses = [r["loss"] for r in history.records]
    assert losses[-1] < 0.2 * losses[0]
    with torch.no_grad():
        mse_dense = nn.functional.mse_loss(dense(*ratings[:2]), ratings[2]).item()
        mse_sparse = nn.functional.mse_loss(sparse(*ratings[:2]), ratings[2]).item()
    assert mse_sparse < 2 * mse_dense + 0.05


def test_each_trainable_parameter_must_be_in_exactly_one_optimizer():
    model = TinyMF()
    data = _batches(_ratings())
    user, item = model.user.weight, model.item.weight
    with pytest.raises(ValueError, match=r"parameter user\.weight is in optimizer\[0\] \(Adam\) "
                       r"and in optimizer\[1\] \(SGD\)"):  # fmt: skip
        fit(model, data, "mse", [torch.optim.Adam([user, item]), torch.optim.SGD([user])], 1)
    with pytest.raises(ValueError, match=r"\['item\.weight'\] are in no optimizer"):
        fit(model, data, "mse", torch.optim.Adam([user]), 1, progress=False)
    with pytest.raises(ValueError, match=r"\['item\.weight'\] are in no optimizer"):
        fit(model, data, "mse", [torch.optim.Adam([user])], 1, progress=False)
    same = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="stepped twice per batch"):
        fit(model, data, "mse", [same, same], 1, progress=False)
    with pytest.raises(ValueError, match="optimizers hold none of this TinyMF's parameters"):
        other = TinyMF()
        stale = [torch.optim.Adam([other.user.weight]), torch.optim.SGD([other.item.weight])]
        fit(model, data, "mse", stale, 1, progress=False)
    for bad, match in [([], "optimizer must be"), ([same, "adam"], r"optimizer\[1\] must be")]:
        with pytest.raises(ValueError, match=match):
            fit(model, data, "mse", bad, 1, progress=False)
    # a frozen parameter may be left out, and a parameter that is not the model's may be in
    item.requires_grad_(False)
    frozen = item.detach().clone()
    extra = nn.Parameter(torch.zeros(()))
    fit(model, data, "mse", [torch.optim.Adam([user]), torch.optim.SGD([extra])], 1,
        progress=False)  # fmt: skip
    assert torch.equal(item, frozen)


def test_sparse_and_dense_gradients_need_optimizers_that_take_them():
    _, model = _mf_pair()
    data = _batches(_covering_ratings())
    with pytest.raises(ValueError, match=r"optimizer \(Adam\) cannot step \['user_embedding"):
        fit(model, data, "mse", torch.optim.Adam(model.parameters()), 1, progress=False)
    with pytest.raises(ValueError, match=r"SparseAdam\) holds \['global_bias'\].*dense"):
        fit(model, data, "mse", torch.optim.SparseAdam(model.parameters()), 1, progress=False)


def test_clip_grad_with_sparse_gradients_clips_as_with_dense_ones():
    dense, sparse = _mf_pair()
    users, items, ratings = _covering_ratings()
    batch = [(users[:100], items[:100], ratings[:100])]  # repeated rows: uncoalesced gradients
    fit(dense, batch, "mse", torch.optim.SGD(dense.parameters(), lr=1.0), 1, clip_grad=0.01,
        progress=False)  # fmt: skip
    fit(sparse, batch, "mse", torch.optim.SGD(sparse.parameters(), lr=1.0), 1, clip_grad=0.01,
        progress=False)  # fmt: skip
    for (name, a), b in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7), name
    _, fresh = _mf_pair()
    moved = torch.cat([(a - b).flatten() for a, b in zip(sparse.parameters(), fresh.parameters(),
                                                          strict=True)])  # fmt: skip
    assert 0 < torch.linalg.vector_norm(moved) <= 0.01 * (1 + 1e-5)


def test_one_gradient_scaler_steps_every_optimizer():
    """AMP's float16 path (CUDA only in fit) run on the CPU: one scaler, one step per optimizer,
    the same update as without scaling, and every optimizer skipped on an overflow."""
    _, plain = _mf_pair()
    _, scaled = _mf_pair()
    batch = tuple(t[:100] for t in _covering_ratings())

    def step(model, precision, loss_factor=1.0):
        optimizers = [torch.optim.SparseAdam(_tables(model), lr=0.05),
                      torch.optim.Adam([model.global_bias], lr=0.05)]  # fmt: skip
        run = training._Step(
            model,
            lambda m, b: nn.functional.mse_loss(m(b[0], b[1]), b[2]) * loss_factor,
            optimizers,
            precision,
            clip_grad=1.0,
        )
        return run(batch)

    step(plain, _Precision("cpu", torch.bfloat16))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    step(scaled, _Precision("cpu", torch.bfloat16, scaler))
    for (name, a), b in zip(plain.named_parameters(), scaled.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    _, fresh = _mf_pair()
    assert not torch.equal(scaled.user_embedding.weight, fresh.user_embedding.weight)
    assert not torch.equal(scaled.global_bias, fresh.global_bias)
    before = _weights(scaled)
    step(scaled, _Precision("cpu", torch.bfloat16, scaler), loss_factor=math.inf)  # overflow
    assert scaler.get_scale() == 2.0**9
    assert all(torch.equal(v, before[k]) for k, v in _weights(scaled).items())


def test_checkpoints_hold_the_states_of_several_optimizers(tmp_path):
    _, model = _mf_pair()

    def optimizers(m):
        return [torch.optim.SparseAdam(_tables(m), lr=0.05),
                torch.optim.Adam([m.global_bias], lr=0.02)]  # fmt: skip

    saved_opts = optimizers(model)
    fit(model, _batches(_covering_ratings()), "mse", saved_opts, 2, progress=False)
    path = save_checkpoint(tmp_path / "sparse.pt", model, saved_opts, epoch=2)
    _, other = _mf_pair(seed=1)
    loaded_opts = optimizers(other)
    assert load_checkpoint(path, other, loaded_opts) == {"epoch": 2}
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters(), strict=True)
    )
    for saved, loaded in zip(saved_opts, loaded_opts, strict=True):
        a, b = saved.state_dict(), loaded.state_dict()
        assert a["param_groups"] == b["param_groups"]
        for key in a["state"]:
            assert torch.equal(a["state"][key]["exp_avg"], b["state"][key]["exp_avg"])
    with pytest.raises(ValueError, match="holds the states of 2 optimizers, and one optimizer"):
        load_checkpoint(path, other, loaded_opts[0])
    with pytest.raises(ValueError, match="holds the states of 2 optimizers, and 3 were given"):
        load_checkpoint(path, other, [*loaded_opts, torch.optim.SGD(other.parameters())])
    with pytest.raises(ValueError, match=r"its optimizer\[0\] state is of another optimizer"):
        load_checkpoint(path, other, [torch.optim.Adagrad(_tables(other)), loaded_opts[1]])
    single = save_checkpoint(tmp_path / "one.pt", model, saved_opts[1])
    with pytest.raises(ValueError, match="holds the state of one optimizer, and a list of 2"):
        load_checkpoint(single, other, loaded_opts)
    with pytest.raises(ValueError, match=r"optimizer\[1\] must be"):
        save_checkpoint(tmp_path / "bad.pt", model, [saved_opts[0], None])


def test_lr_range_test_takes_several_optimizers_and_restores_them():
    _, model = _mf_pair()
    optimizers = [torch.optim.SparseAdam(_tables(model), lr=0.05),
                  torch.optim.Adam([model.global_bias], lr=0.02)]  # fmt: skip
    fit(model, _batches(_covering_ratings()), "mse", optimizers, 1, progress=False)
    weights = _weights(model)
    states = copy.deepcopy([opt.state_dict() for opt in optimizers])  # not the live tensors
    frame = lr_range_test(model, _batches(_covering_ratings()), "mse", optimizers, num_steps=20)
    assert len(frame) > 5
    assert all(torch.equal(v, weights[k]) for k, v in _weights(model).items())
    assert [opt.param_groups[0]["lr"] for opt in optimizers] == [0.05, 0.02]
    for opt, state in zip(optimizers, states, strict=True):
        for key, value in opt.state_dict()["state"].items():
            assert torch.equal(value["exp_avg"], state["state"][key]["exp_avg"])
    with pytest.raises(ValueError, match="in no optimizer"):
        lr_range_test(model, _batches(_covering_ratings()), "mse", optimizers[:1])


# --------------------------------------------------------------------------- argument types
def test_integer_arguments_take_numpy_integers_and_refuse_bool():
    model = TinyMF()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(
        model,
        _batches(_ratings()),
        "mse",
        optimizer,
        np.int64(2),
        monitor="loss",
        patience=np.int32(1),
        log_every=np.int64(2),
        progress=False,
    )
    assert history.epochs == 2 and type(history.records[-1]["epoch"]) is int
    for kwargs, name in (
        ({"epochs": True}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"patience": True, "monitor": "loss"}, "patience"),
        ({"log_every": np.float64(3)}, "log_every"),
    ):
        args = {"epochs": 1, **kwargs}
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            fit(model, _batches(_ratings()), "mse", optimizer, progress=False, **args)


def test_fit_and_lr_range_test_refuse_a_model_that_is_not_a_module():
    parameter = nn.Parameter(torch.zeros(1))
    for call in (
        lambda: fit(lambda u, i: u, _batches(_ratings()), "mse", torch.optim.SGD([parameter]), 1),
        lambda: lr_range_test(None, _batches(_ratings()), "mse", torch.optim.SGD([parameter])),
    ):
        with pytest.raises(ValueError, match="model must be a torch nn.Module"):
            call()


# --------------------------------------------------------------------------- train/eval modes
class _FrozenNorm(TinyMF):
    """TinyMF with a batch norm its owner keeps in eval mode (frozen statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(1)

    def forward(self, users, items):
        return self.norm(super().forward(users, items).unsqueeze(1)).squeeze(1)


@pytest.mark.parametrize("outer", [True, False])
def test_fit_and_lr_range_test_restore_every_submodules_mode(outer):
    model = _FrozenNorm()
    model.train(outer)
    model.norm.eval()  # deliberately: model.train(outer) afterwards would switch it to train
    before = [(name, m.training) for name, m in model.named_modules()]
    seen = []
    fit(
        model,
        _batches(_ratings()),
        "mse",
        torch.optim.SGD(model.parameters(), lr=0.01),
        2,
        evaluate=lambda m: seen.append(m.training) or {"x": 0.0},
        progress=False,
    )
    assert seen == [False, False]
    assert [(name, m.training) for name, m in model.named_modules()] == before
    lr_range_test(model, _batches(_ratings()), "mse", torch.optim.SGD(model.parameters()),
                  num_steps=3)  # fmt: skip
    assert [(name, m.training) for name, m in model.named_modules()] == before


def test_modes_are_restored_when_training_fails():
    model = _FrozenNorm()
    model.norm.eval()

    def failing(m, batch):
        raise RuntimeError("boom")

    data, optimizer = _batches(_ratings()), torch.optim.SGD(model.parameters())
    with pytest.raises(RuntimeError, match="boom"):
        fit(model, data, failing, optimizer, 1, progress=False)
    assert model.training and not model.norm.training
    with pytest.raises(RuntimeError, match="boom"):
        lr_range_test(model, data, failing, optimizer)
    assert model.training and not model.norm.training


def test_lr_range_test_refuses_a_one_shot_iterator_without_starting_it():
    started = []

    def batches():
        started.append(True)
        yield from _batches(_ratings())

    model = TinyMF()
    for one_shot in (batches(), iter(_batches(_ratings()))):
        with pytest.raises(ValueError, match="one-shot iterator"):
            lr_range_test(model, one_shot, "mse", torch.optim.SGD(model.parameters()))
    assert started == []
    with pytest.raises(ValueError, match=r"no batches in pass 1 .*\(train_data\(0\) was empty\)"):
        lr_range_test(model, lambda epoch: [], "mse", torch.optim.SGD(model.parameters()))
