"""EASE and ItemKNN (recs_course.models.item_item) against independent references.

EASE against its closed form written here with numpy (``np.linalg.inv``); ItemKNN against
scikit-learn's cosine similarities, a naive Python loop for the top-k cut, and the shrunk
formula worked out by hand on a tiny case. Then the contract (forward == score_all, index
checks, argument checks, repr, devices, checkpoints) and a full-ranking evaluation in which
both must beat the popularity baseline on synthetic data with structure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics.pairwise import cosine_similarity

from recs_course.data import (
    IdEncoder,
    interaction_matrix,
    stratified_split,
    synthetic_ratings,
    to_implicit,
)
from recs_course.evaluation import evaluate_full
from recs_course.models import EASE, ItemKNN, Popularity, item_item, model_device
from recs_course.training import load_checkpoint, save_checkpoint

N_USERS, N_ITEMS = 30, 20


def _binary(seed: int = 0, n_users: int = N_USERS, n_items: int = N_ITEMS, density: float = 0.3):
    """A random binary ``(U, I)`` numpy matrix and its interaction lists."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density).astype(np.float64)
    users, items = np.nonzero(dense)
    return dense, users, items


def _all_pairs(n_users: int, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    users = torch.arange(n_users).repeat_interleave(n_items)
    items = torch.arange(n_items).repeat(n_users)
    return users, items


def _knn_weights(model: ItemKNN) -> np.ndarray:
    """The model's ``W (I, I)``: ``W[i, j] = sim(i, j)`` for ``i`` among ``j``'s neighbours."""
    n = model.n_items
    weights = np.zeros((n, n))
    rows = model.neighbors.numpy()
    columns = np.repeat(np.arange(n), model.n_neighbors)
    weights[rows.reshape(-1), columns] = model.similarities.numpy().reshape(-1)
    return weights


# ---------------------------------------------------------------------------------------------
# EASE against the closed form


def _ease_numpy(dense: np.ndarray, l2: float) -> np.ndarray:
    """Steck (2019), eq. 8, in numpy: B = I - P diag(1 / diag(P)), P = (X^T X + l2 I)^-1."""
    precision = np.linalg.inv(dense.T @ dense + l2 * np.eye(dense.shape[1]))
    return np.eye(dense.shape[1]) - precision / np.diag(precision)[None, :]


@pytest.mark.parametrize("l2", [1.0, 5.0, 500.0])
def test_ease_matches_the_numpy_closed_form(l2):
    dense, users, items = _binary()
    model = EASE.from_interactions(users, items, N_USERS, N_ITEMS, l2=l2)
    reference = _ease_numpy(dense, l2)
    weights = model.weights.numpy()
    assert model.weights.dtype == torch.float32
    np.testing.assert_allclose(weights, reference, rtol=1e-5, atol=1e-6)
    assert np.all(np.diag(weights) == 0.0)
    # the stationarity condition of the constrained problem: off-diagonal (X^T X + l2 I) B = G
    gram = dense.T @ dense
    lhs = (gram + l2 * np.eye(N_ITEMS)) @ reference
    off = ~np.eye(N_ITEMS, dtype=bool)
    np.testing.assert_allclose(lhs[off], gram[off], atol=1e-8)

    scores = model.score_all(torch.arange(N_USERS))
    np.testing.assert_allclose(scores.numpy(), dense @ reference, rtol=1e-4, atol=1e-5)
    pairs = model(*_all_pairs(N_USERS, N_ITEMS)).reshape(N_USERS, N_ITEMS)
    torch.testing.assert_close(pairs, scores, rtol=1e-5, atol=1e-6)


def test_ease_repeated_pairs_count_once_and_lists_equal_matrix():
    dense, users, items = _binary(seed=1)
    once = EASE.from_interactions(users, items, N_USERS, N_ITEMS, l2=10.0)
    twice = EASE.from_interactions(
        np.r_[users, users], torch.as_tensor(np.r_[items, items]), N_USERS, N_ITEMS, l2=10.0
    )
    assert torch.equal(once.weights, twice.weights)
    assert once.n_interactions == twice.n_interactions == int(dense.sum())
    np.testing.assert_array_equal(once.interaction_matrix().toarray(), dense)


def test_ease_user_without_items_scores_zero():
    dense, users, items = _binary(seed=2)
    keep = users != 3
    model = EASE.from_interactions(users[keep], items[keep], N_USERS, N_ITEMS, l2=10.0)
    assert torch.equal(model.score_all(torch.tensor([3])), torch.zeros(1, N_ITEMS))
    assert torch.equal(model(torch.tensor([3, 3]), torch.tensor([0, 5])), torch.zeros(2))


# ---------------------------------------------------------------------------------------------
# ItemKNN against scikit-learn, a naive loop and the formula by hand


def test_itemknn_all_neighbours_no_shrink_is_sklearn_cosine():
    dense, users, items = _binary(seed=3)
    model = ItemKNN.from_interactions(users, items, N_USERS, N_ITEMS, k=N_ITEMS, shrink=0.0)
    assert model.n_neighbors == N_ITEMS - 1  # never an item with itself
    reference = cosine_similarity(dense.T)
    np.fill_diagonal(reference, 0.0)
    np.testing.assert_allclose(_knn_weights(model), reference, rtol=1e-6, atol=1e-7)
    scores = model.score_all(torch.arange(N_USERS))
    np.testing.assert_allclose(scores.numpy(), dense @ reference, rtol=1e-5, atol=1e-5)
    pairs = model(*_all_pairs(N_USERS, N_ITEMS)).reshape(N_USERS, N_ITEMS)
    torch.testing.assert_close(pairs, scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("k", "shrink"), [(1, 0.0), (3, 2.0), (7, 10.0)])
def test_itemknn_top_k_cut_matches_a_naive_loop(k, shrink):
    dense, users, items = _binary(seed=4, density=0.25)
    model = ItemKNN.from_interactions(users, items, N_USERS, N_ITEMS, k=k, shrink=shrink)
    # the similarity, item by item, in plain Python
    norms = np.sqrt(dense.sum(axis=0))
    expected = np.zeros((N_ITEMS, N_ITEMS))
    for j in range(N_ITEMS):
        sims = {}
        for i in range(N_ITEMS):
            if i == j:
                continue
            denominator = norms[i] * norms[j] + shrink
            sims[i] = float(dense[:, i] @ dense[:, j]) / denominator if denominator > 0 else 0.0
        ranked = sorted(sims, key=lambda i: (-sims[i], i))  # ties: smaller index first
        for i in ranked[:k]:
            expected[i, j] = sims[i]
        assert sorted(model.neighbors[j].tolist()) == sorted(ranked[:k]), j
    np.testing.assert_allclose(_knn_weights(model), expected, rtol=1e-6, atol=1e-7)
    scores = model.score_all(torch.arange(N_USERS))
    np.testing.assert_allclose(scores.numpy(), dense @ expected, rtol=1e-5, atol=1e-5)
    pairs = model(*_all_pairs(N_USERS, N_ITEMS)).reshape(N_USERS, N_ITEMS)
    torch.testing.assert_close(pairs, scores, rtol=1e-5, atol=1e-6)


def test_itemknn_shrinkage_by_hand():
    # columns: x0 = (1, 1, 0), x1 = (1, 1, 1), x2 = (0, 1, 1); user 0 has items 0 and 1
    dense = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]])
    users, items = np.nonzero(dense)
    shrink = 1.0
    sim_01 = 2 / (math.sqrt(2) * math.sqrt(3) + shrink)
    sim_02 = 1 / (math.sqrt(2) * math.sqrt(2) + shrink)  # 1/3
    sim_12 = 2 / (math.sqrt(3) * math.sqrt(2) + shrink)
    both = ItemKNN.from_interactions(users, items, 3, 3, k=2, shrink=shrink)
    expected = np.array([[0, sim_01, sim_02], [sim_01, 0, sim_12], [sim_02, sim_12, 0]])
    np.testing.assert_allclose(_knn_weights(both), expected, rtol=1e-6)
    assert both(torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(sim_02 + sim_12)
    # k = 1: item 2 keeps item 1 (sim_12 > sim_02), so user 0's item 0 no longer counts for it
    one = ItemKNN.from_interactions(users, items, 3, 3, k=1, shrink=shrink)
    assert one.neighbors[2].tolist() == [1]
    assert one(torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(sim_12)
    assert one.score_all(torch.tensor([0]))[0, 2].item() == pytest.approx(sim_12)
    # without shrinkage the similarities are larger
    plain = ItemKNN.from_interactions(users, items, 3, 3, k=2, shrink=0.0)
    assert plain.similarities[2].tolist() == pytest.approx([1 / 2, 2 / math.sqrt(6)])


def test_itemknn_ties_go_to_the_smaller_index_and_empty_items_score_zero():
    # items 0 and 1 have identical columns, item 3 has no user: sim(0, 2) == sim(1, 2)
    dense = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0]])
    users, items = np.nonzero(dense)
    model = ItemKNN.from_interactions(users, items, 3, 4, k=1, shrink=0.0)
    assert model.neighbors[2].tolist() == [0]
    assert torch.isfinite(model.similarities).all()
    assert model.similarities[3].tolist() == [0.0]  # no users: 0, not NaN (0/0)
    assert torch.equal(model.score_all(torch.arange(3))[:, 3], torch.zeros(3))


