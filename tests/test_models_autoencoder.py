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
    model = _model("item", clip=(1.0, 5.0))
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
            r"ratings holds 1 duplicate \(user, item\) pair.*drop_duplicate_pairs",
        ),
        (
            {
                "ratings": torch.sparse_coo_tensor(
                    [[0, 0], [1, 1]], [4.0, 5.0], (N_USERS, N_ITEMS), check_invariants=False
                )  # not coalesced: the two ratings are not summed into a 9
            },
            "duplicate",
        ),
        ({"ratings": np.where(DENSE > 0, np.nan, 0.0)}, "NaN"),
        ({"based": "movie"}, "based"),
        ({"activation": "gelu"}, "activation"),
        ({"output_activation": "softmax"}, "output_activation"),
        ({"hidden": 0}, "hidden"),
        ({"hidden": (8, 0, 8)}, r"hidden\[1\]"),
        ({"dropout": 1.0}, "dropout"),
        ({"clip": (5.0, 1.0)}, r"clip must be finite with low < high"),
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


# --------------------------------------------------------------------------------------------
# Scoring passes, the constructor from interactions, renamed arguments


def _counting_reconstructions(model: AutoRec) -> list[int]:
    """Count the items (rows) the model reconstructs."""
    rows: list[int] = []
    original = model._reconstruct

    def reconstruct(idx):
        rows.append(idx.numel())
        return original(idx)

    model._reconstruct = reconstruct
    return rows


