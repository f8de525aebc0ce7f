"""The training loop: it trains, stops early with the best weights, steps schedulers as told,
evaluates with dropout off, catches NaNs, seeds reproducibly and checkpoints safely."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recs_course.training import (
    History,
    NonFiniteLossError,
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

    def regularization(self, users, pos, neg):
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
        scheduler=scheduler,  # default scheduler_step="batch": still once per epoch
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
