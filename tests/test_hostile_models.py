"""Hostile input for the models, metrics, evaluators and checkpoints.

Each defect class found by a hostile test of the public API, with the right result or a
``ValueError`` that names the argument (or file), says what was wrong and what to do:

1. index ranges and dtypes at every public entry point of every model and evaluator;
2. the graph adjacency's sparse order (never trust another library's sort order);
3. exact score comparison in the ranking metrics and evaluators, and NaN scores;
4. corrupt, foreign or mismatched checkpoints.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recs_course.evaluation import evaluate_full, evaluate_ratings, evaluate_sampled
from recs_course.metrics import mae, ranking_metrics, rmse
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
    normalized_adjacency,
)
from recs_course.training import load_checkpoint, save_checkpoint

N_USERS, N_ITEMS = 5, 7  # of the small models


def _interactions():
    users = np.array([0, 0, 1, 1, 2, 3, 3, 4, 4, 4])
    items = np.array([0, 1, 1, 2, 3, 4, 5, 6, 0, 2])
    return users, items


def _ratings_csr() -> sp.csr_matrix:
    users, items = _interactions()
    values = (np.arange(users.size) % 5 + 1).astype(np.float32)
    return sp.csr_matrix((values, (users, items)), shape=(N_USERS, N_ITEMS))


def _bags(n: int):
    """One feature per row (a bucketed number): enough for the index checks."""
    import pandas as pd

    from recs_course.data import FeatureEncoder

    frame = pd.DataFrame({"id": np.arange(n), "x": np.arange(n) % 3})
    return FeatureEncoder("id", buckets={"x": (1, 2)}).fit_transform(frame)


BUILDERS = {
    "MF": lambda: MF(N_USERS, N_ITEMS, dim=3),
    "EmbeddingMLP": lambda: EmbeddingMLP(N_USERS, N_ITEMS, dim=3, hidden=(4,)),
    "GMF": lambda: GMF(N_USERS, N_ITEMS, dim=3),
    "NCFMLP": lambda: NCFMLP(N_USERS, N_ITEMS, layers=(6, 3)),
    "NeuMF": lambda: NeuMF(N_USERS, N_ITEMS, dim=3, layers=(6, 3)),
    "Popularity": lambda: Popularity.from_interactions(*_interactions(), N_USERS, N_ITEMS),
    "NGCF": lambda: NGCF.from_interactions(
        *_interactions(), N_USERS, N_ITEMS, dim=3, layer_dims=(3,)
    ),
    "LightGCN": lambda: LightGCN.from_interactions(
        *_interactions(), N_USERS, N_ITEMS, dim=3, n_layers=2
    ),
    "AutoRec-item": lambda: AutoRec(N_USERS, N_ITEMS, _ratings_csr(), hidden=4),
    "AutoRec-user": lambda: AutoRec(N_USERS, N_ITEMS, _ratings_csr(), hidden=4, based="user"),
    "HybridMF": lambda: HybridMF.from_interactions(
        *_interactions(), N_USERS, N_ITEMS, 3, item_features=_bags(N_ITEMS)
    ),
    "PretrainedHybrid": lambda: PretrainedHybrid.from_mf(
        MF(N_USERS, N_ITEMS, dim=3), _bags(N_ITEMS), metadata_layers=(2,), combined_layers=(3,)
    ),
}
MODELS = list(BUILDERS)


def _build(name: str):
    torch.manual_seed(0)
    return BUILDERS[name]().eval()


def _t(*values: int) -> torch.Tensor:
    return torch.tensor(values)


# Every public method that takes indices, with the argument a bad value is put into.
def _calls(bad: torch.Tensor):
    users, items = _t(0, 1, 2), _t(3, 4, 5)
    pad = lambda x: torch.cat([x, x, x])[:3]  # noqa: E731 - a bad value in a batch of 3
    return {
        "forward/users": (lambda m: m(pad(bad), items), "users"),
        "forward/items": (lambda m: m(users, pad(bad)), "items"),
        "score_all": (lambda m: m.score_all(pad(bad)), "users"),
        "pair_scores/users": (lambda m: m.pair_scores(pad(bad), items, items), "users"),
        "pair_scores/pos": (lambda m: m.pair_scores(users, pad(bad), items), "pos"),
        "pair_scores/neg": (lambda m: m.pair_scores(users, items, pad(bad)), "neg"),
        "pair_scores/neg2d": (
            lambda m: m.pair_scores(users, items, torch.stack([items, pad(bad)], 1)),
            "neg",
        ),
        "regularization": (lambda m: m.regularization(users, items, pad(bad)), "neg"),
    }


CALLS = list(_calls(_t(0)))


# --------------------------------------------------------------------------------------------
# 1. Index ranges


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("call", CALLS)
def test_negative_and_too_large_indices_raise_a_value_error_naming_the_argument(name, call):
    model = _build(name)
    for bad_value in (-1, 99):
        fn, argument = _calls(_t(bad_value))[call]
        size = N_USERS if argument == "users" else N_ITEMS
        expected = rf"{argument} must lie in \[0, {size}\).*found values in \[.*{bad_value}"
        with pytest.raises(ValueError, match=expected):
            fn(model)


@pytest.mark.parametrize("name", MODELS)
def test_index_dtype_and_dims_are_checked(name):
    model = _build(name)
    users, items = _t(0, 1, 2), _t(3, 4, 5)
    with pytest.raises(ValueError, match="users must hold integer indices, got dtype"):
        model(users.float(), items)
    with pytest.raises(ValueError, match="items must hold integer indices, got a bool"):
        model(users, torch.tensor([True, False, True]))
    with pytest.raises(
        ValueError, match=r"users must be a 1-D tensor of indices, got shape \(3, 1\)"
    ):
        model.score_all(users.unsqueeze(1))
    with pytest.raises(ValueError, match=r"items must be a 1-D tensor.*shape \(\)"):
        model(users[:1], items[0])
    with pytest.raises(ValueError, match="users must be a dense tensor"):
        model(users.to_sparse(), items)
    with pytest.raises(ValueError, match=r"neg must have shape \(B,\) or \(B, K\) with B = 3"):
        model.pair_scores(users, items, torch.zeros(2, 4, dtype=torch.long))


@pytest.mark.parametrize("name", MODELS)
def test_other_integer_dtypes_and_lists_give_the_int64_result(name):
    model = _build(name)
    users, items = _t(0, 4, 2), _t(6, 0, 3)
    with torch.no_grad():
        expected = model(users, items)
        for dtype in (torch.int32, torch.int16, torch.uint8):  # uint8 would index as a mask
            torch.testing.assert_close(model(users.to(dtype), items.to(dtype)), expected)
        torch.testing.assert_close(model(users.tolist(), items.numpy()), expected)
        torch.testing.assert_close(model.score_all([0, 4]), model.score_all(_t(0, 4)))


@pytest.mark.parametrize("based", ["item", "user"])
def test_autorec_row_methods_check_their_row_indices(based):
    model = _build(f"AutoRec-{based}")
    n_rows = N_ITEMS if based == "item" else N_USERS
    for method in (model.rows, model.reconstruct, model.masked_loss):
        with pytest.raises(ValueError, match=rf"idx must lie in \[0, {n_rows}\)"):
            method(_t(0, -1))
        with pytest.raises(ValueError, match=rf"idx must lie in \[0, {n_rows}\)"):
            method(_t(n_rows))


@pytest.mark.parametrize("cls", [GMF, NCFMLP])
def test_ncf_features_check_indices(cls):
    model = cls(N_USERS, N_ITEMS)
    with pytest.raises(ValueError, match=r"items must lie in \[0, 7\)"):
        model.features(_t(0), _t(-1))


def test_evaluators_check_indices_against_the_model():
    model = _build("MF")
    ok_users, ok_items = _t(0, 1), _t(2, 3)
    ratings = torch.tensor([3.0, 4.0])
    with pytest.raises(ValueError, match=r"users must lie in \[0, 5\) \(n_users = 5 of the model"):
        evaluate_ratings(model, _t(0, -1), ok_items, ratings)
    with pytest.raises(ValueError, match=r"items must lie in \[0, 7\).*\[2, 7\]"):
        evaluate_ratings(model, ok_users, _t(2, 7), ratings)
    candidates = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"candidates must lie in \[0, 7\).*\[-1, 6\]"):
        evaluate_sampled(model, ok_users, torch.where(candidates == 2, -1, candidates), ks=1)
    with pytest.raises(ValueError, match=r"candidates must lie in \[0, 7\)"):
        evaluate_sampled(model, ok_users, candidates + 1, ks=1)
    with pytest.raises(ValueError, match=r"users must lie in \[0, 5\)"):
        evaluate_sampled(model, _t(0, 5), candidates, ks=1)
    with pytest.raises(ValueError, match=r"candidates must be a 2-D tensor"):
        evaluate_sampled(model, ok_users, candidates.flatten(), ks=1)
    with pytest.raises(ValueError, match="users must hold integer indices"):
        evaluate_sampled(model, ok_users.double(), candidates, ks=1)
    train = sp.csr_matrix(np.eye(N_USERS, N_ITEMS, dtype=np.float32))
    test = sp.csr_matrix(np.eye(N_USERS, N_ITEMS, k=2, dtype=np.float32))
    with pytest.raises(ValueError, match=r"users must lie in \[0, 5\) \(the rows of train"):
        evaluate_full(model, train, test, ks=2, users=[1, -1])
    with pytest.raises(ValueError, match=r"users must lie in \[0, 5\)"):
        evaluate_full(model, train, test, ks=2, users=np.array([5]))
    # train and test with more rows than the model has users
    big_train = sp.csr_matrix(np.eye(N_USERS + 2, N_ITEMS, dtype=np.float32))
    big_test = sp.csr_matrix(np.eye(N_USERS + 2, N_ITEMS, k=1, dtype=np.float32))
    with pytest.raises(ValueError, match="model has n_users = 5"):
        evaluate_full(model, big_train, big_test, ks=2)
    # valid input still evaluates (and the indices may be int32 or lists)
    assert set(evaluate_ratings(model, [0, 1], np.array([2, 3], np.int32), ratings)) == {
        "RMSE",
        "MAE",
    }


class _TableModel(torch.nn.Module):
    """A plain module without n_users / n_items: only negative indices can be refused."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table))

    def forward(self, users, items):
        return self.table[users, items]

    def score_all(self, users):
        return self.table[users]


