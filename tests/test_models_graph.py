"""Tests of the graph part of recs_course.models: adjacency, NGCF, LightGCN."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recs_course.models import NGCF, LightGCN, laplacian, normalized_adjacency

# 3 users, 4 items. User 2 and item 3 have no interactions; (0, 1) appears twice.
USERS = np.array([0, 0, 1, 1, 0])
ITEMS = np.array([0, 1, 1, 2, 1])
N_USERS, N_ITEMS = 3, 4


def _dense_reference(self_loops: bool = False) -> np.ndarray:
    """D^-1/2 A D^-1/2 by the textbook formula on a dense matrix."""
    r = np.zeros((N_USERS, N_ITEMS))
    r[USERS, ITEMS] = 1.0
    a = np.block([[np.zeros((N_USERS, N_USERS)), r], [r.T, np.zeros((N_ITEMS, N_ITEMS))]])
    if self_loops:
        a = a + np.eye(N_USERS + N_ITEMS)
    degree = a.sum(1)
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(degree > 0, degree**-0.5, 0.0)
    return inv_sqrt[:, None] * a * inv_sqrt[None, :]


@pytest.mark.parametrize("self_loops", [False, True])
def test_normalized_adjacency_matches_the_dense_formula(self_loops):
    adjacency = normalized_adjacency(USERS, ITEMS, N_USERS, N_ITEMS, self_loops=self_loops)
    assert adjacency.layout == torch.sparse_coo and adjacency.is_coalesced()
    assert adjacency.dtype == torch.float32
    assert adjacency.shape == (N_USERS + N_ITEMS, N_USERS + N_ITEMS)
    dense = adjacency.to_dense().numpy()
    np.testing.assert_allclose(dense, _dense_reference(self_loops), rtol=1e-6)
    assert np.isfinite(dense).all()
    np.testing.assert_allclose(dense, dense.T)


def test_normalized_adjacency_entries_by_hand():
    dense = normalized_adjacency(USERS, ITEMS, N_USERS, N_ITEMS).to_dense()
    # user 0 has items {0, 1}; item 1 has users {0, 1}: 1 / sqrt(2 * 2)
    assert dense[0, N_USERS + 1].item() == pytest.approx(0.5)
    # item 0 has only user 0: 1 / sqrt(2 * 1)
    assert dense[0, N_USERS + 0].item() == pytest.approx(2**-0.5)
    # the isolated user 2 and item 3 have zero rows
    assert dense[2].abs().sum() == 0 and dense[N_USERS + 3].abs().sum() == 0
    # one stored entry per edge: 4 distinct edges, both directions
    assert normalized_adjacency(USERS, ITEMS, N_USERS, N_ITEMS)._nnz() == 8


def test_laplacian_is_identity_minus_adjacency():
    lap = laplacian(USERS, ITEMS, N_USERS, N_ITEMS).to_dense().numpy()
    np.testing.assert_allclose(lap, np.eye(N_USERS + N_ITEMS) - _dense_reference(), atol=1e-7)
    eigenvalues = np.linalg.eigvalsh(lap)
    assert eigenvalues.min() > -1e-6 and eigenvalues.max() < 2 + 1e-6


def test_normalized_adjacency_accepts_tensors_and_rejects_bad_ids():
    from_tensors = normalized_adjacency(torch.from_numpy(USERS), torch.from_numpy(ITEMS), 3, 4)
    torch.testing.assert_close(
        from_tensors.to_dense(), normalized_adjacency(USERS, ITEMS, 3, 4).to_dense()
    )
    with pytest.raises(ValueError, match=r"users must lie in \[0, 3\)"):
        normalized_adjacency([0, 3], [0, 1], 3, 4)
    with pytest.raises(ValueError, match="same length"):
        normalized_adjacency([0, 1], [0], 3, 4)
    with pytest.raises(ValueError, match="n_items"):
        normalized_adjacency([0], [0], 3, 0)


def _graph(seed: int = 0, n_users: int = 8, n_items: int = 10, n: int = 30):
    gen = np.random.default_rng(seed)
    users = gen.integers(0, n_users, n)
    items = gen.integers(0, n_items, n)
    return users, items, normalized_adjacency(users, items, n_users, n_items)


def test_lightgcn_propagation_equals_a_numpy_reference():
    users, items, adjacency = _graph()
    torch.manual_seed(0)
    model = LightGCN(8, 10, adjacency, dim=5, n_layers=3)
    a = adjacency.to_dense().double().numpy()
    e0 = np.concatenate(
        [model.user_embedding.weight.detach().numpy(), model.item_embedding.weight.detach().numpy()]
    ).astype(np.float64)
    e1 = a @ e0
    e2 = a @ e1
    e3 = a @ e2
    expected = (e0 + e1 + e2 + e3) / 4
    user_emb, item_emb = model.propagate()
    np.testing.assert_allclose(user_emb.detach().numpy(), expected[:8], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(item_emb.detach().numpy(), expected[8:], rtol=1e-5, atol=1e-6)
    # zero layers is plain MF on the ego embeddings
    mf = LightGCN(8, 10, adjacency, dim=5, n_layers=0)
    torch.testing.assert_close(mf.propagate()[0], mf.user_embedding.weight)


def test_ngcf_propagation_equals_the_papers_formula():
    users, items, adjacency = _graph()
    torch.manual_seed(0)
    model = NGCF(8, 10, adjacency, dim=4, layers=(5, 3), node_dropout=0.3, message_dropout=0.3)
    model.eval()
    with torch.no_grad():
        for param in model.parameters():  # non-zero biases too
            param.add_(0.1 * torch.randn_like(param))
        lap = adjacency.to_dense()
        eye = torch.eye(18)
        ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight])
        parts = [ego]
        for w1, w2 in zip(model.sum_layers, model.product_layers, strict=True):
            summed = (lap + eye) @ ego @ w1.weight.T + w1.bias
            product = ((lap @ ego) * ego) @ w2.weight.T + w2.bias
            ego = F.leaky_relu(summed + product, negative_slope=0.2)
            parts.append(ego / ego.norm(dim=1, keepdim=True))
        expected = torch.cat(parts, dim=1)
        user_emb, item_emb = model.propagate()
    assert user_emb.shape == (8, 4 + 5 + 3) and model.out_dim == 12
    torch.testing.assert_close(user_emb, expected[:8], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(item_emb, expected[8:], rtol=1e-5, atol=1e-6)


def test_ngcf_dropout_only_in_training():
    _, _, adjacency = _graph()
    torch.manual_seed(0)
    model = NGCF(8, 10, adjacency, dim=4, layers=(4, 4), node_dropout=0.5, message_dropout=0.0)
    users = torch.arange(8)
    model.eval()
    first, second = model.score_all(users), model.score_all(users)
    assert torch.equal(first, second)
    model.train()
    dropped, dropped_again = model.score_all(users), model.score_all(users)
    assert not torch.equal(dropped, first)
    assert not torch.equal(dropped, dropped_again)
    quiet = NGCF(8, 10, adjacency, dim=4, layers=(4,), node_dropout=0.0, message_dropout=0.0)
    torch.testing.assert_close(quiet.train().score_all(users), quiet.eval().score_all(users))


def test_node_dropout_keeps_entries_and_rescales_them():
    from recs_course.models.graph import _drop_edges

    _, _, adjacency = _graph(n=200, n_users=40, n_items=50)
    torch.manual_seed(0)
    dropped = _drop_edges(adjacency, 0.25)
    kept = dropped.coalesce()
    original = adjacency.to_dense()[kept.indices()[0], kept.indices()[1]]
    torch.testing.assert_close(kept.values(), original / 0.75)
    fraction = kept._nnz() / adjacency._nnz()
    assert 0.65 < fraction < 0.85


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_graph_regularization_is_l2_of_the_ego_embeddings(cls):
    _, _, adjacency = _graph()
    model = cls(8, 10, adjacency, dim=4, reg=0.1)
    users, pos, neg = torch.tensor([0, 1, 1]), torch.tensor([2, 3, 4]), torch.tensor([5, 6, 7])
    expected = (
        0.1
        * (
            model.user_embedding.weight[users].pow(2).sum()
            + model.item_embedding.weight[pos].pow(2).sum()
            + model.item_embedding.weight[neg].pow(2).sum()
        )
        / 2
        / 3
    )
    torch.testing.assert_close(model.regularization(users, pos, neg), expected)
    assert model.regularization(users, pos, neg).requires_grad


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_graph_models_keep_the_adjacency_as_a_buffer_outside_checkpoints(cls):
    users, items, adjacency = _graph()
    model = cls.from_interactions(users, items, 8, 10, dim=4).eval()
    assert "adjacency" in dict(model.named_buffers())
    assert "adjacency" not in model.state_dict()
    torch.testing.assert_close(model.adjacency.to_dense(), adjacency.to_dense())
    clone = cls(8, 10, sp.csr_matrix(adjacency.to_dense().numpy()), dim=4).eval()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.score_all(torch.arange(8)), model.score_all(torch.arange(8)))


def test_graph_models_check_their_arguments():
    _, _, adjacency = _graph()
    with pytest.raises(ValueError, match="not the \\(U, I\\) rating matrix"):
        LightGCN(8, 10, sp.random(8, 10, density=0.3, format="csr"))
    with pytest.raises(ValueError, match="torch sparse tensor or a scipy sparse matrix"):
        LightGCN(8, 10, [[0.0]])
    with pytest.raises(ValueError, match="n_layers"):
        LightGCN(8, 10, adjacency, n_layers=-1)
    with pytest.raises(ValueError, match="reg"):
        LightGCN(8, 10, adjacency, reg=-1e-4)
    with pytest.raises(ValueError, match="node_dropout"):
        NGCF(8, 10, adjacency, node_dropout=1.0)
    with pytest.raises(ValueError, match="message_dropout"):
        NGCF(8, 10, adjacency, message_dropout=-0.1)
    with pytest.raises(ValueError, match="layers"):
        NGCF(8, 10, adjacency, layers=())


@pytest.mark.parametrize(
    "build",
    [
        lambda a: LightGCN(12, 15, a, dim=8, n_layers=2, reg=1e-4),
        lambda a: NGCF(12, 15, a, dim=8, layers=(8, 8), node_dropout=0.1, message_dropout=0.1),
    ],
)
def test_graph_models_learn_with_bpr(build):
    gen = np.random.default_rng(1)
    # two communities: users 0-5 like items 0-6, users 6-11 like items 7-14
    users = np.arange(12).repeat(4)
    items = np.where(users < 6, gen.integers(0, 7, users.size), gen.integers(7, 15, users.size))
    adjacency = normalized_adjacency(users, items, 12, 15)
    torch.manual_seed(0)
    model = build(adjacency)
    u = torch.from_numpy(users)
    pos = torch.from_numpy(items)
    neg = torch.where(u < 6, torch.randint(7, 15, u.shape), torch.randint(0, 7, u.shape))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

    def loss_fn():
        pos_scores, neg_scores = model.pair_scores(u, pos, neg)
        return -F.logsigmoid(pos_scores - neg_scores).mean() + model.regularization(u, pos, neg)

    model.eval()
    with torch.no_grad():
        first = loss_fn().item()
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        last = loss_fn().item()
        table = model.score_all(torch.arange(12))
    assert last < 0.5 * first
    # users rank their own community's items higher on average
    assert table[:6, :7].mean() > table[:6, 7:].mean()
    assert table[6:, 7:].mean() > table[6:, :7].mean()


@pytest.mark.parametrize("cls", [LightGCN, NGCF])
def test_fast_symmetric_propagation_has_the_gradients_of_sparse_mm(cls):
    users, items, adjacency = _graph(seed=3)
    torch.manual_seed(0)
    kwargs = {"node_dropout": 0.0, "message_dropout": 0.0} if cls is NGCF else {}
    model = cls(8, 10, adjacency, dim=4, **kwargs)
    assert model._symmetric
    fast = model.propagate()
    (fast[0].pow(2).sum() + fast[1].sum()).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model._symmetric = False  # force torch.sparse.mm
    slow = model.propagate()
    (slow[0].pow(2).sum() + slow[1].sum()).backward()
    torch.testing.assert_close(fast, slow)
    for fast_grad, param in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(fast_grad, param.grad)


def test_an_asymmetric_adjacency_keeps_exact_gradients():
    users, items, adjacency = _graph(seed=4)
    dense = adjacency.to_dense()
    dense[3, 12] = 0.7  # an entry without its mirror (12, 3): A^T != A
    model = LightGCN(8, 10, dense.to_sparse(), dim=3, n_layers=2)
    assert not model._symmetric
    user_emb, item_emb = model.propagate()
    ego = model.ego_embeddings()
    e1 = dense @ ego
    e2 = dense @ e1
    expected = (ego + e1 + e2) / 3
    torch.testing.assert_close(torch.cat([user_emb, item_emb]), expected)
    user_emb.sum().backward()
    # d/dE0 of sum(users' rows of (E0 + A E0 + A^2 E0) / 3) needs A^T, not A
    seed_rows = torch.zeros(18, 3)
    seed_rows[:8] = 1.0
    expected_grad = (seed_rows + dense.T @ seed_rows + dense.T @ dense.T @ seed_rows) / 3
    torch.testing.assert_close(model.user_embedding.weight.grad, expected_grad[:8])
    torch.testing.assert_close(model.item_embedding.weight.grad, expected_grad[8:])


def test_read_only_index_arrays_are_accepted_without_a_warning():
    users, items = USERS.copy(), ITEMS.copy()
    users.flags.writeable = False
    items.flags.writeable = False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adjacency = normalized_adjacency(users, items, N_USERS, N_ITEMS)
        # training on a model built from it emits no CSR "beta" warning either
        model = LightGCN(N_USERS, N_ITEMS, adjacency, dim=2)
        model.propagate()[0].sum().backward()
    np.testing.assert_allclose(adjacency.to_dense().numpy(), _dense_reference(), rtol=1e-6)
