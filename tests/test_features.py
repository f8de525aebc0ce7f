"""Tests of recs_course.data.features: FeatureEncoder and FeatureBags.

The bags are checked against a naive reference (a Python loop over rows, written from the
docstring's rules, independent of the vectorised code), against hand-worked cases, and through
the ``nn.EmbeddingBag`` call they are made for; then the unknown-value policy, saving, and
hostile input.
"""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recs_course.data import (
    AGE_EDGES,
    YEAR_EDGES,
    FeatureBags,
    FeatureEncoder,
    IdEncoder,
    movielens_item_encoder,
    movielens_user_encoder,
    synthetic_ratings,
)


def _items() -> pd.DataFrame:
    """Six items, ids not in order, with the cases of the policy: a repeated genre, an empty
    list, a NaN cell, a missing year, a year on an edge."""
    return pd.DataFrame(
        {
            "item_id": [30, 10, 20, 50, 40, 60],
            "genres": [
                ["Drama", "Comedy"],
                ["Action"],
                ["Comedy", "Comedy", "Action"],
                [],
                None,
                ["Horror", "Drama"],
            ],
            "year": pd.array([1995, 1960, 1989, None, 1990, 2001], dtype="Int64"),
            "kind": ["a", "b", "a", None, "c", "a"],
        }
    )


def _naive_bags(encoder: FeatureEncoder, frame: pd.DataFrame, ids) -> list[dict[int, float]]:
    """Row by row, from the documented rules: per field, the known values (each weighted
    1 / their number) or else the field's unknown feature with weight 1."""
    out = []
    rows = {int(k): row for k, row in zip(frame["item_id"], frame.to_dict("records"), strict=True)}
    for raw in ids:
        row = rows.get(int(raw))
        bag: dict[int, float] = {}
        for name, start, stop in encoder.fields:
            vocab = list(encoder.vocabulary(name))
            value = None if row is None else row[name]
            if isinstance(value, list):
                known = sorted({vocab.index(v) for v in value if v in vocab})
            elif (
                value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
            ):
                known = []
            elif name == "year":
                edges = encoder._fields[[f.name for f in encoder._fields].index(name)].edges
                bucket = sum(1 for e in edges if value >= e)
                known = [vocab.index(bucket)] if bucket in vocab else []
            else:
                known = [vocab.index(value)] if value in vocab else []
            if known:
                for k in known:
                    bag[start + k] = 1.0 / len(known)
            else:
                bag[stop - 1] = 1.0
        out.append(bag)
    return out


def _as_dicts(bags: FeatureBags) -> list[dict[int, float]]:
    """Each row as {feature: weight}, weights rounded to 6 decimals (they are float32)."""
    out = []
    for ind, w in zip(bags.indices.tolist(), bags.weights.tolist(), strict=True):
        row = {i: round(x, 6) for i, x in zip(ind, w, strict=True) if i != bags.padding_index}
        out.append(row)
    return out


def _rounded(rows: list[dict[int, float]]) -> list[dict[int, float]]:
    return [{i: round(x, 6) for i, x in row.items()} for row in rows]


def _encoder(**kwargs) -> FeatureEncoder:
    return FeatureEncoder(
        "item_id",
        categorical=["kind"],
        multi=["genres"],
        buckets={"year": (1970, 1990)},
        **kwargs,
    )


# --------------------------------------------------------------------------------------------
# Against a hand-worked case and a naive loop