def test_evaluators_refuse_negative_indices_for_any_model():
    model = _TableModel(torch.randn(4, 6, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match=r"users must lie in \[0, inf\)"):
        evaluate_ratings(model, _t(-1, 0), _t(0, 1), torch.ones(2))
    with pytest.raises(ValueError, match=r"candidates must lie in \[0, inf\)"):
        evaluate_sampled(model, _t(0, 1), torch.tensor([[0, -1], [2, 3]]), ks=1)


def test_index_check_modes(monkeypatch):
    from recs_course.models.base import check_indices, index_checks

    users = torch.tensor([0, 1, 2])
    assert check_indices("users", users, 3) is users  # int64 tensors are not copied
    with index_checks("never"):  # dtype and shape are still checked, the values are not
        assert check_indices("users", _t(-1), 3).tolist() == [-1]
        with pytest.raises(ValueError, match="integer"):
            check_indices("users", torch.tensor([0.5]), 3)
    with pytest.raises(ValueError, match="users must lie"):
        check_indices("users", _t(-1), 3)  # the mode is restored
    monkeypatch.setenv("RECS_COURSE_INDEX_CHECKS", "never")
    assert check_indices("users", _t(7), 3).tolist() == [7]
    with index_checks("always"):  # the block wins over the environment
        with pytest.raises(ValueError, match="users must lie"):
            check_indices("users", _t(7), 3)
    monkeypatch.setenv("RECS_COURSE_INDEX_CHECKS", "sometimes")
    with pytest.raises(ValueError, match="RECS_COURSE_INDEX_CHECKS"):
        check_indices("users", _t(0), 3)
    with pytest.raises(ValueError, match="index check mode"):
        with index_checks("loud"):
            pass


# --------------------------------------------------------------------------------------------
# 2. Graph adjacency sort order


def _is_row_major(adjacency: torch.Tensor) -> bool:
    rows, cols = adjacency._indices()
    keys = rows * adjacency.shape[1] + cols
    return bool((keys[1:] > keys[:-1]).all())


def _column_major_sum_duplicates(monkeypatch):
    """Make scipy's sum_duplicates leave a column-major order, as scipy 1.10 does."""
    original = sp.coo_matrix.sum_duplicates

    def column_major(self):
        original(self)
        order = np.lexsort((self.row, self.col))
        self.row, self.col, self.data = self.row[order], self.col[order], self.data[order]

    monkeypatch.setattr(sp.coo_matrix, "sum_duplicates", column_major)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_adjacency_is_sorted_row_major_whatever_scipy_does(monkeypatch):
    users, items = _interactions()
    reference = normalized_adjacency(users, items, N_USERS, N_ITEMS).to_dense()
    _column_major_sum_duplicates(monkeypatch)
    adjacency = normalized_adjacency(users, items, N_USERS, N_ITEMS)
    assert _is_row_major(adjacency)
    torch.testing.assert_close(adjacency.to_dense(), reference)
    x = torch.randn(N_USERS + N_ITEMS, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(adjacency.to_sparse_csr() @ x, reference @ x)
    torch.testing.assert_close(torch.sparse.mm(adjacency, x), reference @ x)
    # a scipy matrix handed to the model goes through the same path
    model = LightGCN(N_USERS, N_ITEMS, sp.csr_matrix(reference.numpy()), dim=3, n_layers=2)
    assert model._symmetric and _is_row_major(model.adjacency)
    _check_propagation(model, reference)


def _check_propagation(model: LightGCN, dense: torch.Tensor) -> None:
    ego = model.ego_embeddings()
    e1 = dense @ ego
    expected = (ego + e1 + dense @ e1) / 3
    torch.testing.assert_close(torch.cat(model.propagate()), expected)


def test_a_torch_tensor_wrongly_marked_coalesced_is_sorted_again():
    users, items = _interactions()
    reference = normalized_adjacency(users, items, N_USERS, N_ITEMS).coalesce()
    rows, cols = reference.indices()
    order = np.lexsort((rows.numpy(), cols.numpy()))  # column-major
    liar = torch.sparse_coo_tensor(
        reference.indices()[:, order],
        reference.values()[order],
        reference.shape,
        is_coalesced=True,  # a false claim
        check_invariants=False,
    )
    model = LightGCN(N_USERS, N_ITEMS, liar, dim=3, n_layers=2)
    assert model._symmetric and _is_row_major(model.adjacency)
    _check_propagation(model, reference.to_dense())


def test_the_csr_copy_is_made_once_and_follows_the_module(monkeypatch):
    model = _build("LightGCN")
    dense = model.adjacency.to_dense()
    calls = []
    original = torch.Tensor.to_sparse_csr

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to_sparse_csr", spy)
    for _ in range(3):
        model.propagate()[0].sum().backward()
    assert calls == []  # propagation uses the CSR copy kept at construction
    assert not any(k.startswith("csr_") for k in model.state_dict())
    double = copy.deepcopy(model).double()
    assert double.csr_values.dtype == torch.float64
    user_emb, _ = double.propagate()
    assert user_emb.dtype == torch.float64
    _check_propagation(model, dense)
    # a new adjacency assigned to the model replaces the CSR copy too
    users, items = _interactions()
    other = normalized_adjacency(users[:6], items[:6], N_USERS, N_ITEMS)
    monkeypatch.undo()
    model.adjacency = other
    _check_propagation(model, other.to_dense())


# --------------------------------------------------------------------------------------------
# 3. Exact scores, NaN scores


def test_integer_scores_above_2_to_the_24_do_not_tie():
    big = 2**24
    scores = torch.tensor([[big, big + 1, big - 1]])
    relevant = torch.tensor([[False, True, False]])
    out = ranking_metrics(scores, relevant, ks=1, metrics=("hr", "mrr_full", "auc"))
    assert out == {"HR@1": 1.0, "MRR": 1.0, "AUC": 1.0}
    huge = torch.tensor([[2**60, 2**60 + 1]])  # beyond float64's 2**53 too
    assert ranking_metrics(huge, torch.tensor([[False, True]]), ks=1, metrics="hr")["HR@1"] == 1


def test_pessimistic_hits_checks_its_arguments():
    from recs_course.metrics import pessimistic_hits

    scores, relevant = torch.tensor([[0.5, 0.2, 0.9]]), torch.tensor([[True, False, False]])
    assert pessimistic_hits(scores, relevant, 2).tolist() == [[False, True]]
    with pytest.raises(ValueError, match="larger than the number of items"):
        pessimistic_hits(scores, relevant, 4)
    with pytest.raises(ValueError, match="k must be an int"):
        pessimistic_hits(scores, relevant, 1.5)
    with pytest.raises(ValueError, match="scores contain NaN"):
        pessimistic_hits(torch.tensor([[0.5, float("nan"), 0.9]]), relevant, 1)
    big = torch.tensor([[2**24 + 1, 2**24]])  # exact: no float32 tie
    assert pessimistic_hits(big, torch.tensor([[True, False]]), 1).tolist() == [[True]]


def test_float64_scores_are_not_downcast():
    scores = np.array([[1.0, 1.0 + 1e-12, 1.0 - 1e-12]])  # equal in float32
    relevant = np.array([[False, True, False]])
    assert ranking_metrics(scores, relevant, ks=1, metrics="hr")["HR@1"] == 1.0


class _IntModel(torch.nn.Module):
    """Integer scores ``offset + item``: distinct, but equal after a float32 cast."""

    def __init__(self, n_items: int, offset: int):
        super().__init__()
        self.register_buffer("scores", offset + torch.arange(n_items))

    def forward(self, users, items):
        return self.scores[items]

    def score_all(self, users):
        return self.scores.expand(len(users), -1)


def test_evaluators_compare_integer_scores_exactly():
    model = _IntModel(6, 2**24)
    # the held-out item (column 0) has the highest score: rank 1
    users, candidates = _t(0, 1), torch.tensor([[5, 0, 1], [4, 0, 3]])
    assert evaluate_sampled(model, users, candidates, ks=1) == {"HR@1": 1.0, "NDCG@1": 1.0}
    train = sp.csr_matrix(np.zeros((2, 6), dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1]], dtype=np.float32))
    assert evaluate_full(model, train, test, ks=1, metrics="hr") == {"HR@1": 1.0}
    with pytest.raises(ValueError, match="beyond 2\\*\\*53"):
        evaluate_full(_IntModel(6, 2**60), train, test, ks=1, metrics="hr")


