"""Tests of the graph part of recs_course.models: adjacency, NGCF, LightGCN."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recs_course.models import NGCF, LightGCN, Recommender, laplacian, normalized_adjacency

# 3 users, 4 items. User 2 and item 3 have no interactions; (0, 1) appears twice.
USERS = np.array([0, 0, 1, 1, 0])
ITEMS = np.array([0, 1, 1, 2, 1])
N_USERS, N_ITEMS = 3, 4


def _dense_reference() -> np.ndarray:
    """D^-1/2 A D^-1/2 by the textbook formula on a dense matrix."""
    r = np.zeros((N_USERS, N_ITEMS))
    r[USERS, ITEMS] = 1.0
    a = np.block([[np.zeros((N_USERS, N_USERS)), r], [r.T, np.zeros((N_ITEMS, N_ITEMS))]])
    degree = a.sum(1)
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(degree > 0, degree**-0.5, 0.0)
    return inv_sqrt[:, None] * a * inv_sqrt[None, :]


def test_normalized_adjacency_matches_the_dense_formula():
    adjacency = normalized_adjacency(USERS, ITEMS, N_USERS, N_ITEMS)
    assert adjacency.layout == torch.sparse_coo and adjacency.is_coalesced()
    assert adjacency.dtype == torch.float32
    assert adjacency.shape == (N_USERS + N_ITEMS, N_USERS + N_ITEMS)
    dense = adjacency.to_dense().numpy()
    np.testing.assert_allclose(dense, _dense_reference(), rtol=1e-6)
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
    model = NGCF(8, 10, adjacency, dim=4, layer_dims=(5, 3), node_dropout=0.3, message_dropout=0.3)
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
    assert NGCF.NEGATIVE_SLOPE == 0.2  # the paper's slope, a constant (not an option)
    torch.testing.assert_close(user_emb, expected[:8], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(item_emb, expected[8:], rtol=1e-5, atol=1e-6)


def test_ngcf_dropout_only_in_training():
    _, _, adjacency = _graph()
    torch.manual_seed(0)
    model = NGCF(8, 10, adjacency, dim=4, layer_dims=(4, 4), node_dropout=0.5, message_dropout=0.0)
    users = torch.arange(8)
    model.eval()
    first, second = model.score_all(users), model.score_all(users)
    assert torch.equal(first, second)
    model.train()
    dropped, dropped_again = model.score_all(users), model.score_all(users)
    assert not torch.equal(dropped, first)
    assert not torch.equal(dropped, dropped_again)
    quiet = NGCF(8, 10, adjacency, dim=4, layer_dims=(4,), node_dropout=0.0, message_dropout=0.0)
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
    buffers = dict(model.named_buffers())
    # symmetric, on the CPU: kept once, as CSR with int32 indices (what the product takes)
    assert {"csr_crow_indices", "csr_col_indices", "csr_values"} <= set(buffers)
    assert model.adjacency_coo is None and "adjacency_coo" not in buffers
    assert model.csr_crow_indices.dtype == model.csr_col_indices.dtype == torch.int32
    assert not any("adjacency" in k or k.startswith("csr_") for k in model.state_dict())
    assert model.adjacency.layout == torch.sparse_coo and model.adjacency.is_coalesced()
    torch.testing.assert_close(model.adjacency.to_dense(), adjacency.to_dense())
    clone = cls(8, 10, sp.csr_matrix(adjacency.to_dense().numpy()), dim=4).eval()
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.score_all(torch.arange(8)), model.score_all(torch.arange(8)))


def test_the_product_uses_the_kept_csr_without_converting_it():
    """The CPU kernel takes int32 indices: kept as int32, nothing is copied per product."""
    _, _, adjacency = _graph(n=200, n_users=40, n_items=50)
    model = LightGCN(40, 50, adjacency, dim=8, n_layers=2)
    dense = torch.randn(90, 8, requires_grad=True)
    model.spmm(dense)  # warm-up
    with torch.profiler.profile() as prof:
        out = model.spmm(dense)
        out.sum().backward()
    names = {event.name for event in prof.events()}
    assert "aten::_to_copy" not in names and "aten::to_sparse_csr" not in names, names
    torch.testing.assert_close(out, adjacency.to_dense() @ dense)
    torch.testing.assert_close(dense.grad, adjacency.to_dense().T @ torch.ones(90, 8))


def test_the_format_follows_the_device(monkeypatch):
    """CSR where the product uses it (CPU, CUDA), COO elsewhere (MPS): one format at a time."""
    from recs_course.models import graph

    _, _, adjacency = _graph()
    torch.manual_seed(0)
    model = LightGCN(8, 10, adjacency, dim=4, n_layers=2)
    users = torch.arange(8)
    with torch.no_grad():
        expected = model.score_all(users)
    monkeypatch.setattr(graph, "_CSR_DEVICES", ())  # as if the device had no CSR product
    model.float()  # any .to() / .float() re-settles the format
    assert model.csr_values is None and model.csr_col_indices is None
    assert model.adjacency_coo is not None and model.adjacency_coo.is_coalesced()
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(users), expected)
    monkeypatch.undo()
    model.float()
    assert model.adjacency_coo is None and model.csr_col_indices.dtype == torch.int32
    double = model.double()
    assert double.csr_values.dtype == torch.float64 and double.adjacency.dtype == torch.float64
    with torch.no_grad():
        torch.testing.assert_close(double.score_all(users), expected.double())


def _coo_twin(model):
    """A copy that multiplies with torch.sparse.mm on COO (the generic path) instead of CSR."""
    import copy

    twin = copy.deepcopy(model)
    twin._symmetric = False
    twin._settle_format()
    assert twin.csr_values is None and twin.adjacency_coo is not None
    return twin


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
    with pytest.raises(ValueError, match="layer_dims"):
        NGCF(8, 10, adjacency, layer_dims=())
    with pytest.raises(ValueError, match="n_layers must be an integer >= 0"):
        LightGCN(8, 10, adjacency, n_layers=2.0)
    with pytest.raises(ValueError, match="n_layers"):
        LightGCN(8, 10, adjacency, n_layers=True)
    with pytest.raises(TypeError, match="positional"):
        LightGCN(8, 10, adjacency, 4, 2)  # n_layers is keyword-only
    with pytest.raises(TypeError, match="positional"):
        NGCF(8, 10, adjacency, 4, (4, 4))  # layer_dims is keyword-only
    with pytest.raises(TypeError, match="negative_slope"):
        NGCF(8, 10, adjacency, negative_slope=0.1)  # the paper's constant, NGCF.NEGATIVE_SLOPE


def test_graph_models_take_numpy_numbers():
    _, _, adjacency = _graph()
    torch.manual_seed(0)
    python = LightGCN(8, 10, adjacency, dim=4, n_layers=2, reg=1e-4)
    torch.manual_seed(0)
    numpy = LightGCN(8, 10, adjacency, dim=np.int64(4), n_layers=np.int64(2), reg=np.float32(1e-4))
    assert repr(numpy) == repr(python) and type(numpy.n_layers) is int
    assert numpy.reg == pytest.approx(1e-4)
    assert LightGCN(8, 10, adjacency, n_layers=0).n_layers == 0  # plain MF
    ngcf = NGCF(8, 10, adjacency, dim=4, layer_dims=(np.int64(3),), node_dropout=np.float32(0.5))
    assert ngcf.layer_dims == (3,) and ngcf.node_dropout == 0.5


@pytest.mark.parametrize(
    "build",
    [
        lambda a: LightGCN(12, 15, a, dim=8, n_layers=2, reg=1e-4),
        lambda a: NGCF(12, 15, a, dim=8, layer_dims=(8, 8), node_dropout=0.1, message_dropout=0.1),
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


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (LightGCN, {}),
        (NGCF, {"node_dropout": 0.0, "message_dropout": 0.0}),
        (NGCF, {"node_dropout": 0.4, "message_dropout": 0.0}),  # a dropped L is not symmetric
    ],
)
def test_fast_symmetric_propagation_has_the_gradients_of_sparse_mm(cls, kwargs):
    users, items, adjacency = _graph(seed=3)
    torch.manual_seed(0)
    model = cls(8, 10, adjacency, dim=4, **kwargs).train()
    assert model._symmetric and model.csr_values is not None
    twin = _coo_twin(model).train()
    outputs, grads = [], []
    for m in (model, twin):
        torch.manual_seed(7)  # the same node dropout draws
        fast = m.propagate()
        (fast[0].pow(2).sum() + fast[1].sum()).backward()
        outputs.append(fast)
        grads.append([p.grad.clone() for p in m.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1])
    for fast_grad, slow_grad in zip(*grads, strict=True):
        torch.testing.assert_close(fast_grad, slow_grad)


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


# --------------------------------------------------------------------------------------------
# One propagation per scoring pass


def _counting(model):
    """Count the model's propagations (the instance attribute shadows the method)."""
    calls = []
    original = model.propagate

    def propagate():
        calls.append(1)
        return original()

    model.propagate = propagate
    return calls


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_a_scoring_pass_propagates_once_and_scores_as_without_it(cls):
    users, items, adjacency = _graph(n=60, n_users=12, n_items=10)
    torch.manual_seed(0)
    model = cls(12, 10, adjacency, dim=4).eval()
    calls = _counting(model)
    batches = [torch.arange(0, 5), torch.arange(5, 12)]
    pos, neg = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([[0, 9], [8, 7], [6, 5], [4, 3], [2, 1]])
    with torch.no_grad():
        plain = [model.score_all(b) for b in batches]
        plain_pairs = model.pair_scores(batches[0], pos, neg)
        plain_forward = model(batches[0], pos)
        assert len(calls) == 4  # outside a pass: every call propagates
        del calls[:]
        with model.scoring_pass():
            shared = [model.score_all(b) for b in batches]
            shared_pairs = model.pair_scores(batches[0], pos, neg)
            shared_forward = model(batches[0], pos)
            with model.scoring_pass():  # nested: still the same propagation
                model.score_all(batches[1])
        assert len(calls) == 1
        model.score_all(batches[0])  # after the block: dropped
        assert len(calls) == 2 and "_pass_values" not in model.__dict__
    for a, b in zip(plain, shared, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(plain_pairs[0], shared_pairs[0])
    assert torch.equal(plain_pairs[1], shared_pairs[1])
    assert torch.equal(plain_forward, shared_forward)


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_evaluate_full_propagates_once_at_the_default_batch_size(cls, monkeypatch):
    from recs_course.evaluation import evaluate_full

    n_users, n_items = 2100, 6  # more users than one default batch (1024): 3 batches
    gen = np.random.default_rng(0)
    train_items = gen.integers(0, n_items, n_users)
    test_items = (train_items + 1 + gen.integers(0, n_items - 1, n_users)) % n_items
    ones, rows = np.ones(n_users), np.arange(n_users)
    train = sp.csr_matrix((ones, (rows, train_items)), (n_users, n_items))
    test = sp.csr_matrix((ones, (rows, test_items)), (n_users, n_items))
    torch.manual_seed(0)
    model = cls.from_interactions(rows, train_items, n_users, n_items, dim=4)
    calls = _counting(model)
    cached = evaluate_full(model, train, test, ks=(3,))
    assert len(calls) == 1
    del calls[:]
    # the base class's no-op: one propagation per batch of users
    monkeypatch.setattr(cls, "scoring_pass", Recommender.scoring_pass)
    uncached = evaluate_full(model, train, test, ks=(3,))
    assert len(calls) == 3
    assert cached == uncached
    assert model.training  # the evaluator restored the mode


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_outside_eval_mode_or_with_autograd_a_pass_shares_nothing(cls):
    _, _, adjacency = _graph()
    torch.manual_seed(0)
    model = cls(8, 10, adjacency, dim=4)
    calls = _counting(model)
    users = torch.arange(8)
    with model.scoring_pass():
        model.train()
        with torch.no_grad():
            model.score_all(users), model.score_all(users)  # training: dropout differs per call
        model.eval()
        model.score_all(users).sum().backward()  # autograd on: a fresh graph each call
        model.score_all(users).sum().backward()
        assert model.user_embedding.weight.grad is not None
    assert len(calls) == 4


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_changed_weights_inside_a_pass_are_seen(cls):
    _, _, adjacency = _graph()
    torch.manual_seed(0)
    model = cls(8, 10, adjacency, dim=4).eval()
    users = torch.arange(8)
    with torch.no_grad(), model.scoring_pass():
        before = model.score_all(users)
        model.user_embedding.weight.mul_(2.0)  # in place: a new version
        after = model.score_all(users)
        model.adjacency = normalized_adjacency(*_graph(seed=5)[:2], 8, 10)  # a new graph
        other_graph = model.score_all(users)
    assert not torch.allclose(before, after)
    assert not torch.allclose(after, other_graph)
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(users), other_graph)