def test_a_hand_worked_case():
    frame = _items()
    enc = _encoder().fit(frame)
    assert enc.names == (
        "kind=a", "kind=b", "kind=c", "kind=<unknown>",
        "genres=Action", "genres=Comedy", "genres=Drama", "genres=Horror", "genres=<unknown>",
        "year<1970", "year=[1970,1990)", "year>=1990", "year=<unknown>",
    )  # fmt: skip
    assert enc.fields == (("kind", 0, 4), ("genres", 4, 9), ("year", 9, 13))
    bags = enc.transform(frame, ids=[20, 50, 10])
    assert bags.n_rows == 3 and bags.n_features == 13 and bags.padding_index == 13
    # item 20: kind a; Comedy twice and Action -> {Action, Comedy} at 1/2; 1989 -> [1970, 1990)
    # item 50: kind missing, empty genres, missing year: the three unknown features
    # item 10: kind b; Action; 1960 -> below 1970
    assert _as_dicts(bags) == [
        {0: 1.0, 4: 0.5, 5: 0.5, 10: 1.0},
        {3: 1.0, 8: 1.0, 12: 1.0},
        {1: 1.0, 4: 1.0, 9: 1.0},
    ]
    assert bags.width == 4  # the widest row; the others padded with 13 at weight 0
    assert bags.indices[1].tolist() == [3, 8, 12, 13]
    assert bags.weights[1].tolist() == [1.0, 1.0, 1.0, 0.0]
    # 1990 sits on an edge: it belongs to the bucket starting there
    assert _as_dicts(enc.transform(frame, ids=[40]))[0][11] == 1.0


