"""MovieLens loaders: official GroupLens archives, a user cache, and an offline ml-100k mirror.

``load_movielens(name)`` returns a :class:`MovieLens` with three tables in the course's schema:

- ``ratings``: ``user_id`` (int64), ``item_id`` (int64), ``rating`` (float32), ``timestamp``
  (int64, seconds since 1970), raw ids as in the files, rows in file order;
- ``items``: ``item_id``, ``title`` (without the trailing `` (1995)``), ``year`` (pandas
  ``Int64``, missing where the title has none), ``genres`` (a list of str per row, possibly
  empty), sorted by ``item_id``;
- ``users`` (ml-100k and ml-1m only, else ``None``): ``user_id``, ``age``, ``gender``,
  ``occupation``, ``zip_code``, sorted by ``user_id``. For ml-1m, ``age`` is the lower bound of
  the dataset's age bucket (1, 18, 25, 35, 45, 50, 56) and ``occupation`` the name of its code.

Where the data comes from, in order:

1. ``data_home`` when given: a folder holding the extracted files (or a ``<name>/`` sub-folder
   with them, or ``<name>.zip``), or the path of the zip itself. A zip is checked against the
   registry's SHA-256. Loads from ``data_home`` are parsed every time and not cached.
2. The cache (``RECS_COURSE_DATA``, else the platform's user cache folder for ``recs_course``):
   the parsed tables (``<name>.parsed.npz``, numpy arrays, no pickle), else the archive
   ``<name>.zip`` if its SHA-256 matches.
3. The official archive from files.grouplens.org (when ``download=True``), fetched with pooch,
   SHA-256 verified, with a timeout (:data:`DOWNLOAD_TIMEOUT`). A cached archive whose hash does
   not match is fetched again; a download whose hash does not match is an error (nothing is
   saved).
4. For ml-100k only, the offline mirror inside the ``recbole`` wheel
   (``pip install --no-deps recbole==1.2.1``), read through ``importlib.metadata``; ``recbole``
   itself is never imported. It holds the same ratings, titles, years (the year in the title)
   and genres as the official archive.
5. Otherwise :class:`DatasetNotAvailable`, whose message says what to do.

Parsed tables are cached after a load from the archive or the mirror, written atomically (a
temporary file in the same folder, then ``os.replace``), so later loads read a few numpy
arrays. Tests point :data:`REGISTRY` entries at a local server with ``monkeypatch.setitem``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "Archive",
    "DatasetNotAvailable",
    "MovieLens",
    "REGISTRY",
    "cache_dir",
    "load_movielens",
]


@dataclass(frozen=True)
class Archive:
    """One entry of the download registry: where an archive lives and what it must hash to."""

    url: str
    size: int
    sha256: str
    files: tuple[str, ...]
    """Names of the files the loader reads from the archive."""


REGISTRY: dict[str, Archive] = {
    "ml-100k": Archive(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        4924029,
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        ("u.data", "u.item", "u.user", "u.genre"),
    ),
    "ml-1m": Archive(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        5917549,
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        ("ratings.dat", "movies.dat", "users.dat"),
    ),
    "ml-latest-small": Archive(
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        978202,
        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        ("ratings.csv", "movies.csv"),
    ),
    "ml-25m": Archive(
        "https://files.grouplens.org/datasets/movielens/ml-25m.zip",
        261978986,
        "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        ("ratings.csv", "movies.csv"),
    ),
}
"""Name -> :class:`Archive` for every dataset :func:`load_movielens` knows."""

DOWNLOAD_TIMEOUT: float = 15.0
"""Seconds to wait for the server to connect or to send the next chunk before giving up."""

CACHE_FORMAT = 1
"""Version of the parsed-table cache; bump it when the parsed schema changes."""

MIRROR_DISTRIBUTION = "recbole"
MIRROR_VERSION = "1.2.1"
MIRROR_FILES = {
    "inter": "recbole/dataset_example/ml-100k/ml-100k.inter",
    "item": "recbole/dataset_example/ml-100k/ml-100k.item",
    "user": "recbole/dataset_example/ml-100k/ml-100k.user",
}

_ML1M_OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
_RATING_DTYPES = {
    "user_id": np.int64,
    "item_id": np.int64,
    "rating": np.float32,
    "timestamp": np.int64,
}
# "Title (1995)", "Title (2006-2007)", and IMDb's video marker "Title (1995) (V)".
_TITLE_YEAR = (
    r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)(?:\s*\([A-Z]{1,2}\))?\s*$"
)


class DatasetNotAvailable(RuntimeError):
    """A dataset could not be found locally, downloaded, or verified.

    The message says what was tried and what to do about it.
    """


@dataclass(repr=False)
class MovieLens:
    """A MovieLens dataset in the course's schema (see the module docstring).

    Attributes:
        ratings: ``(n_ratings, 4)`` frame ``user_id, item_id, rating, timestamp``.
        items: one row per item: ``item_id, title, year, genres``.
        users: one row per user (``user_id, age, gender, occupation, zip_code``) or ``None``.
        name: the dataset's name, e.g. ``"ml-100k"``.
        source: where this copy came from: ``"data_home"``, ``"cache"``, ``"archive"`` (a
            verified zip already in the cache), ``"download"``, ``"mirror"`` or
            ``"synthetic"``.
    """

    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    name: str
    source: str = ""

    def __repr__(self) -> str:
        n_users = self.ratings["user_id"].nunique()
        n_items = self.ratings["item_id"].nunique()
        return (
            f"MovieLens(name={self.name!r}, ratings={len(self.ratings)}, users={n_users}, "
            f"items={n_items}, source={self.source!r})"
        )


# --------------------------------------------------------------------------------------------
# Locations


def cache_dir() -> Path:
    """The folder the course caches datasets in.

    ``RECS_COURSE_DATA`` when set, else the platform's user cache folder for ``recs_course``
    (``~/.cache/recs_course`` on Linux). Evaluated at each call, never at import.
    """
    env = os.environ.get("RECS_COURSE_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("recs_course"))


def _archive_spec(name: str) -> Archive:
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown MovieLens dataset {name!r}: choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Files:
    """Read the dataset's files from a folder or from a zip archive, by base name."""

    def __init__(self, root: Path):
        self.root = root
        self._members: dict[str, str] = {}
        if root.is_file():
            with zipfile.ZipFile(root) as zf:
                # Shallowest member wins when a base name occurs twice.
                for member in sorted(zf.namelist(), key=lambda m: (m.count("/"), m)):
                    base = member.rsplit("/", 1)[-1]
                    if base and base not in self._members:
                        self._members[base] = member

    def has(self, names: tuple[str, ...]) -> bool:
        if self.root.is_file():
            return all(n in self._members for n in names)
        return all((self.root / n).is_file() for n in names)

    def read(self, name: str) -> bytes:
        if self.root.is_file():
            with zipfile.ZipFile(self.root) as zf:
                return zf.read(self._members[name])
        return (self.root / name).read_bytes()