def test_single_item_and_users_without_items():
    model = ItemKNN.from_interactions([0, 1], [0, 0], 3, 1, k=5)
    assert model.n_neighbors == 0
    assert torch.equal(model.score_all(torch.arange(3)), torch.zeros(3, 1))
    assert torch.equal(model(torch.tensor([0, 2]), torch.tensor([0, 0])), torch.zeros(2))
    ease = EASE.from_interactions([0, 1], [0, 0], 3, 1, l2=1.0)
    assert torch.equal(ease.score_all(torch.arange(3)), torch.zeros(3, 1))


# ---------------------------------------------------------------------------------------------
# The contract


def _models():
    dense, users, items = _binary(seed=5)
    return [
        EASE.from_interactions(users, items, N_USERS, N_ITEMS, l2=20.0),
        ItemKNN.from_interactions(users, items, N_USERS, N_ITEMS, k=5, shrink=2.0),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["EASE", "ItemKNN"])
def test_contract_forward_score_all_pair_scores(index):
    model = _models()[index]
    gen = torch.Generator().manual_seed(0)
    users = torch.randint(0, N_USERS, (50,), generator=gen)
    items = torch.randint(0, N_ITEMS, (50,), generator=gen)
    table = model.score_all(users)
    assert table.shape == (50, N_ITEMS)
    torch.testing.assert_close(model(users, items), table[torch.arange(50), items])
    neg = torch.randint(0, N_ITEMS, (50, 4), generator=gen)
    pos_scores, neg_scores = model.pair_scores(users, items, neg)
    assert neg_scores.shape == (50, 4)
    torch.testing.assert_close(neg_scores, table.gather(1, neg))
    # lists and int32 work; score_all is a fresh tensor
    torch.testing.assert_close(model(users.tolist(), items.int()), model(users, items))
    table.fill_(0.0)
    assert model.score_all(users).abs().sum() > 0
    assert model.regularization(users, items).item() == 0.0
    assert list(model.parameters()) == []
    assert model_device(model) == torch.device("cpu")


