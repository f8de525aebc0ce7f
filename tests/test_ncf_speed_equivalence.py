"""The NCF models' fast lookups are the same models.

``recs_course.models.ncf._rows`` gathers embedding rows with ``index_select`` on the CPU (its
backward scatters the gradient in one call; ``nn.Embedding``'s CPU backward adds rows one by
one). These tests pin what that must not change: the logits, the gradients and a training run,
bit for bit, against the module lookup the models used before; the parameters, state-dict keys
and ``repr`` (so checkpoints and ``NeuMF.from_pretrained`` are unaffected); and the module
lookup everywhere but the CPU.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from recs_course.evaluation import evaluate_sampled
from recs_course.losses import bce_loss
from recs_course.models import GMF, NCFMLP, NeuMF
from recs_course.models import ncf as ncf_mod
from recs_course.training import fit

N_USERS, N_ITEMS = 13, 17

BUILDERS = {
    "GMF": lambda: GMF(N_USERS, N_ITEMS, dim=4),
    "NCFMLP": lambda: NCFMLP(N_USERS, N_ITEMS, layers=(8, 6, 4)),
    "NCFMLP-flat": lambda: NCFMLP(N_USERS, N_ITEMS, layers=(8,)),
    "NeuMF": lambda: NeuMF(N_USERS, N_ITEMS, dim=4, layers=(8, 6, 4)),
    "NeuMF-dropout": lambda: NeuMF(N_USERS, N_ITEMS, dim=4, layers=(8, 4), dropout=0.3),
}


def module_rows(table: nn.Embedding, index: torch.Tensor) -> torch.Tensor:
    """The lookup the NCF models used before: the embedding module itself."""
    return table(index)


def batch(seed: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Users and items with many repeats (the rows whose gradients add up), 0/1 labels."""
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(0, N_USERS, (size,), generator=g)
    items = torch.randint(0, N_ITEMS, (size,), generator=g)
    labels = torch.randint(0, 2, (size,), generator=g).float()
    return users, items, labels


def loss_and_grads(model: nn.Module, data, seed: int) -> tuple[torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks for both lookups
    loss = bce_loss(model, data)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_rows_is_the_embedding_lookup_bit_for_bit(dtype):
    torch.manual_seed(0)
    table = nn.Embedding(N_ITEMS, 5)
    index = torch.tensor([3, 0, 3, 16, 3, 7, 0], dtype=dtype)
    upstream = torch.randn(len(index), 5)
    fast = ncf_mod._rows(table, index)
    fast.backward(upstream)
    fast_grad, table.weight.grad = table.weight.grad, None
    slow = table(index)
    slow.backward(upstream)
    assert torch.equal(fast, slow)
    assert torch.equal(fast_grad, table.weight.grad)  # repeated rows summed in the same order


@pytest.mark.parametrize("name", list(BUILDERS))
def test_logits_and_gradients_are_unchanged(name, monkeypatch):
    torch.manual_seed(1)
    model = BUILDERS[name]()
    reference = copy.deepcopy(model)
    data = batch(2)
    loss, grads = loss_and_grads(model, data, seed=3)
    with monkeypatch.context() as patch:
        patch.setattr(ncf_mod, "_rows", module_rows)
        ref_loss, ref_grads = loss_and_grads(reference, data, seed=3)
    assert torch.equal(loss, ref_loss)
    assert grads.keys() == ref_grads.keys()
    for key, grad in grads.items():
        assert torch.equal(grad, ref_grads[key]), key
    model.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(data[0], data[1]), reference(data[0], data[1]),
                                   rtol=0, atol=0)


def train(model: nn.Module, steps: int) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        torch.manual_seed(step)
        loss = bce_loss(model, batch(100 + step))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", list(BUILDERS))
