"""Tests of recs_course.models.hybrid: HybridMF and PretrainedHybrid.

Scores are checked against a naive reference written from the formulas (loops over users,
items and bag entries); the cold-item path against the features-only scorer; the pretrained
hybrid's freezing through ``fit``; saving with the feature encoders through ``weights_only``
checkpoints; and learning: on a synthetic problem where genres carry the signal, the hybrid
ranks items it never saw in training, and MF cannot. The shared contract (forward, score_all,
pair_scores, index checks) runs in tests/test_models.py and tests/test_hostile_models.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recs_course.data import FeatureBags, FeatureEncoder, InstanceBatches
from recs_course.losses import bpr_loss
from recs_course.models import MF, HybridMF, PretrainedHybrid
from recs_course.training import fit, load_checkpoint, read_checkpoint, save_checkpoint

N_USERS, N_ITEMS = 7, 10


def item_frame(n_items: int = N_ITEMS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    genres = np.array(["Action", "Comedy", "Drama", "Horror"])
    return pd.DataFrame(
        {
            "item_id": np.arange(n_items),
            "genres": [
                list(rng.choice(genres, size=rng.integers(1, 3), replace=False))
                for _ in range(n_items)
            ],
            "year": rng.integers(1950, 2000, n_items),
        }
    )


def user_frame(n_users: int = N_USERS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": np.arange(n_users),
            "gender": rng.choice(["F", "M"], n_users),
            "age": rng.integers(15, 70, n_users),
        }
    )


def item_encoder() -> FeatureEncoder:
    return FeatureEncoder("item_id", multi=["genres"], buckets={"year": (1970, 1990)})


def user_encoder() -> FeatureEncoder:
    return FeatureEncoder("user_id", categorical=["gender"], buckets={"age": (25, 45)})


def item_bags(n_items: int = N_ITEMS) -> FeatureBags:
    return item_encoder().fit_transform(item_frame(n_items))


def user_bags(n_users: int = N_USERS) -> FeatureBags:
    return user_encoder().fit_transform(user_frame(n_users))


def _noisy(model: torch.nn.Module) -> torch.nn.Module:
    """Non-zero weights everywhere (biases start at 0), so that no term is tested as 0 == 0."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _naive_side(table, bias, known, feat, feat_bias, bags, row: int):
    """One user's (item's) vector and bias, by loops over its bag."""
    vec = torch.zeros(feat.shape[1] if feat is not None else table.shape[1], dtype=torch.float64)
    b = 0.0
    if table is not None and bool(known[row]):
        vec += table[row].double()
        b += float(bias[row, 0]) if bias is not None else 0.0
    if bags is not None:
        for index, weight in zip(
            bags.indices[row].tolist(), bags.weights[row].tolist(), strict=True
        ):
            if index == bags.padding_index:
                continue
            vec += weight * feat[index].double()
            b += weight * float(feat_bias[index, 0]) if feat_bias is not None else 0.0
    return vec, b


def _naive_scores(model: HybridMF, ub, ib) -> torch.Tensor:
    def side(name, bags, row):
        get = lambda key: getattr(model, f"{name}_{key}", None)  # noqa: E731
        table = get("embedding")
        return _naive_side(
            None if table is None else table.weight.detach(),
            None if get("bias") is None else get("bias").weight.detach(),
            get("known"),
            None if get("feature_embedding") is None else get("feature_embedding").weight.detach(),
            None if get("feature_bias") is None else get("feature_bias").weight.detach(),
            bags,
            row,
        )

    out = torch.zeros(model.n_users, model.n_items, dtype=torch.float64)
    for u in range(model.n_users):
        p, bu = side("user", ub, u)
        for i in range(model.n_items):
            q, bi = side("item", ib, i)
            bias = float(model.global_bias.detach()) if model.biases else 0.0
            out[u, i] = p @ q + bu + bi + bias
    return out


# --------------------------------------------------------------------------------------------
# HybridMF: the formula, cold ids, features-only scoring


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"biases": False},
        {"item_ids": False},
        {"user_features": None},
        {"item_features": None},
    ],
)
def test_scores_are_sums_of_id_and_feature_embeddings(options):
    ub, ib = user_bags(), item_bags()
    kwargs = {"user_features": ub, "item_features": ib, **options}
    model = _noisy(HybridMF(N_USERS, N_ITEMS, 3, **kwargs))
    if model.item_ids:
        model.set_known(items=np.arange(N_ITEMS) % 3 != 0)  # some cold items
    expected = _naive_scores(model, kwargs["user_features"], kwargs["item_features"])
    with torch.no_grad():
        table = model.score_all(torch.arange(N_USERS))
        pairs = model(
            torch.arange(N_USERS).repeat_interleave(N_ITEMS), torch.arange(N_ITEMS).repeat(N_USERS)
        )
    torch.testing.assert_close(table.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        pairs.reshape(N_USERS, N_ITEMS).double(), expected, rtol=1e-5, atol=1e-5
    )


