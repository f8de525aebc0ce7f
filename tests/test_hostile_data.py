"""Hostile input to the data layer: every case ends in the right result or a clear error.

Malformed MovieLens files raise ``DatasetNotAvailable`` naming the dataset, the file, the line
and what to do, and are never cached; any corruption of the parsed cache is detected and the
cache rebuilt; ratings frames with duplicate pairs, bad timestamps, ids int64 cannot hold
exactly, NaN ratings or out-of-range indices raise a ``ValueError`` naming the column or
argument.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from test_data_movielens import TINY_ITEMS, TINY_RATINGS, TINY_USERS, ml100k_files

from recs_course.data import (
    REGISTRY,
    Archive,
    DatasetNotAvailable,
    IdEncoder,
    NegativeSampler,
    chronological_split,
    drop_duplicate_pairs,
    interaction_matrix,
    leave_one_out,
    load_movielens,
    pairwise_instances,
    pointwise_instances,
    random_split,
    ranking_candidates,
    sample_negatives,
    stratified_split,
    subsample_users,
    to_implicit,
)
from recs_course.data import movielens as mlmod

FIX_DATA_HOME = "Fix or replace that file"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("RECS_COURSE_DATA", str(path))
    monkeypatch.setattr(mlmod, "_mirror_paths", lambda: None)
    return path


def _home(tmp_path: Path, files: dict[str, bytes]) -> Path:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    for name, content in files.items():
        (home / name).write_bytes(content)
    return home


def _tiny_100k(**replace: bytes) -> dict[str, bytes]:
    files = ml100k_files(TINY_RATINGS, TINY_ITEMS, TINY_USERS)
    files.update(replace)
    return files


ML1M = {
    "ratings.dat": b"1::1193::5::978300760\n2::1::3::978298709\n",
    "movies.dat": b"1::Toy Story (1995)::Animation|Comedy\n1193::Cuckoo's Nest (1975)::Drama\n",
    "users.dat": b"1::F::1::10::48067\n2::M::56::16::70072\n",
}
CSV = {
    "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n",
    "movies.csv": b'movieId,title,genres\n1,Toy Story (1995),Comedy\n3,"Heat, The (1995)",Drama\n',
}
MIRROR = {
    "ml-100k.inter": b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
    "ml-100k.item": b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    b"242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\tCrime Film-Noir\n",
    "ml-100k.user": b"user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    b"196\t49\tM\twriter\t55105\n186\t39\tF\texecutive\t00000\n",
}


# ---------------------------------------------------------------------------------------------
# 1. MovieLens files: every parser rejects a wrong number of fields and values that are not
# numbers, naming the file and the line.

U_DATA_CASES = {
    # A fifth field on every line: pandas took the first field as the index, shifting columns.
    "extra field on every line": (
        b"1\t1\t5\t874965758\t7\n2\t1\t4\t888550871\t7\n",
        r"line 1 has 5",
    ),
    "extra field on one line": (b"1\t1\t5\t874965758\n2\t1\t4\t888550871\t7\n", r"line 2 has 5"),
    "two extra fields after a blank line": (
        b"1\t1\t5\t874965758\n\n2\t1\t4\t8\t7\t7\n",
        r"line 3 has 6",
    ),
    "missing field": (b"1\t1\t5\t874965758\n2\t1\t4\n", r"line 2 has 3 field\(s\), expected 4"),
    "empty file": (b"", r"it is empty"),
    "blank file": (b"\n \n\n", r"it is empty"),
    "text id": (b"1\t1\t5\t874965758\n2\tx\t4\t888550871\n", r"line 2: item_id is 'x'"),
    "fractional id": (b"1\t1.5\t5\t874965758\n", r"line 1: item_id is '1.5', not an integer"),
    "id beyond int64": (b"1\t9223372036854775808\t5\t874965758\n", r"line 1: item_id is '9223"),
    "NaN rating": (b"1\t1\tnan\t874965758\n", r"line 1: rating is 'nan', not a finite number"),
    "infinite rating": (b"1\t1\tinf\t874965758\n", r"line 1: rating is 'inf', not a finite"),
    "NaN timestamp": (b"1\t1\t5\tNaN\n", r"line 1: timestamp is 'NaN', not an integer"),
    # pandas' C parser reads a column of only True/False as 1.0/0.0, even as float or Int64.
    "boolean ratings": (
        b"1\t1\tTrue\t874965758\n2\t1\tFalse\t888550871\n",
        r"line 1 \('1\\t1\\tTrue\\t874965758'\) holds b'T': every field must be a number",
    ),
    "boolean ids": (b"1\tTrue\t5\t874965758\n2\tFalse\t4\t888550871\n", r"line 1\b.*True"),
    "rating beyond float32": (b"1\t1\t1e39\t874965758\n", r"line 1: rating is '1e39'"),
    "empty item id": (b"1\t1\t5\t874965758\n2\t\t4\t888550871\n", r"line 2: item_id is empty"),
    "trailing separator on every line": (
        b"1\t1\t5\t874965758\t\n2\t1\t4\t888550871\t\n",
        r"line 1 ends with a separator, so its last field is empty",
    ),
    "trailing separator on the last line": (
        b"1\t1\t5\t874965758\n2\t1\t4\t888550871\t",
        r"line 2 ends with a separator",
    ),
}


@pytest.mark.parametrize("case", list(U_DATA_CASES), ids=list(U_DATA_CASES))
def test_malformed_u_data_names_the_file_and_line(cache, tmp_path, case):
    content, message = U_DATA_CASES[case]
    home = _home(tmp_path, _tiny_100k(**{"u.data": content}))
    with pytest.raises(DatasetNotAvailable, match=message) as info:
        load_movielens("ml-100k", data_home=home, download=False)
    text = str(info.value)
    assert f"MovieLens 'ml-100k': {home / 'u.data'} is malformed" in text
    assert FIX_DATA_HOME in text


OTHER_FILE_CASES = {
    "u.user missing zip code": (
        "ml-100k", {"u.user": b"1|24|M|technician|85711\n2|53|F|other\n"}, "u.user",
        r"line 2 has 4 field\(s\), expected 5 \(user_id, age, gender, occupation, zip_code\)",
    ),
    "u.user extra field": (
        "ml-100k", {"u.user": b"1|24|M|technician|85711|x\n"}, "u.user", r"line 1 has 6",
    ),
    "u.user text age": (
        "ml-100k", {"u.user": b"1|old|M|technician|85711\n"}, "u.user",
        r"line 1: age is 'old', not an integer",
    ),
    "u.item short line": (
        "ml-100k", {"u.item": b"1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n"}, "u.item",
        r"line 1 has 7 field\(s\), expected 24",
    ),
    "u.item repeated item": (
        "ml-100k",
        {"u.item": ml100k_files([], TINY_ITEMS + TINY_ITEMS[:1], [])["u.item"]},
        "u.item", r"item_id 1 occurs on more than one line",
    ),
    "u.item empty": ("ml-100k", {"u.item": b"\n"}, "u.item", r"it is empty"),
    "u.item genre flag not 0 or 1": (
        "ml-100k",
        {"u.item": b"1|Toy Story (1995)|01-Jan-1995||http://x|" + b"0|" * 18 + b"2\n"},
        "u.item", r"item 1 has the flag 2 for the genre 'Western', expected 0 or 1",
    ),
    "u.genre without index": (
        "ml-100k", {"u.genre": b"unknown|0\nAction\n"}, "u.genre", r"line 2 is 'Action'",
    ),
    "u.genre empty": ("ml-100k", {"u.genre": b"\n"}, "u.genre", r"it lists no genre"),
    "ratings.dat extra field": (
        "ml-1m", {"ratings.dat": b"1::1193::5::978300760::3\n"}, "ratings.dat",
        r"line 1 has 5 field\(s\), expected 4.*'1::1193::5::978300760::3'",
    ),
    "ratings.dat empty": ("ml-1m", {"ratings.dat": b""}, "ratings.dat", r"it is empty"),
    "users.dat unknown occupation": (
        "ml-1m", {"users.dat": b"1::F::1::99::48067\n"}, "users.dat",
        r"user 1 has the occupation code 99, expected 0 to 20",
    ),
    "movies.dat missing genres": (
        "ml-1m", {"movies.dat": b"1::Toy Story (1995)\n"}, "movies.dat", r"line 1 has 2",
    ),
    "ratings.csv extra field": (
        "ml-latest-small", {"ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,9,7\n"},
        "ratings.csv", r"line 2 has 5 field\(s\), expected 4",
    ),
    "ratings.csv header only": (
        "ml-latest-small", {"ratings.csv": b"userId,movieId,rating,timestamp\n"},
        "ratings.csv", r"it holds no data lines",
    ),
    "ratings.csv columns swapped": (
        "ml-latest-small", {"ratings.csv": b"userId,movieId,timestamp,rating\n1,1,9,4.0\n"},
        "ratings.csv", r"line 1: the header is \['userId', 'movieId', 'timestamp', 'rating'\]",
    ),
    "movies.csv not utf-8": (
        "ml-latest-small", {"movies.csv": b"movieId,title,genres\n1,Caf\xe9 (1995),Drama\n"},
        "movies.csv", r"it is not utf-8 text",
    ),
    "movies.csv missing genres": (
        "ml-latest-small", {"movies.csv": b"movieId,title,genres\n1,Toy Story (1995)\n"},
        "movies.csv", r"line 2 has 2 field\(s\), expected 3",
    ),
    "mirror extra field": (
        "mirror", {"ml-100k.inter": MIRROR["ml-100k.inter"] + b"1\t2\t3\t4\t5\n"},
        "ml-100k.inter", r"line 4 has 5 field\(s\), expected 4",
    ),
    "mirror missing zip code": (
        "mirror", {"ml-100k.user": MIRROR["ml-100k.user"] + b"7\t20\tM\twriter\n"},
        "ml-100k.user", r"line 4 has 4 field\(s\), expected 5",
    ),
    "mirror text rating": (
        "mirror", {"ml-100k.inter": MIRROR["ml-100k.inter"] + b"1\t2\tgood\t4\n"},
        "ml-100k.inter", r"line 4: rating is 'good', not a finite number",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OTHER_FILE_CASES), ids=list(OTHER_FILE_CASES))
def test_every_parser_rejects_malformed_files(cache, tmp_path, case):
    layout, replace, file, message = OTHER_FILE_CASES[case]
    base = {"ml-100k": _tiny_100k(), "ml-1m": ML1M, "ml-latest-small": CSV, "mirror": MIRROR}
    home = _home(tmp_path, {**base[layout], **replace})
    name = "ml-100k" if layout == "mirror" else layout
    with pytest.raises(DatasetNotAvailable, match=message) as info:
        load_movielens(name, data_home=home, download=False)
    assert f"MovieLens '{name}': {home / file} is malformed" in str(info.value)
    assert FIX_DATA_HOME in str(info.value)


def test_the_good_files_of_every_layout_load(cache, tmp_path):
    """The fixtures above are valid: only the replaced file makes a case fail."""
    for layout, files in (("ml-1m", ML1M), ("ml-latest-small", CSV), ("mirror", MIRROR)):
        home = _home(tmp_path / layout, files)
        ml = load_movielens("ml-100k" if layout == "mirror" else layout, data_home=home)
        assert len(ml.ratings) == 2 and ml.ratings["rating"].notna().all()


def test_loaded_tables_stay_writable(cache, tmp_path):
    """The strict parser hands out ordinary frames: editing them works as before."""
    ml = load_movielens("ml-100k", data_home=_home(tmp_path, _tiny_100k()))
    ml.ratings.loc[0, "rating"] = 2.0
    ml.ratings["timestamp"] += 1
    ml.users.loc[0, "age"] = 30
    assert ml.ratings.loc[0, "rating"] == 2.0 and ml.users.loc[0, "age"] == 30


@pytest.fixture
def cached_archive(cache, monkeypatch):
    """Put a zip in the cache and point the registry at it; returns a function doing that."""

    def put(name: str, files: dict[str, bytes]) -> Path:
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for member, content in files.items():
                zf.writestr(f"{name}/{member}", content)
        blob = path.read_bytes()
        digest = hashlib.sha256(blob).hexdigest()
        spec = REGISTRY[name]
        monkeypatch.setitem(REGISTRY, name, Archive(spec.url, len(blob), digest, spec.files))
        return path

    return put


@pytest.mark.parametrize("content", [b"", b"\n\n"], ids=["empty", "blank"])
def test_an_empty_ratings_file_is_rejected_and_never_cached(cache, cached_archive, content):
    archive = cached_archive("ml-100k", _tiny_100k(**{"u.data": content}))
    for _ in range(2):  # the second load must fail the same way: nothing was cached
        with pytest.raises(DatasetNotAvailable, match=r"u\.data in .* is malformed: it is empty"):
            load_movielens("ml-100k", download=False)
    assert not (cache / "ml-100k.parsed.npz").exists()
    assert not list(cache.glob("*.tmp"))
    with pytest.raises(DatasetNotAvailable, match=rf"Delete {re.escape(str(archive))}"):
        load_movielens("ml-100k", download=False)


# ---------------------------------------------------------------------------------------------
# The parsed cache: any corruption is detected and the cache rebuilt.


def test_every_single_byte_corruption_of_the_cache_is_detected_and_rebuilt(
    cache, cached_archive, monkeypatch
):
    cached_archive("ml-latest-small", CSV)
    first = load_movielens("ml-latest-small", download=False)
    assert first.source == "archive"
    path = cache / "ml-latest-small.parsed.npz"
    good = path.read_bytes()
    assert len(good) < 2500  # small, so that flipping every byte stays fast
    ref = load_movielens("ml-latest-small", download=False)
    assert ref.source == "cache"
    # The rebuild parses the verified archive; parse it once, and count the rebuilds.
    parsed = mlmod._parse("ml-latest-small", "zip", cache / "ml-latest-small.zip")
    rebuilds = []

    def parse(*args, **kwargs):
        rebuilds.append(args)
        return tuple(t.copy() for t in parsed[:2]) + (None,)

    monkeypatch.setattr(mlmod, "_parse", parse)
    monkeypatch.setattr(mlmod.os, "fsync", lambda fd: None)  # speed; atomicity is os.replace
    sources = []
    for offset in range(len(good)):
        corrupt = bytearray(good)
        corrupt[offset] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        ml = load_movielens("ml-latest-small", download=False)
        sources.append(ml.source)
        assert ml.ratings.equals(ref.ratings) and ml.items.equals(ref.items), offset
        tables, why = mlmod._read_parsed(cache, "ml-latest-small")  # valid afterwards
        assert tables is not None, (offset, why)
        assert tables[0].equals(ref.ratings) and tables[1].equals(ref.items), offset
    assert len(rebuilds) == sources.count("archive") > 0.5 * len(good)
    assert set(sources) == {"archive", "cache"}  # a flip in zip metadata may be harmless
    assert not list(cache.glob("*.tmp"))


def test_a_cache_the_zip_reader_cannot_open_is_rebuilt(cache, cached_archive):
    """The stuck cache: a compression method zipfile does not know raised NotImplementedError
    on every load, and the file was never rebuilt."""
    cached_archive("ml-latest-small", CSV)
    load_movielens("ml-latest-small", download=False)
    path = cache / "ml-latest-small.parsed.npz"
    blob = bytearray(path.read_bytes())
    central = blob.find(b"PK\x01\x02")  # the first central directory entry
    blob[central + 10] = 99  # its compression method
    path.write_bytes(bytes(blob))
    with pytest.raises(NotImplementedError), np.load(path) as z:
        z["meta"]
    assert load_movielens("ml-latest-small", download=False).source == "archive"
    assert load_movielens("ml-latest-small", download=False).source == "cache"


def test_a_cache_of_the_old_format_is_rebuilt(cache, cached_archive):
    cached_archive("ml-latest-small", CSV)
    load_movielens("ml-latest-small", download=False)
    np.savez(cache / "ml-latest-small.parsed.npz", meta=np.zeros(3, dtype=np.uint8))
    assert load_movielens("ml-latest-small", download=False).source == "archive"
    assert load_movielens("ml-latest-small", download=False).source == "cache"


# ---------------------------------------------------------------------------------------------
# 2. Ratings frames: duplicate pairs.


def _ratings(users, items, timestamps=None, ratings=None) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=np.int64),
            "item_id": np.asarray(items, dtype=np.int64),
            "rating": np.ones(n, np.float32) if ratings is None else np.asarray(ratings),
            "timestamp": np.arange(n, dtype=np.int64) if timestamps is None else timestamps,
        }
    )


SPLITS = {
    "random": lambda r: random_split(r, 0.3, seed=0),
    "chrono": lambda r: chronological_split(r, 0.3),
    "chrono-user": lambda r: chronological_split(r, 0.3, per_user=True),
    "loo": leave_one_out,
    "strat": lambda r: stratified_split(r, 0.3, seed=0),
}


@pytest.mark.parametrize("split", list(SPLITS))
def test_splits_reject_duplicate_pairs_and_point_to_the_fix(split):
    # user 1 rated item 7 twice (times 0 and 3), user 2 rated item 8 three times.
    r = _ratings([1, 1, 1, 1, 2, 2, 2, 2], [7, 5, 6, 7, 8, 8, 9, 8])
    with pytest.raises(
        ValueError, match=r"ratings holds 3 duplicate \(user, item\) pair\(s\)"
    ) as e:
        SPLITS[split](r)
    msg = str(e.value)
    assert "2 (user_id, item_id) pair(s) occur more than once" in msg
    assert "user_id=1, item_id=7 at positions [0, 3]" in msg
    assert "drop_duplicate_pairs" in msg


@pytest.mark.parametrize("split", list(SPLITS))
def test_no_split_ever_puts_a_pair_in_both_train_and_test(split):
    rng = np.random.default_rng(0)
    n = 3000
    r = _ratings(rng.integers(0, 30, n), rng.integers(0, 20, n), rng.integers(0, 50, n))
    assert r.duplicated(["user_id", "item_id"]).any()
    with pytest.raises(ValueError, match="duplicate"):
        SPLITS[split](r)
    clean = drop_duplicate_pairs(r)
    train, test = SPLITS[split](clean)
    assert len(train) + len(test) == len(clean) and len(test) > 0
    pairs = train.merge(test, on=["user_id", "item_id"])
    assert pairs.empty


def test_drop_duplicate_pairs_keeps_the_latest_then_the_later_row():
    r = _ratings(
        [1, 1, 2, 1, 2, 3], [7, 7, 8, 7, 8, 9], [5, 9, 4, 9, 2, 1], ratings=[1, 2, 3, 4, 5, 6]
    )
    before = r.copy()
    out = drop_duplicate_pairs(r)
    pd.testing.assert_frame_equal(r, before)  # input untouched
    # (1, 7): times 5, 9, 9 -> the later of the two rows at time 9 (rating 4); (2, 8): time 4.
    assert out["rating"].tolist() == [3, 4, 6] and list(out.index) == [0, 1, 2]
    assert drop_duplicate_pairs(r, keep="first")["rating"].tolist() == [1, 3, 6]
    assert drop_duplicate_pairs(r, keep="last")["rating"].tolist() == [4, 5, 6]
    unique = r.iloc[[0, 2, 5]].reset_index(drop=True)
    pd.testing.assert_frame_equal(drop_duplicate_pairs(unique), unique)
    with pytest.raises(ValueError, match="keep must be 'latest', 'first' or 'last'"):
        drop_duplicate_pairs(r, keep="max")
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['timestamp'\]"):
        drop_duplicate_pairs(r.drop(columns="timestamp"))
    assert len(drop_duplicate_pairs(r.drop(columns="timestamp"), keep="last")) == 3


def test_a_column_given_twice_is_named():
    r = _ratings([1, 2], [1, 2])
    twice = pd.concat([r, r[["user_id"]]], axis=1)
    for call in (lambda: random_split(twice), lambda: IdEncoder().fit(twice)):
        with pytest.raises(ValueError, match=r"has the column\(s\) \['user_id'\] more than once"):
            call()


def test_interaction_matrix_points_to_drop_duplicate_pairs():
    r = _ratings([0, 0], [1, 1])
    with pytest.raises(ValueError, match=r"1 duplicate .*drop_duplicate_pairs\(r\)"):
        interaction_matrix(r, values="ones")


# ---------------------------------------------------------------------------------------------
# Timestamps: numbers or datetime64, never NaN, text or other types.


@pytest.mark.parametrize(
    ("timestamps", "message"),
    [
        ([1.0, np.nan, 3.0, 4.0], r"ratings\['timestamp'\] holds 1 NaN or infinite time"),
        ([1.0, np.inf, 3.0, 4.0], r"ratings\['timestamp'\] holds 1 NaN or infinite time"),
        ([1.0, 2.5, 3.0, 4.0], r"ratings\['timestamp'\] holds 1 non-integer time"),
        (["9", "10", "11", "12"], r"ratings\['timestamp'\] must hold numbers .* got dtype"),
        (
            pd.to_datetime(["2000-01-01", None, "2000-01-03", "2000-01-04"]),
            r"ratings\['timestamp'\] holds 1 missing time\(s\) \(NaT\)",
        ),
        (pd.array([1, None, 3, 4], dtype="Int64"), r"ratings\['timestamp'\] holds 1 missing"),
        ([True, False, True, False], r"ratings\['timestamp'\] must hold numbers"),
    ],
    ids=["nan", "inf", "fraction", "text", "nat", "int64-na", "bool"],
)
@pytest.mark.parametrize("split", ["chrono", "chrono-user", "loo"])
def test_bad_timestamps_are_rejected(split, timestamps, message):
    r = _ratings([1, 1, 2, 2], [1, 2, 1, 2], timestamps=timestamps)
    with pytest.raises(ValueError, match=message):
        SPLITS[split](r)


def test_a_nan_timestamp_never_counts_as_the_latest():
    r = _ratings([1, 1, 1], [1, 2, 3], timestamps=[5.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        leave_one_out(r)


def test_text_timestamps_are_not_ordered_as_text():
    # As text "9" > "10"; as numbers the latest is 10.
    r = _ratings([1, 1], [1, 2], timestamps=np.array(["9", "10"], dtype=object))
    with pytest.raises(ValueError, match=r"must hold numbers .* got dtype"):
        leave_one_out(r)
    _, test = leave_one_out(r.assign(timestamp=r["timestamp"].astype("int64")))
    assert test["item_id"].tolist() == [2]


@pytest.mark.parametrize("split", ["chrono", "chrono-user", "loo"])
def test_datetime_and_integral_float_timestamps_split_like_int_seconds(split):
    rng = np.random.default_rng(1)
    n = 400
    users = rng.integers(0, 20, n)
    items = rng.permutation(np.arange(n)) % 200
    r = drop_duplicate_pairs(_ratings(users, items, rng.integers(0, 10**9, n)))
    r["row"] = np.arange(len(r))
    train, test = SPLITS[split](r)
    seconds = r["timestamp"]
    for ts in (
        pd.to_datetime(seconds, unit="s"),
        pd.to_datetime(seconds, unit="s").dt.tz_localize("Europe/Paris"),
        seconds.astype(np.float64),
        seconds.astype(np.uint32),
        seconds.astype("Int64"),
    ):
        train_ts, test_ts = SPLITS[split](r.assign(timestamp=ts))
        assert train_ts["row"].tolist() == train["row"].tolist()
        assert test_ts["row"].tolist() == test["row"].tolist()
        assert test_ts["timestamp"].dtype == ts.dtype  # the rows are returned as they were


# ---------------------------------------------------------------------------------------------
# Ids: exactly what int64 holds, or an error.


def _ids_frame(user_ids, item_ids=None) -> pd.DataFrame:
    n = len(user_ids)
    return pd.DataFrame(
        {"user_id": user_ids, "item_id": np.arange(n) if item_ids is None else item_ids}
    )


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (np.array([1, 2**63, 2**64 - 1], dtype=np.uint64), r"2\*\*63 or more .*int64 cannot hold"),
        (np.array([1.0, 1e19]), r"outside the int64 range"),
        (np.array([1.0, -1e19]), r"outside the int64 range"),
        (np.array([1.0, 1.5]), r"1 non-integer value\(s\) \(e\.g\. 1\.5 at position 1\)"),
        (np.array([1.0, np.nan]), r"1 NaN or infinite value\(s\)"),
        (np.array([1.0, np.inf]), r"1 NaN or infinite value\(s\)"),
        (pd.array([1, None], dtype="Int64"), r"1 missing value\(s\) \(NA\)"),
        (np.array(["1", "2"], dtype=object), r"must hold integers, got dtype"),
        (np.array([True, False]), r"must hold integers, got dtype bool"),
    ],
    ids=["uint64-big", "1e19", "-1e19", "fraction", "nan", "inf", "int64-na", "text", "bool"],
)
def test_ids_int64_cannot_hold_exactly_are_rejected(ids, message):
    r = _ids_frame(ids)
    for call in (
        lambda: IdEncoder().fit(r),
        lambda: random_split(r.assign(rating=1.0), 0.5),
        lambda: stratified_split(r, 0.5),
        lambda: subsample_users(r, n_users=1),
        lambda: drop_duplicate_pairs(r, keep="first"),
    ):
        with pytest.raises(ValueError, match=r"ratings\['user_id'\] .*" + message):
            call()
    enc = IdEncoder().fit(_ids_frame([1, 2]))
    with pytest.raises(ValueError, match=message):
        enc.transform(r, unknown="drop")  # malformed ids are not "unknown" ids
    with pytest.raises(ValueError, match=message):
        enc.transform_users(ids)


def test_large_ids_round_trip_exactly():
    big = np.array([2**63 - 1, 2**62 + 1, 2**53 + 1, 1], dtype=np.uint64)
    items = np.array([2**53 + 1, 2**53, -3, 2**60], dtype=np.int64)
    r = _ids_frame(big, items)
    enc = IdEncoder().fit(r)
    out = enc.transform(r)
    assert out["user_id"].tolist() == [3, 2, 1, 0] and out["item_id"].tolist() == [2, 1, 0, 3]
    assert enc.inverse_users(out["user_id"]).tolist() == [int(v) for v in big]
    assert enc.inverse_items(out["item_id"]).tolist() == items.tolist()
    assert enc.transform_users(np.array([2**63 - 1], dtype=np.uint64)).tolist() == [3]
    assert enc.n_items == 4  # 2**53 + 1 and 2**53 stay two ids: nothing went through floats
    # Integral floats are exact ids too.
    floats = IdEncoder().fit(_ids_frame(np.array([3.0, 1.0, 2.0**60]), np.array([7.0, 7.0, 8.0])))
    assert floats.user_ids.tolist() == [1, 3, 2**60] and floats.item_ids.tolist() == [7, 8]


# ---------------------------------------------------------------------------------------------
# Ratings values and encoded indices.


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_interaction_matrix_rejects_non_finite_ratings(bad):
    r = _ratings([0, 1], [0, 1], ratings=np.array([4.0, bad], dtype=np.float32))
    with pytest.raises(ValueError, match=r"r\['rating'\] holds 1 NaN or infinite value"):
        interaction_matrix(r)
    assert interaction_matrix(r, values="ones").nnz == 2  # ratings are not used
    with pytest.raises(ValueError, match=r"ratings\['rating'\] holds 1 NaN"):
        to_implicit(r, threshold=3.5)  # a NaN rating was silently dropped


def test_interaction_matrix_rejects_text_ratings_and_overflow():
    with pytest.raises(ValueError, match=r"r\['rating'\] must hold numbers"):
        interaction_matrix(_ratings([0], [0], ratings=np.array(["4"], dtype=object)))
    with pytest.raises(ValueError, match=r"r\['rating'\] holds 1 NaN or infinite"):
        interaction_matrix(_ratings([0], [0], ratings=np.array([1e300])))  # inf as float32


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda r, m: interaction_matrix(r.assign(item_id=[0, -1, 2])),
            r"r\['item_id'\] must be >= 0",
        ),
        (
            lambda r, m: interaction_matrix(r.assign(item_id=[0, 1, 7]), 3, 5),
            r"r\['item_id'\] must lie in \[0, n_items=5\), got values from 0 to 7",
        ),
        (
            lambda r, m: sample_negatives(torch.tensor([0, -1]), m, 1),
            r"users must lie in \[0, 3 \(the positives' rows\)\), got values from -1 to 0",
        ),
        (
            lambda r, m: sample_negatives(np.array([0.0, 1e19]), m, 1),
            r"users holds 1 value\(s\) outside the int64 range",
        ),
        (
            lambda r, m: NegativeSampler(m).sample([3], 1),
            r"users must lie in \[0, 3 \(the positives' rows\)\)",
        ),
        (
            lambda r, m: pointwise_instances(r.assign(user_id=[0, -2, 1]), 5),
            r"r\['user_id'\] must be >= 0, got values from -2 to 1",
        ),
        (
            lambda r, m: pointwise_instances(r.assign(item_id=[0, 1, -1]), 5),
            r"r\['item_id'\] must lie in \[0, n_items=5\), got values from -1 to 1",
        ),
        (
            lambda r, m: pairwise_instances(r.assign(user_id=[0, 1, 3]), 5, positives=m),
            r"r\['user_id'\] must lie in \[0, 3 \(the positives' rows\)\)",
        ),
        (
            lambda r, m: ranking_candidates(r.assign(user_id=[0, -1, 2]), 5, n_neg=1, exclude=r),
            r"test\['user_id'\] must be >= 0",
        ),
        (
            lambda r, m: ranking_candidates(r.assign(item_id=[0, 1, 5]), 5, n_neg=1, exclude=r),
            r"test\['item_id'\] must lie in \[0, n_items=5\), got values from 0 to 5",
        ),
        (
            lambda r, m: NegativeSampler.from_ratings(r, 5, n_users=2),
            r"r\['user_id'\] must lie in \[0, n_users=2\)",
        ),
        (
            lambda r, m: NegativeSampler.from_ratings(r.assign(user_id=[0, 1, 2**62]), 5),
            r"n_users=4611686018427387905 \(max r\['user_id'\] \+ 1.*are the ids encoded\?",
        ),
    ],
    ids=[
        "matrix-negative", "matrix-range", "sample-negative", "sample-1e19", "sampler-range",
        "pointwise-user", "pointwise-item", "pairwise-positives", "candidates-user",
        "candidates-item", "from-ratings", "key-overflow",
    ],
)  # fmt: skip
def test_out_of_range_indices_name_the_argument_and_the_range(call, message):
    r = _ratings([0, 1, 2], [0, 1, 2])
    m = sp.csr_matrix((np.ones(3, np.float32), ([0, 1, 2], [0, 1, 2])), shape=(3, 5))
    with pytest.raises(ValueError, match=message):
        call(r, m)


def test_valid_float_and_unsigned_indices_still_work():
    r = _ratings([0, 1, 2], [0, 1, 2])
    m = interaction_matrix(r.assign(user_id=np.array([0, 1, 2], np.uint16)), 3, 5, "ones")
    assert m.nnz == 3
    neg = sample_negatives(np.array([0.0, 2.0]), m, 3, generator=0)
    assert neg.shape == (2, 3) and not (neg[0] == 0).any() and not (neg[1] == 2).any()


def test_to_tensors_checks_ids_exactly_and_values_are_finite():
    from recs_course.data import to_tensors

    frame = pd.DataFrame(
        {"user_id": [0, 1], "item_id": [2, 3], "rating": np.array([1.0, 2.0], np.float32)}
    )
    users, items, ratings = to_tensors(frame)
    assert users.dtype == items.dtype == torch.int64 and ratings.dtype == torch.float32
    assert users.tolist() == [0, 1] and ratings.tolist() == [1.0, 2.0]
    bad = {
        "NaN": frame.assign(rating=[np.nan, 1.0]),
        "missing value": frame.assign(user_id=pd.Series([1, None], dtype="Int64")),
        "non-integer": frame.assign(item_id=[0.5, 1.0]),
        "2\\*\\*63": frame.assign(user_id=np.array([0, 2**63], dtype=np.uint64)),
    }
    for message, hostile in bad.items():
        with pytest.raises(ValueError, match=message):
            to_tensors(hostile)


@pytest.mark.parametrize("data_home", [123, b"/tmp", ["a"]])
def test_data_home_of_the_wrong_type_is_named(data_home):
    with pytest.raises(ValueError, match="data_home must be a folder or a zip file's path"):
        load_movielens("ml-100k", data_home=data_home, download=False)


# ---------------------------------------------------------------------------------------------
# 2. An explicit data_home is used or is an error; byte order marks; nothing on stderr; the
# cache location; raw ids where indices are expected; Batches' inputs; messages.


def _no_fallback(monkeypatch) -> None:
    """Make any fallback after data_home (cache, archive, download, mirror) fail the test."""
    for attr in ("_read_parsed", "_download", "_mirror_paths"):
        monkeypatch.setattr(mlmod, attr, lambda *a, _attr=attr: pytest.fail(f"{_attr} called"))


def _data_home_without(tmp_path: Path, case: str) -> Path:
    files = _tiny_100k()
    if case == "empty folder":
        return _home(tmp_path, {})
    if case == "missing u.genre":
        return _home(tmp_path, {k: v for k, v in files.items() if k != "u.genre"})
    if case == "does not exist":
        return tmp_path / "nowhere"
    if case == "a file, not a zip":
        (tmp_path / "ml-100k.zip").write_bytes(b"hello")
        return tmp_path / "ml-100k.zip"
    home = _home(tmp_path, {k: v for k, v in files.items() if k != "u.data"})
    (home / "u.data").mkdir()
    return home


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty folder", r"holds none of the ml-100k files \['u.data', 'u.item', 'u.user', 'u.g"),
        ("missing u.genre", r"holds u\.data, u\.item, u\.user but not u\.genre"),
        ("does not exist", r"does not exist"),
        ("a file, not a zip", r"is a file but not a zip archive"),
        ("u.data is a folder", r"but not u\.data \(u\.data there is a folder\)"),
    ],
)
def test_an_explicit_data_home_is_used_or_is_an_error(cache, tmp_path, monkeypatch, case, message):
    home = _data_home_without(tmp_path, case)
    _no_fallback(monkeypatch)
    for download in (True, False):
        with pytest.raises(DatasetNotAvailable, match=message) as info:
            load_movielens("ml-100k", data_home=home, download=download)
        msg = str(info.value)
        assert f"data_home={str(home)!r}" in msg and "leave data_home out" in msg


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    "layout, file",
    [("ml-100k", f) for f in ("u.data", "u.item", "u.user", "u.genre")]
    + [("ml-1m", f) for f in ML1M]
    + [("ml-latest-small", f) for f in CSV]
    + [("mirror", f) for f in MIRROR],
)
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_field(cache, tmp_path, layout, file):
    base = {"ml-100k": _tiny_100k(), "ml-1m": ML1M, "ml-latest-small": CSV, "mirror": MIRROR}
    name = "ml-100k" if layout == "mirror" else layout
    plain = load_movielens(name, data_home=_home(tmp_path / "plain", base[layout]))
    files = {**base[layout], file: BOM + base[layout][file]}
    marked = load_movielens(name, data_home=_home(tmp_path / "bom", files))
    for table in ("ratings", "items", "users"):
        if getattr(plain, table) is not None:
            pd.testing.assert_frame_equal(getattr(marked, table), getattr(plain, table))


def _loads_silently(name: str, home: Path, message: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DatasetNotAvailable, match=message):
            load_movielens(name, data_home=home, download=False)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize(
    "layout, file, content, message",
    [
        ("ml-100k", "u.data", b"1\t10\t4\t5\t6\t7\n", r"line 1 has 6 field\(s\), expected 4"),
        (
            "ml-latest-small", "ratings.csv", b"userId,movieId,rating,timestamp\n1,10,4.0,5,6,7\n",
            r"line 2 has 6 field\(s\), expected 4",
        ),
        (
            "ml-1m", "ratings.dat", b"1::1193::5::978300760::1::2\n",
            r"line 1 has 6 field\(s\), expected 4.*'1::1193::5::978300760::1::2'",
        ),
    ]
    + [
        ("ml-100k", "u.data", b"1\t10\t4\t%s\n" % v, rf"line 1: timestamp is '{v.decode()}'")
        for v in (b"1e19", b"9.3e18", b"-9.3e18", b"1e300")
    ]
    + [
        ("ml-100k", "u.data", b"%s\t10\t4\t5\n" % v, rf"line 1: user_id is '{v.decode()}'")
        for v in (b"1e19", b"-9.3e18")
    ]
    + [("ml-1m", "ratings.dat", b"1::1e19::5::9\n", r"line 1: item_id is '1e19'")],
)  # fmt: skip
def test_malformed_files_warn_nothing(cache, tmp_path, layout, file, content, message):
    base = {"ml-100k": _tiny_100k(), "ml-1m": ML1M, "ml-latest-small": CSV}
    _loads_silently(layout, _home(tmp_path, {**base[layout], file: content}), message)


def test_float16_ids_convert_without_warnings():
    frame = pd.DataFrame({"user_id": np.float16([1, 2049]), "item_id": np.float16([0, 1])})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoded = IdEncoder().fit_transform(frame)
        m = interaction_matrix(frame.assign(user_id=np.float16([0, 2])), values="ones")
        with pytest.raises(ValueError, match="NaN or infinite"):
            IdEncoder().fit(frame.assign(user_id=np.float16([np.inf, 1])))
    assert [str(w.message) for w in caught] == []
    assert encoded["user_id"].tolist() == [0, 1] and m.shape == (3, 2)


def test_a_cache_path_that_is_a_file_is_an_error(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("x")
    monkeypatch.setenv("RECS_COURSE_DATA", str(not_a_folder))
    message = rf"RECS_COURSE_DATA={re.escape(str(not_a_folder))} is not a folder: point it at"
    with pytest.raises(ValueError, match=message):
        mlmod.cache_dir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=message):
            load_movielens("ml-1m", download=False)
    assert caught == []


def test_a_cache_file_that_is_a_folder_says_what_to_do(cache, cached_archive):
    cached_archive("ml-100k", _tiny_100k())
    (cache / "ml-100k.parsed.npz").mkdir()
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match=r"ml-100k\.parsed\.npz is a folder.*remove it"):
            ml = load_movielens("ml-100k", download=False)
        assert ml.source == "archive" and len(ml.ratings) == len(TINY_RATINGS)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: pointwise_instances(_ratings([10**12], [0]), 4),
            r"n_users=1000000000001 \(max r\['user_id'\] \+ 1.*are the ids encoded\?.*IdEncoder",
        ),
        (
            lambda: interaction_matrix(_ratings([2**40], [0])),
            r"n_users=1099511627777 \(max r\['user_id'\] \+ 1.*are the ids encoded\?",
        ),
        (
            lambda: interaction_matrix(_ratings([0], [2**40])),
            r"n_items=1099511627777 \(max r\['item_id'\] \+ 1",
        ),
        (
            lambda: interaction_matrix(_ratings([0], [1]), n_users=2**40, n_items=2),
            r"n_users=1099511627776 is more than 2\*\*31 - 1",
        ),
        (lambda: pairwise_instances(_ratings([0], [1]), 2**40), r"n_items=1099511627776 is more"),
        (
            lambda: ranking_candidates(_ratings([2**33], [0]), 3, n_neg=1, exclude=_ratings([0], [1])),
            r"n_users=8589934593 \(max test\['user_id'\] \+ 1",
        ),
        (
            lambda: NegativeSampler.from_ratings(_ratings([0], [1]), 2, n_users=2**40),
            r"n_users=1099511627776 is more",
        ),
    ],
    ids=["pointwise", "matrix-users", "matrix-items", "matrix-n", "pairwise-n", "candidates",
         "sampler-n"],
)  # fmt: skip
def test_raw_ids_where_indices_are_expected_are_named_not_allocated(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_memory_error_while_building_becomes_a_clear_error(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.28 TiB")

    monkeypatch.setattr(sp, "csr_matrix", no_memory)
    with pytest.raises(ValueError, match=r"\(3, 2\) matrix does not fit.*are the ids encoded"):
        interaction_matrix(_ratings([2], [1]), values="ones")
    monkeypatch.undo()
    monkeypatch.setattr(np, "bincount", no_memory)  # the sorted-keys layout counts per user
    with pytest.raises(ValueError, match=r"n_users=67108864, n_items=2 .*do not fit in memory"):
        NegativeSampler.from_ratings(_ratings([2], [1]), 2, n_users=2**26)


@pytest.mark.parametrize(
    "tensors, message",
    [
        ((pd.Series([1, None, 3], dtype="Int64"),), r"argument 1 \(tensors\[0\]\) holds 1 missing"),
        ((torch.arange(2), ["a", "b"]), r"argument 2 \(tensors\[1\]\) must hold numbers"),
        ((np.array([1, "a"], dtype=object),), r"argument 1 .* must hold numbers.*dtype object"),
        (({"a": 1},), r"argument 1 .* must hold numbers.*got dict"),
        (([[1], [1, 2]],), r"argument 1 \(tensors\[0\]\) cannot be read as an array of numbers"),
    ],
    ids=["Int64-NA", "text", "object", "dict", "ragged"],
)
def test_batches_take_numbers_only_naming_the_argument(tensors, message):
    from recs_course.data import Batches

    with pytest.raises(ValueError, match=message):
        Batches(*tensors, batch_size=2, shuffle=False)


def test_batches_convert_numbers_and_check_the_device_at_once():
    from recs_course.data import Batches

    series = pd.Series([1, 2, 3], dtype="Int64")
    batches = list(Batches(series, np.array([0.5, 1.5, 2.5]), batch_size=2, shuffle=False))
    assert batches[0][0].dtype == torch.int64 and batches[0][0].tolist() == [1, 2]
    assert batches[1][1].tolist() == [2.5]
    with pytest.raises(ValueError, match=r"unknown device 'gpu'"):
        Batches(torch.arange(3), batch_size=2, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"CUDA is not available"):
            Batches(torch.arange(3), batch_size=2, device="cuda")
    assert Batches(torch.arange(3), batch_size=2, device="cpu").device == torch.device("cpu")


def test_seed_errors_name_the_seed():
    r = _ratings([0, 0, 1, 1], [0, 1, 0, 1])
    for split in (random_split, stratified_split):
        with pytest.raises(ValueError, match=r"seed must be a non-negative int.*got -1"):
            split(r, seed=-1)
    with pytest.raises(ValueError, match=r"generator must lie in \[-2\*\*63, 2\*\*64\)"):
        ranking_candidates(r.iloc[3:], 3, n_neg=1, exclude=r.iloc[:1], generator=2**64)
    with pytest.raises(ValueError, match=r"generator must lie in"):
        sample_negatives([0], interaction_matrix(r, values="ones"), 0, generator=-(2**63) - 1)


def test_to_tensors_takes_one_column_name():
    from recs_course.data import to_tensors

    frame = pd.DataFrame({"user_id": [0, 1], "item_id": [2, 3]})
    (users,) = to_tensors(frame, "user_id")
    assert users.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"columns must hold column names \(str\)"):
        to_tensors(frame, ["user_id", 3])


def test_a_decoding_error_gives_the_file_offset_and_the_line(cache, tmp_path):
    movies = b"movieId,title,genres\n1,Toy Story (1995),Comedy\n3,Caf\xe9 (1995),Drama\n"
    offset = movies.index(b"\xe9")
    for prefix in (b"", BOM):
        home = _home(tmp_path / str(len(prefix)), {**CSV, "movies.csv": prefix + movies})
        with pytest.raises(DatasetNotAvailable, match=r"not utf-8 text: line 3 holds") as info:
            load_movielens("ml-latest-small", data_home=home)
        assert f"byte offset {offset + len(prefix)} of the file" in str(info.value)


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("movies.dat", b"1::Toy Story (1995)::Comedy::x\n", "'1::Toy Story (1995)::Comedy::x'"),
        ("users.dat", b"1::F::1::10\n", "'1::F::1::10'"),
        ("ratings.dat", b"1::1193::5::978300760\n2::1::3::9::7\n", "'2::1::3::9::7'"),
    ],
)
def test_ml1m_lines_are_shown_with_their_own_separators(cache, tmp_path, file, content, message):
    home = _home(tmp_path, {**ML1M, file: content})
    with pytest.raises(DatasetNotAvailable, match=r"field\(s\), expected") as info:
        load_movielens("ml-1m", data_home=home)
    assert message in str(info.value) and "\\t" not in str(info.value)


def test_numbers_written_as_booleans_in_tables_with_text_are_refused(cache, tmp_path):
    """A guard: pandas reads a float column of only True/False as 1.0/0.0 (the ratings files are
    scanned for that); the integer columns of the item and user tables refuse them."""
    users = b"1|True|M|technician|85711\n2|False|F|other|94043\n3|True|M|writer|T8H1N\n"
    home = _home(tmp_path, _tiny_100k(**{"u.user": users}))
    with pytest.raises(DatasetNotAvailable, match=r"u.user is malformed: line 1: age is 'True'"):
        load_movielens("ml-100k", data_home=home, download=False)