def test_training_is_unchanged_step_for_step(name, monkeypatch):
    torch.manual_seed(4)
    model = BUILDERS[name]()
    reference = copy.deepcopy(model)
    losses = train(model, 25)
    with monkeypatch.context() as patch:
        patch.setattr(ncf_mod, "_rows", module_rows)
        ref_losses = train(reference, 25)
    assert losses == ref_losses
    state, ref_state = model.state_dict(), reference.state_dict()
    for key in ref_state:
        assert torch.equal(state[key], ref_state[key]), key


def test_fit_and_hr10_are_unchanged_for_a_fixed_seed(monkeypatch):
    """The course's loop end to end: the same weights and the same HR@10 with either lookup."""
    users = torch.arange(N_USERS)
    candidates = torch.stack(
        [torch.randperm(N_ITEMS, generator=torch.Generator().manual_seed(u))[:8]
         for u in range(N_USERS)]
    )

    def run() -> tuple[dict, dict]:
        torch.manual_seed(0)
        model = NeuMF(N_USERS, N_ITEMS, dim=4, layers=(8, 4), dropout=0.1)
        data = [batch(200 + k, 32) for k in range(12)]
        fit(model, data, "bce", torch.optim.Adam(model.parameters(), lr=1e-2), epochs=3,
            progress=False)
        return model.state_dict(), evaluate_sampled(model, users, candidates, ks=(3,))

    state, metrics = run()
    with monkeypatch.context() as patch:
        patch.setattr(ncf_mod, "_rows", module_rows)
        ref_state, ref_metrics = run()
    assert metrics == ref_metrics
    for key in ref_state:
        assert torch.equal(state[key], ref_state[key]), key


def test_parameters_state_dict_and_repr_are_those_of_the_paper_layout():
    """Four separate tables (GMF and MLP per side), the tower, one output layer: checkpoints
    saved before the fast lookups load, and their stored ``repr`` still matches."""
    model = NeuMF(N_USERS, N_ITEMS, dim=4, layers=(8, 6, 4), dropout=0.2)
    assert list(model.state_dict()) == [
        "gmf_user_embedding.weight",
        "gmf_item_embedding.weight",
        "mlp_user_embedding.weight",
        "mlp_item_embedding.weight",
        "tower.0.weight",
        "tower.0.bias",
        "tower.3.weight",
        "tower.3.bias",
        "output.weight",
        "output.bias",
    ]
    for name in ("gmf_user_embedding", "gmf_item_embedding", "mlp_user_embedding",
                 "mlp_item_embedding"):
        assert type(getattr(model, name)) is nn.Embedding
    assert "(gmf_user_embedding): Embedding(13, 4)" in repr(model)
    assert "(mlp_item_embedding): Embedding(17, 4)" in repr(model)
    gmf, mlp = GMF(N_USERS, N_ITEMS, dim=4), NCFMLP(N_USERS, N_ITEMS, layers=(8, 6, 4))
    assert list(gmf.state_dict()) == [
        "user_embedding.weight", "item_embedding.weight", "output.weight", "output.bias"
    ]
    joined = NeuMF.from_pretrained(gmf, mlp, alpha=1.0).eval()
    u, i, _ = batch(5)
    with torch.no_grad():
        torch.testing.assert_close(joined(u, i), gmf.eval()(u, i))


def test_other_devices_use_the_embedding_module(monkeypatch):
    """Off the CPU the module is called (CUDA's embedding backward is deterministic, a CUDA
    index_add_ is not); checked on the meta device, which every torch has."""
    table = nn.Embedding(N_ITEMS, 3, device="meta")
    calls = []
    original = table.forward

    def spy(index):
        calls.append(index.device.type)
        return original(index)

    monkeypatch.setattr(table, "forward", spy)
    out = ncf_mod._rows(table, torch.tensor([1, 2, 2], device="meta"))
    assert out.shape == (3, 3) and calls == ["meta"]
    cpu_table = nn.Embedding(N_ITEMS, 3)
    monkeypatch.setattr(cpu_table, "forward", spy)
    ncf_mod._rows(cpu_table, torch.tensor([1, 2, 2]))
    assert calls == ["meta"]  # on the CPU: index_select, not the module