def test_item_based_scoring_pass_reconstructs_every_item_once():
    model = _model("item", clip=(1.0, 5.0))
    counted = _counting_reconstructions(model)
    users = [torch.tensor([0, 2]), torch.tensor([1, 3])]
    pairs = (torch.tensor([0, 1, 2, 3, 2]), torch.tensor([4, 3, 2, 1, 0]))
    with torch.no_grad():
        plain = [model.score_all(u) for u in users]
        plain_pairs = model(*pairs)
        assert sum(counted) == 2 * N_ITEMS + 5  # every item per score_all call, + the pairs'
        del counted[:]
        with model.scoring_pass():
            shared = [model.score_all(u) for u in users]
            shared_pairs = model(*pairs)
        assert counted == [N_ITEMS]  # once, for the whole pass
        model(*pairs)
        assert len(counted) == 2  # dropped on exit
    for a, b in zip(plain, shared, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(plain_pairs, shared_pairs, rtol=1e-6, atol=1e-6)


def test_a_scoring_pass_changes_nothing_where_nothing_is_shared():
    user_based = _model("user")
    counted = _counting_reconstructions(user_based)
    with torch.no_grad(), user_based.scoring_pass():
        user_based.score_all(torch.tensor([0, 1]))
        user_based.score_all(torch.tensor([2]))
    assert counted == [2, 1]  # user-based: each call's own users, as outside a pass
    big = _model("item")
    big.max_pass_entries = N_USERS * N_ITEMS - 1  # a table too large to keep
    counted = _counting_reconstructions(big)
    with torch.no_grad(), big.scoring_pass():
        big.score_all(torch.tensor([0])), big.score_all(torch.tensor([1]))
    assert counted == [N_ITEMS, N_ITEMS]


def test_items_per_chunk_sets_how_many_items_one_call_reconstructs():
    model = _model("item")
    users = torch.tensor([0, 3, 1])
    with torch.no_grad():
        reference = model.score_all(users)
        model.items_per_chunk = 2  # an instance setting, like max_pass_entries
        counted = _counting_reconstructions(model)
        torch.testing.assert_close(model.score_all(users), reference)
        assert counted == [2, 2, 1]
        del counted[:]
        with model.scoring_pass():
            torch.testing.assert_close(model.score_all(users), reference)
        assert counted == [2, 2, 1]
        model.items_per_chunk = 0
        with pytest.raises(ValueError, match="items_per_chunk must be a positive integer"):
            model.score_all(users)
    assert AutoRec.items_per_chunk == 1024


def test_evaluators_reconstruct_once_per_evaluation():
    from recs_course.evaluation import evaluate_ratings

    model = _model("item")
    counted = _counting_reconstructions(model)
    users, items = np.nonzero(DENSE)
    ratings = DENSE[users, items]
    result = evaluate_ratings(model, users, items, ratings)
    assert counted == [N_ITEMS]  # one table (whatever the number of batches)
    with torch.no_grad():
        pred = model(torch.from_numpy(users), torch.from_numpy(items)).numpy()
    assert result["RMSE"] == pytest.approx(float(np.sqrt(np.mean((pred - ratings) ** 2))), rel=1e-5)


def test_from_interactions_equals_the_rating_matrix_constructor():
    users, items = np.nonzero(DENSE)
    values = DENSE[users, items]
    torch.manual_seed(0)
    built = AutoRec.from_interactions(
        users, items, N_USERS, N_ITEMS, ratings=torch.from_numpy(values), hidden=3, clip=(1, 5)
    ).eval()
    reference = _model("item", clip=(1, 5))
    assert repr(built) == repr(reference)
    idx = torch.arange(N_ITEMS)
    torch.testing.assert_close(built.rows(idx), reference.rows(idx))
    with torch.no_grad():
        torch.testing.assert_close(
            built.score_all(torch.arange(N_USERS)), reference.score_all(torch.arange(N_USERS))
        )
    duplicate = (
        r"ratings holds 1 duplicate \(user, item\) pair\(s\).*user_id=0, item_id=1 at "
        r"positions \[0, 2\]\. A rating matrix holds one rating per pair\. .*"
        r"recs_course\.data\.drop_duplicate_pairs"
    )
    with pytest.raises(ValueError, match=duplicate):
        AutoRec.from_interactions([0, 2, 0], [1, 1, 1], N_USERS, N_ITEMS, ratings=[4.0, 3, 5])
    with pytest.raises(ValueError, match="same length"):
        AutoRec.from_interactions([0, 1], [1, 2], N_USERS, N_ITEMS, ratings=[4.0])
    with pytest.raises(ValueError, match=r"items must lie in \[0, 5\)"):
        AutoRec.from_interactions([0], [5], N_USERS, N_ITEMS, ratings=[4.0])
    with pytest.raises(ValueError, match="NaN"):
        AutoRec.from_interactions([0], [1], N_USERS, N_ITEMS, ratings=[float("nan")])
    with pytest.raises(ValueError, match="ratings must hold real numbers"):
        AutoRec.from_interactions([0], [1], N_USERS, N_ITEMS, ratings=["4"])
    with pytest.raises(TypeError, match="ratings"):
        AutoRec.from_interactions([0], [1], N_USERS, N_ITEMS)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'values'.*ratings="):
        AutoRec.from_interactions([0], [1], N_USERS, N_ITEMS, values=[4.0])


def test_clip_is_the_new_name_of_y_range_and_is_in_the_repr():
    with pytest.raises(
        TypeError, match=r"^AutoRec\(\) got an unexpected keyword argument 'y_range'.*clip="
    ):
        AutoRec(N_USERS, N_ITEMS, DENSE, y_range=(1.0, 5.0))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'y_range'.*clip="):
        AutoRec.from_interactions([0], [1], N_USERS, N_ITEMS, ratings=[4.0], y_range=(1, 5))
    with pytest.raises(TypeError, match="positional"):
        AutoRec(N_USERS, N_ITEMS, DENSE, 3)  # hidden is keyword-only
    import inspect

    parameters = inspect.signature(AutoRec).parameters
    assert "clip" in parameters and "y_range" not in parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in parameters.values())
    clipped, free = _model("item", clip=(1.0, 5.0)), _model("item")
    assert "clip=(1.0, 5.0)" in repr(clipped) and "clip=None" in repr(free)
    assert repr(clipped) != repr(free)  # a checkpoint of one is refused by the other
