"""Tests of the MovieLens loader: download (local HTTP server), cache, mirror, data_home, errors.

No test touches the network or the user's cache: ``RECS_COURSE_DATA`` points into ``tmp_path``
and the registry points at a server on 127.0.0.1 serving archives the tests build.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recs_course.data import REGISTRY, Archive, DatasetNotAvailable, MovieLens, load_movielens
from recs_course.data import movielens as mlmod
from recs_course.utils import progress_bar

GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip

# A tiny ml-100k in the official layout, with the corner cases of the real file: a latin-1
# title, the placeholder item 267 (no title year, no date), a "(V)" suffix after the year, and
# a release date whose year differs from the title's.
TINY_ITEMS = [
    (1, "Toy Story (1995)", "01-Jan-1995", ["Animation", "Children's", "Comedy"]),
    (23, "Taxi Driver (1976)", "16-Feb-1996", ["Drama", "Thriller"]),
    (267, "unknown", "", ["unknown"]),
    (543, "Misérables, Les (1995)", "01-Jan-1995", ["Drama", "Musical"]),
    (
        1412,
        "Land Before Time III: The Time of the Great Giving (1995) (V)",
        "01-Jan-1995",
        ["Animation", "Children's"],
    ),
]
TINY_USERS = [(1, 24, "M", "technician", "85711"), (2, 53, "F", "other", "94043"),
              (3, 23, "M", "writer", "T8H1N")]  # fmt: skip
TINY_RATINGS = [
    (1, 1, 5, 874965758), (1, 23, 3, 876893171), (2, 1, 4, 888550871),
    (2, 543, 2, 888551000), (3, 1412, 1, 889237455), (3, 267, 3, 889237500),
]  # fmt: skip


def ml100k_files(ratings, items, users) -> dict[str, bytes]:
    """The four ml-100k files (official layout, latin-1) from row tuples."""
    data = "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in ratings)
    lines = []
    for item_id, title, date, genres in items:
        flags = "|".join("1" if g in genres else "0" for g in GENRES_100K)
        lines.append(f"{item_id}|{title}|{date}||http://us.imdb.com/x|{flags}\n")
    user = "".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, a, g, o, z in users)
    genre = "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES_100K)) + "\n"
    return {
        "u.data": data.encode("latin-1"),
        "u.item": "".join(lines).encode("latin-1"),
        "u.user": user.encode("latin-1"),
        "u.genre": genre.encode("latin-1"),
    }


def make_zip(path: Path, files: dict[str, bytes], folder: str = "ml-100k") -> Archive:
    """Write ``files`` into a zip under ``folder/`` and return a registry entry for it."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(f"{folder}/{name}", content)
    blob = path.read_bytes()
    return Archive(
        url="", size=len(blob), sha256=hashlib.sha256(blob).hexdigest(),
        files=REGISTRY["ml-100k"].files,
    )  # fmt: skip


def closed_port_url(name: str = "ml-100k") -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}.zip"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("RECS_COURSE_DATA", str(path))
    monkeypatch.setattr(mlmod, "DOWNLOAD_TIMEOUT", 5.0)
    return path


@pytest.fixture
def server(tmp_path):
    """A local HTTP server serving ``tmp_path / "www"``; yields (folder, base_url, hits)."""
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def tiny_served(server, monkeypatch):
    """The tiny ml-100k archive served locally, with the registry pointing at it."""
    root, base, hits = server
    spec = make_zip(root / "ml-100k.zip", ml100k_files(TINY_RATINGS, TINY_ITEMS, TINY_USERS))
    spec = Archive(f"{base}/ml-100k.zip", spec.size, spec.sha256, spec.files)
    monkeypatch.setitem(REGISTRY, "ml-100k", spec)
    return spec, hits


@pytest.fixture
def no_mirror(monkeypatch):
    monkeypatch.setattr(mlmod, "_mirror_paths", lambda: None)