def test_without_features_it_is_mf():
    torch.manual_seed(0)
    hybrid = _noisy(HybridMF(N_USERS, N_ITEMS, 4))
    mf = MF(N_USERS, N_ITEMS, 4)
    mf.load_state_dict({k: v for k, v in hybrid.state_dict().items() if not k.endswith("_known")})
    users = torch.arange(N_USERS)
    with torch.no_grad():
        torch.testing.assert_close(hybrid.score_all(users), mf.score_all(users))
    ranged = HybridMF(N_USERS, N_ITEMS, 4, y_range=(1.0, 5.0))
    with torch.no_grad():
        scores = _noisy(ranged).score_all(users)
    assert bool(((scores > 1.0) & (scores < 5.0)).all())


def test_from_interactions_drops_the_ids_of_users_and_items_without_interactions():
    users = [0, 0, 1, 2, 3, 4, 5, 5]
    items = [0, 1, 2, 3, 4, 5, 6, 0]  # items 7, 8, 9 and user 6 never seen
    model = HybridMF.from_interactions(
        users, items, N_USERS, N_ITEMS, 4, user_features=user_bags(), item_features=item_bags()
    )
    assert model.item_known.tolist() == [True] * 7 + [False] * 3
    assert model.user_known.tolist() == [True] * 6 + [False]
    kept = HybridMF.from_interactions(
        users, items, N_USERS, N_ITEMS, 4, item_features=item_bags(), drop_cold_ids=False
    )
    assert bool(kept.item_known.all())
    # a cold id's embedding gets no gradient, even as a negative
    _noisy(model).train()
    batch = (
        torch.tensor([0, 1, 2]),
        torch.tensor([0, 2, 3]),
        torch.tensor([[7, 8], [9, 1], [4, 8]]),
    )
    bpr_loss(model, batch).backward()
    grad = model.item_embedding.weight.grad
    assert grad[[7, 8, 9]].abs().sum() == 0 and grad[[1, 4]].abs().sum() > 0
    assert model.item_feature_embedding.weight.grad[:-1].abs().sum() > 0  # the padding: none
    assert model.item_feature_embedding.weight.grad[-1].abs().sum() == 0


def test_a_cold_item_scores_as_a_new_item_with_the_same_features():
    ib = item_bags()
    model = _noisy(HybridMF(N_USERS, N_ITEMS, 4, user_features=user_bags(), item_features=ib))
    model.set_known(items=np.arange(N_ITEMS) < 6)  # items 6..9 cold
    users = torch.arange(N_USERS)
    with torch.no_grad():
        new = model.score_new_items(users, ib.select([6, 9, 8]))
        torch.testing.assert_close(new, model.score_all(users)[:, [6, 9, 8]])
        # a warm item scored as new loses its id part
        as_new = model.score_new_items(users, ib.select([0]))[:, 0]
        assert not torch.allclose(as_new, model.score_all(users)[:, 0])
    other = FeatureEncoder("item_id", multi=["genres"]).fit_transform(item_frame())
    with pytest.raises(ValueError, match="not this model's 12|same order"):
        model.score_new_items(users, other)
    with pytest.raises(ValueError, match="must be FeatureBags"):
        model.score_new_items(users, ib.indices)
    with pytest.raises(ValueError, match="no item features"):
        HybridMF(N_USERS, N_ITEMS, 4).score_new_items(users, ib)
    with pytest.raises(ValueError, match=r"users must lie in \[0, 7\)"):
        model.score_new_items([7], ib)