def test_nan_scores_are_refused_with_the_argument_named():
    scores = torch.tensor([[0.3, float("nan"), 0.1], [0.5, 0.2, 0.1]])
    relevant = torch.tensor([[True, False, False], [True, False, False]])
    with pytest.raises(ValueError, match=r"scores contain NaN for 1 .* row\(s\) \[0\]"):
        ranking_metrics(scores, relevant, ks=1)
    model = _TableModel(torch.tensor([[0.1, float("nan"), 0.3], [0.1, 0.2, 0.3]]))
    with pytest.raises(ValueError, match=r"model\(users, items\) contain NaN.*user\(s\) \[0\]"):
        evaluate_sampled(model, _t(1, 0), torch.tensor([[0, 1], [0, 1]]), ks=1)
    train = sp.csr_matrix(np.zeros((2, 3), dtype=np.float32))
    test = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"score_all\(users\) contain NaN"):
        evaluate_full(model, train, test, ks=1)
    with pytest.raises(ValueError, match=r"model\(users, items\) contains 1 NaN"):
        evaluate_ratings(model, _t(0, 1), _t(1, 1), torch.ones(2))
    with pytest.raises(ValueError, match="ratings contains 1 NaN"):
        evaluate_ratings(model, _t(0, 1), _t(0, 1), torch.tensor([1.0, float("nan")]))
    for fn in (rmse, mae):
        with pytest.raises(ValueError, match="pred contains 1 NaN"):
            fn([1.0, float("nan")], [1.0, 2.0])
        with pytest.raises(ValueError, match="target contains 1 NaN"):
            fn([1.0, 2.0], np.array([np.nan, 2.0]))
        with pytest.raises(ValueError, match="target must hold real numbers"):
            fn([1.0, 2.0], ["a", "b"])