def _mirror_paths() -> dict[str, Path] | None:
    """Paths of the ml-100k mirror files in the installed ``recbole`` wheel, or ``None``."""
    from importlib import metadata

    try:
        dist = metadata.distribution(MIRROR_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    wanted = {v: k for k, v in MIRROR_FILES.items()}
    found: dict[str, Path] = {}
    for f in dist.files or ():
        key = wanted.get(str(f).replace("\\", "/"))
        if key is not None:
            path = Path(str(f.locate()))
            if path.is_file():
                found[key] = path
    return found if len(found) == len(MIRROR_FILES) else None


def _in_data_home(data_home: Path, name: str, spec: Archive) -> tuple[str, Path] | None:
    """Find ``name`` under ``data_home``: ``("zip", path)``, ``("dir", path)`` or ``("mirror", dir)``."""
    if data_home.is_file():
        return ("zip", data_home) if zipfile.is_zipfile(data_home) else None
    if not data_home.is_dir():
        return None
    for folder in (data_home, data_home / name):
        if _Files(folder).has(spec.files):
            return "dir", folder
    zipped = data_home / f"{name}.zip"
    if zipped.is_file():
        return "zip", zipped
    if name == "ml-100k":
        for folder in (data_home, data_home / name):
            if all((folder / Path(p).name).is_file() for p in MIRROR_FILES.values()):
                return "mirror", folder
    return None


# --------------------------------------------------------------------------------------------
# Parsing


def _read_table(data: bytes, sep: str, names: list[str], encoding: str, **kw) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(data),
        sep=sep,
        header=None,
        names=names,
        encoding=encoding,
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        engine="c",
        **kw,
    )