def test_bags_match_a_naive_loop_on_random_metadata():
    rng = np.random.default_rng(0)
    genres = np.array(["A", "B", "C", "D", "E", "F"])
    n = 300
    frame = pd.DataFrame(
        {
            "item_id": rng.permutation(np.arange(1000, 1000 + n)),
            "genres": [list(rng.choice(genres, size=rng.integers(0, 4))) for _ in range(n)],
            "year": pd.array(
                np.where(rng.random(n) < 0.1, np.nan, rng.integers(1940, 2005, n)), dtype="Int64"
            ),
            "kind": np.where(rng.random(n) < 0.1, None, rng.choice(["a", "b", "c", "z"], n)),
        }
    )
    train_ids = frame["item_id"].to_numpy()[: n // 2]
    enc = _encoder(min_count=3).fit(frame, ids=train_ids)
    ask = np.concatenate([rng.permutation(frame["item_id"].to_numpy()), [1, 2]])
    bags = enc.transform(frame, ids=ask, missing="unknown")
    assert _as_dicts(bags) == _rounded(_naive_bags(enc, frame, ask))
    # ids not in the frame have every field unknown
    assert _as_dicts(bags)[-1] == {stop - 1: 1.0 for _, _, stop in enc.fields}


def test_the_embedding_bag_sums_per_field_means():
    frame = _items()
    enc = _encoder().fit(frame)
    bags = enc.transform(frame)
    torch.manual_seed(0)
    bag = nn.EmbeddingBag(bags.n_features + 1, 4, mode="sum", padding_idx=bags.padding_index)
    out = bag(bags.indices, per_sample_weights=bags.weights)
    torch.testing.assert_close(out, bags.dense() @ bag.weight[:-1])
    for r, row in enumerate(_naive_bags(enc, frame, frame["item_id"])):
        expected = sum(w * bag.weight[i] for i, w in row.items())
        torch.testing.assert_close(out[r], expected)
    # one vector per field: each field's weights sum to 1 in every row
    dense = bags.dense()
    for _, start, stop in bags.fields:
        torch.testing.assert_close(dense[:, start:stop].sum(1), torch.ones(bags.n_rows))


def test_rows_follow_the_ids_of_an_id_encoder():
    ml = synthetic_ratings(n_users=30, n_items=40, n_ratings=300, seed=1)
    ids = IdEncoder().fit(ml.ratings)
    enc = movielens_item_encoder().fit(ml.items, ids=ids.item_ids)
    bags = enc.transform(ml.items, ids=ids.item_ids)
    assert bags.n_rows == ids.n_items
    by_id = enc.transform(ml.items)  # the frame's rows in order
    position = {int(v): k for k, v in enumerate(ml.items["item_id"])}
    rows = [position[int(raw)] for raw in ids.item_ids]
    assert torch.equal(bags.indices, by_id.indices[rows])
    users = movielens_user_encoder().fit_transform(ml.users, ids=ids.user_ids)
    assert users.n_rows == ids.n_users and users.width == 3  # one feature per field


# --------------------------------------------------------------------------------------------
# The unknown policy and fitting on training rows


def test_unseen_and_missing_values_share_the_fields_unknown_feature():
    frame = _items()
    enc = _encoder().fit(frame, ids=[30, 10])  # the training items only
    assert enc.vocabulary("genres") == ("Action", "Comedy", "Drama")
    assert enc.vocabulary("kind") == ("a", "b")
    assert enc.vocabulary("year") == (0, 2)  # buckets seen: before 1970, from 1990
    new = pd.DataFrame(
        {
            "item_id": [1, 2, 3],
            "genres": [["Western"], ["Western", "Drama"], ["Horror"]],
            "year": pd.array([1980, None, 1999], dtype="Int64"),
            "kind": ["q", np.nan, "a"],
        }
    )
    unknown = {name: stop - 1 for name, _, stop in enc.fields}
    drama = enc.names.index("genres=Drama")
    assert _as_dicts(enc.transform(new)) == [
        {unknown["kind"]: 1.0, unknown["genres"]: 1.0, unknown["year"]: 1.0},
        # an unseen value beside a known one: the known one only
        {unknown["kind"]: 1.0, drama: 1.0, unknown["year"]: 1.0},
        {0: 1.0, unknown["genres"]: 1.0, enc.names.index("year>=1990"): 1.0},
    ]


def test_min_count_sends_rare_values_to_unknown():
    frame = _items()
    enc = _encoder(min_count=2).fit(frame)
    assert enc.vocabulary("genres") == ("Action", "Comedy", "Drama")  # Horror in one row
    assert enc.vocabulary("kind") == ("a",)
    # min_count counts rows: Comedy is listed three times but in two rows (30, 20)
    assert _encoder(min_count=3).fit(frame).vocabulary("genres") == ()
    assert _as_dicts(enc.transform(frame, ids=[60]))[0][enc.names.index("genres=Drama")] == 1.0


def test_missing_ids_are_an_error_or_unknown_as_asked():
    frame = _items()
    enc = _encoder().fit(frame)
    with pytest.raises(ValueError, match=r"2 of the ids have no row.*\[7, 8\].*missing='unknown'"):
        enc.transform(frame, ids=[10, 7, 8])
    bags = enc.transform(frame, ids=[10, 7], missing="unknown")
    assert _as_dicts(bags)[1] == {stop - 1: 1.0 for _, _, stop in enc.fields}


def test_quantile_buckets_are_fitted_on_the_fitting_rows():
    frame = pd.DataFrame({"user_id": np.arange(100), "age": np.arange(100) + 0.5})
    enc = FeatureEncoder("user_id", buckets={"age": 4}).fit(frame)
    assert enc._fields[0].edges == pytest.approx((25.25, 50.0, 74.75))
    counts = enc.transform(frame).dense().sum(0)
    assert counts.tolist() == [25.0, 25.0, 25.0, 25.0, 0.0]  # the unknown never used here


def test_presets_cover_movielens_columns():
    assert movielens_item_encoder()._fields[1].edges == tuple(float(e) for e in YEAR_EDGES)
    users = movielens_user_encoder()
    assert [f.name for f in users._fields] == ["gender", "occupation", "age"]
    assert users._fields[2].edges == tuple(float(e) for e in AGE_EDGES)


# --------------------------------------------------------------------------------------------
# FeatureBags views


def test_multi_hot_labels_and_select():
    frame = _items()
    bags = _encoder().fit(frame).transform(frame)
    # rows: 30 Drama+Comedy, 10 Action, 20 Comedy+Action, 50 [], 40 None, 60 Horror+Drama
    hot = bags.multi_hot("genres")
    assert hot.tolist() == [
        [False, True, True, False],
        [True, False, False, False],
        [True, True, False, False],
        [False, False, False, False],
        [False, False, False, False],
        [False, False, True, True],
    ]
    assert bags.multi_hot("genres", unknown=True)[:, -1].tolist() == [0, 0, 0, 1, 1, 0]
    assert bags.labels("genres").tolist() == [1, 0, 0, -1, -1, 2]
    assert bags.labels("kind").tolist() == [0, 1, 0, -1, 2, 0]
    some = bags.select([5, 0])
    assert torch.equal(some.indices, bags.indices[[5, 0]]) and some.names == bags.names
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 6\)"):
        bags.select([6])
    with pytest.raises(ValueError, match="no field 'year2'"):
        bags.multi_hot("year2")