# --------------------------------------------------------------------------------------------
# 4. Checkpoints


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = MF(N_USERS, N_ITEMS, dim=3)
    path = save_checkpoint(tmp_path / "mf.pt", model, epoch=3)
    return path, model


def _corrupt(path, kind: str):
    data = path.read_bytes()
    target = path.with_name(f"{kind}.pt")
    if kind == "empty":
        target.write_bytes(b"")
    elif kind == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif kind == "random":
        target.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "text":
        target.write_text("epoch,loss\n1,0.5\n")
    return target


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("empty", r"\(empty file\)"),
        ("truncated", r"\(a zip archive that torch cannot read"),
        ("random", r"\(unrecognised binary data, 300 bytes\)"),
        ("text", r"\(a text file starting 'epoch,loss"),
    ],
)
def test_unreadable_checkpoints_raise_a_value_error_naming_the_file(saved, kind, why):
    path, _ = saved
    bad = _corrupt(path, kind)
    model = MF(N_USERS, N_ITEMS, dim=3)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=rf"{bad.name} is not a recs_course checkpoint {why}"):
        load_checkpoint(bad, model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_torch_files_that_are_not_checkpoints(tmp_path):
    model = MF(N_USERS, N_ITEMS, dim=3)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="bare.pt holds a bare state dict"):
        load_checkpoint(tmp_path / "bare.pt", model)
    torch.save({"weights": [1, 2], "epoch": 3}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt is not .*no 'model' entry.*'epoch', 'weights'"):
        load_checkpoint(tmp_path / "other.pt", model)
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="tensor.pt is not .*it holds a Tensor"):
        load_checkpoint(tmp_path / "tensor.pt", model)
    torch.save({"model": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(ValueError, match="list.pt is not .*'model' entry is a list"):
        load_checkpoint(tmp_path / "list.pt", model)


def test_bad_load_arguments(saved):
    path, _ = saved
    with pytest.raises(ValueError, match="model must be the torch module"):
        load_checkpoint(path, {"user_embedding.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match="optimizer must be a torch optimizer"):
        load_checkpoint(path, MF(N_USERS, N_ITEMS, dim=3), optimizer="adam")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"map_location='cuda' cannot be used"):
            load_checkpoint(path, MF(N_USERS, N_ITEMS, dim=3), map_location="cuda")


def test_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file at .*nowhere\.pt"):
        load_checkpoint(tmp_path / "nowhere.pt", MF(N_USERS, N_ITEMS))
    with pytest.raises(ValueError, match="is a folder"):
        load_checkpoint(tmp_path, MF(N_USERS, N_ITEMS))


def test_checkpoints_of_another_shape_or_other_entries(saved):
    path, original = saved
    other = MF(N_USERS + 3, N_ITEMS, dim=3)
    before = copy.deepcopy(other.state_dict())
    with pytest.raises(
        ValueError,
        match=r"mf.pt was saved from a model with user_embedding.weight of shape \(5, 3\); "
        r"this MF has \(8, 3\): build the model with the same sizes",
    ):
        load_checkpoint(path, other)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    with pytest.raises(ValueError, match="shape"):  # shapes are checked with strict=False too
        load_checkpoint(path, other, strict=False)
    plain = MF(N_USERS, N_ITEMS, dim=3, biases=False)
    with pytest.raises(
        ValueError, match=r"mf.pt was saved from another model: the file has 3 entries this MF"
    ):
        load_checkpoint(path, plain)
    assert load_checkpoint(path, plain, strict=False) == {"epoch": 3}
    torch.testing.assert_close(plain.user_embedding.weight, original.user_embedding.weight)
    wider = save_checkpoint(path.with_name("plain.pt"), MF(N_USERS, N_ITEMS, dim=3, biases=False))
    with pytest.raises(ValueError, match="this MF has 3 entries the file lacks"):
        load_checkpoint(wider, MF(N_USERS, N_ITEMS, dim=3))
    with pytest.raises(ValueError, match="was saved from another model"):
        load_checkpoint(path, GMF(N_USERS, N_ITEMS, dim=3))


def test_an_optimizer_state_that_does_not_fit(tmp_path):
    model = MF(N_USERS, N_ITEMS, dim=3)
    optimizer = torch.optim.Adam(model.parameters())
    path = save_checkpoint(tmp_path / "opt.pt", model, optimizer)
    other = MF(N_USERS, N_ITEMS, dim=3)
    one_group = torch.optim.Adam([other.user_embedding.weight])
    with pytest.raises(
        ValueError,
        match="opt.pt: group 0 of its optimizer state has 5 parameters, this optimizer.s has 1",
    ):
        load_checkpoint(path, other, one_group)


def test_an_optimizer_state_of_another_class_is_refused_and_nothing_is_loaded(tmp_path):
    """An Adam state loads into SGD without complaint in torch, then its first step raises a
    bare KeyError: refuse it, before the model is changed."""
    model = MF(N_USERS, N_ITEMS, dim=3)
    adam = torch.optim.Adam(model.parameters())
    model(torch.tensor([0, 1]), torch.tensor([2, 3])).sum().backward()
    adam.step()
    path = save_checkpoint(tmp_path / "adam.pt", model, adam)
    other = MF(N_USERS, N_ITEMS, dim=3)
    before = [p.detach().clone() for p in other.parameters()]
    sgd = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="adam.pt: its optimizer state is of another optimizer"):
        load_checkpoint(path, other, sgd)
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters(), strict=True))
    assert sgd.state == {} and "momentum" in sgd.param_groups[0]
    same = torch.optim.Adam(other.parameters())
    load_checkpoint(path, other, same)
    same.step()  # the loaded state is usable


