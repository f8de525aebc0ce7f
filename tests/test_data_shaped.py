"""Synthetic data of a real MovieLens's shape (``movielens_shaped``) and the ML-25M parser.

``movielens_shaped``: exact sizes, the invariants of a MovieLens (at least 20 ratings a user,
unique pairs, increasing timestamps per user, the schema), determinism, ``fraction``, the skew
statistics within the ranges its docstring documents, and its errors. The full ml-25m shape is
measured by ``python -m benchmarks.bench_parse`` (too slow here); the tests use ml-1m and 1%
of ml-25m, whose statistics that do not depend on the scale (per-user counts, the catalogue
share of the most popular items, the rating marginal) are those of the full shape.

The ML-25M parser (``load_movielens("ml-25m")``): small files in GroupLens's exact format
(headers, quoted titles with commas and quotes, ``|``-separated genres, ``(no genres listed)``,
year ranges, UTF-8), parsed values and dtypes, the parsed cache, malformed lines.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import test_data_movielens
from test_data_movielens import check_schema, closed_port_url, make_zip

from benchmarks.bench_parse import parse_args, shape_statistics, write_ml25m_files
from recs_course.data import (
    REGISTRY,
    Archive,
    DatasetNotAvailable,
    load_movielens,
    movielens_shaped,
    random_split,
)
from recs_course.data import movielens as mlmod
from recs_course.data.synthetic import SHAPES

# The loader tests' fixture: RECS_COURSE_DATA in tmp_path (no test touches the user's cache).
cache = test_data_movielens.cache

# ---------------------------------------------------------------------------------------------
# movielens_shaped


@pytest.fixture(scope="module")
def ml1m():
    return movielens_shaped("ml-1m", seed=0)


@pytest.fixture(scope="module")
def ml25m_small():
    return movielens_shaped("ml-25m", fraction=0.01, seed=0)


def check_invariants(ml, name: str) -> None:
    """What every shaped data set holds, whatever its size."""
    shape = SHAPES[name]
    r = ml.ratings
    check_schema(ml)
    assert ml.users is None and ml.source == "synthetic" and ml.name == f"{name}-shaped"
    per_user = r.groupby("user_id").size()
    assert per_user.min() >= 20 and shape.min_per_user == 20
    assert per_user.max() <= int(shape.max_user_share * shape.n_items)
    assert not r.duplicated(["user_id", "item_id"]).any()
    # Rows by user then time; timestamps strictly increase within each user, in the real span.
    assert r["user_id"].is_monotonic_increasing
    same_user = (r["user_id"].diff() == 0).to_numpy()
    assert (r["timestamp"].diff().to_numpy()[same_user] > 0).all()
    assert r["timestamp"].between(shape.first_time, shape.last_time).all()
    assert set(np.unique(r["rating"])) <= set(np.float32(shape.rating_values))
    assert r["item_id"].between(1, shape.n_items).all()
    # The items table: the whole catalogue, ids 1..n, in the schema of DESIGN.md.
    items = ml.items
    assert items["item_id"].tolist() == list(range(1, shape.n_items + 1))
    assert items["title"].iloc[16] == "Movie 17"
    assert all(isinstance(g, list) and all(isinstance(x, str) for x in g) for g in items["genres"])
    assert items["genres"].map(len).max() >= 3 and (items["genres"].map(len) == 0).any()
    assert items["year"].isna().any() and items["year"].dropna().between(1900, 2020).all()


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_exact_sizes_of_the_small_shapes(name, ml1m):
    ml = ml1m if name == "ml-1m" else movielens_shaped(name, seed=0)
    shape = SHAPES[name]
    r = ml.ratings
    assert len(r) == shape.n_ratings
    assert r["user_id"].nunique() == shape.n_users
    assert r["user_id"].min() == 1 and r["user_id"].max() == shape.n_users  # raw ids 1..n
    assert r["item_id"].nunique() <= shape.n_items and len(ml.items) == shape.n_items
    check_invariants(ml, name)


def test_the_known_shapes_are_the_real_sizes():
    sizes = {k: (s.n_users, s.n_items, s.n_ratings) for k, s in SHAPES.items()}
    assert sizes == {
        "ml-100k": (943, 1682, 100_000),
        "ml-1m": (6040, 3706, 1_000_209),
        "ml-25m": (162_541, 59_047, 25_000_095),
    }
    assert SHAPES["ml-25m"].rating_values == tuple(np.arange(1, 11) / 2)
    assert SHAPES["ml-1m"].rating_values == SHAPES["ml-100k"].rating_values == (1, 2, 3, 4, 5)
    for shape in SHAPES.values():
        assert sum(shape.rating_shares) == pytest.approx(1.0, abs=1e-6)
        assert len(shape.rating_shares) == len(shape.rating_values)


def test_fraction_keeps_that_share_of_users_and_ratings(ml25m_small):
    # Rounded half up: 1% of 162,541 users is 1,625.41; of 25,000,095 ratings 250,000.95.
    r = ml25m_small.ratings
    assert r["user_id"].nunique() == 1625 and r["user_id"].max() == 1625
    assert len(r) == 250_001
    assert len(ml25m_small.items) == 59_047  # the catalogue keeps its size
    check_invariants(ml25m_small, "ml-25m")
    tenth = movielens_shaped("ml-1m", fraction=0.1, seed=0).ratings
    assert tenth["user_id"].nunique() == 604 and len(tenth) == 100_021
    tiny = movielens_shaped("ml-100k", fraction=1e-9, seed=0).ratings  # at least one user
    assert tiny["user_id"].nunique() == 1 and len(tiny) == 20


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = movielens_shaped("ml-100k", seed=5)
    b = movielens_shaped("ml-100k", seed=5)
    c = movielens_shaped("ml-100k", seed=6)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    pd.testing.assert_frame_equal(a.items, b.items)
    assert not a.ratings.equals(c.ratings)
    assert not a.ratings[["user_id", "item_id"]].equals(c.ratings[["user_id", "item_id"]])
    g = movielens_shaped("ml-100k", seed=np.random.default_rng(5))  # a Generator is a seed too
    pd.testing.assert_frame_equal(g.ratings, a.ratings)
    small = movielens_shaped("ml-25m", fraction=0.002, seed=1)
    pd.testing.assert_frame_equal(
        small.ratings, movielens_shaped("ml-25m", fraction=0.002, seed=1).ratings
    )


def test_ml1m_shape_statistics(ml1m):
    """Against the real ML-1M (users: median 96, max 2,314; items: median 123.5, max 3,428,
    Gini 0.634; mean rating 3.58): the documented ranges."""
    s = shape_statistics(ml1m.ratings, 3706)
    assert 85 <= s["user_median"] <= 110 and s["user_mean"] == pytest.approx(165.6, abs=0.1)
    assert 1500 <= s["user_max"] <= int(0.63 * 3706)
    assert 80 <= s["item_median"] <= 130 and 2800 <= s["item_max"] <= 4200
    assert 0.60 <= s["item_gini"] <= 0.68
    assert 0.08 <= s["top_1pct_catalogue_share"] <= 0.15
    assert s["rating_mean"] == pytest.approx(3.58, abs=0.01) and s["rating_mode"] == 4.0
    real = dict(zip(SHAPES["ml-1m"].rating_values, SHAPES["ml-1m"].rating_shares, strict=True))
    for value, share in s["rating_shares"].items():
        assert share == pytest.approx(real[float(value)], abs=0.002)


def test_ml25m_shape_statistics_at_one_percent(ml25m_small):
    """The per-user counts, the popularity of the catalogue's top 1% and the rating marginal do
    not depend on the scale: at 1% they are those of the full shape (measured there: user
    median 71, mean 153.8; top 1% of the catalogue 0.59 of the ratings; the most rated movie
    rated by about 36% of the users; real ML-25M: 71, 153.8; ~0.5; 50%)."""
    s = shape_statistics(ml25m_small.ratings, 59_047)
    assert 60 <= s["user_median"] <= 85 and s["user_mean"] == pytest.approx(153.85, abs=0.1)
    assert 20 <= s["user_min"] <= 22
    assert 0.5 <= s["top_1pct_catalogue_share"] <= 0.7
    assert 0.9 <= s["top_10pct_catalogue_share"] <= 0.99
    assert 0.25 <= s["item_max_share_of_users"] <= 0.5
    assert s["item_gini"] >= 0.78  # 0.83 here; 0.948 at full size (real: 0.942)
    assert s["items_with_one"] >= 0.3  # the long tail: most of the catalogue is rated rarely
    assert s["rating_mean"] == pytest.approx(3.534, abs=0.01) and s["rating_mode"] == 4.0
    shares = dict(zip(SHAPES["ml-25m"].rating_values, SHAPES["ml-25m"].rating_shares, strict=True))
    assert {float(v) for v in s["rating_shares"]} == set(shares)  # every half star occurs
    for value, share in s["rating_shares"].items():
        assert share == pytest.approx(shares[float(value)], abs=0.002)
    # Timestamps spread over the years of the real data set (1995-2019).
    years = pd.to_datetime(ml25m_small.ratings["timestamp"], unit="s").dt.year
    assert years.min() <= 1997 and years.max() >= 2017


def test_ratings_carry_learnable_structure(ml1m):
    """A user's mean on half their ratings predicts the other half better than the global mean
    (the ratings come from user and item biases and latent factors, not from the marginal
    alone)."""
    train, test = random_split(ml1m.ratings, test_size=0.5, seed=0)
    user_mean = train.groupby("user_id")["rating"].mean()
    predicted = test["user_id"].map(user_mean).to_numpy()
    global_rmse = np.sqrt(np.mean((test["rating"].to_numpy() - train["rating"].mean()) ** 2))
    user_rmse = np.sqrt(np.mean((test["rating"].to_numpy() - predicted) ** 2))
    assert user_rmse < 0.97 * global_rmse


@pytest.mark.parametrize("name", ["ml-10m", "ML-25M", "", None, 25])
def test_an_unknown_name_lists_the_known_ones(name):
    with pytest.raises(ValueError, match=r"unknown MovieLens shape .*'ml-100k', 'ml-1m', 'ml-25m'"):
        movielens_shaped(name)


@pytest.mark.parametrize("fraction", [0, 0.0, -0.1, 1.0000001, 2, float("nan"), float("inf"),
                                      "0.5", None, True])  # fmt: skip
def test_a_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match=r"fraction must be .*\(0, 1\]"):
        movielens_shaped("ml-100k", fraction=fraction)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, True])
def test_a_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match=r"seed must be"):
        movielens_shaped("ml-100k", seed=seed)


def test_fraction_and_seed_are_keyword_only():
    with pytest.raises(TypeError):
        movielens_shaped("ml-100k", 0.5)


# ---------------------------------------------------------------------------------------------
# The ML-25M parser, on files in GroupLens's format

ML25M_RATINGS = (
    "userId,movieId,rating,timestamp\n"
    "1,296,5.0,1147880044\n"
    "1,306,3.5,1147868817\n"
    "1,307,5.0,1147868828\n"
    "1,665,5.0,1147878820\n"
    "2,1,0.5,1141415820\n"
    "2,4973,4.5,1141417000\n"
    "162541,5772,2.5,1574327703\n"
)
ML25M_MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '11,"American President, The (1995)",Comedy|Drama|Romance\n'
    "296,Pulp Fiction (1994),Comedy|Crime|Drama|Thriller\n"
    "306,Three Colors: Red (Trois couleurs: Rouge) (1994),Drama\n"
    "307,Three Colors: Blue (Trois couleurs: Bleu) (1993),Drama\n"
    "665,Underground (1995),Comedy|Drama|War\n"
    '4973,"Amelie (Fabuleux destin d\'Amélie Poulain, Le) (2001)",Comedy|Romance\n'
    '5772,"""Great Performances"" Cats (1998)",Musical\n'
    "95541,Fawlty Towers (1975-1979),Comedy\n"
    "171495,Death Note: Desu nôto (2006–2007),(no genres listed)\n"
    "200000,Babylon 5,Sci-Fi\n"
)