def test_bags_refuse_inconsistent_tensors():
    bags = _encoder().fit(_items()).transform(_items())
    parts = dict(
        indices=bags.indices, weights=bags.weights, n_features=bags.n_features,
        names=bags.names, fields=bags.fields,
    )  # fmt: skip
    bad = [
        (dict(indices=bags.indices.float()), "2-D int64"),
        (dict(weights=bags.weights[:, :2]), "shaped like indices"),
        (dict(indices=bags.indices + 20), r"must lie in \[0, 13\]"),
        (dict(weights=-bags.weights), "finite and >= 0"),
        (dict(weights=bags.weights + 1), "0 at the padding"),
        (dict(names=bags.names[:3]), "names for 13 features"),
        (dict(fields=(("kind", 0, 4),)), "consecutive ranges"),
    ]
    for change, match in bad:
        with pytest.raises(ValueError, match=match):
            FeatureBags(**{**parts, **change})


# --------------------------------------------------------------------------------------------
# Saving: plain data, weights_only, pickle


def test_to_dict_is_plain_data_and_rebuilds_the_same_encoder(tmp_path):
    frame = _items()
    enc = _encoder(min_count=1).fit(frame, ids=[30, 10, 20])
    data = enc.to_dict()
    json.dumps(data)  # plain data only: no numpy scalars, no objects
    back = FeatureEncoder.from_dict(json.loads(json.dumps(data)))
    assert back.names == enc.names and back.fields == enc.fields
    assert torch.equal(back.transform(frame).indices, enc.transform(frame).indices)
    path = tmp_path / "enc.pt"
    torch.save({"encoder": data, "bags": enc.transform(frame).to_dict()}, path)
    stored = torch.load(path, weights_only=True)
    again = FeatureBags.from_dict(stored["bags"])
    assert torch.equal(again.indices, enc.transform(frame).indices)
    assert FeatureEncoder.from_dict(stored["encoder"]).names == enc.names
    assert pickle.loads(pickle.dumps(enc)).names == enc.names  # plain attributes pickle


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: {**d, "format": "other/1"}, "not a dict written by FeatureEncoder"),
        (lambda d: {k: v for k, v in d.items() if k != "fields"}, "malformed"),
        (lambda d: {**d, "fields": [{**d["fields"][0], "kind": "tree"}]}, "unknown field kinds"),
        (
            lambda d: {
                **d,
                "fields": [
                    d["fields"][0],
                    {**d["fields"][1], "values": ["A", "A"]},
                    d["fields"][2],
                ],
            },
            "twice",
        ),  # fmt: skip
        (
            lambda d: {
                **d,
                "fields": [d["fields"][0], d["fields"][1], {**d["fields"][2], "values": [7]}],
            },
            "out of range",
        ),  # fmt: skip
        (lambda d: {**d, "fields": [{**d["fields"][0], "values": [object()]}]}, "cannot be stored"),
    ],
)
def test_from_dict_refuses_anything_else(change, match):
    data = _encoder().fit(_items()).to_dict()
    with pytest.raises(ValueError, match=match):
        FeatureEncoder.from_dict(change(data))