def test_a_checkpoint_written_by_save_checkpoint_still_loads(saved, tmp_path):
    path, model = saved
    other = MF(N_USERS, N_ITEMS, dim=3)
    assert load_checkpoint(os.fspath(path), other) == {"epoch": 3}
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_device_side_range_assertion_used_on_cuda():
    """On CUDA, "auto" asserts the range on the device (no synchronisation); the same assertion
    runs synchronously on the CPU, which is how it is tested here."""
    from recs_course.models.base import _assert_in_range_async

    _assert_in_range_async(torch.tensor([0, 3]), 4, "users")
    _assert_in_range_async(torch.tensor([0, 10**6]), None, "users")
    for bad in ([-1, 3], [0, 4]):
        with pytest.raises(RuntimeError, match=r"users must lie in \[0, 4\)"):
            _assert_in_range_async(torch.tensor(bad), 4, "users")


# --------------------------------------------------------------------------------------------
# 5. Second round: silent wrong results and raw errors at the training, evaluation, schedule,
# notebook and plot entry points (each a ValueError naming the argument).


def _mse_batches():
    users, items = _interactions()
    ratings = torch.arange(users.size, dtype=torch.float32) % 5 + 1
    return [(torch.from_numpy(users), torch.from_numpy(items), ratings)]