def ml25m_files(ratings: str = ML25M_RATINGS, movies: str = ML25M_MOVIES) -> dict[str, bytes]:
    return {"ratings.csv": ratings.encode("utf-8"), "movies.csv": movies.encode("utf-8")}


def write_folder(folder, files: dict[str, bytes]):
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def test_registry_lists_the_files_the_parser_reads():
    assert REGISTRY["ml-25m"].files == ("ratings.csv", "movies.csv")


TIMES = [1147880044, 1147868817, 1147868828, 1147878820, 1141415820, 1141417000, 1574327703]


def test_ml25m_files_parse_exactly(cache, tmp_path):
    write_folder(tmp_path / "ml-25m", ml25m_files())
    ml = load_movielens("ml-25m", data_home=tmp_path)
    check_schema(ml)
    assert ml.source == "data_home" and ml.users is None
    expected = pd.DataFrame(
        {
            "user_id": np.array([1, 1, 1, 1, 2, 2, 162541], dtype=np.int64),
            "item_id": np.array([296, 306, 307, 665, 1, 4973, 5772], dtype=np.int64),
            "rating": np.array([5.0, 3.5, 5.0, 5.0, 0.5, 4.5, 2.5], dtype=np.float32),
            "timestamp": np.array(TIMES, dtype=np.int64),
        }
    )
    pd.testing.assert_frame_equal(ml.ratings, expected)  # file order, exact values and dtypes
    items = ml.items.set_index("item_id")
    assert ml.items["item_id"].tolist() == [1, 11, 296, 306, 307, 665, 4973, 5772, 95541,
                                             171495, 200000]  # fmt: skip
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert items.loc[1, "genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert items.loc[11, "title"] == "American President, The"  # a quoted comma
    assert items.loc[11, "genres"] == ["Comedy", "Drama", "Romance"]
    assert items.loc[306, "title"] == "Three Colors: Red (Trois couleurs: Rouge)"
    assert items.loc[4973, "title"] == "Amelie (Fabuleux destin d'Amélie Poulain, Le)"  # UTF-8
    assert items.loc[4973, "year"] == 2001
    assert items.loc[5772, "title"] == '"Great Performances" Cats'  # doubled quotes
    assert items.loc[95541, "title"] == "Fawlty Towers" and items.loc[95541, "year"] == 1975
    assert items.loc[171495, "title"] == "Death Note: Desu nôto"  # an en dash year range
    assert items.loc[171495, "year"] == 2006 and items.loc[171495, "genres"] == []
    assert items.loc[200000, "title"] == "Babylon 5" and pd.isna(items.loc[200000, "year"])
    assert not cache.exists(), "loads from data_home are not cached"


def test_ml25m_parsed_cache_is_written_and_reused(cache, monkeypatch):
    cache.mkdir(parents=True)
    spec = make_zip(cache / "ml-25m.zip", ml25m_files(), folder="ml-25m")
    monkeypatch.setitem(
        REGISTRY,
        "ml-25m",
        Archive(closed_port_url("ml-25m"), spec.size, spec.sha256, REGISTRY["ml-25m"].files),
    )
    first = load_movielens("ml-25m", download=False)
    assert first.source == "archive"
    assert (cache / "ml-25m.parsed.npz").is_file()
    assert not list(cache.glob("*.tmp")), "atomic writes leave no temporary file"

    def no_parse(files):
        pytest.fail("the parsed cache was not used")

    monkeypatch.setitem(mlmod._PARSERS, "ml-25m", no_parse)
    again = load_movielens("ml-25m", download=False)
    assert again.source == "cache"
    check_schema(again)
    pd.testing.assert_frame_equal(again.ratings, first.ratings)
    pd.testing.assert_frame_equal(again.items, first.items)
    assert again.users is None


@pytest.mark.parametrize(
    "file, old, new, problem",
    [
        ("ratings.csv", "1,307,5.0,1147868828\n", "1,307,5.0,1147868828,7\n",
         r"line 4 has 5 field\(s\), expected 4 \(userId, movieId, rating, timestamp\)"),
        ("ratings.csv", "1,306,3.5,", "1,306,three,", r"line 3: rating is 'three', not a"),
        ("ratings.csv", "1147868817", "1147868817.5",
         r"line 3: timestamp is '1147868817.5', not an integer"),
        ("ratings.csv", "userId,movieId", "user,movieId", r"line 1: the header is \['user'"),
        ("movies.csv", ",Comedy|Drama|Romance\n", "\n",
         r"line 3 has 2 field\(s\), expected 3 \(movieId, title, genres\)"),
        ("movies.csv", "665,Underground", "x,Underground", r"line 7: movieId is 'x'"),
    ],
)  # fmt: skip
def test_a_malformed_line_names_the_file_and_the_line(cache, tmp_path, file, old, new, problem):
    # The file (in the folder, or the member in the zip), then the line and what is wrong.
    message = rf"MovieLens 'ml-25m': \S*{re.escape(file)}( in \S+)? is malformed: {problem}"
    files = ml25m_files()
    text = files[file].decode("utf-8")
    assert text.count(old) == 1
    files[file] = text.replace(old, new).encode("utf-8")
    write_folder(tmp_path / "ml-25m", files)
    with pytest.raises(DatasetNotAvailable, match=message) as info:
        load_movielens("ml-25m", data_home=tmp_path)
    assert isinstance(info.value, RuntimeError)
    # ... and from a cached archive, the malformed file is never cached.
    cache.mkdir(parents=True)
    spec = make_zip(cache / "ml-25m.zip", files, folder="ml-25m")
    spec = Archive(closed_port_url("ml-25m"), spec.size, spec.sha256, REGISTRY["ml-25m"].files)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(REGISTRY, "ml-25m", spec)
        with pytest.raises(DatasetNotAvailable, match=message):
            load_movielens("ml-25m", download=False)
    assert not (cache / "ml-25m.parsed.npz").exists()


def test_shaped_data_written_in_ml25m_format_parses_back(cache, tmp_path):
    """The writer of ``benchmarks.bench_parse`` and the parser agree on a shaped data set:
    the files it writes are read back exactly (ratings, titles with years, missing years,
    genres and none)."""
    ml = movielens_shaped("ml-25m", fraction=0.002, seed=3)
    sizes = write_ml25m_files(ml, tmp_path / "ml-25m")
    assert sizes["ratings.csv"] > 0
    head = (tmp_path / "ml-25m" / "ratings.csv").read_text().splitlines()[:2]
    assert head[0] == "userId,movieId,rating,timestamp"
    half_stars = {f"{v / 2:.1f}" for v in range(1, 11)}
    assert head[1].count(",") == 3 and head[1].split(",")[2] in half_stars
    assert (tmp_path / "ml-25m" / "movies.csv").read_text().startswith("movieId,title,genres\n")
    back = load_movielens("ml-25m", data_home=tmp_path)
    pd.testing.assert_frame_equal(back.ratings, ml.ratings)
    pd.testing.assert_frame_equal(back.items, ml.items, check_dtype=False)
    assert back.items["title"].tolist() == ml.items["title"].tolist()
    assert back.items["genres"].tolist() == ml.items["genres"].tolist()


def test_bench_parse_command_line():
    args = parse_args([])
    assert args.ratings == 25_000_095 and args.repeats == 1 and args.output.endswith("parse.json")
    assert parse_args(["--ratings", "1000", "--repeats", "3"]).ratings == 1000
    for bad in (["--ratings", "19"], ["--ratings", "25000096"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