def test_vectors_and_the_scoring_pass(monkeypatch):
    model = _noisy(
        HybridMF(N_USERS, N_ITEMS, 4, user_features=user_bags(), item_features=item_bags())
    )
    with torch.no_grad():
        q = model.item_vectors()
        torch.testing.assert_close(model.item_vectors([3, 1]), q[[3, 1]])
        p, bu = model._represent("user", torch.tensor([2]))
        torch.testing.assert_close(model.user_vectors([2]), p)
        bi = model._represent("item", None)[1]
        expected = p @ q.T + bu[:, None] + bi[None, :] + model.global_bias
        torch.testing.assert_close(model.score_all([2]), expected)
        outside = model.score_all(torch.arange(N_USERS))
        calls = []
        represent = HybridMF._represent
        monkeypatch.setattr(
            HybridMF,
            "_represent",
            lambda self, side, idx: calls.append((side, idx is None)) or represent(self, side, idx),
        )
        with model.scoring_pass():
            first = model.score_all(torch.arange(3))
            second = model(torch.tensor([4, 5]), torch.tensor([1, 9]))
            model.score_all(torch.arange(3, N_USERS))
    assert calls.count(("item", True)) == 1 and ("item", False) not in calls
    torch.testing.assert_close(first, outside[:3])
    torch.testing.assert_close(second, outside[[4, 5], [1, 9]])


def test_hybrid_arguments_are_checked():
    ub, ib, U, I = user_bags(), item_bags(), N_USERS, N_ITEMS  # noqa: E741
    bad = [
        (lambda: HybridMF(U, I, item_features=item_bags(I - 1)), "has 9 rows but n_items = 10"),
        (lambda: HybridMF(U, I, user_features=ib), "has 10 rows but n_users = 7"),
        (lambda: HybridMF(U, I, item_features=ib.indices), "must be FeatureBags"),
        (lambda: HybridMF(U, I, item_ids=False), "item_ids=False needs item_features"),
        (lambda: HybridMF(U, I, user_ids="no"), "user_ids must be True or False"),
        (lambda: HybridMF(U, I, 0), "dim"),
        (lambda: HybridMF(U, I, init_std=-1), "init_std"),
        (lambda: HybridMF(U, I, 4, True), "positional"),
        (lambda: HybridMF.from_interactions([0], [10], U, I), r"items must lie in \[0, 10\)"),
        (lambda: HybridMF(U, I).set_known(items=np.ones(I)), "bool mask"),
        (lambda: HybridMF(U, I).set_known(users=np.ones(3, bool)), r"shape \(7,\)"),
        (
            lambda: HybridMF(U, I, user_features=ub, user_ids=False).set_known(
                users=np.ones(U, bool)
            ),
            "no user ids",
        ),
    ]
    for build, match in bad:
        with pytest.raises((ValueError, TypeError), match=match):
            build()


# --------------------------------------------------------------------------------------------
# PretrainedHybrid


def _pretrained(**kwargs) -> tuple[MF, PretrainedHybrid]:
    torch.manual_seed(0)
    mf = _noisy(MF(N_USERS, N_ITEMS, 4))
    return mf, PretrainedHybrid.from_mf(mf, item_bags(), **kwargs)


def test_from_mf_copies_the_factors_and_freezes_the_embeddings():
    mf, model = _pretrained()
    assert model.frozen
    for name in ("user_embedding", "item_embedding", "user_bias", "item_bias"):
        torch.testing.assert_close(getattr(model, name).weight, getattr(mf, name).weight)
        assert getattr(model, name).weight is not getattr(mf, name).weight
    assert model.combined_network[-1].bias.item() == pytest.approx(mf.global_bias.item())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "user_embedding.weight" not in trainable and "item_embedding.weight" not in trainable
    assert {"user_bias.weight", "metadata_input.weight", "combined_input.weight"} <= trainable
    model.freeze(biases=True)
    assert not model.user_bias.weight.requires_grad
    assert all(p.requires_grad for p in model.unfreeze().parameters()) and not model.frozen


def test_pretrained_scores_are_the_network_of_the_formula():
    _, model = _pretrained(metadata_layers=(5, 3), combined_layers=(6, 4))
    _noisy(model)
    bags = item_bags()
    users, items = torch.tensor([0, 3, 6]), torch.tensor([9, 0, 4])
    with torch.no_grad():
        x = bags.dense()[items]  # the weighted multi-hot rows
        w = model.metadata_input.weight[:-1]
        m = torch.nn.functional.leaky_relu(x @ w + model.metadata_input_bias)
        m = torch.nn.functional.leaky_relu(model.metadata_network[2](m))
        z = torch.cat([model.user_embedding(users), model.item_embedding(items), m], 1)
        h = torch.nn.functional.leaky_relu(model.combined_input(z))
        h = torch.nn.functional.leaky_relu(model.combined_network[2](h))
        out = model.combined_network[5](h).squeeze(1)
        out = out + model.user_bias(users).squeeze(1) + model.item_bias(items).squeeze(1)
        torch.testing.assert_close(model(users, items), out)
        torch.testing.assert_close(model.score_all(users)[[0, 1, 2], items], out)