@pytest.mark.parametrize("index", [0, 1], ids=["EASE", "ItemKNN"])
def test_index_checks(index):
    model = _models()[index]
    with pytest.raises(ValueError, match="users must lie in"):
        model(torch.tensor([N_USERS]), torch.tensor([0]))
    with pytest.raises(ValueError, match="items must lie in"):
        model(torch.tensor([0]), torch.tensor([-1]))
    with pytest.raises(ValueError, match="users must lie in"):
        model.score_all(torch.tensor([0, N_USERS]))
    with pytest.raises(ValueError, match="integer indices"):
        model.score_all(torch.tensor([0.0]))
    with pytest.raises(ValueError, match="same shape"):
        model(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="items must lie in"):
        type(model).from_interactions([0], [N_ITEMS], N_USERS, N_ITEMS)


@pytest.mark.parametrize("index", [0, 1], ids=["EASE", "ItemKNN"])
def test_dense_fallback_and_double(index, monkeypatch):
    """The paths for devices without sparse CSR products (MPS) give the same scores; .double()
    converts the weights and the scores follow."""
    model = _models()[index]
    users = torch.arange(N_USERS)
    sparse_path = model.score_all(users)
    monkeypatch.setattr(item_item, "_CSR_DEVICES", ())
    torch.testing.assert_close(model.score_all(users), sparse_path)
    monkeypatch.undo()
    model.double()
    assert model.score_all(users).dtype == torch.float64
    torch.testing.assert_close(model.score_all(users).float(), sparse_path)
    users_p, items_p = _all_pairs(N_USERS, N_ITEMS)
    assert model(users_p, items_p).dtype == torch.float64