def _recbole_installed() -> bool:
    return mlmod._mirror_paths() is not None


needs_mirror = pytest.mark.skipif(
    not _recbole_installed(),
    reason="the offline ml-100k mirror is not installed: pip install --no-deps recbole==1.2.1",
)


def check_schema(ml: MovieLens) -> None:
    r = ml.ratings
    assert list(r.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert [str(t) for t in r.dtypes] == ["int64", "int64", "float32", "int64"]
    assert list(ml.items.columns) == ["item_id", "title", "year", "genres"]
    assert ml.items["item_id"].dtype == np.int64
    assert isinstance(ml.items["year"].dtype, pd.Int64Dtype)
    assert all(isinstance(g, list) for g in ml.items["genres"])
    assert ml.items["item_id"].is_monotonic_increasing
    if ml.users is not None:
        assert list(ml.users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]
        assert ml.users["user_id"].dtype == np.int64
        assert ml.users["age"].dtype == np.int64


# ---------------------------------------------------------------------------------------------
# Download path against a local server


def test_download_with_matching_checksum_loads_and_parses(cache, tiny_served):
    spec, hits = tiny_served
    ml = load_movielens("ml-100k")
    assert ml.source == "download" and hits == ["/ml-100k.zip"]
    check_schema(ml)
    assert len(ml.ratings) == len(TINY_RATINGS)
    items = ml.items.set_index("item_id")
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert items.loc[23, "year"] == 1976  # the title's year, not the release date's (1996)
    assert items.loc[543, "title"] == "Misérables, Les"  # latin-1 decoded
    assert items.loc[267, "title"] == "unknown" and pd.isna(items.loc[267, "year"])
    assert items.loc[1412, "title"] == "Land Before Time III: The Time of the Great Giving"
    assert items.loc[1412, "year"] == 1995
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert ml.users["zip_code"].tolist() == ["85711", "94043", "T8H1N"]
    assert (cache / "ml-100k.zip").is_file()
    assert hashlib.sha256((cache / "ml-100k.zip").read_bytes()).hexdigest() == spec.sha256

    again = load_movielens("ml-100k")  # now from the parsed cache, no new request
    assert again.source == "cache" and hits == ["/ml-100k.zip"]
    pd.testing.assert_frame_equal(again.ratings, ml.ratings)
    pd.testing.assert_frame_equal(again.items, ml.items)
    pd.testing.assert_frame_equal(again.users, ml.users)
    assert not list(cache.glob("*.tmp")), "atomic writes must not leave temporary files"


def test_download_with_a_progress_bar(cache, tiny_served, monkeypatch):
    """Large archives are downloaded with the course's bar (pooch tests the bar's truth value,
    which tqdm refuses for a bar without a total)."""
    from recs_course.data import movielens

    bars = []

    def recording_bar(*args, **kwargs):
        bar = progress_bar(*args, **kwargs)
        bars.append(bar)
        return bar

    monkeypatch.delenv("RECS_COURSE_PROGRESS", raising=False)
    monkeypatch.setattr(movielens, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(movielens, "progress_bar", recording_bar)
    ml = load_movielens("ml-100k")
    assert ml.source == "download" and len(ml.ratings) == len(TINY_RATINGS)
    assert len(bars) == 1 and bars[0].total == tiny_served[0].size


def test_download_with_wrong_checksum_raises_and_saves_nothing(cache, tiny_served, monkeypatch):
    spec, _ = tiny_served
    monkeypatch.setitem(REGISTRY, "ml-100k", Archive(spec.url, spec.size, "0" * 64, spec.files))
    with pytest.raises(
        DatasetNotAvailable, match=r"(?s)download of ml-100k .* is corrupt.*SHA-256"
    ):
        load_movielens("ml-100k")
    assert not (cache / "ml-100k.zip").exists()
    assert not (cache / "ml-100k.parsed.npz").exists()


def test_corrupt_cached_archive_is_detected_and_refetched(cache, tiny_served):
    spec, hits = tiny_served
    cache.mkdir(parents=True)
    (cache / "ml-100k.zip").write_bytes(b"truncated garbage")
    ml = load_movielens("ml-100k")
    assert ml.source == "download" and hits == ["/ml-100k.zip"]
    assert hashlib.sha256((cache / "ml-100k.zip").read_bytes()).hexdigest() == spec.sha256
    assert len(ml.ratings) == len(TINY_RATINGS)


def test_valid_cached_archive_needs_no_network(cache, tiny_served, monkeypatch):
    spec, hits = tiny_served
    load_movielens("ml-100k")  # downloads
    (cache / "ml-100k.parsed.npz").unlink()
    monkeypatch.setitem(
        REGISTRY, "ml-100k", Archive(closed_port_url(), spec.size, spec.sha256, spec.files)
    )
    ml = load_movielens("ml-100k")
    assert ml.source == "archive" and hits == ["/ml-100k.zip"]
    assert len(ml.ratings) == len(TINY_RATINGS)


def test_corrupt_parsed_cache_is_rebuilt(cache, tiny_served):
    load_movielens("ml-100k")
    (cache / "ml-100k.parsed.npz").write_bytes(b"not an npz")
    ml = load_movielens("ml-100k")
    assert ml.source == "archive"  # re-parsed from the verified archive
    assert load_movielens("ml-100k").source == "cache"


def test_stale_parsed_cache_is_ignored_when_the_registry_changes(
    cache, tiny_served, monkeypatch, server
):
    spec, _ = tiny_served
    load_movielens("ml-100k")
    root, base, _ = server
    other = make_zip(root / "other.zip", ml100k_files(TINY_RATINGS[:2], TINY_ITEMS, TINY_USERS))
    monkeypatch.setitem(
        REGISTRY, "ml-100k", Archive(f"{base}/other.zip", other.size, other.sha256, other.files)
    )
    ml = load_movielens("ml-100k")
    assert ml.source == "download" and len(ml.ratings) == 2


# ---------------------------------------------------------------------------------------------
# No network


@needs_mirror
def test_no_network_falls_back_to_the_mirror_quickly(cache, monkeypatch, capfd):
    spec = REGISTRY["ml-100k"]
    monkeypatch.setitem(
        REGISTRY, "ml-100k", Archive(closed_port_url(), spec.size, spec.sha256, spec.files)
    )
    t0 = time.perf_counter()
    ml = load_movielens("ml-100k")
    assert time.perf_counter() - t0 < 10
    assert ml.source == "mirror"
    assert len(ml.ratings) == 100_000 and ml.ratings["user_id"].nunique() == 943
    check_schema(ml)
    # Silent: no pooch "Downloading data from ..." line in a chapter's output.
    assert "Downloading" not in capfd.readouterr().err


def test_no_network_and_no_mirror_says_what_to_do(cache, monkeypatch, no_mirror):
    spec = REGISTRY["ml-100k"]
    monkeypatch.setitem(
        REGISTRY, "ml-100k", Archive(closed_port_url(), spec.size, spec.sha256, spec.files)
    )
    with pytest.raises(DatasetNotAvailable) as info:
        load_movielens("ml-100k")
    msg = str(info.value)
    assert "pip install --no-deps recbole==1.2.1" in msg
    assert str(cache / "ml-100k.zip") in msg
    assert "data_home" in msg and "download from http://127.0.0.1" in msg
    assert isinstance(info.value, RuntimeError)


def test_no_network_for_a_dataset_without_mirror(cache, monkeypatch):
    spec = REGISTRY["ml-1m"]
    monkeypatch.setitem(
        REGISTRY, "ml-1m", Archive(closed_port_url("ml-1m"), spec.size, spec.sha256, spec.files)
    )
    with pytest.raises(
        DatasetNotAvailable, match=r"(?s)'ml-1m' is not available.*ml-1m\.zip"
    ) as info:
        load_movielens("ml-1m")
    assert "recbole" not in str(info.value)  # the mirror only holds ml-100k


def test_download_false_never_touches_the_network(cache, tiny_served, no_mirror):
    _, hits = tiny_served
    with pytest.raises(DatasetNotAvailable, match="download=False"):
        load_movielens("ml-100k", download=False)
    assert hits == []


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown MovieLens dataset 'ml-2m'.*ml-100k"):
        load_movielens("ml-2m")


# ---------------------------------------------------------------------------------------------
# data_home


def test_data_home_with_extracted_files(cache, tmp_path, no_mirror):
    for home in (tmp_path / "flat", tmp_path / "nested"):
        folder = home if home.name == "flat" else home / "ml-100k"
        folder.mkdir(parents=True)
        for name, content in ml100k_files(TINY_RATINGS, TINY_ITEMS, TINY_USERS).items():
            (folder / name).write_bytes(content)
        ml = load_movielens("ml-100k", data_home=home, download=False)
        assert ml.source == "data_home" and len(ml.ratings) == len(TINY_RATINGS)
        check_schema(ml)
    assert not cache.exists(), "loads from data_home are not cached"


def test_data_home_zip_is_verified(cache, tmp_path, monkeypatch):
    spec = make_zip(tmp_path / "ml-100k.zip", ml100k_files(TINY_RATINGS, TINY_ITEMS, TINY_USERS))
    with pytest.raises(DatasetNotAvailable, match=r"not the official ml-100k archive.*SHA-256"):
        load_movielens("ml-100k", data_home=tmp_path)
    monkeypatch.setitem(REGISTRY, "ml-100k", Archive("", spec.size, spec.sha256, spec.files))
    for home in (tmp_path, tmp_path / "ml-100k.zip"):
        ml = load_movielens("ml-100k", data_home=home, download=False)
        assert ml.source == "data_home" and len(ml.ratings) == len(TINY_RATINGS)


def test_empty_data_home_is_reported(cache, tmp_path, no_mirror):
    with pytest.raises(DatasetNotAvailable, match=r"data_home=.*holds none of the ml-100k files"):
        load_movielens("ml-100k", data_home=tmp_path, download=False)


def test_an_explicit_data_home_is_never_skipped(cache, tmp_path, monkeypatch):
    """Even when the cache or the mirror could serve the dataset, a data_home that holds
    nothing loadable is an error, not a silent load from elsewhere."""
    monkeypatch.setattr(mlmod, "_read_parsed", lambda *a: pytest.fail("the cache was read"))
    with pytest.raises(DatasetNotAvailable, match=r"data_home=.*holds none of the ml-100k"):
        load_movielens("ml-100k", data_home=tmp_path)


def test_ml1m_layout(cache, tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_bytes(b"1::1193::5::978300760\n2::1::3::978298709\n")
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "2000::Misérables, Les (1998)::Drama\n".encode("latin-1")
    )
    (folder / "users.dat").write_bytes(b"1::F::1::10::48067\n2::M::56::16::70072\n")
    ml = load_movielens("ml-1m", data_home=tmp_path)
    check_schema(ml)
    items = ml.items.set_index("item_id")
    assert items.loc[1193, "title"] == "One Flew Over the Cuckoo's Nest"
    assert items.loc[2000, "title"] == "Misérables, Les" and items.loc[2000, "year"] == 1998
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert ml.users["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert ml.users["age"].tolist() == [1, 56] and ml.users["gender"].tolist() == ["F", "M"]


def test_csv_layout_ml_latest_small(cache, tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n2,3,0.5,964982224\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '3,"American President, The (1995)",Comedy|Drama|Romance\n'
        "4,Babylon 5,(no genres listed)\n",
        encoding="utf-8",
    )
    ml = load_movielens("ml-latest-small", data_home=tmp_path)
    check_schema(ml)
    assert ml.users is None
    assert ml.ratings["rating"].tolist() == [4.0, 3.5, 0.5]
    items = ml.items.set_index("item_id")
    assert items.loc[3, "title"] == "American President, The"
    assert items.loc[4, "genres"] == [] and pd.isna(items.loc[4, "year"])


# ---------------------------------------------------------------------------------------------
# The offline mirror


@needs_mirror
def test_mirror_loads_the_real_ml100k_and_caches_it(cache):
    ml = load_movielens("ml-100k", download=False)
    assert ml.source == "mirror"
    check_schema(ml)
    assert len(ml.ratings) == 100_000
    assert ml.ratings["item_id"].nunique() == 1682 and len(ml.items) == 1682
    assert len(ml.users) == 943
    assert set(ml.ratings["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    items = ml.items.set_index("item_id")
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert items.loc[267, "title"] == "unknown" and pd.isna(items.loc[267, "year"])
    assert items.loc[1412, "title"] == "Land Before Time III: The Time of the Great Giving"
    assert items.loc[1412, "year"] == 1995  # RecBole stores "V" as its year
    assert ml.items["year"].isna().sum() == 1

    t0 = time.perf_counter()
    cached = load_movielens("ml-100k", download=False)
    elapsed = time.perf_counter() - t0
    assert cached.source == "cache" and elapsed < 1.0
    pd.testing.assert_frame_equal(cached.items, ml.items)
    pd.testing.assert_frame_equal(cached.users, ml.users)


@needs_mirror
def test_mirror_and_official_layout_give_the_same_tables(cache, tmp_path):
    """The official-layout parser and the mirror parser agree on the real ml-100k."""
    mirror = load_movielens("ml-100k", download=False)
    items = [
        (
            int(row.item_id),
            row.title if pd.isna(row.year) else f"{row.title} ({row.year})",
            "" if pd.isna(row.year) else f"01-Jan-{row.year}",
            row.genres,
        )
        for row in mirror.items.itertuples()
    ]
    files = ml100k_files(
        mirror.ratings.itertuples(index=False), items, mirror.users.itertuples(index=False)
    )
    home = tmp_path / "official"
    home.mkdir()
    for name, content in files.items():
        (home / name).write_bytes(content)
    official = load_movielens("ml-100k", data_home=home)
    pd.testing.assert_frame_equal(official.ratings, mirror.ratings)
    pd.testing.assert_frame_equal(official.items, mirror.items)
    pd.testing.assert_frame_equal(official.users, mirror.users)


@needs_mirror
def test_data_home_with_recbole_files(cache):
    folder = mlmod._mirror_paths()["inter"].parent
    ml = load_movielens("ml-100k", data_home=folder, download=False)
    assert ml.source == "data_home" and len(ml.ratings) == 100_000
    check_schema(ml)


def test_repr_is_short():
    ml = MovieLens(
        ratings=pd.DataFrame({"user_id": [1, 2], "item_id": [3, 3], "rating": [1.0, 2.0],
                              "timestamp": [0, 1]}),  # fmt: skip
        items=pd.DataFrame(), users=None, name="x", source="cache",
    )  # fmt: skip
    assert repr(ml) == "MovieLens(name='x', ratings=2, users=2, items=1, source='cache')"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RECS_COURSE_DATA", str(tmp_path / "here"))
    assert mlmod.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("RECS_COURSE_DATA")
    assert mlmod.cache_dir().name == "recs_course"


def test_zip_reader_reads_members_by_base_name(tmp_path):
    path = tmp_path / "a.zip"
    make_zip(path, {"u.data": b"x"}, folder="ml-100k")
    files = mlmod._Files(path)
    assert files.has(("u.data",)) and not files.has(("u.item",))
    assert files.read("u.data") == b"x"