def test_pretrained_trains_frozen_then_unfrozen_through_fit():
    mf, model = _pretrained()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mf_before = {k: v.clone() for k, v in mf.state_dict().items()}
    ratings = pd.DataFrame(
        {"user_id": [0, 1, 2, 3, 4, 5, 6, 0], "item_id": [1, 2, 3, 4, 5, 6, 7, 8]}
    )
    data = InstanceBatches(ratings, N_ITEMS, "pairwise", batch_size=4, generator=0)
    frozen_opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    fit(model, data, "bpr", frozen_opt, epochs=2, progress=False)
    after = model.state_dict()
    assert torch.equal(after["user_embedding.weight"], before["user_embedding.weight"])
    assert torch.equal(after["item_embedding.weight"], before["item_embedding.weight"])
    assert not torch.equal(after["metadata_input.weight"], before["metadata_input.weight"])
    assert not torch.equal(after["item_bias.weight"], before["item_bias.weight"])
    model.unfreeze()
    with pytest.raises(ValueError, match="user_embedding.weight"):
        fit(model, data, "bpr", frozen_opt, epochs=1, progress=False)  # not in the optimizer
    fit(model, data, "bpr", torch.optim.Adam(model.parameters(), lr=1e-4), epochs=1, progress=False)
    assert not torch.equal(
        model.state_dict()["user_embedding.weight"], before["user_embedding.weight"]
    )
    for k, v in mf.state_dict().items():
        assert torch.equal(v, mf_before[k]), k  # the MF was copied, never changed


def test_pretrained_arguments_are_checked():
    mf, bags, build = MF(N_USERS, N_ITEMS, 4), item_bags(), PretrainedHybrid.from_mf
    bad = [
        (lambda: build(torch.nn.Linear(2, 2), bags), "trained recs_course MF"),
        (lambda: build(MF(N_USERS, N_ITEMS, 4, y_range=(1, 5)), bags), "y_range"),
        (lambda: build(mf, item_bags(N_ITEMS + 1)), "has 11 rows but n_items = 10"),
        (lambda: PretrainedHybrid(N_USERS, N_ITEMS, 4, item_features=None), "required"),
        (lambda: build(mf, bags, metadata_layers=()), "at least 1"),
        (lambda: build(mf, bags, combined_layers=16), "sequence"),
        (lambda: build(mf, bags, combined_layers=()), "at least 1"),
        (lambda: build(mf, bags, combined_layers=(0,)), r"combined_layers\[0\]"),
        (lambda: build(mf, bags, dropout=1.0), "dropout"),
        (lambda: build(mf, bags, frozen="yes"), "frozen must be True or False"),
    ]
    for make, match in bad:
        with pytest.raises(ValueError, match=match):
            make()


def test_pretrained_score_all_in_training_mode_with_dropout():
    _, model = _pretrained(dropout=0.5)
    model.train()
    torch.manual_seed(0)
    assert model.score_all(torch.tensor([0, 1])).shape == (2, N_ITEMS)


# --------------------------------------------------------------------------------------------
# Saving with the encoders: weights_only, no pickle


def test_a_hybrid_and_its_encoders_round_trip_through_a_checkpoint(tmp_path):
    items, users = item_encoder().fit(item_frame()), user_encoder().fit(user_frame())
    ub, ib = users.transform(user_frame()), items.transform(item_frame())
    model = HybridMF.from_interactions(
        [0, 1, 2], [3, 4, 5], N_USERS, N_ITEMS, 4, user_features=ub, item_features=ib
    )
    _noisy(model)
    extras = {"hybrid": model.config(), "items": items.to_dict(), "users": users.to_dict()}
    path = save_checkpoint(tmp_path / "hybrid.pt", model, **extras, epoch=3)
    torch.load(path, weights_only=True)  # nothing weights_only refuses
    stored = read_checkpoint(path)
    assert set(stored) == {"hybrid", "items", "users", "epoch"}
    rebuilt = HybridMF.from_config(stored["hybrid"])
    assert load_checkpoint(path, rebuilt)["epoch"] == 3
    assert torch.equal(rebuilt.item_known, model.item_known)
    with torch.no_grad():
        everyone = torch.arange(N_USERS)
        torch.testing.assert_close(rebuilt.score_all(everyone), model.score_all(everyone))
    encoder = FeatureEncoder.from_dict(stored["items"])
    new = pd.DataFrame({"item_id": [99], "genres": [["Drama"]], "year": [1999]})
    with torch.no_grad():
        torch.testing.assert_close(
            rebuilt.score_new_items([0, 1], encoder.transform(new)),
            model.score_new_items([0, 1], items.transform(new)),
        )
    # a model built with other features refuses the weights, naming the file
    other = HybridMF(N_USERS, N_ITEMS, 4, item_features=item_bags(), user_features=None)
    with pytest.raises(ValueError, match="hybrid.pt"):
        load_checkpoint(path, other)