def test_repr_keyword_only_options_and_bad_arguments(monkeypatch):
    dense, users, items = _binary()
    ease = EASE.from_interactions(users, items, N_USERS, N_ITEMS, l2=250)
    assert repr(ease) == (
        f"EASE(n_users={N_USERS}, n_items={N_ITEMS}, n_interactions={int(dense.sum())}, l2=250.0)"
    )
    knn = ItemKNN.from_interactions(users, items, N_USERS, N_ITEMS, k=np.int64(7))
    assert repr(knn) == (
        f"ItemKNN(n_users={N_USERS}, n_items={N_ITEMS}, n_interactions={int(dense.sum())}, "
        "k=7, shrink=10.0)"
    )
    matrix = sp.csr_matrix(dense)
    with pytest.raises(TypeError):
        EASE(N_USERS, N_ITEMS, matrix, 500.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ItemKNN.from_interactions(users, items, N_USERS, N_ITEMS, 10)  # type: ignore[misc]
    for bad in (0, 0.0, -1.0, math.inf, math.nan, True, "500", None):
        with pytest.raises(ValueError, match="l2"):
            EASE.from_interactions(users, items, N_USERS, N_ITEMS, l2=bad)
    for bad in (0, -3, 2.0, True, "10", None):
        with pytest.raises(ValueError, match="k must be"):
            ItemKNN.from_interactions(users, items, N_USERS, N_ITEMS, k=bad)
    for bad in (-1.0, math.inf, math.nan, False, "1"):
        with pytest.raises(ValueError, match="shrink"):
            ItemKNN(N_USERS, N_ITEMS, matrix, shrink=bad)
    for cls in (EASE, ItemKNN):
        with pytest.raises(ValueError, match="n_items"):
            cls.from_interactions(users, items, N_USERS, 0)
        with pytest.raises(ValueError, match="interactions has shape"):
            cls(N_USERS, N_ITEMS + 1, matrix)
        with pytest.raises(ValueError, match="interactions must be"):
            cls(N_USERS, N_ITEMS, dense.tolist())
        with pytest.raises(ValueError, match="NaN or infinite"):
            cls(N_USERS, N_ITEMS, np.full((N_USERS, N_ITEMS), np.nan))
        with pytest.raises(ValueError, match="same length"):
            cls.from_interactions(users, items[:-1], N_USERS, N_ITEMS)
    # the dense B is refused above max_items, before anything is built, saying what it costs
    monkeypatch.setattr(EASE, "max_items", 10)
    with pytest.raises(ValueError, match=r"max_items = 10.*GiB|GiB.*max_items = 10"):
        EASE.from_interactions(users, items, N_USERS, N_ITEMS)
    with pytest.raises(ValueError, match="EASE.max_items"):
        EASE(N_USERS, N_ITEMS, matrix)


def test_constructors_take_the_matrix_in_any_form():
    dense, users, items = _binary(seed=6)
    reference = EASE(N_USERS, N_ITEMS, sp.csr_matrix(dense)).interaction_matrix().toarray()
    np.testing.assert_array_equal(reference, dense)
    for form in (dense, torch.from_numpy(dense), torch.from_numpy(dense).to_sparse(), 3 * dense):
        model = ItemKNN(N_USERS, N_ITEMS, form)
        np.testing.assert_array_equal(model.interaction_matrix().toarray(), dense)
    # an explicitly stored zero is no interaction
    stored_zero = sp.csr_matrix(dense)
    stored_zero.data[0] = 0.0
    assert EASE(N_USERS, N_ITEMS, stored_zero).n_interactions == int(dense.sum()) - 1


# ---------------------------------------------------------------------------------------------
# Checkpoints


@pytest.mark.parametrize("index", [0, 1], ids=["EASE", "ItemKNN"])
def test_checkpoint_round_trip(index, tmp_path):
    dense, users, items = _binary(seed=5)
    model = _models()[index]
    path = save_checkpoint(tmp_path / "model.pt", model)
    options = {"l2": 20.0} if index == 0 else {"k": 5, "shrink": 2.0}
    fresh = type(model)(N_USERS, N_ITEMS, sp.csr_matrix(dense), **options)
    assert fresh.score_all(torch.arange(N_USERS)).abs().sum() == 0  # zero weights until loaded
    load_checkpoint(path, fresh)
    for name, buffer in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], buffer), name
    assert set(model.state_dict()) == (
        {"weights"} if index == 0 else {"neighbors", "similarities"}
    )  # the training matrix is not in the checkpoint
    torch.testing.assert_close(
        fresh.score_all(torch.arange(N_USERS)), model.score_all(torch.arange(N_USERS))
    )
    other = {"l2": 21.0} if index == 0 else {"k": 5, "shrink": 3.0}
    mismatch = type(model)(N_USERS, N_ITEMS, sp.csr_matrix(dense), **other)
    with pytest.raises(ValueError, match="other options"):
        load_checkpoint(path, mismatch)