# --------------------------------------------------------------------------------------------
# Mixed precision


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_graph_models_run_under_cpu_autocast_close_to_float32(cls):
    _, _, adjacency = _graph(n=120, n_users=20, n_items=25)
    torch.manual_seed(0)
    model = cls(20, 25, adjacency, dim=8, reg=1e-3).eval()
    users = torch.arange(20)
    with torch.no_grad():
        reference = model.score_all(users)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model.score_all(users)
            side = model.spmm(model.ego_embeddings().bfloat16())
    assert side.dtype == torch.float32  # the sparse product runs in the adjacency's float32
    scale = reference.abs().max()
    assert (mixed.float() - reference).abs().max() < 0.02 * scale
    # and it trains: BPR under autocast, finite gradients for every parameter
    model.train()
    pos, neg = torch.randint(0, 25, (20,)), torch.randint(0, 25, (20, 3))
    from recs_course.losses import bpr_loss

    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = bpr_loss(model, (users, pos, neg))
    loss.backward()
    for param in model.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()


# --------------------------------------------------------------------------------------------
# Regularisation, whatever the loss


@pytest.mark.parametrize("cls", [NGCF, LightGCN])
def test_every_pair_loss_adds_the_graph_regularization(cls):
    from recs_course.losses import bce_loss, bpr_loss, mse_loss

    _, _, adjacency = _graph()
    torch.manual_seed(0)
    model = cls(8, 10, adjacency, dim=4, reg=0.5).eval()
    users, items = torch.tensor([0, 1, 1, 7]), torch.tensor([2, 3, 4, 9])
    labels, ratings = torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([4.0, 2.0, 5.0, 1.0])
    penalty = (
        0.5
        * (
            model.user_embedding.weight[users].pow(2).sum()
            + model.item_embedding.weight[items].pow(2).sum()
        )
        / 2
        / 4
    )
    torch.testing.assert_close(model.regularization(users, items), penalty)
    scores = model(users, items)
    torch.testing.assert_close(
        bce_loss(model, (users, items, labels)),
        F.binary_cross_entropy_with_logits(scores, labels) + penalty,
    )
    torch.testing.assert_close(
        mse_loss(model, (users, items, ratings)), F.mse_loss(scores, ratings) + penalty
    )
    neg = torch.tensor([[5, 6], [7, 8], [0, 1], [2, 3]])
    pos_scores, neg_scores = model.pair_scores(users, items, neg)
    many = (
        0.5
        * (
            model.user_embedding.weight[users].pow(2).sum()
            + model.item_embedding.weight[items].pow(2).sum()
            + model.item_embedding.weight[neg].pow(2).sum()
        )
        / 2
        / 4
    )
    torch.testing.assert_close(
        bpr_loss(model, (users, items, neg)),
        -F.logsigmoid(pos_scores.unsqueeze(1) - neg_scores).mean() + many,
    )
    assert bce_loss(model.requires_grad_(True), (users, items, labels)).requires_grad


def test_renamed_arguments_say_what_to_use_now():
    _, _, adjacency = _graph()
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'layers'.*layer_dims"):
        NGCF(8, 10, adjacency, layers=(4,))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'width'$"):
        NGCF(8, 10, adjacency, width=4)
    model = NGCF(8, 10, adjacency, dim=4, layer_dims=(3, 2))
    assert "layer_dims=(3, 2)" in repr(model) and model.out_dim == 9
    # the check of old names leaves the signature the real one (no **unknown)
    import inspect

    parameters = inspect.signature(NGCF).parameters
    assert "layer_dims" in parameters and "layers" not in parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in parameters.values())


def test_a_copy_made_inside_a_pass_is_outside_it():
    import copy

    _, _, adjacency = _graph()
    model = LightGCN(8, 10, adjacency, dim=4).eval()
    with torch.no_grad(), model.scoring_pass():
        model.score_all(torch.arange(3))
        twin = copy.deepcopy(model)
    calls = _counting(twin)
    with torch.no_grad():
        twin.score_all(torch.arange(3)), twin.score_all(torch.arange(3))
    assert len(calls) == 2 and "_pass_values" not in twin.__dict__