def test_a_pretrained_hybrid_round_trips_through_a_checkpoint(tmp_path):
    _, model = _pretrained(combined_layers=(6,))
    model.unfreeze()
    path = save_checkpoint(tmp_path / "p.pt", model, hybrid=model.config())
    rebuilt = PretrainedHybrid.from_config(read_checkpoint(path)["hybrid"])
    assert not rebuilt.frozen  # saved unfrozen
    load_checkpoint(path, rebuilt)
    users = torch.arange(N_USERS)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.score_all(users), model.eval().score_all(users))


def test_configs_and_checkpoint_files_are_checked(tmp_path):
    model = HybridMF(N_USERS, N_ITEMS, 4, item_features=item_bags())
    config = model.config()
    with pytest.raises(ValueError, match="not a HybridMF config"):
        HybridMF.from_config({**config, "format": "recs_course.PretrainedHybrid/1"})
    with pytest.raises(ValueError, match="not a PretrainedHybrid config"):
        PretrainedHybrid.from_config(config)
    with pytest.raises(ValueError, match="lacks 'dim'"):
        HybridMF.from_config({k: v for k, v in config.items() if k != "dim"})
    with pytest.raises(ValueError, match="not a dict written by FeatureBags"):
        HybridMF.from_config({**config, "item_features": {"format": "?"}})
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        read_checkpoint(tmp_path / "none.pt")
    torch.save({"hybrid": config}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="no 'model' entry"):
        read_checkpoint(tmp_path / "bare.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="not a recs_course checkpoint"):
        read_checkpoint(tmp_path / "text.pt")


# --------------------------------------------------------------------------------------------
# Learning: features carry the signal to items never seen in training


def _cold_auc(scores: torch.Tensor, liked: torch.Tensor) -> float:
    """Mean over users of the AUC of ``scores`` (U, C) for the ``liked`` (U, C) items."""
    pos = scores.unsqueeze(2)
    neg = scores.unsqueeze(1)
    pairs = liked.unsqueeze(2) & ~liked.unsqueeze(1)
    wins = ((pos > neg).float() + 0.5 * (pos == neg).float()) * pairs
    return float((wins.sum((1, 2)) / pairs.sum((1, 2))).mean())


def test_the_hybrid_ranks_cold_items_by_their_genre_and_mf_cannot():
    n_users, n_items, n_cold = 60, 90, 18
    genre_of_item = np.arange(n_items) % 3
    genre_of_user = np.arange(n_users) % 3
    rng = np.random.default_rng(0)
    warm = np.arange(n_items - n_cold)
    rows = []
    for u in range(n_users):  # the data: 12 liked items of the user's genre (a test fixture)
        mine = warm[genre_of_item[warm] == genre_of_user[u]]
        rows += [(u, i) for i in rng.choice(mine, size=12, replace=False)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id"])
    names = np.array(["Action", "Comedy", "Drama"])
    frame = pd.DataFrame(
        {
            "item_id": np.arange(n_items),
            "genres": [[g] for g in names[genre_of_item]],
            "year": rng.integers(1950, 2000, n_items),  # noise
        }
    )
    bags = item_encoder().fit(frame, ids=warm).transform(frame)
    cold = torch.arange(n_items - n_cold, n_items)
    liked = torch.from_numpy(genre_of_user[:, None] == genre_of_item[cold.numpy()][None, :])

    def train_model(model):
        data = InstanceBatches(train, n_items, "pairwise", n_neg=4, batch_size=256, generator=0)
        fit(model, data, "bpr", torch.optim.Adam(model.parameters(), lr=0.05), 15, progress=False)
        with torch.no_grad():
            return _cold_auc(model.eval().score_all(torch.arange(n_users))[:, cold], liked)

    torch.manual_seed(0)
    hybrid = HybridMF.from_interactions(
        train.user_id, train.item_id, n_users, n_items, 8, item_features=bags, init_std=0.1
    )
    assert not bool(hybrid.item_known[cold].any())
    torch.manual_seed(0)
    mf = MF(n_users, n_items, 8, init_std=0.1)
    hybrid_auc, mf_auc = train_model(hybrid), train_model(mf)
    assert hybrid_auc > 0.95  # random is 0.5
    assert abs(mf_auc - 0.5) < 0.2  # untrained item vectors: a coin toss