def _split_titles(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``"Toy Story (1995)"`` -> (``"Toy Story"``, 1995); titles without a year keep NA."""
    raw = raw.astype(str).str.strip()
    parts = raw.str.extract(_TITLE_YEAR)
    has_year = parts["title"].notna()
    title = parts["title"].where(has_year, raw)
    year = pd.to_numeric(parts["year"], errors="coerce").astype("Int64")
    return title.reset_index(drop=True), year.reset_index(drop=True)


def _items_frame(
    item_id: pd.Series, title: pd.Series, year: pd.Series, genres: list[list[str]]
) -> pd.DataFrame:
    items = pd.DataFrame(
        {
            "item_id": np.asarray(item_id, dtype=np.int64),
            "title": title.to_numpy(),
            "year": pd.array(year.to_numpy(), dtype="Int64"),
            "genres": pd.Series(genres, dtype=object).to_numpy(),
        }
    )
    return items.sort_values("item_id", kind="stable").reset_index(drop=True)


def _users_frame(u: pd.DataFrame, occupation=None) -> pd.DataFrame:
    """The users table from the raw (string) columns of ``u.user``, ``users.dat`` or the mirror.

    ``occupation`` replaces ``u["occupation"]`` where the file holds codes (ml-1m).
    """
    occupation = u["occupation"] if occupation is None else pd.Series(occupation)
    users = pd.DataFrame(
        {
            "user_id": u["user_id"].astype(np.int64).to_numpy(),
            "age": u["age"].astype(np.int64).to_numpy(),
            "gender": u["gender"].astype(str).to_numpy(),
            "occupation": occupation.astype(str).to_numpy(),
            "zip_code": u["zip_code"].astype(str).to_numpy(),
        }
    )
    return users.sort_values("user_id", kind="stable").reset_index(drop=True)


def _flags_to_lists(flags: np.ndarray, names: list[str]) -> list[list[str]]:
    rows, cols = np.nonzero(flags)
    counts = np.bincount(rows, minlength=flags.shape[0])
    labels = np.asarray(names, dtype=object)[cols]
    return [list(chunk) for chunk in np.split(labels, np.cumsum(counts)[:-1])]


def _parse_ml100k(files: _Files) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = pd.read_csv(
        io.BytesIO(files.read("u.data")),
        sep="\t",
        header=None,
        names=list(_RATING_DTYPES),
        dtype=_RATING_DTYPES,
        engine="c",
    )
    genre_lines = files.read("u.genre").decode("latin-1").splitlines()
    pairs = [line.rsplit("|", 1) for line in genre_lines if line.strip()]
    genre_names = [g for g, _ in sorted(pairs, key=lambda p: int(p[1]))]
    cols = ["item_id", "title", "release_date", "video_date", "url"] + genre_names
    raw = _read_table(files.read("u.item"), "|", cols, "latin-1", dtype=str)
    title, year = _split_titles(raw["title"])
    # The year is the one in the title (as in the other datasets and the mirror); the release
    # date's year is only a fallback for titles that have none.
    date_year = pd.to_numeric(raw["release_date"].str[-4:], errors="coerce").astype("Int64")
    year = year.fillna(date_year.reset_index(drop=True))
    flags = raw[genre_names].astype(np.int64).to_numpy()
    items = _items_frame(
        raw["item_id"].astype(np.int64), title, year, _flags_to_lists(flags, genre_names)
    )
    u = _read_table(
        files.read("u.user"),
        "|",
        ["user_id", "age", "gender", "occupation", "zip_code"],
        "latin-1",
        dtype=str,
    )
    users = _users_frame(u)
    return ratings, items, users


def _parse_mirror(paths: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    inter = pd.read_csv(paths["inter"], sep="\t", header=0, engine="c")
    inter.columns = [c.split(":", 1)[0] for c in inter.columns]
    ratings = pd.DataFrame({c: inter[c].to_numpy().astype(t) for c, t in _RATING_DTYPES.items()})
    it = pd.read_csv(
        paths["item"],
        sep="\t",
        header=0,
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        encoding="utf-8",
    )
    it.columns = [c.split(":", 1)[0] for c in it.columns]
    # RecBole spells the placeholder item 267 "unkonwn"; the official archive says "unknown".
    title = it["movie_title"].str.strip().replace("unkonwn", "unknown")
    year = pd.to_numeric(it["release_year"], errors="coerce").astype("Int64")
    # Where RecBole's year is not a number (item 1412, "... (1995) (V)" upstream, reads
    # "... (1995)" with year "V" there), take the title's year as the official loader does.
    bad = year.isna().to_numpy()
    if bad.any():
        fixed_title, fixed_year = _split_titles(title[bad])
        title = title.copy()
        title[bad] = fixed_title.to_numpy()
        year[bad] = fixed_year.to_numpy()
    genres = [g.split() for g in it["class"].tolist()]
    items = _items_frame(it["item_id"].astype(np.int64), title, year, genres)
    us = pd.read_csv(paths["user"], sep="\t", header=0, dtype=str, keep_default_na=False)
    us.columns = [c.split(":", 1)[0] for c in us.columns]
    users = _users_frame(us)
    return ratings, items, users


def _parse_ml1m(files: _Files) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    def table(name: str, cols: list[str], **kw) -> pd.DataFrame:
        # "::" is two characters, which pandas' fast C parser cannot split on.
        return _read_table(files.read(name).replace(b"::", b"\t"), "\t", cols, "latin-1", **kw)

    ratings = table("ratings.dat", list(_RATING_DTYPES), dtype=_RATING_DTYPES)
    mv = table("movies.dat", ["item_id", "title", "genres"], dtype=str)
    title, year = _split_titles(mv["title"])
    genres = [g.split("|") if g else [] for g in mv["genres"].tolist()]
    items = _items_frame(mv["item_id"].astype(np.int64), title, year, genres)
    us = table("users.dat", ["user_id", "gender", "age", "occupation", "zip_code"], dtype=str)
    occupation = np.asarray(_ML1M_OCCUPATIONS, dtype=object)[
        us["occupation"].astype(np.int64).to_numpy()
    ]
    users = _users_frame(us, occupation)
    return ratings, items, users


def _parse_csv(files: _Files) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    ratings = pd.read_csv(
        io.BytesIO(files.read("ratings.csv")),
        header=0,
        dtype={
            "userId": np.int64,
            "movieId": np.int64,
            "rating": np.float32,
            "timestamp": np.int64,
        },
        engine="c",
    )
    ratings.columns = list(_RATING_DTYPES)
    mv = pd.read_csv(
        io.BytesIO(files.read("movies.csv")),
        header=0,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8",
    )
    title, year = _split_titles(mv["title"])
    genres = [
        [] if g in ("", "(no genres listed)") else g.split("|") for g in mv["genres"].tolist()
    ]
    items = _items_frame(mv["movieId"].astype(np.int64), title, year, genres)
    return ratings, items, None


_PARSERS: dict[str, Callable[[_Files], tuple]] = {
    "ml-100k": _parse_ml100k,
    "ml-1m": _parse_ml1m,
    "ml-latest-small": _parse_csv,
    "ml-25m": _parse_csv,
}


def _parse(name: str, kind: str, path: Path) -> tuple:
    """Parse ``path``: a zip or folder (``kind`` "zip"/"dir"), or a folder of mirror files."""
    if kind == "mirror":
        return _parse_mirror({k: path / Path(p).name for k, p in MIRROR_FILES.items()})
    files = _Files(path)
    spec = _archive_spec(name)
    if not files.has(spec.files):
        raise DatasetNotAvailable(
            f"{path} does not hold the {name} files {list(spec.files)}: is it the right archive?"
        )
    return _PARSERS[name](files)


# --------------------------------------------------------------------------------------------
# The parsed-table cache: one .npz file of plain arrays (no pickle), written atomically.

_ROW_SEP = "\x1e"
_LIST_SEP = "\x1f"


def _encode_frame(df: pd.DataFrame, prefix: str, arrays: dict[str, np.ndarray]) -> list:
    schema = []
    for i, col in enumerate(df.columns):
        s = df[col]
        key = f"{prefix}{i}"
        if isinstance(s.dtype, pd.Int64Dtype):
            arrays[key] = s.fillna(0).to_numpy(dtype=np.int64)
            arrays[key + "_na"] = s.isna().to_numpy()
            kind = "Int64"
        elif s.dtype == object and len(s) and isinstance(s.iloc[0], list):
            text = _ROW_SEP.join(_LIST_SEP.join(v) for v in s)
            arrays[key] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
            kind = "lists"
        elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            arrays[key] = s.to_numpy()
            kind = "numeric"
        else:
            text = _ROW_SEP.join(s.astype(str).tolist())
            arrays[key] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
            kind = "str"
        schema.append([col, kind])
    return [len(df), schema]


def _decode_frame(z, prefix: str, layout: list) -> pd.DataFrame:
    n_rows, schema = layout
    data = {}
    for i, (col, kind) in enumerate(schema):
        key = f"{prefix}{i}"
        if kind == "numeric":
            data[col] = z[key]
        elif kind == "Int64":
            data[col] = pd.arrays.IntegerArray(z[key], z[key + "_na"])
        else:
            text = z[key].tobytes().decode("utf-8")
            rows = text.split(_ROW_SEP) if n_rows else []
            if kind == "lists":
                data[col] = pd.Series(
                    [r.split(_LIST_SEP) if r else [] for r in rows], dtype=object
                ).to_numpy()
            else:
                data[col] = pd.Series(rows).to_numpy()
        if len(data[col]) != n_rows:
            raise ValueError(f"column {col} has {len(data[col])} rows, expected {n_rows}")
    frame = pd.DataFrame(data)
    for col, kind in schema:
        if kind == "lists":
            frame[col] = pd.Series(data[col], dtype=object)
    return frame


def _parsed_path(cache: Path, name: str) -> Path:
    return cache / f"{name}.parsed.npz"


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then ``os.replace`` it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache file is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_parsed(cache: Path, name: str, tables: tuple, origin: str) -> None:
    ratings, items, users = tables
    arrays: dict[str, np.ndarray] = {}
    meta = {
        "format": CACHE_FORMAT,
        "name": name,
        "origin": origin,
        "sha256": REGISTRY[name].sha256 if origin == "archive" else None,
        "ratings": _encode_frame(ratings, "r", arrays),
        "items": _encode_frame(items, "i", arrays),
        "users": None if users is None else _encode_frame(users, "u", arrays),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    try:
        _atomic_write(_parsed_path(cache, name), lambda f: np.savez(f, **arrays))
    except OSError as exc:
        warnings.warn(
            f"could not cache the parsed {name} tables in {cache} ({exc}); the next load will "
            "parse the files again. Set RECS_COURSE_DATA to a writable folder.",
            RuntimeWarning,
            stacklevel=3,
        )


def _read_parsed(cache: Path, name: str) -> tuple | None:
    path = _parsed_path(cache, name)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
            if meta.get("format") != CACHE_FORMAT or meta.get("name") != name:
                return None
            if meta["origin"] == "archive" and meta["sha256"] != REGISTRY[name].sha256:
                return None
            ratings = _decode_frame(z, "r", meta["ratings"])
            items = _decode_frame(z, "i", meta["items"])
            users = None if meta["users"] is None else _decode_frame(z, "u", meta["users"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError):
        return None  # unreadable or stale: parse again and overwrite it
    return ratings, items, users


# --------------------------------------------------------------------------------------------
# Downloading


def _download(name: str, spec: Archive, cache: Path) -> tuple[Path | None, str]:
    """Fetch the archive into the cache. Returns ``(path, "")`` or ``(None, why it failed)``.

    A cached archive with the wrong hash is fetched again (pooch's "update"). A download whose
    hash does not match raises :class:`DatasetNotAvailable`.
    """
    import pooch
    import requests

    downloader = pooch.HTTPDownloader(progressbar=spec.size > 20_000_000, timeout=DOWNLOAD_TIMEOUT)
    # pooch logs "Downloading data from ..." at INFO on stderr, which would show in every
    # chapter whose first load falls back to the offline mirror: keep it quiet for this call.
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        path = pooch.retrieve(
            spec.url,
            known_hash=f"sha256:{spec.sha256}",
            fname=f"{name}.zip",
            path=cache,
            downloader=downloader,
        )
    except ValueError as exc:  # pooch's hash mismatch
        raise DatasetNotAvailable(
            f"the download of {name} from {spec.url} is corrupt: its SHA-256 does not match "
            f"the registry's {spec.sha256} ({exc}). Nothing was saved. Try again; if it keeps "
            f"failing, download the zip by hand, check it, and pass data_home=<its path>."
        ) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        return None, f"download from {spec.url} failed ({type(exc).__name__}: {exc})"
    finally:
        logger.setLevel(level)
    return Path(path), ""


def _not_available_message(name: str, spec: Archive, tried: list[str], cache: Path) -> str:
    lines = [f"MovieLens {name!r} is not available. Tried, in order:"]
    lines += [f"  - {t}" for t in tried]
    lines.append("To fix it, do one of:")
    if name == "ml-100k":
        lines.append(
            f"  - install the offline mirror: pip install --no-deps "
            f"{MIRROR_DISTRIBUTION}=={MIRROR_VERSION}"
        )
    lines.append(
        f"  - download {spec.url} ({spec.size / 1e6:.1f} MB, SHA-256 {spec.sha256}) by hand "
        f"and save it as {cache / (name + '.zip')}"
    )
    lines.append(
        f"  - or pass data_home=<folder> holding the extracted files {list(spec.files)} or "
        f"the zip (set RECS_COURSE_DATA to move the cache)."
    )
    return "\n".join(lines)


def _dataset(name: str, tables: tuple, source: str) -> MovieLens:
    ratings, items, users = tables
    return MovieLens(ratings=ratings, items=items, users=users, name=name, source=source)


def load_movielens(
    name: str = "ml-100k",
    data_home: str | os.PathLike | None = None,
    download: bool = True,
) -> MovieLens:
    """Load a MovieLens dataset in the course's schema.

    Args:
        name: ``"ml-100k"``, ``"ml-1m"``, ``"ml-latest-small"`` or ``"ml-25m"``.
        data_home: optional folder holding the extracted files (directly or in ``<name>/``) or
            ``<name>.zip``, or the zip's path. Tried first; not cached.
        download: whether to fetch the official archive when it is not in the cache.

    Returns:
        A :class:`MovieLens` with ``ratings`` (``user_id`` int64, ``item_id`` int64,
        ``rating`` float32, ``timestamp`` int64; raw ids), ``items`` and ``users`` (or
        ``None``), and ``source`` saying where it came from.

    Raises:
        ValueError: unknown ``name``.
        DatasetNotAvailable: nothing worked (the message says what to do), a zip does not
            match the registry's SHA-256, or a download was corrupt.
    """
    spec = _archive_spec(name)
    tried: list[str] = []

    if data_home is not None:
        home = Path(data_home).expanduser()
        found = _in_data_home(home, name, spec)
        if found is not None:
            kind, path = found
            if kind == "zip":
                digest = _sha256(path)
                if digest != spec.sha256:
                    raise DatasetNotAvailable(
                        f"{path} is not the official {name} archive: its SHA-256 is {digest}, "
                        f"expected {spec.sha256}. Download it again from {spec.url}."
                    )
            return _dataset(name, _parse(name, kind, path), "data_home")
        tried.append(f"data_home={str(home)!r}: no {name} files {list(spec.files)} or zip there")

    cache = cache_dir()
    parsed = _read_parsed(cache, name)
    if parsed is not None:
        return _dataset(name, parsed, "cache")
    tried.append(f"parsed cache {_parsed_path(cache, name)}: absent")

    archive = cache / f"{name}.zip"
    if archive.is_file():
        if _sha256(archive) == spec.sha256:
            tables = _parse(name, "zip", archive)
            _write_parsed(cache, name, tables, "archive")
            return _dataset(name, tables, "archive")
        tried.append(f"cached archive {archive}: corrupt (SHA-256 mismatch)")
    else:
        tried.append(f"cached archive {archive}: absent")

    if download:
        path, why = _download(name, spec, cache)
        if path is not None:
            tables = _parse(name, "zip", path)
            _write_parsed(cache, name, tables, "archive")
            return _dataset(name, tables, "download")
        tried.append(why)
    else:
        tried.append("download: skipped (download=False)")

    if name == "ml-100k":
        paths = _mirror_paths()
        if paths is not None:
            tables = _parse_mirror(paths)
            _write_parsed(cache, name, tables, "mirror")
            return _dataset(name, tables, "mirror")
        tried.append(f"offline mirror: the {MIRROR_DISTRIBUTION!r} wheel is not installed")

    raise DatasetNotAvailable(_not_available_message(name, spec, tried, cache))