# ---------------------------------------------------------------------------------------------
# Full ranking on synthetic data with structure


def test_evaluate_full_both_beat_popularity_on_structured_data():
    # implicit feedback = ratings >= 4 of a rank-2 model: which items a user likes has structure
    ratings = to_implicit(synthetic_ratings(300, 100, 12000, dim=2, seed=0).ratings, threshold=4)
    encoder = IdEncoder().fit(ratings)
    ratings = encoder.transform(ratings)
    train, test = stratified_split(ratings, 0.2, seed=0)
    n_users, n_items = encoder.n_users, encoder.n_items
    train_csr = interaction_matrix(train, n_users, n_items, values="ones")
    test_csr = interaction_matrix(test, n_users, n_items, values="ones")
    users, items = train["user_id"].to_numpy(), train["item_id"].to_numpy()

    def ndcg(model):
        return evaluate_full(model, train_csr, test_csr, ks=(10,))["NDCG@10"]

    popularity = ndcg(Popularity.from_interactions(users, items, n_users, n_items))
    ease = ndcg(EASE.from_interactions(users, items, n_users, n_items, l2=100.0))
    knn = ndcg(ItemKNN.from_interactions(users, items, n_users, n_items))
    untrained = ndcg(EASE(n_users, n_items, train_csr, l2=100.0))  # zero weights: all ties
    assert ease > popularity + 0.05, (ease, popularity)
    assert knn > popularity + 0.03, (knn, popularity)
    assert untrained < popularity, (untrained, popularity)