def test_fit_refuses_an_optimizer_holding_none_of_the_models_parameters():
    from recs_course.training import fit

    model = MF(N_USERS, N_ITEMS, dim=3)
    stale = torch.optim.SGD(MF(N_USERS, N_ITEMS, dim=3).parameters(), lr=0.1)  # another model
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="optimizer holds none of this MF's parameters"):
        fit(model, _mse_batches(), "mse", stale, 1, progress=False)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="optimizer must be a torch optimizer"):
        fit(model, _mse_batches(), "mse", None, 1, progress=False)
    # Part of the parameters (a frozen embedding) is legitimate and trains the rest.
    model.user_embedding.weight.requires_grad_(False)
    partial = [p for p in model.parameters() if p.requires_grad]
    frozen = model.user_embedding.weight.detach().clone()
    fit(model, _mse_batches(), "mse", torch.optim.SGD(partial, lr=0.1), 1, progress=False)
    assert torch.equal(model.user_embedding.weight, frozen)
    assert not torch.equal(model.item_embedding.weight, before["item_embedding.weight"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheduler": "x"}, "scheduler must be a learning-rate scheduler"),
        ({"min_delta": "0"}, "min_delta must be a finite number"),
        ({"min_delta": None}, "min_delta must be a finite number"),
        ({"min_delta": float("inf")}, "min_delta must be a finite number"),
        ({"clip_grad": "1"}, "clip_grad must be a finite positive number"),
        ({"clip_grad": True}, "clip_grad must be a finite positive number"),
    ],
)
def test_fit_checks_its_keyword_arguments(kwargs, match):
    from recs_course.training import fit

    model = MF(N_USERS, N_ITEMS, dim=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=match):
        fit(model, _mse_batches(), "mse", opt, 1, progress=False, **kwargs)


def test_fit_refuses_a_train_data_callable_that_returns_no_batches():
    from recs_course.training import fit

    model = MF(N_USERS, N_ITEMS, dim=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"train_data\(0\) returned NoneType"):
        fit(model, lambda epoch: None, "mse", opt, 1, progress=False)


def test_save_checkpoint_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="model must be the torch module"):
        save_checkpoint(tmp_path / "a.pt", None)
    with pytest.raises(ValueError, match="path must be the file to write"):
        save_checkpoint(None, MF(N_USERS, N_ITEMS))
    with pytest.raises(ValueError, match="is a folder"):
        save_checkpoint(tmp_path, MF(N_USERS, N_ITEMS))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["gpu", "cuda:x", 3, "auto-ish"])
def test_load_checkpoint_checks_map_location_before_blaming_the_file(saved, where):
    path, _ = saved
    with pytest.raises(ValueError, match="map_location") as info:
        load_checkpoint(path, MF(N_USERS, N_ITEMS, dim=3), map_location=where)
    assert "not a recs_course checkpoint" not in str(info.value)
    assert load_checkpoint(path, MF(N_USERS, N_ITEMS, dim=3), map_location="auto") == {"epoch": 3}


def test_bce_refuses_labels_outside_0_1_and_keeps_valid_ones():
    from recs_course.losses import _assert_labels_async, bce_loss
    from recs_course.models import index_checks

    model = GMF(N_USERS, N_ITEMS, dim=3)
    users, items = (torch.from_numpy(a) for a in _interactions())
    for bad in (torch.full((users.numel(),), 4.0), torch.full((users.numel(),), float("nan"))):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\].*to_implicit"):
            bce_loss(model, (users, items, bad))
    with index_checks("never"):  # the policy of the index checks
        bce_loss(model, (users, items, torch.full((users.numel(),), 4.0)))
    good = (torch.arange(users.numel()) % 2).float()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(model(users, items), good)
    torch.testing.assert_close(bce_loss(model, (users, items, good)), expected, rtol=0, atol=0)
    bce_loss(model, (users, items, good.bool()))
    # The CUDA path asserts on the device; the same assertion runs synchronously on the CPU.
    _assert_labels_async(good)
    with pytest.raises(RuntimeError, match=r"labels must lie in \[0, 1\]"):
        _assert_labels_async(good * 5)