def test_bags_from_dict_refuses_anything_else():
    with pytest.raises(ValueError, match="not a dict written by FeatureBags"):
        FeatureBags.from_dict({"format": "x"})
    data = _encoder().fit(_items()).transform(_items()).to_dict()
    with pytest.raises(ValueError, match="malformed"):
        FeatureBags.from_dict({k: v for k, v in data.items() if k != "names"})


# --------------------------------------------------------------------------------------------
# Hostile input


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: FeatureEncoder(3), "id_column must be a column name"),
        (lambda: FeatureEncoder("item_id"), "at least one field"),
        (lambda: FeatureEncoder("item_id", categorical="kind"), "sequence of column names"),
        (lambda: FeatureEncoder("item_id", multi=[3]), "must name columns"),
        (lambda: FeatureEncoder("item_id", buckets=[("year", 3)]), "must be a dict"),
        (lambda: FeatureEncoder("item_id", buckets={"year": (1990, 1980)}), "strictly increasing"),
        (lambda: FeatureEncoder("item_id", buckets={"year": ()}), "at least one edge"),
        (lambda: FeatureEncoder("item_id", buckets={"year": (1, math.inf)}), "finite"),
        (lambda: FeatureEncoder("item_id", buckets={"year": ("1990",)}), "must hold numbers"),
        (lambda: FeatureEncoder("item_id", buckets={"year": 1}), "at least 2 buckets"),
        (lambda: FeatureEncoder("item_id", buckets={"year": True}), "must hold numbers|sorted"),
        (lambda: FeatureEncoder("item_id", categorical=["a"], multi=["a"]), "one field only"),
        (lambda: FeatureEncoder("item_id", categorical=["item_id"]), "not the id column"),
        (lambda: FeatureEncoder("item_id", categorical=["a"], min_count=0), "min_count"),
        (lambda: FeatureEncoder("item_id", categorical=["a"], min_count=1.5), "min_count"),
    ],
)
def test_bad_specifications(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_frames_and_arguments():
    frame = _items()
    enc = _encoder()
    with pytest.raises(ValueError, match="not fitted yet"):
        enc.transform(frame)
    with pytest.raises(ValueError, match="not fitted yet"):
        _ = enc.names
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        enc.fit(frame.to_dict())
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['year'\]"):
        enc.fit(frame.drop(columns="year"))
    with pytest.raises(ValueError, match="repeats 1 id"):
        enc.fit(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(ValueError, match="must hold integers"):
        enc.fit(frame.assign(item_id=frame["item_id"].astype(str)))
    with pytest.raises(ValueError, match="non-integer"):
        enc.fit(frame, ids=[10.5])
    with pytest.raises(ValueError, match="none of the ids to fit on"):
        enc.fit(frame, ids=[0, 1, 2])
    with pytest.raises(ValueError, match=r"holds a string.*str.split\('\|'\)"):
        enc.fit(frame.assign(genres="Drama|Comedy"))
    with pytest.raises(ValueError, match="holds lists.*multi field"):
        enc.fit(frame.assign(kind=[["a"]] * 6))
    with pytest.raises(ValueError, match="must hold numbers to cut into buckets"):
        enc.fit(frame.assign(year=["1990"] * 6))
    with pytest.raises(ValueError, match="infinite"):
        enc.fit(frame.assign(year=[1990.0, np.inf, 1.0, 2.0, 3.0, 4.0]))
    fitted = _encoder().fit(frame)
    names = fitted.names
    with pytest.raises(ValueError, match="must hold numbers"):  # a failed refit changes nothing
        fitted.fit(frame.assign(genres=[["X"]] * 6, year=["1990"] * 6))
    assert fitted.names == names
    with pytest.raises(ValueError, match="missing must be 'error' or 'unknown'"):
        fitted.transform(frame, missing="drop")
    with pytest.raises(ValueError, match="no field 'genre'"):
        fitted.vocabulary("genre")
    assert repr(fitted).endswith("year (buckets); 13 features)")
    assert "not fitted" in repr(_encoder())
