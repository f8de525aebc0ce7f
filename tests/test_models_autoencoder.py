"""Tests of AutoRec and the masked loss."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recs_course.models import AutoRec, masked_mse

# 4 users x 5 items; user 3 and item 4 have no ratings.
DENSE = np.array(
    [
        [5.0, 0.0, 3.0, 0.0, 0.0],
        [0.0, 4.0, 0.0, 1.0, 0.0],
        [2.0, 5.0, 0.0, 4.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ],
    dtype=np.float32,
)
N_USERS, N_ITEMS = DENSE.shape


def _model(based: str = "item", **kwargs) -> AutoRec:
    torch.manual_seed(0)
    model = AutoRec(N_USERS, N_ITEMS, sp.csr_matrix(DENSE), hidden=3, based=based, **kwargs)
    return model.eval()


@pytest.mark.parametrize("based", ["item", "user"])
def test_rows_are_the_dense_rows_and_their_masks(based):
    model = _model(based)
    matrix = DENSE.T if based == "item" else DENSE
    idx = torch.tensor([2, 0, 3, 2])
    rows, mask = model.rows(idx)
    np.testing.assert_array_equal(rows.numpy(), matrix[idx.numpy()])
    np.testing.assert_array_equal(mask.numpy(), matrix[idx.numpy()] != 0)
    assert rows.dtype == torch.float32 and mask.dtype == torch.bool
    assert model.n_inputs == (N_USERS if based == "item" else N_ITEMS)
    empty_rows, empty_mask = model.rows(torch.tensor([], dtype=torch.long))
    assert empty_rows.shape == (0, model.n_inputs) and not empty_mask.any()


@pytest.mark.parametrize("based", ["item", "user"])
def test_forward_gathers_the_reconstructed_entries(based):
    model = _model(based)
    users = torch.tensor([0, 2, 1, 2, 0])
    items = torch.tensor([1, 3, 3, 0, 1])
    with torch.no_grad():
        if based == "item":
            full = model.reconstruct(torch.arange(N_ITEMS)).T  # (U, I)
        else:
            full = model.reconstruct(torch.arange(N_USERS))
        torch.testing.assert_close(model(users, items), full[users, items])


def test_masked_mse_ignores_unobserved_targets():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 4, generator=gen)
    target = torch.randn(3, 4, generator=gen)
    mask = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    loss = masked_mse(pred, target, mask)
    changed = target.clone()
    changed[~mask] = torch.tensor([7.0, -3.0, float("nan"), 100.0, 0.0, 1.0, 2.0, float("inf")])
    torch.testing.assert_close(masked_mse(pred, changed, mask), loss)
    expected = ((pred - target)[mask] ** 2).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(
        masked_mse(pred, target, mask, reduction="sum"), ((pred - target)[mask] ** 2).sum()
    )
    nothing = torch.zeros_like(mask)
    assert masked_mse(pred, target, nothing).item() == 0.0
    with pytest.raises(ValueError, match="same shape"):
        masked_mse(pred, target[:2], mask)
    with pytest.raises(ValueError, match="reduction"):
        masked_mse(pred, target, mask, reduction="max")


def test_masked_loss_counts_observed_ratings_only():
    model = _model("item")
    idx = torch.tensor([0, 1, 4])
    recon = model.reconstruct(idx)
    observed = torch.from_numpy(DENSE.T[idx.numpy()])
    mask = observed != 0
    expected = ((recon - observed)[mask] ** 2).mean()
    torch.testing.assert_close(model.masked_loss(idx), expected)
    torch.testing.assert_close(
        model.masked_loss(idx, reduction="sum"), ((recon - observed)[mask] ** 2).sum()
    )
    assert model.masked_loss(torch.tensor([4])).item() == 0.0  # item 4 has no ratings


def test_unknown_users_and_items_fall_back_to_the_mean_and_clip():
    model = _model("item", y_range=(1.0, 5.0))
    with torch.no_grad():
        model.network[-2].bias.fill_(100.0)  # reconstructions far above the range
        table = model.score_all(torch.arange(N_USERS))
    mean = DENSE[DENSE != 0].mean()
    np.testing.assert_allclose(table[3].numpy(), mean, rtol=1e-6)  # user without ratings
    np.testing.assert_allclose(table[:, 4].numpy(), mean, rtol=1e-6)  # item without ratings
    assert table[:3, :4].eq(5.0).all()  # clipped, not 100
    unclipped = model.reconstruct(torch.tensor([0]))
    assert unclipped.min() > 50  # reconstruct() never clips


def test_rating_inputs_of_every_kind_agree():
    dense_t = torch.from_numpy(DENSE)
    models = [
        AutoRec(N_USERS, N_ITEMS, ratings, hidden=3)
        for ratings in (sp.coo_matrix(DENSE), dense_t, dense_t.to_sparse(), DENSE)
    ]
    idx = torch.arange(N_ITEMS)
    reference_rows, reference_mask = models[0].rows(idx)
    for model in models[1:]:
        rows, mask = model.rows(idx)
        torch.testing.assert_close(rows, reference_rows)
        assert torch.equal(mask, reference_mask)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ratings": np.zeros((N_ITEMS, N_USERS))}, r"ratings has shape"),
        ({"ratings": [[1.0]]}, "scipy sparse matrix"),
        (
            {"ratings": sp.coo_matrix(([4.0, 5.0], ([0, 0], [1, 1])), shape=(N_USERS, N_ITEMS))},
            "repeated",
        ),
        ({"based": "movie"}, "based"),
        ({"activation": "gelu"}, "activation"),
        ({"output_activation": "softmax"}, "output_activation"),
        ({"hidden": 0}, "hidden"),
        ({"hidden": (8, 0, 8)}, r"hidden\[1\]"),
        ({"dropout": 1.0}, "dropout"),
        ({"y_range": (5.0, 1.0)}, "low < high"),
    ],
)
def test_autorec_rejects_bad_arguments(kwargs, match):
    arguments = {"ratings": sp.csr_matrix(DENSE), **kwargs}
    with pytest.raises(ValueError, match=match):
        AutoRec(N_USERS, N_ITEMS, **arguments)


def test_deep_variant_puts_dropout_on_the_code():
    model = AutoRec(
        N_USERS, N_ITEMS, DENSE, hidden=(8, 2, 8), activation="selu", dropout=0.5, based="user"
    )
    kinds = " ".join(type(m).__name__ for m in model.network)
    assert kinds == "Linear SELU Linear SELU Dropout Linear SELU Linear Identity"
    assert model.network[2].out_features == 2  # the code
    users = torch.tensor([0, 1, 2])
    items = torch.tensor([0, 1, 2])
    model.eval()
    assert torch.equal(model(users, items), model(users, items))
    model.train()
    outputs = torch.stack([model.reconstruct(users) for _ in range(5)])
    assert not torch.allclose(outputs[0], outputs[1:])
    assert "values" in dict(model.named_buffers()) and "values" not in model.state_dict()


@pytest.mark.parametrize("based", ["item", "user"])
def test_autorec_learns_to_reconstruct(based):
    gen = np.random.default_rng(0)
    n_users, n_items = 30, 20
    full = np.clip(3 + gen.normal(size=(n_users, 2)) @ gen.normal(size=(2, n_items)), 1, 5)
    observed = gen.random((n_users, n_items)) < 0.5
    ratings = sp.csr_matrix(np.where(observed, full, 0.0).astype(np.float32))
    torch.manual_seed(0)
    model = AutoRec(n_users, n_items, ratings, hidden=16, based=based)
    rows = torch.arange(model.n_rows)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    with torch.no_grad():
        first = model.masked_loss(rows).item()
    for _ in range(60):
        optimizer.zero_grad()
        model.masked_loss(rows).backward()
        optimizer.step()
    with torch.no_grad():
        last = model.masked_loss(rows).item()
    assert last < 0.2 * first