def test_masked_mse_needs_a_bool_mask_and_bpr_takes_k_negatives():
    from recs_course.losses import bpr_loss
    from recs_course.models import masked_mse

    pred, target = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        masked_mse(pred, target, torch.full((2, 3), 0.5))
    model = MF(N_USERS, N_ITEMS, dim=3)
    users, pos = torch.tensor([0, 1]), torch.tensor([1, 2])
    neg = torch.tensor([[3, 4], [5, 6]])
    pos_scores, neg_scores = model.pair_scores(users, pos, neg)
    expected = -torch.nn.functional.logsigmoid(pos_scores.unsqueeze(1) - neg_scores).mean()
    torch.testing.assert_close(bpr_loss(model, (users, pos, neg)), expected)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.triangular(3, 0.1, 1.0, float("nan")), "step_size"),
        (lambda s: s.triangular(3, 0.1, 1.0, float("inf")), "step_size"),
        (lambda s: s.triangular(3, 0.1, 1.0, "5"), "step_size"),
        (lambda s: s.triangular(3, 0.1, 1.0, 5, step_size_down=float("nan")), "step_size_down"),
        (lambda s: s.triangular(0, "0.1", 1, 5), "base_lr"),
        (lambda s: s.triangular(0, None, 1, 5), "base_lr"),
        (lambda s: s.triangular(0, 0.1, True, 5), "max_lr"),
        (lambda s: s.triangular("3", 0.1, 1, 5), "step"),
        (lambda s: s.exp_range(1, 0.1, 1, 5, "0.9"), "gamma"),
        (lambda s: s.exp_range(1, 0.1, 1, 5, float("nan")), "gamma"),
        (lambda s: s.cosine_restarts(1, 0.1, 1, 2.0), "t_0"),
        (lambda s: s.cosine_restarts(1, 0.1, 1, 2, True), "t_mult"),
    ],
)
def test_schedule_arguments_are_checked_by_one_checker(call, match):
    import recs_course.schedules as schedules

    with pytest.raises(ValueError, match=match):
        call(schedules)


def test_triangular2_far_cycles_underflow_quietly_with_the_same_values(recwarn):
    from recs_course.schedules import triangular2

    assert triangular2(10**6, 0.1, 1.0, 1) == 0.1  # 2 ** 499999 overflowed with a warning
    peaks = triangular2(np.array([2, 6, 10, 4 * 2000 + 2]), 0.0, 1.0, 2)
    assert peaks.tolist() == [1.0, 0.5, 0.25, 0.0]  # exact powers of two, then underflow to 0
    assert not recwarn.list


def test_evaluate_full_refuses_repeated_users():
    model = MF(N_USERS, N_ITEMS, dim=3)
    train = _ratings_csr()
    test = sp.csr_matrix(np.eye(N_USERS, N_ITEMS, k=2, dtype=np.float32))
    with pytest.raises(ValueError, match=r"users holds 2 repeated index\(es\), e.g. 0"):
        evaluate_full(model, train, test, ks=2, users=[0, 0, 0, 1])
    once = evaluate_full(model, train, test, ks=2, users=[0, 1])
    assert once == evaluate_full(model, train, test, ks=2, users=[1, 0])


def test_evaluate_sampled_refuses_the_positive_among_its_negatives():
    model = MF(N_USERS, N_ITEMS, dim=3)
    candidates = torch.tensor([[1, 2, 3], [2, 4, 2], [0, 5, 6]])
    with pytest.raises(ValueError, match=r"candidates: 1 row\(s\).*row 1 \(user 1, item 2\)"):
        evaluate_sampled(model, [0, 1, 2], candidates, ks=1)
    assert set(evaluate_sampled(model, [0, 2], candidates[[0, 2]], ks=1)) == {"HR@1", "NDCG@1"}


def test_rating_metrics_refuse_infinities():
    for pred, target, name in (
        ([np.inf], [np.inf], "pred"),
        ([1.0], [-np.inf], "target"),
    ):
        for metric in (rmse, mae):
            with pytest.raises(ValueError, match=f"{name} contains 1 infinite"):
                metric(pred, target)
    model = MF(N_USERS, N_ITEMS, dim=3)
    with pytest.raises(ValueError, match="ratings contains 1 infinite"):
        evaluate_ratings(model, [0, 1], [0, 1], [np.inf, 3.0])


