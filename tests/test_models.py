"""Tests of recs_course.models: the shared contract, MF, EmbeddingMLP, NCF models, Popularity.

Graph models and AutoRec have their own files (test_models_graph.py, test_models_autoencoder.py);
the contract tests here run over every model.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

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
    Recommender,
    model_device,
    normalized_adjacency,
)
from recs_course.models.base import concat_mlp_scores

N_USERS, N_ITEMS = 6, 9


def _interactions(seed: int = 0, n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    users = torch.randint(0, N_USERS, (n,), generator=gen)
    items = torch.randint(0, N_ITEMS, (n,), generator=gen)
    return users, items


def _ratings_csr() -> sp.csr_matrix:
    users, items = _interactions()
    keys = np.unique(users.numpy() * N_ITEMS + items.numpy())
    values = (np.arange(keys.size) % 5 + 1).astype(np.float32)
    return sp.csr_matrix((values, (keys // N_ITEMS, keys % N_ITEMS)), shape=(N_USERS, N_ITEMS))


def _bags(n: int, seed: int):
    """Feature bags for ``n`` users or items: a multi-valued field and a bucketed number."""
    import pandas as pd

    from recs_course.data import FeatureEncoder

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "tags": [list(rng.choice(list("abcd"), size=rng.integers(0, 3))) for _ in range(n)],
            "x": rng.integers(0, 10, n),
        }
    )
    return FeatureEncoder("id", multi=["tags"], buckets={"x": (3, 6)}).fit_transform(frame)


def _hybrid(users: torch.Tensor, items: torch.Tensor) -> HybridMF:
    user_bags, item_bags = _bags(N_USERS, 1), _bags(N_ITEMS, 2)
    return HybridMF.from_interactions(
        users, items, N_USERS, N_ITEMS, 4, user_features=user_bags, item_features=item_bags
    )


def _pretrained_hybrid() -> PretrainedHybrid:
    # widths of 16 (2 * 4 + 8) and 8: pairs repeated in a batch score exactly alike (some odd
    # widths let the CPU's matrix product round two equal rows differently)
    mf, bags = MF(N_USERS, N_ITEMS, dim=4), _bags(N_ITEMS, 2)
    return PretrainedHybrid.from_mf(mf, bags, metadata_layers=(8,), combined_layers=(8,))


def _build(name: str) -> Recommender:
    users, items = _interactions()
    adjacency = normalized_adjacency(users, items, N_USERS, N_ITEMS)
    builders = {
        "MF": lambda: MF(N_USERS, N_ITEMS, dim=4, init_std=0.5),
        "MF-yrange": lambda: MF(N_USERS, N_ITEMS, dim=4, y_range=(0.5, 5.5), init_std=0.5),
        "MF-nobias": lambda: MF(N_USERS, N_ITEMS, dim=4, biases=False, init_std=0.5),
        "EmbeddingMLP": lambda: EmbeddingMLP(N_USERS, N_ITEMS, dim=4, hidden=(8, 4)),
        "GMF": lambda: GMF(N_USERS, N_ITEMS, dim=4),
        "NCFMLP": lambda: NCFMLP(N_USERS, N_ITEMS, layers=(8, 4), dropout=0.2),
        "NeuMF": lambda: NeuMF(N_USERS, N_ITEMS, dim=4, layers=(8, 4), dropout=0.2),
        "NCFMLP-flat": lambda: NCFMLP(N_USERS, N_ITEMS, layers=(8,)),
        "NeuMF-flat": lambda: NeuMF(N_USERS, N_ITEMS, dim=4, layers=(6,)),
        "Popularity": lambda: Popularity.from_interactions(users, items, N_USERS, N_ITEMS),
        "NGCF": lambda: NGCF(N_USERS, N_ITEMS, adjacency, dim=4, layer_dims=(4, 3)),
        "LightGCN": lambda: LightGCN(N_USERS, N_ITEMS, adjacency, dim=4, n_layers=2),
        "AutoRec-item": lambda: AutoRec(N_USERS, N_ITEMS, _ratings_csr(), hidden=5),
        "AutoRec-user": lambda: AutoRec(
            N_USERS, N_ITEMS, _ratings_csr(), hidden=(6, 3, 6), based="user", activation="selu"
        ),
        "HybridMF": lambda: _hybrid(users, items),
        "HybridMF-content": lambda: HybridMF(
            N_USERS, N_ITEMS, dim=4, item_features=_bags(N_ITEMS, 2), item_ids=False
        ),
        "PretrainedHybrid": _pretrained_hybrid,
    }
    torch.manual_seed(0)
    model = builders[name]()
    # Non-trivial weights everywhere, so that equalities below are not 0 == 0.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return model


ALL_MODELS = [
    "MF",
    "MF-yrange",
    "MF-nobias",
    "EmbeddingMLP",
    "GMF",
    "NCFMLP",
    "NeuMF",
    "NCFMLP-flat",
    "NeuMF-flat",
    "Popularity",
    "NGCF",
    "LightGCN",
    "AutoRec-item",
    "AutoRec-user",
    "HybridMF",
    "HybridMF-content",
    "PretrainedHybrid",
]


# --------------------------------------------------------------------------------------------
# The contract, for every model


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_returns_one_float_score_per_pair(name):
    model = _build(name).eval()
    users = torch.tensor([0, 5, 2, 2])
    items = torch.tensor([8, 0, 3, 3])
    scores = model(users, items)
    assert isinstance(model, Recommender)
    assert scores.shape == (4,)
    assert scores.dtype == torch.float32
    assert torch.isfinite(scores).all()
    assert scores[2] == scores[3]  # the same pair scores the same
    with pytest.raises(ValueError, match="same shape"):
        model(users, items[:3])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_score_all_matches_forward_on_every_pair(name):
    model = _build(name).eval()
    users = torch.tensor([3, 0, 5, 3])
    with torch.no_grad():
        table = model.score_all(users)
        pairs = model(users.repeat_interleave(N_ITEMS), torch.arange(N_ITEMS).repeat(len(users)))
    assert table.shape == (len(users), N_ITEMS)
    assert table.dtype == torch.float32
    torch.testing.assert_close(table, pairs.reshape(len(users), N_ITEMS), rtol=1e-5, atol=1e-6)
    # rows of distinct users differ (the scores are personalised), except for Popularity
    if name != "Popularity":
        assert not torch.allclose(table[0], table[1])
    torch.testing.assert_close(table[0], table[3])


def test_concat_mlp_scores_equals_the_mlp_on_concatenations_in_any_chunking():
    torch.manual_seed(0)
    first, rest = torch.nn.Linear(5, 4), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(4, 2))
    user_vectors, item_vectors = torch.randn(3, 2), torch.randn(7, 3)
    pairs = torch.cat(
        [user_vectors.repeat_interleave(7, 0), item_vectors.repeat(3, 1)], dim=1
    )  # (21, 5), user-major
    expected = rest(first(pairs)).reshape(3, 7, 2)
    for max_pairs in (1, 7, 8, 1000):
        result = concat_mlp_scores(user_vectors, item_vectors, first, rest, max_pairs=max_pairs)
        torch.testing.assert_close(result, expected)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_score_all_returns_a_fresh_writable_tensor(name):
    model = _build(name).eval()
    users = torch.tensor([1, 2])
    with torch.no_grad():
        first = model.score_all(users)
        first[torch.ones_like(first, dtype=torch.bool)] = -torch.inf  # evaluators mask in place
        second = model.score_all(users)
    assert torch.isfinite(second).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_pair_scores_match_forward_for_one_or_several_negatives(name):
    model = _build(name).eval()
    users = torch.tensor([0, 1, 4])
    pos = torch.tensor([2, 3, 8])
    neg = torch.tensor([5, 0, 1])
    negs = torch.tensor([[5, 6], [0, 7], [1, 1]])
    with torch.no_grad():
        pos_scores, neg_scores = model.pair_scores(users, pos, neg)
        _, many = model.pair_scores(users, pos, negs)
        torch.testing.assert_close(pos_scores, model(users, pos))
        torch.testing.assert_close(neg_scores, model(users, neg))
        assert many.shape == (3, 2)
        torch.testing.assert_close(many[:, 0], model(users, negs[:, 0]))
        torch.testing.assert_close(many[:, 1], model(users, negs[:, 1]))
        reg = model.regularization(users, pos, neg)
    assert reg.shape == ()
    assert reg.item() >= 0.0


@pytest.mark.parametrize("name", ALL_MODELS)
def test_buffers_follow_the_module(name):
    model = _build(name).eval()
    assert model_device(model) == torch.device("cpu")
    users, items = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    with torch.no_grad():
        expected = model(users, items).double()
        model = model.double()  # converts parameters and floating buffers (sparse ones too)
        result = model(users, items)
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-6)
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float64


def test_models_without_parameters_still_report_a_device():
    model = Popularity(3, 4)
    assert list(model.parameters()) == []
    assert model_device(model) == torch.device("cpu")
    assert model.regularization(torch.tensor([0]), torch.tensor([1]), torch.tensor([2])) == 0


def test_base_class_refuses_to_guess_a_forward():
    with pytest.raises(NotImplementedError):
        Recommender(2, 3)(torch.tensor([0]), torch.tensor([1]))


# --------------------------------------------------------------------------------------------
# Argument checks


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: MF(0, 5), "n_users"),
        (lambda: MF(5, -1), "n_items"),
        (lambda: MF(5, 5, dim=2.5), "dim"),
        (lambda: MF(5, 5, dim=True), "dim"),
        (lambda: MF(5, 5, y_range=(5, 1)), "low < high"),
        (lambda: MF(5, 5, y_range=(1,)), "pair"),
        (lambda: MF(5, 5, init_std=-1.0), "init_std"),
        (lambda: EmbeddingMLP(5, 5, hidden=()), "at least 1"),
        (lambda: EmbeddingMLP(5, 5, hidden=64), "sequence"),
        (lambda: EmbeddingMLP(5, 5, hidden=(8, 0)), r"hidden\[1\]"),
        (lambda: EmbeddingMLP(5, 5, hidden=(8, 4), dropout=(0.1,)), "one probability per"),
        (lambda: EmbeddingMLP(5, 5, dropout=1.0), r"\[0, 1\)"),
        (lambda: EmbeddingMLP(5, 5, embed_dropout=-0.1), "embed_dropout"),
        (lambda: GMF(5, 5, dim=0), "dim"),
        (lambda: NCFMLP(5, 5, layers=(63, 32)), "even"),
        (lambda: NCFMLP(5, 5, layers="64,32"), "sequence"),
        (lambda: NCFMLP(5, 5, dropout=1.5), "dropout"),
        (lambda: NeuMF(5, 5, layers=(64, -32)), r"layers\[1\]"),
        (lambda: NeuMF(5, 5, dropout="0.2"), "dropout"),
        (lambda: MF(5, 5, biases="no"), "biases must be True or False"),
        (lambda: MF(5, 5, biases=1), "biases must be True or False"),
        (lambda: MF(5, 5, dim=np.float64(4.0)), "dim"),
        (lambda: EmbeddingMLP(5, 5, dropout=np.bool_(False)), "dropout"),
        (lambda: MF(5, 5, init_std=np.bool_(True)), "init_std"),
    ],
)
def test_invalid_arguments_raise_helpful_value_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_numpy_scalars_are_numbers_like_python_ones():
    python = MF(5, 5, dim=4, init_std=0.1, biases=True)
    numpy = MF(5, 5, dim=np.int64(4), init_std=np.float32(0.1), biases=np.bool_(True))
    assert repr(numpy) == repr(python) and numpy.biases is True
    mlp = EmbeddingMLP(
        5,
        5,
        dim=np.int32(4),
        hidden=(np.int64(8),),
        dropout=np.float32(0.25),
        embed_dropout=np.float64(0.0),
        y_range=(np.float32(1.0), 5),
    )
    assert mlp.dropout == (0.25,) and mlp.hidden == (8,) and isinstance(mlp.dim, int)


@pytest.mark.parametrize(
    ("build", "arguments"),
    [
        (MF, (5, 5, 4, True)),  # biases
        (EmbeddingMLP, (5, 5, 4, (8,))),  # hidden
    ],
)
def test_options_after_dim_are_keyword_only(build, arguments):
    import inspect

    with pytest.raises(TypeError, match="positional"):
        build(*arguments)
    parameters = list(inspect.signature(build).parameters.values())
    assert [p.name for p in parameters[:3]] == ["n_users", "n_items", "dim"]
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[3:])


# --------------------------------------------------------------------------------------------
# MF and EmbeddingMLP


def test_mf_score_is_dot_product_plus_biases():
    model = _build("MF")
    users, items = torch.tensor([0, 4, 5]), torch.tensor([1, 1, 8])
    p = model.user_embedding.weight[users]
    q = model.item_embedding.weight[items]
    expected = (
        (p * q).sum(1)
        + model.user_bias.weight[users, 0]
        + model.item_bias.weight[items, 0]
        + model.global_bias
    )
    torch.testing.assert_close(model(users, items), expected)
    plain = _build("MF-nobias")
    assert not hasattr(plain, "user_bias")
    expected = (plain.user_embedding.weight[users] * plain.item_embedding.weight[items]).sum(1)
    torch.testing.assert_close(plain(users, items), expected)


@pytest.mark.parametrize(
    "build",
    [
        lambda: MF(N_USERS, N_ITEMS, dim=4, y_range=(1.0, 5.0), init_std=3.0),
        lambda: EmbeddingMLP(N_USERS, N_ITEMS, dim=4, y_range=(1.0, 5.0), init_std=3.0),
    ],
)
def test_y_range_bounds_predictions(build):
    torch.manual_seed(1)
    model = build().eval()
    with torch.no_grad():
        for param in model.parameters():  # push the logits far to both sides
            param.mul_(20.0)
        table = model.score_all(torch.arange(N_USERS))
    assert table.min() >= 1.0 and table.max() <= 5.0
    assert table.max() - table.min() > 2.0  # the range is used, not collapsed to a point


def test_mf_y_range_is_the_scaled_sigmoid_of_the_raw_score():
    torch.manual_seed(0)
    raw = MF(N_USERS, N_ITEMS, dim=4, init_std=0.5)
    scaled = MF(N_USERS, N_ITEMS, dim=4, y_range=(0.5, 5.5))
    scaled.load_state_dict(raw.state_dict())
    users, items = torch.tensor([0, 1]), torch.tensor([2, 3])
    torch.testing.assert_close(scaled(users, items), 0.5 + 5.0 * torch.sigmoid(raw(users, items)))


def test_embedding_mlp_layout_and_dropout_modes():
    model = EmbeddingMLP(N_USERS, N_ITEMS, dim=4, hidden=(8, 6), dropout=(0.5, 0.25))
    linears = [m for m in model.hidden_layers if isinstance(m, torch.nn.Linear)]
    dropouts = [m.p for m in model.hidden_layers if isinstance(m, torch.nn.Dropout)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 8), (8, 6)]
    assert dropouts == [0.5, 0.25]
    assert model.output.in_features == 6
    users, items = torch.arange(N_USERS).repeat(5), torch.arange(N_USERS * 5) % N_ITEMS
    model.eval()
    torch.testing.assert_close(model(users, items), model(users, items))
    model.train()
    assert not torch.equal(model(users, items), model(users, items))


# --------------------------------------------------------------------------------------------
# NCF: GMF, MLP, NeuMF


def test_ncf_initialisation_follows_the_paper():
    torch.manual_seed(0)
    model = NeuMF(2000, 2000, dim=32, layers=(64, 32, 16, 8))
    std = model.gmf_user_embedding.weight.std().item()
    assert 0.0095 < std < 0.0105
    assert all(torch.count_nonzero(m.bias) == 0 for m in model.tower if hasattr(m, "bias"))
    assert model.output.weight.shape == (1, 32 + 8)
    assert model.mlp_user_embedding.embedding_dim == 32


def test_gmf_is_a_weighted_inner_product():
    model = _build("GMF")
    users, items = torch.tensor([0, 1, 5]), torch.tensor([3, 3, 8])
    products = model.user_embedding.weight[users] * model.item_embedding.weight[items]
    expected = products @ model.output.weight[0] + model.output.bias
    torch.testing.assert_close(model(users, items), expected)


def test_ncf_mlp_tower_shapes():
    model = NCFMLP(N_USERS, N_ITEMS, layers=(64, 32, 16, 8), dropout=0.2)
    linears = [m for m in model.tower if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 8)]
    assert model.user_embedding.embedding_dim == 32
    assert model.features(torch.tensor([0, 1]), torch.tensor([2, 3])).shape == (2, 8)
    single = NCFMLP(N_USERS, N_ITEMS, layers=(16,))  # no tower: a linear model on [p_u; q_i]
    assert len(single.tower) == 0 and single.output.in_features == 16


def _pretrained_pair() -> tuple[GMF, NCFMLP]:
    torch.manual_seed(2)
    gmf, mlp = GMF(N_USERS, N_ITEMS, dim=4), NCFMLP(N_USERS, N_ITEMS, layers=(8, 6, 4), dropout=0.3)
    with torch.no_grad():
        for param in [*gmf.parameters(), *mlp.parameters()]:
            param.add_(torch.randn_like(param))
    return gmf.eval(), mlp.eval()


@pytest.mark.parametrize("alpha", [1.0, 0.0, 0.3])
def test_from_pretrained_output_is_the_alpha_mixture(alpha):
    gmf, mlp = _pretrained_pair()
    before = {k: v.clone() for k, v in [*gmf.state_dict().items(), *mlp.state_dict().items()]}
    model = NeuMF.from_pretrained(gmf, mlp, alpha=alpha).eval()
    users = torch.arange(N_USERS).repeat_interleave(N_ITEMS)
    items = torch.arange(N_ITEMS).repeat(N_USERS)
    with torch.no_grad():
        expected = alpha * gmf(users, items) + (1 - alpha) * mlp(users, items)
        torch.testing.assert_close(model(users, items), expected, rtol=1e-6, atol=1e-6)
    assert model.dropout == 0.3 and model.dim == 4 and model.layers == (8, 6, 4)
    torch.testing.assert_close(model.gmf_item_embedding.weight, gmf.item_embedding.weight)
    torch.testing.assert_close(model.mlp_user_embedding.weight, mlp.user_embedding.weight)
    # the sources are untouched and share no storage with the new model
    with torch.no_grad():
        model.gmf_user_embedding.weight.zero_()
    after = {k: v for k, v in [*gmf.state_dict().items(), *mlp.state_dict().items()]}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_from_pretrained_alpha_one_keeps_only_the_gmf_half():
    gmf, mlp = _pretrained_pair()
    model = NeuMF.from_pretrained(gmf, mlp, alpha=1.0, dropout=0.0)
    assert torch.count_nonzero(model.output.weight[:, gmf.dim :]) == 0
    torch.testing.assert_close(model.output.bias, gmf.output.bias)
    assert model.dropout == 0.0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((lambda g, m: (g, m, 1.5)), r"alpha"),
        ((lambda g, m: (m, g, 0.5)), "needs a GMF and an NCFMLP"),
        ((lambda g, m: (GMF(N_USERS + 1, N_ITEMS), m, 0.5)), "same encoded data"),
    ],
)
def test_from_pretrained_rejects_mismatched_inputs(args, match):
    gmf, mlp = _pretrained_pair()
    first, second, alpha = args(gmf, mlp)
    with pytest.raises(ValueError, match=match):
        NeuMF.from_pretrained(first, second, alpha=alpha)


# --------------------------------------------------------------------------------------------
# Popularity


def test_popularity_ranks_items_by_distinct_users():
    users = torch.tensor([0, 1, 2, 0, 1, 0, 0, 0, 2])
    items = torch.tensor([3, 3, 3, 1, 1, 2, 2, 2, 4])  # user 0 repeats item 2: one user
    model = Popularity.from_interactions(users, items, n_users=3, n_items=5)
    torch.testing.assert_close(model.counts, torch.tensor([0.0, 2.0, 1.0, 3.0, 1.0]))
    table = model.score_all(torch.tensor([0, 2]))
    assert table.argmax(1).tolist() == [3, 3]
    assert torch.equal(table[0], table[1])
    torch.testing.assert_close(
        model(torch.tensor([1, 2]), torch.tensor([1, 0])), torch.tensor([2.0, 0.0])
    )
    from_lists = Popularity.from_interactions(users.numpy(), items.tolist(), 3, 5)
    assert torch.equal(from_lists.counts, model.counts) and repr(from_lists) == repr(model)
    assert not hasattr(Popularity, "fit")  # one way to build it: from_interactions
    # the counts are its state: a checkpoint restores them into Popularity(n_users, n_items)
    empty = Popularity(3, 5)
    assert not empty.counts.any()
    empty.load_state_dict(model.state_dict())
    assert torch.equal(empty.counts, model.counts)


def test_popularity_rejects_bad_interactions():
    build = Popularity.from_interactions
    with pytest.raises(ValueError, match=r"items must lie in \[0, 5\) \(n_items = 5\)"):
        build([0, 1], [1, 5], 3, 5)
    with pytest.raises(ValueError, match="same length"):
        build([0, 1], [1], 3, 5)
    with pytest.raises(ValueError, match="integer"):
        build([0.5, 1.0], [1, 2], 3, 5)
    with pytest.raises(ValueError, match="n_items"):
        build([0], [1], 3, 0)
    # Whole-number floats are ids converted exactly, as in the data layer.
    assert torch.equal(build([0.0, 1.0], [1, 2], 3, 5).counts, build([0, 1], [1, 2], 3, 5).counts)


# --------------------------------------------------------------------------------------------
# Each model learns a tiny task


def _train(model, loss_fn, steps: int, lr: float) -> tuple[float, float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    first = loss_fn().item()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return first, loss_fn().item()


def _rating_task() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    n_users, n_items = 20, 15
    p, q = torch.randn(n_users, 2, generator=gen), torch.randn(n_items, 2, generator=gen)
    users = torch.arange(n_users).repeat_interleave(n_items)
    items = torch.arange(n_items).repeat(n_users)
    ratings = (3.0 + (p[users] * q[items]).sum(1)).clamp(1.0, 5.0)
    return users, items, ratings


@pytest.mark.parametrize(
    "build",
    [
        lambda: MF(20, 15, dim=4, y_range=(0.5, 5.5), init_std=0.1),
        lambda: MF(20, 15, dim=4, init_std=0.1),
        lambda: EmbeddingMLP(20, 15, dim=4, hidden=(16,), dropout=0.0, embed_dropout=0.0),
    ],
)
def test_rating_models_learn(build):
    torch.manual_seed(0)
    users, items, ratings = _rating_task()
    model = build()
    first, last = _train(model, lambda: F.mse_loss(model(users, items), ratings), 60, 0.05)
    assert last < 0.5 * first


@pytest.mark.parametrize(
    "build",
    [
        lambda: GMF(20, 15, dim=8),
        lambda: NCFMLP(20, 15, layers=(16, 8)),
        lambda: NeuMF(20, 15, dim=8, layers=(16, 8)),
    ],
)
def test_implicit_models_learn(build):
    torch.manual_seed(0)
    users, items, ratings = _rating_task()
    labels = (ratings > 3.0).float()
    model = build()
    first, last = _train(
        model, lambda: F.binary_cross_entropy_with_logits(model(users, items), labels), 60, 0.05
    )
    assert first == pytest.approx(np.log(2), abs=0.02)  # logits start near 0
    assert last < 0.7 * first


# --------------------------------------------------------------------------------------------
# Several negatives per positive (the sampled view of BPR), against a naive loop


@pytest.mark.parametrize("name", ALL_MODELS)
def test_bpr_with_k_negatives_equals_a_naive_loop(name):
    from recs_course.losses import bpr_loss

    model = _build(name).eval()
    users = torch.tensor([0, 1, 4, 5])
    pos = torch.tensor([2, 3, 8, 0])
    neg = torch.tensor([[5, 6, 1], [0, 7, 7], [1, 2, 3], [8, 4, 6]])
    with torch.no_grad():
        pos_scores, neg_scores = model.pair_scores(users, pos, neg)
        terms = []
        for b in range(len(users)):
            u = users[b : b + 1]
            s_pos = model(u, pos[b : b + 1])
            torch.testing.assert_close(pos_scores[b : b + 1], s_pos)
            for k in range(neg.shape[1]):
                s_neg = model(u, neg[b, k : k + 1])
                torch.testing.assert_close(neg_scores[b, k : k + 1], s_neg)
                terms.append(-F.logsigmoid(s_pos - s_neg))
        expected = torch.cat(terms).mean() + model.regularization(users, pos, neg)
        torch.testing.assert_close(bpr_loss(model, (users, pos, neg)), expected)


# --------------------------------------------------------------------------------------------
# regularization(users, *items), from_interactions, sparse MF


@pytest.mark.parametrize("name", ["MF", "NeuMF", "AutoRec-item", "Popularity"])
def test_the_default_regularization_is_zero_for_any_batch_layout(name):
    model = _build(name)
    users, items = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    assert model.regularization(users, items) == 0
    assert model.regularization(users, items, torch.tensor([[1, 2], [3, 4], [5, 6]])) == 0
    with pytest.raises(ValueError, match=r"items must have shape \(B,\) or \(B, K\) with B = 3"):
        model.regularization(users, items[:2])
    with pytest.raises(ValueError, match=r"items must lie in \[0, 9\)"):
        model.regularization(users, torch.tensor([0, 1, 9]))


def test_models_built_on_training_data_share_one_constructor():
    import inspect

    users, items = _interactions()
    keys = np.unique(users.numpy() * N_ITEMS + items.numpy())
    u, i = keys // N_ITEMS, keys % N_ITEMS
    values = (np.arange(keys.size) % 5 + 1).astype(np.float32)
    for cls in (NGCF, LightGCN, AutoRec, Popularity):
        params = list(inspect.signature(cls.from_interactions).parameters)
        assert params[:4] == ["users", "items", "n_users", "n_items"], cls
    torch.manual_seed(0)
    graph = LightGCN.from_interactions(users, items, N_USERS, N_ITEMS, dim=4)
    torch.manual_seed(0)
    direct = LightGCN(N_USERS, N_ITEMS, normalized_adjacency(users, items, N_USERS, N_ITEMS), dim=4)
    assert torch.equal(
        graph.score_all(torch.arange(N_USERS)), direct.score_all(torch.arange(N_USERS))
    )
    torch.manual_seed(0)
    autorec = AutoRec.from_interactions(u, i, N_USERS, N_ITEMS, ratings=values, hidden=5)
    torch.manual_seed(0)
    matrix = AutoRec(N_USERS, N_ITEMS, _ratings_csr(), hidden=5)
    assert torch.equal(autorec.values, matrix.values) and repr(autorec) == repr(matrix)


@pytest.mark.parametrize("cls", [NGCF, LightGCN, AutoRec, Popularity])
def test_from_interactions_checks_its_lists_one_way(cls):
    extra = {"ratings": [4.0, 5.0]} if cls is AutoRec else {}
    with pytest.raises(ValueError, match=r"items must lie in \[0, 9\) \(n_items = 9\)"):
        cls.from_interactions([0, 1], [1, 9], N_USERS, N_ITEMS, **extra)
    with pytest.raises(ValueError, match="same length"):
        cls.from_interactions([0, 1], [1], N_USERS, N_ITEMS, **extra)
    with pytest.raises(ValueError, match="n_users must be a positive integer"):
        cls.from_interactions([0, 1], [1, 2], 0, N_ITEMS, **extra)


def test_model_signatures_show_their_arguments():
    import inspect

    for cls in (MF, EmbeddingMLP, GMF, NCFMLP, NeuMF, Popularity, NGCF, LightGCN, AutoRec,
                HybridMF, PretrainedHybrid):  # fmt: skip
        kinds = [p.kind for p in inspect.signature(cls).parameters.values()]
        assert inspect.Parameter.VAR_KEYWORD not in kinds, cls  # no hidden **unknown


def test_sparse_mf_gives_sparse_gradients_for_the_rows_a_batch_touches():
    from recs_course.losses import bpr_loss, mse_loss

    torch.manual_seed(0)
    model = MF(N_USERS, N_ITEMS, dim=4, sparse=True, init_std=0.5)
    dense_twin = MF(N_USERS, N_ITEMS, dim=4, init_std=0.5)
    dense_twin.load_state_dict(model.state_dict())
    users, items, ratings = torch.tensor([0, 2, 2]), torch.tensor([1, 5, 8]), torch.ones(3)
    for m in (model, dense_twin):
        mse_loss(m, (users, items, ratings)).backward()
    tables = ["user_embedding", "item_embedding", "user_bias", "item_bias"]
    for table in tables:
        grad = getattr(model, table).weight.grad
        assert grad.is_sparse, table
        dense_grad = getattr(dense_twin, table).weight.grad
        torch.testing.assert_close(grad.to_dense(), dense_grad)
        touched = grad.coalesce().indices()[0].unique().tolist()
        assert touched == sorted(set((users if "user" in table else items).tolist())), table
    assert not model.global_bias.grad.is_sparse  # the one dense parameter
    model.zero_grad(set_to_none=True)
    bpr_loss(model, (users, items, torch.tensor([[0, 3], [4, 4], [6, 7]]))).backward()
    assert model.item_embedding.weight.grad.is_sparse
    touched = set(model.item_embedding.weight.grad.coalesce().indices()[0].tolist())
    assert touched == {0, 1, 3, 4, 5, 6, 7, 8}  # pos and the (B, K) negatives
    # a sparse-aware optimiser steps only the touched rows
    before = model.user_embedding.weight.detach().clone()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    changed = (model.user_embedding.weight.detach() != before).any(1).nonzero().squeeze(1)
    assert changed.tolist() == [0, 2]
    with pytest.raises(ValueError, match="sparse must be True or False"):
        MF(N_USERS, N_ITEMS, sparse="yes")
