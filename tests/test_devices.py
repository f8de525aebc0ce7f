"""Device-parametrised contract tests: every model on every device this machine has.

The CPU always runs; CUDA and Apple's MPS run where present (skipped, and said so, elsewhere).
On each device: ``score_all`` agrees with ``forward``, the evaluators give the CPU's numbers,
``evaluate_full`` takes its users as a tensor on that device, and ``fit`` trains MF, NGCF,
LightGCN and HybridMF (with mixed precision where ``fit`` uses it: CUDA).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recs_course.data import (
    FeatureEncoder,
    IdEncoder,
    InstanceBatches,
    interaction_matrix,
    leave_one_out,
    ranking_candidates,
    synthetic_ratings,
    to_tensors,
)
from recs_course.evaluation import evaluate_full, evaluate_ratings, evaluate_sampled
from recs_course.models import (
    GMF,
    MF,
    NCFMLP,
    NGCF,
    AutoRec,
    EmbeddingMLP,
    HybridMF,
    LightGCN,
    NeuMF,
    Popularity,
    PretrainedHybrid,
)
from recs_course.training import fit


def _devices() -> list:
    params = [pytest.param("cpu", id="cpu")]
    cuda = torch.cuda.is_available()
    params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(
        not cuda, reason="no CUDA device on this machine")))
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    params.append(pytest.param("mps", id="mps", marks=pytest.mark.skipif(
        not has_mps, reason="no MPS device on this machine")))
    return params


DEVICES = _devices()


@pytest.fixture(scope="module")
def data():
    r = synthetic_ratings(n_users=50, n_items=70, n_ratings=1200, seed=5).ratings
    enc = IdEncoder().fit(r)
    r = enc.transform(r)
    train, test = leave_one_out(r)
    n_users, n_items = enc.n_users, enc.n_items
    return {
        "train": train, "test": test, "n_users": n_users, "n_items": n_items,
        "item_ids": enc.item_ids,
        "train_csr": interaction_matrix(train, n_users, n_items, values="ones"),
        "test_csr": interaction_matrix(test, n_users, n_items, values="ones"),
        "ratings_csr": interaction_matrix(train, n_users, n_items),
    }


def build(name: str, d: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    u, i = to_tensors(d["train"], ("user_id", "item_id"))
    nu, ni = d["n_users"], d["n_items"]
    if name == "MF":
        return MF(nu, ni, dim=8)
    if name == "EmbeddingMLP":
        return EmbeddingMLP(nu, ni, dim=8)
    if name == "GMF":
        return GMF(nu, ni, dim=8)
    if name == "NCFMLP":
        return NCFMLP(nu, ni, layers=(16, 8))
    if name == "NeuMF":
        return NeuMF(nu, ni, dim=8, layers=(16, 8))
    if name == "Popularity":
        return Popularity.from_interactions(u, i, nu, ni)
    if name == "NGCF":
        return NGCF.from_interactions(u, i, nu, ni, dim=8, layer_dims=(8, 8))
    if name == "LightGCN":
        return LightGCN.from_interactions(u, i, nu, ni, dim=8, n_layers=2)
    if name == "AutoRec":
        return AutoRec(nu, ni, d["ratings_csr"], hidden=16)
    if name in ("HybridMF", "PretrainedHybrid"):
        items = synthetic_ratings(n_users=50, n_items=70, n_ratings=1200, seed=5).items
        encoder = FeatureEncoder("item_id", multi=["genres"], buckets={"year": (1970, 1990)})
        bags = encoder.fit_transform(items, ids=d["item_ids"])
        if name == "HybridMF":
            return HybridMF.from_interactions(u, i, nu, ni, dim=8, item_features=bags)
        return PretrainedHybrid.from_mf(MF(nu, ni, dim=8), bags, metadata_layers=(8,))
    raise AssertionError(name)


MODELS = ["MF", "EmbeddingMLP", "GMF", "NCFMLP", "NeuMF", "Popularity", "NGCF", "LightGCN",
          "AutoRec", "HybridMF", "PretrainedHybrid"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MODELS)
def test_score_all_agrees_with_forward(name, device, data):
    model = build(name, data).to(device).eval()
    users = torch.arange(data["n_users"], device=device)[::3]
    with torch.no_grad():
        full = model.score_all(users)
        assert full.device.type == device and full.shape == (len(users), data["n_items"])
        items = torch.arange(data["n_items"], device=device)
        pairs = model(users.repeat_interleave(len(items)), items.repeat(len(users)))
        torch.testing.assert_close(full.float(), pairs.reshape(full.shape).float(),
                                   rtol=1e-5, atol=1e-5)
        with model.scoring_pass():  # the cached pass gives the same scores
            torch.testing.assert_close(model.score_all(users), full)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MODELS)
def test_evaluators_on_the_device_equal_the_cpu(name, device, data):
    model = build(name, data)
    users, cands = ranking_candidates(data["test"], data["n_items"], 20,
                                      exclude=data["train"], generator=1)
    test = data["test"]
    on_cpu = {
        "full": evaluate_full(model, data["train_csr"], data["test_csr"], ks=(5, 10),
                              device="cpu", users_per_batch=7),
        "sampled": evaluate_sampled(model, users, cands, ks=(5,), device="cpu"),
        "ratings": evaluate_ratings(model, test["user_id"].to_numpy(),
                                    test["item_id"].to_numpy(), test["rating"].to_numpy(),
                                    device="cpu"),
    }
    on_device = {
        "full": evaluate_full(model, data["train_csr"], data["test_csr"], ks=(5, 10),
                              device=device, users_per_batch=7),
        "sampled": evaluate_sampled(model, users.to(device), cands.to(device), ks=(5,),
                                    device=device),
        "ratings": evaluate_ratings(model, test["user_id"].to_numpy(),
                                    test["item_id"].to_numpy(), test["rating"].to_numpy(),
                                    device=device),
    }
    assert next(iter(model.parameters()), torch.empty(0, device=device)).device.type == device
    for key, cpu in on_cpu.items():
        # float32 kernels differ between devices: ranks may swap on near-ties only
        assert on_device[key] == pytest.approx(cpu, abs=1e-3), key


@pytest.mark.parametrize("device", DEVICES)
def test_evaluate_full_takes_users_on_the_device(device, data):
    model = build("MF", data).to(device)
    users = torch.arange(0, data["n_users"], 2, device=device)
    got = evaluate_full(model, data["train_csr"], data["test_csr"], users=users)
    want = evaluate_full(model, data["train_csr"], data["test_csr"], users=users.cpu().numpy())
    assert got == want
    assert got.per_user["user"].tolist() == [u for u in users.tolist()
                                             if data["test_csr"][u].nnz]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,loss,kind", [("MF", "bce", "pointwise"),
                                            ("NGCF", "bpr", "pairwise"),
                                            ("LightGCN", "bpr", "pairwise"),
                                            ("HybridMF", "bpr", "pairwise")])
def test_fit_trains_on_the_device(name, loss, kind, device, data):
    model = build(name, data)
    batches = InstanceBatches(data["train"], data["n_items"], kind, batch_size=128,
                              generator=0)
    amp = device == "cuda"  # fit's mixed precision runs on CUDA
    history = fit(model, batches, loss, torch.optim.Adam(model.parameters(), lr=0.01),
                  epochs=6, device=device, amp=amp, progress=False)
    losses = history.to_frame()["loss"].to_numpy()
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert all(p.device.type == device for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # AMP keeps float32 weights