def test_evaluators_check_the_model_and_the_device_first():
    train = _ratings_csr()

    class NoScoreAll(torch.nn.Module):
        def forward(self, users, items):
            return users.float()

    with pytest.raises(ValueError, match="model must be a torch nn.Module"):
        evaluate_ratings(lambda u, i: u.float(), [0], [0], [1.0])
    with pytest.raises(ValueError, match="model must be a torch nn.Module"):
        evaluate_sampled(lambda u, i: u.float(), [0], [[0, 1]])
    with pytest.raises(ValueError, match="full ranking needs a model with score_all"):
        evaluate_full(NoScoreAll(), train, train)
    with pytest.raises(ValueError, match="device"):
        evaluate_ratings(MF(N_USERS, N_ITEMS), [0], [0], [1.0], device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            evaluate_ratings(MF(N_USERS, N_ITEMS), [0], [0], [1.0], device="cuda")


def test_record_checks_nested_values_and_read_records_its_argument():
    from recs_course.notebook import read_records, record

    for value in (
        [float("nan")],
        {"a": float("inf")},
        torch.tensor([1.0, float("nan")]),
        {"a": [1.0, {"b": np.float32("nan")}]},
    ):
        with pytest.raises(ValueError, match="non-finite"):
            record("x", value)
    for value in (1j, object(), [1, object()], torch.tensor([1j])):
        with pytest.raises(ValueError, match="record"):
            record("x", value)
    assert record("x", {"a": [1, 2.5, "s", None, True]}) == {"a": [1, 2.5, "s", None, True]}
    for notebook in ([1], None, {"cells": 3}):
        with pytest.raises(ValueError, match="notebook"):
            read_records(notebook)


def test_graph_models_and_autorec_refuse_non_finite_or_complex_input(recwarn):
    users, items = _interactions()
    adjacency = normalized_adjacency(users, items, N_USERS, N_ITEMS)
    nan = adjacency.to_dense() * float("nan")
    with pytest.raises(ValueError, match="adjacency holds .* NaN or infinite"):
        LightGCN(N_USERS, N_ITEMS, nan, dim=2)
    complex_adj = sp.csr_matrix(np.eye(N_USERS + N_ITEMS, dtype=complex))
    for cls in (LightGCN, NGCF):
        with pytest.raises(ValueError, match="adjacency must hold real numbers"):
            cls(N_USERS, N_ITEMS, complex_adj, dim=2)
    with pytest.raises(ValueError, match="adjacency must hold real numbers"):
        LightGCN(N_USERS, N_ITEMS, adjacency.to(torch.complex64), dim=2)
    model = LightGCN(N_USERS, N_ITEMS, adjacency, dim=2)
    with pytest.raises(ValueError, match="adjacency holds"):
        model.adjacency = adjacency * float("inf")
    ratings = _ratings_csr()
    with pytest.raises(ValueError, match="ratings must hold real numbers"):
        AutoRec(N_USERS, N_ITEMS, ratings.astype(complex))
    with pytest.raises(ValueError, match="ratings must hold real numbers"):
        AutoRec(N_USERS, N_ITEMS, np.array(ratings.toarray(), dtype=object))
    with pytest.raises(ValueError, match="ratings must be a 2-D"):
        AutoRec(N_USERS, N_ITEMS, torch.zeros(N_USERS, N_ITEMS, 1))
    assert not [w for w in recwarn.list if "Complex" in w.category.__name__]


@pytest.mark.parametrize("y_range", [(None, 5), ("a", "b"), (1, True)])
def test_y_range_must_be_a_pair_of_numbers(y_range):
    with pytest.raises(ValueError, match="y_range"):
        MF(N_USERS, N_ITEMS, y_range=y_range)


def test_plots_check_their_arguments():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from recs_course.metrics import nanmean
    from recs_course.plots import (
        plot_embedding_map,
        plot_matrix_slice,
        plot_pca_components,
        plot_rating_distribution,
    )

    coords = np.arange(12.0).reshape(6, 2)
    titles = list("abcdef")
    try:
        for component in ("0", 0.5, True):
            with pytest.raises(ValueError, match="component"):
                plot_pca_components(coords, titles, component=component)
        for max_categories in (2.5, "3", True):
            with pytest.raises(ValueError, match="max_categories"):
                plot_embedding_map(coords, categories=titles, max_categories=max_categories)
        with pytest.raises(ValueError, match=r"rows must lie in \[0, 5\)"):
            plot_matrix_slice(np.eye(5), rows=[10])
        with pytest.raises(ValueError, match="cols must hold integer"):
            plot_matrix_slice(np.eye(5), cols=[0.5])
        ax = plot_matrix_slice(np.eye(5), rows=[0, 2], cols=slice(0, 3))
        assert ax.images[0].get_array().shape == (2, 3)
        frame = pd.DataFrame({"rating": [1.0, np.nan, 3.0, 4.0]})
        with pytest.raises(ValueError, match=r"ratings\['rating'\] holds 1 missing"):
            plot_rating_distribution(frame)
        assert plot_rating_distribution(frame.dropna()).get_title() == "3 ratings"
    finally:
        plt.close("all")
    assert nanmean([1.0, 2.0]) == 1.5
    with pytest.raises(ValueError, match="values"):
        nanmean("x")


def test_schedule_lr_with_missing_arguments_names_them():
    from recs_course.schedules import ScheduleLR, triangular

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="ScheduleLR could not call the schedule"):
        ScheduleLR(optimizer, triangular, base_lr=0.1)


def test_a_model_built_with_other_options_is_refused(tmp_path):
    """Weights of the same shapes, options that change the scores (y_range here): refuse, unless
    strict=False."""
    saved = MF(N_USERS, N_ITEMS, dim=3, y_range=(1.0, 5.0))
    path = save_checkpoint(tmp_path / "mf.pt", saved, epoch=1)
    plain = MF(N_USERS, N_ITEMS, dim=3)
    before = [p.detach().clone() for p in plain.parameters()]
    with pytest.raises(ValueError, match=r"mf.pt was saved from a model built with other options"):
        load_checkpoint(path, plain)
    assert all(torch.equal(a, b) for a, b in zip(before, plain.parameters(), strict=True))
    assert load_checkpoint(path, plain, strict=False) == {"epoch": 1}
    same = MF(N_USERS, N_ITEMS, dim=3, y_range=(1.0, 5.0))
    assert load_checkpoint(path, same) == {"epoch": 1}
    with pytest.raises(ValueError, match="extra entries may not be called"):
        save_checkpoint(tmp_path / "x.pt", saved, architecture="mine")
