"""The evaluation spine: `recs_course.protocols` (three protocols) and `recs_course.recipes`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recs_course.data import interaction_matrix, synthetic_ratings
from recs_course.evaluation import evaluate_full
from recs_course.models import MF, Popularity
from recs_course.protocols import PROTOCOLS, explicit_ratings, full_ranking, sampled_ranking
from recs_course.recipes import GRIDS, RECIPES, Recipe, run, train, tune

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return synthetic_ratings(n_users=120, n_items=400, n_ratings=4000, seed=3).ratings


def pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["user_id"], frame["item_id"], strict=True))


# ----------------------------------------------------------------------------- protocols
@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_same_seed_same_splits_and_parts_disjoint(ratings, name):
    a, b = PROTOCOLS[name](ratings, seed=4), PROTOCOLS[name](ratings, seed=4)
    for part in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    assert not pairs(a.train) & pairs(a.valid)
    assert not pairs(a.train) & pairs(a.test)
    assert not pairs(a.valid) & pairs(a.test)
    if name != "explicit":  # the implicit protocols keep every interaction
        assert len(a.train) + len(a.valid) + len(a.test) == len(ratings)
    model = Popularity.from_interactions(a.train.user_id, a.train.item_id, a.n_users, a.n_items)
    assert a.evaluate(model) == b.evaluate(model)
    assert list(a.evaluate(model)) == list(a.metrics)
    assert a.monitor in a.evaluate(model, "valid")


def test_explicit_split_sizes_seed_and_encoding(ratings):
    p = explicit_ratings(ratings, seed=0)
    n_test = round(0.2 * len(ratings))
    n_valid = round(0.1 * (len(ratings) - n_test))
    assert len(p.train) == len(ratings) - n_test - n_valid
    assert len(p.valid) <= n_valid and len(p.test) <= n_test  # unknown ids dropped
    assert p.n_users == p.train.user_id.nunique() and p.n_items == p.train.item_id.nunique()
    other = explicit_ratings(ratings, seed=1)
    assert pairs(other.test) != pairs(p.test)
    assert not p.higher_is_better and p.monitor == "RMSE"


def test_sampled_ranking_is_leave_one_out_by_time(ratings):
    p = sampled_ranking(ratings, seed=0)
    raw = p.encoder.transform(ratings)
    assert p.test.user_id.is_unique and p.valid.user_id.is_unique
    key = raw.assign(order=list(zip(raw.timestamp, raw.item_id, strict=True)))
    latest = key.sort_values(["user_id", "timestamp", "item_id"]).groupby("user_id").tail(2)
    by_user = latest.groupby("user_id")["item_id"].apply(list)
    for row in p.test.itertuples():
        assert by_user[row.user_id][-1] == row.item_id
    for row in p.valid.itertuples():
        assert by_user[row.user_id][-2] == row.item_id


def test_sampled_candidates_are_never_an_interaction(ratings):
    p = sampled_ranking(ratings, seed=2, n_neg=20)
    everything = pd.concat([p.train, p.valid, p.test])
    known = torch.from_numpy(
        interaction_matrix(everything, p.n_users, p.n_items, values="ones").toarray()
    ).bool()

    class Spy(torch.nn.Module):
        """Scores every pair 0 and remembers which pairs it was asked about."""

        def __init__(self):
            super().__init__()
            self.asked = []

        def forward(self, users, items):
            self.asked.append((users.reshape(-1), items.reshape(-1)))
            return torch.zeros(users.shape, dtype=torch.float32)

    for part, frame in (("valid", p.valid), ("test", p.test)):
        spy = Spy()
        p.evaluate(spy, part)
        users = torch.cat([u for u, _ in spy.asked])
        items = torch.cat([i for _, i in spy.asked])
        assert len(users) == len(frame) * 21  # the held-out item and 20 negatives per user
        asked_known = known[users, items]
        # the only interaction among each user's candidates is the held-out item itself
        assert int(asked_known.sum()) == len(frame)
        held_out = set(zip(frame.user_id, frame.item_id, strict=True))
        hits = set(zip(users[asked_known].tolist(), items[asked_known].tolist(), strict=True))
        assert hits == held_out


def test_full_ranking_is_chronological_per_user_and_masks_known_items(ratings):
    p = full_ranking(ratings)
    for earlier, later in ((p.train, p.valid), (p.valid, p.test), (p.train, p.test)):
        last = earlier.groupby("user_id")["timestamp"].max()
        first = later.groupby("user_id")["timestamp"].min()
        both = last.index.intersection(first.index)
        assert (last[both] <= first[both]).all()
    share = len(p.test) / len(ratings)
    assert 0.15 < share < 0.25 and 0.05 < len(p.valid) / len(ratings) < 0.15
    torch.manual_seed(0)
    model = MF(p.n_users, p.n_items, dim=4)
    want_valid = evaluate_full(
        model, p.matrix("train"), p.matrix("valid"), ks=(20,), metrics=("recall", "ndcg")
    )
    want_test = evaluate_full(
        model, p.matrix("train_valid"), p.matrix("test"), ks=(20,), metrics=("recall", "ndcg")
    )
    assert p.evaluate(model, "valid") == want_valid
    assert p.evaluate(model, "test") == want_test
    pd.testing.assert_frame_equal(p.evaluate(model).per_user, want_test.per_user)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: explicit_ratings(r, seed=-1), "seed"),
        (lambda r: explicit_ratings(r, valid_size=1.5), "valid_size"),
        (lambda r: full_ranking(r, test_size=0.6, valid_size=0.5), "below 1"),
        (lambda r: sampled_ranking(r, n_neg=0), "n_neg"),
        (lambda r: sampled_ranking(r.drop(columns="timestamp")), "timestamp"),
        (lambda r: explicit_ratings(pd.concat([r, r.head(1)])), "pair"),
    ],
)
def test_protocols_refuse_bad_input(ratings, call, match):
    with pytest.raises(ValueError, match=match):
        call(ratings)


def test_evaluate_refuses_an_unknown_part(ratings):
    p = full_ranking(ratings)
    model = Popularity.from_interactions(p.train.user_id, p.train.item_id, p.n_users, p.n_items)
    with pytest.raises(ValueError, match="'valid' or 'test'"):
        p.evaluate(model, "train")
    with pytest.raises(ValueError, match="part must be"):
        p.matrix("everything")


# ----------------------------------------------------------------------------- recipes
def small(recipe: Recipe, **changes) -> Recipe:
    return recipe.replace(**changes)


def test_recipe_is_frozen_typed_and_checked():
    r = RECIPES["full/LightGCN"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0
    assert r.model_options["n_layers"] == 3
    assert r.with_options(n_layers=1).model_options["n_layers"] == 1
    assert r.model_options["n_layers"] == 3  # the original is unchanged
    assert hash(r) == hash(r.replace())
    with pytest.raises(ValueError, match="class of recs_course.models"):
        Recipe(label="x", model="Nope", protocol="full", loss="bpr")
    with pytest.raises(ValueError, match="protocol"):
        Recipe(label="x", model="MF", protocol="leave-one-out", loss="bpr")
    with pytest.raises(ValueError, match="closed form"):
        Recipe(label="x", model="EASE", protocol="full", loss="bpr")
    with pytest.raises(ValueError, match="loss"):
        Recipe(label="x", model="MF", protocol="full")
    with pytest.raises(ValueError, match="lr"):
        Recipe(label="x", model="MF", protocol="full", loss="bpr", lr=-1)
    with pytest.raises(ValueError, match="batch_size"):
        Recipe(label="x", model="MF", protocol="full", loss="bpr", batch_size=0)


def test_every_recipe_has_a_grid_or_no_parameter_and_says_where_it_was_chosen():
    for key, recipe in RECIPES.items():
        assert key == f"{recipe.protocol}/{recipe.label}"
        assert recipe.chosen, key
        assert key in GRIDS or recipe.model == "Popularity", key
    sizes = {}
    for key, grid in GRIDS.items():
        n = int(np.prod([len(v) for v in grid.values()]))
        sizes.setdefault(key.split("/")[0], set()).add(n)
    assert all(s == {6} for s in sizes.values()), sizes  # equal tuning within a protocol


def test_recipes_hold_the_best_setting_of_their_recorded_grid():
    """The file ``python -m benchmarks.tune`` writes; a recipe changed without re-tuning fails."""
    recorded = json.loads((ROOT / "benchmarks" / "results" / "tuning.json").read_text())["grids"]
    assert set(recorded) == set(GRIDS)
    for key, entry in recorded.items():
        assert entry["grid"] == json.loads(json.dumps(GRIDS[key])), key
        summary = RECIPES[key].summary()
        for name, value in entry["best"].items():
            assert summary[name] == pytest.approx(value), (key, name)
        monitor = entry["monitor"]
        values = [row[monitor] for row in entry["table"]]
        best_row = entry["table"][
            int(np.argmin(values) if "RMSE" in monitor else np.argmax(values))
        ]
        for name, value in entry["best"].items():
            assert best_row[name] == pytest.approx(value), (key, name)


def test_train_is_reproducible_and_learns(ratings):
    p = full_ranking(ratings)
    recipe = RECIPES["full/BPR-MF"].replace(epochs=15, patience=None, batch_size=256, lr=1e-2)
    a, b = train(recipe, p, seed=1), train(recipe, p, seed=1)
    torch.testing.assert_close(a.model.state_dict(), b.model.state_dict())
    c = train(recipe, p, seed=2)
    assert not torch.equal(a.model.user_embedding.weight, c.model.user_embedding.weight)
    learnt = p.evaluate(a.model, "valid")["NDCG@20"]
    untrained = p.evaluate(MF(p.n_users, p.n_items, dim=64, biases=False), "valid")["NDCG@20"]
    assert learnt > untrained + 0.05
    assert a.history.best_epoch is not None


def test_explicit_recipe_learns_and_refit_uses_validation_ratings(ratings):
    p = explicit_ratings(ratings)
    mf = train(RECIPES["explicit/MF with biases"], p, seed=0)
    mean_rmse = float(np.sqrt(((p.test.rating - p.train.rating.mean()) ** 2).mean()))
    assert p.evaluate(mf.model)["RMSE"] < mean_rmse
    autorec = RECIPES["explicit/AutoRec"].replace(epochs=4, patience=None)
    trained = train(autorec, p, seed=0)
    assert trained.model.n_rows == p.n_items
    assert len(trained.model.values) == len(p.train) + len(p.valid)  # refit on both
    no_refit = train(autorec.replace(refit=False), p, seed=0)
    assert len(no_refit.model.values) == len(p.train)


def test_decay_on_embeddings_only_leaves_biases_alone():
    from recs_course.recipes import _optimizer

    recipe = RECIPES["explicit/MF with biases"]
    model = MF(5, 6, dim=3, biases=True)
    groups = _optimizer(recipe, model).param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model.user_embedding.weight), id(model.item_embedding.weight)}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_run_gives_one_metrics_per_seed_with_per_user_values(ratings):
    p = sampled_ranking(ratings, n_neg=20)
    runs = run(RECIPES["sampled/GMF"].replace(epochs=2, patience=None), p, seeds=[0, 1], workers=1)
    assert runs.seeds == [0, 1] and len(runs.metrics) == 2
    assert len(runs.metrics[0].per_user) == len(p.test)
    assert runs.metrics[0] != runs.metrics[1]  # another seed, another model
    assert list(runs.table().index) == [0, 1]
    with pytest.raises(ValueError, match="repeat"):
        run(RECIPES["sampled/EASE"], p, seeds=[0, 0])
    with pytest.raises(ValueError, match="empty"):
        run(RECIPES["sampled/EASE"], p, seeds=[])


def test_train_refuses_another_protocol_or_a_non_protocol(ratings):
    p = sampled_ranking(ratings)
    with pytest.raises(ValueError, match="made for the 'full' protocol"):
        train(RECIPES["full/EASE"], p)
    with pytest.raises(ValueError, match="must be a recs_course.protocols.Protocol"):
        train(RECIPES["full/EASE"], ratings)


def test_tune_picks_the_best_validation_setting(ratings):
    p = full_ranking(ratings)
    best, table = tune(RECIPES["full/EASE"], p, {"l2": [1.0, 30.0, 3000.0]})
    assert len(table) == 3
    scores = table["valid NDCG@20"].to_numpy()
    assert best.model_options["l2"] == table["l2"].iloc[int(np.argmax(scores))]
    assert "l2 in [1.0, 30.0, 3000.0]" in best.chosen
    with pytest.raises(ValueError, match="non-empty list"):
        tune(RECIPES["full/EASE"], p, {"l2": []})


def test_compare_takes_runs_and_names_them(ratings):
    from recs_course.compare import compare

    p = full_ranking(ratings)
    ease = run(RECIPES["full/EASE"], p, seeds=[0])
    pop = run(RECIPES["full/Popularity"], p, seeds=[0])
    result = compare(ease, pop, "NDCG@20")
    assert result.names == ("EASE", "Popularity")
    by_hand = compare(ease.metrics, pop.metrics, "NDCG@20", names=("EASE", "Popularity"))
    assert result == by_hand


def test_run_in_worker_processes_equals_run_here(ratings):
    """The seeds are independent: two spawned workers give exactly the serial results."""
    import pickle

    p = full_ranking(ratings)
    assert pickle.loads(pickle.dumps(p)).evaluate  # a protocol is plain data
    recipe = RECIPES["full/BPR-MF"].replace(epochs=3, patience=None, batch_size=512)
    here = run(recipe, p, seeds=[0, 1], workers=1, keep_models=True)
    there = run(recipe, p, seeds=[0, 1], workers=2, keep_models=True)
    assert there.metrics == here.metrics and there.epochs == here.epochs
    for a, b in zip(here.models, there.models, strict=True):
        torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)
    assert run(recipe, p, seeds=[0], workers=1).models == []
    for a, b in zip(here.metrics, there.metrics, strict=True):
        pd.testing.assert_frame_equal(a.per_user, b.per_user)
    with pytest.raises(ValueError, match="workers"):
        run(recipe, p, seeds=[0], workers=0)
