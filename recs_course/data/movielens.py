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
   registry's SHA-256. Loads from ``data_home`` are parsed every time and not cached. An
   explicit ``data_home`` is used or is an error: when it holds nothing loadable (it does not
   exist, a file that is not a zip, a folder missing a file) :class:`DatasetNotAvailable` says
   what it holds and lacks; the cache, the download and the mirror are never tried instead.
2. The cache (``RECS_COURSE_DATA``, else the platform's user cache folder for ``recs_course``;
   a path that exists but is not a folder is a ``ValueError``):
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
arrays. The cache file holds the SHA-256 of its contents: any failure to read it (a corrupt
zip, whatever the zip and npy readers raise, a digest that does not match, another format
version) makes the load parse the source again and rewrite it. Only tables that parsed
without error are cached. Tests point :data:`REGISTRY` entries at a local server with
``monkeypatch.setitem``.

Malformed files. Every file is read strictly, with vectorised checks (and without writing a
warning: a leading UTF-8 byte order mark is dropped from every file): each non-blank line must
have exactly the expected number of fields (a fifth field in ``u.data`` is an error, not a
shifted column), ids and timestamps must be integers that int64 holds, ratings finite numbers,
the csv and mirror files must start with the expected header, item and user ids must be
unique, and no table may be empty. A file that breaks a rule, cannot be read, or is not valid
text in its encoding raises :class:`DatasetNotAvailable` (never a raw pandas, codec or
``ValueError``), whose message names the dataset, the file (and the zip holding it), the line
and its text where there is one, and what to do: fix or replace a file given in
``data_home``, delete a cached archive to download it again, or reinstall the mirror.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_write, check_flag, progress_bar, progress_enabled

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

PROGRESS_MIN_BYTES: int = 20_000_000
"""Archives larger than this are downloaded with a progress bar (when bars are on)."""

CACHE_FORMAT = 2
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
    (``~/.cache/recs_course`` on Linux). Evaluated at each call, never at import. The folder
    need not exist yet (it is made when something is cached).

    Raises:
        ValueError: the path exists but is not a folder (e.g. ``RECS_COURSE_DATA`` names a
            file).
    """
    env = os.environ.get("RECS_COURSE_DATA")
    if env:
        path = Path(env).expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError(
                f"RECS_COURSE_DATA={env} is not a folder: point it at a folder (it need not "
                "exist yet), or unset it to use the platform's cache folder"
            )
        return path
    import platformdirs

    path = Path(platformdirs.user_cache_dir("recs_course"))
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"the cache folder {path} is a file, not a folder: remove or rename it, or set "
            "RECS_COURSE_DATA to a folder"
        )
    return path


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


_BOM = b"\xef\xbb\xbf"  # the UTF-8 byte order mark


class _Files:
    """Read a dataset's files by base name: from a folder, a zip archive, or given paths.

    ``dataset`` and ``fix`` (what to do when a file is malformed; it depends on where the
    files come from) go into the errors of the parsers.
    """

    def __init__(
        self,
        root: Path,
        dataset: str = "",
        fix: str = "",
        paths: dict[str, Path] | None = None,
    ):
        self.root = root
        self.dataset = dataset
        self.fix = fix
        self._paths = paths
        self._members: dict[str, str] = {}
        self.bom: set[str] = set()  # files read with a byte order mark (for byte offsets)
        if paths is None and root.is_file():
            with zipfile.ZipFile(root) as zf:
                # Shallowest member wins when a base name occurs twice.
                for member in sorted(zf.namelist(), key=lambda m: (m.count("/"), m)):
                    base = member.rsplit("/", 1)[-1]
                    if base and base not in self._members:
                        self._members[base] = member

    def has(self, names: tuple[str, ...]) -> bool:
        if self._paths is not None:
            return all(n in self._paths for n in names)
        if self.root.is_file():
            return all(n in self._members for n in names)
        return all((self.root / n).is_file() for n in names)

    def describe(self, name: str) -> str:
        """Where the file ``name`` is, for messages."""
        if self._paths is not None:
            return str(self._paths[name])
        if self.root.is_file():
            return f"{self._members.get(name, name)} in {self.root}"
        return str(self.root / name)

    def read(self, name: str) -> bytes:
        """The bytes of ``name``, without a leading UTF-8 byte order mark (``EF BB BF``).

        A BOM is valid at the start of a text file (editors on Windows add one); it is not part
        of the first field. Every file is read here, so every parser sees the same bytes.
        """
        try:
            if self._paths is not None:
                data = self._paths[name].read_bytes()
            elif self.root.is_file():
                with zipfile.ZipFile(self.root) as zf:
                    data = zf.read(self._members[name])
            else:
                data = (self.root / name).read_bytes()
        except Exception as exc:  # OSError, a corrupt zip member (BadZipFile, zlib.error), ...
            raise DatasetNotAvailable(
                f"MovieLens {self.dataset!r}: cannot read {self.describe(name)} "
                f"({type(exc).__name__}: {exc}). {self.fix}"
            ) from exc
        if data.startswith(_BOM):
            self.bom.add(name)
            return data[len(_BOM) :]  # one copy, only for a file that has a BOM
        return data


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


def _data_home_problem(home: Path, name: str, spec: Archive) -> str:
    """Why ``home`` (an explicit ``data_home``) holds nothing :func:`_in_data_home` can load:
    what was looked for there and what is missing."""
    shown = f"data_home={str(home)!r}"
    if not home.exists():
        return f"{shown} does not exist"
    if not home.is_dir():
        return f"{shown} is a file but not a zip archive (it should be the {name} zip or a folder)"
    best: tuple[int, Path, list[str]] | None = None
    for folder in (home, home / name):
        if not folder.is_dir():
            continue
        present = [f for f in spec.files if (folder / f).is_file()]
        if best is None or len(present) > best[0]:
            best = (len(present), folder, present)
    assert best is not None  # home itself is a folder
    _, folder, present = best
    where = f"{shown}" if folder == home else f"{shown} (in its {name}/ folder)"
    if not present:
        what = f"{where} holds none of the {name} files {list(spec.files)}, nor {name}.zip"
    else:
        missing = [f for f in spec.files if f not in present]
        what = f"{where} holds {', '.join(present)} but not {', '.join(missing)}"
    for f in spec.files:
        path = folder / f
        if path.exists() and not path.is_file():
            what += f" ({f} there is {'a folder' if path.is_dir() else 'not a regular file'})"
    return what


def _data_home_error(home: Path, name: str, spec: Archive) -> DatasetNotAvailable:
    return DatasetNotAvailable(
        f"MovieLens {name!r}: {_data_home_problem(home, name, spec)}. An explicit data_home is "
        f"used or is an error: pass the folder holding the extracted files {list(spec.files)} "
        f"(directly or in a {name}/ folder), the folder holding {name}.zip or that zip's path "
        f"(the official archive: {spec.url}); or leave data_home out to use the cache, the "
        "download or the mirror."
    )


# --------------------------------------------------------------------------------------------
# Parsing. Every file goes through _read_table, which checks it strictly (module docstring,
# "Malformed files"); the checks are vectorised, and only an error's message looks at lines.

_EXTRA = "\x00extra"  # a column past the last expected one: a value there is a field too many
_PARSE_DTYPES = {"int": "Int64", "float": np.float64, "str": str}  # float: float32 after checks
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_RATING_FIELDS = {"user_id": "int", "item_id": "int", "rating": "float", "timestamp": "int"}


def _malformed(files: _Files, name: str, problem: str) -> DatasetNotAvailable:
    return DatasetNotAvailable(
        f"MovieLens {files.dataset!r}: {files.describe(name)} is malformed: {problem}. {files.fix}"
    )


def _is_blank(line: bytes, sep: str) -> bool:
    """Whether pandas skips ``line`` as blank: only spaces (and tabs, unless tab separates)."""
    return not line.strip(b" \r\n" if sep == "\t" else b" \t\r\n")


def _split_fields(text: str, sep: str, quoted: bool) -> list[str]:
    return next(csv.reader([text], delimiter=sep)) if quoted else text.split(sep)


def _header(data: bytes, encoding: str) -> tuple[int, str]:
    """``(1-based line number, text)`` of the first non-blank line (the header)."""
    for number, line in enumerate(io.BytesIO(data), start=1):
        if line.strip():
            text = line.decode(encoding, errors="replace").rstrip("\r\n")
            return number, text.removeprefix("\ufeff")
    return 0, ""


_NUMBER_BYTES = b"0123456789.eE+- \r\n"


def _check_number_bytes(files: _Files, name: str, data: bytes, skip: int, sep: bytes) -> None:
    """A numbers-only table holds only the bytes of numbers, separators and line breaks.

    pandas' C parser reads a column made only of ``True``/``False`` as 1.0/0.0 even with a
    numeric dtype; text such as ``nan`` or ``inf`` would pass as numbers too. One
    ``bytes.translate`` (C speed, no per-line work) finds any other byte after the header.
    """
    start = 0
    for _ in range(skip):  # the header lines
        start = data.find(b"\n", start) + 1
    others = data.translate(None, _NUMBER_BYTES + sep)
    before = data[:start].translate(None, _NUMBER_BYTES + sep) if start else b""
    if len(others) == len(before):
        return
    bad = others[len(before) : len(before) + 1]
    pos = data.find(bad, start)
    number = data.count(b"\n", 0, pos) + 1
    line_start = data.rfind(b"\n", 0, pos) + 1
    line_end = data.find(b"\n", pos)
    text = data[line_start : line_end if line_end >= 0 else len(data)]
    shown = text.decode("latin-1", errors="replace").strip()[:80]
    raise _malformed(
        files, name, f"line {number} ({shown!r}) holds {bad!r}: every field must be a number"
    )


def _count_problem(number: int | str, fields: int | str, names: list[str]) -> str:
    shown = names if len(names) <= 8 else [*names[:5], "...", names[-1]]
    return f"line {number} has {fields} field(s), expected {len(names)} ({', '.join(shown)})"


def _field_count_problem(
    data: bytes,
    sep: str,
    columns: list[str],
    quoted: bool,
    encoding: str,
    shown_sep: str | None = None,
) -> str | None:
    """The first non-blank line whose number of fields is not ``len(columns)``, or ``None``.

    For the item and user tables, whose last fields are text: pandas reads a missing trailing
    text field as an empty one, so their lines are counted here, vectorised over the bytes.
    With ``quoted``, separators and line breaks inside double quotes do not count (a doubled
    quote inside a quoted field toggles the parity twice).
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    if arr.size == 0:
        return None
    newline = arr == 10
    ends = newline | ((arr == 13) & ~np.r_[newline[1:], False])  # "\n", "\r\n" or a lone "\r"
    is_sep = arr == ord(sep)
    if quoted:
        outside = (np.cumsum(arr == 34) & 1) == 0
        ends &= outside
        is_sep &= outside
    end_pos = np.flatnonzero(ends)
    if not ends[-1]:  # the last line has no line break
        end_pos = np.r_[end_pos, arr.size]
    blank = (arr == 32) | (arr == 10) | (arr == 13) | ((arr == 9) & (sep != "\t"))

    def per_line(mask: np.ndarray) -> np.ndarray:
        return np.diff(np.r_[0, np.searchsorted(np.flatnonzero(mask), end_pos)])

    fields = per_line(is_sep) + 1
    bad = (per_line(~blank) > 0) & (fields != len(columns))
    if not bad.any():
        return None
    k = int(np.flatnonzero(bad)[0])
    start = 0 if k == 0 else int(end_pos[k - 1]) + 1
    text = data[start : int(end_pos[k])].decode(encoding, errors="replace").rstrip("\r\n")
    if shown_sep:  # the file's own separator (ml-1m's "::"), not the one it was replaced with
        text = text.replace(sep, shown_sep)
    return f"{_count_problem(k + 1, int(fields[k]), columns)}: {text[:120]!r}"


def _decode_problem(files: _Files, name: str, data: bytes, encoding: str) -> str:
    """Where ``data`` stops being ``encoding`` text: the byte, its offset in the file, the line.

    (pandas decodes in chunks, so its error's offset is not the file's.) Decodes the whole file
    once more, only on this error path.
    """
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        pos = exc.start
        number = data.count(b"\n", 0, pos) + 1
        line_start = data.rfind(b"\n", 0, pos) + 1
        line_end = data.find(b"\n", pos)
        line = data[line_start : line_end if line_end >= 0 else len(data)]
        shown = line.decode(encoding, errors="replace").rstrip("\r")[:120]
        offset = pos + (len(_BOM) if name in files.bom else 0)
        return (
            f"it is not {encoding} text: line {number} holds the byte {data[pos : pos + 1]!r} "
            f"({exc.reason}) at byte offset {offset} of the file: {shown!r}"
        )
    return f"it is not {encoding} text"


@dataclass
class _Table:
    """What is needed to point at a line of a file being parsed, in an error."""

    files: _Files
    name: str
    data: bytes
    names: list[str]  # the expected fields
    skip: int  # lines before the first data line (the header and any blank line before it)
    sep: str
    quoted: bool
    encoding: str
    shown_sep: str | None = None  # the file's own separator where ``data`` replaced it

    def line(self, row: int) -> tuple[int, str]:
        """``(1-based line number, text)`` of data row ``row`` (pandas skips blank lines).

        A loop over lines, but only to describe an error.
        """
        count = 0
        for number, line in enumerate(io.BytesIO(self.data), start=1):
            if number <= self.skip or _is_blank(line, self.sep):
                continue
            if count == row:
                return number, line.decode(self.encoding, errors="replace").rstrip("\r\n")
            count += 1
        return self.skip + row + 1, ""

    def error(self, row: int, column: str | None, problem: str) -> DatasetNotAvailable:
        """The error for data row ``row``: a wrong number of fields, else ``problem``."""
        number, text = self.line(row)
        fields = _split_fields(text, self.sep, self.quoted) if text else []
        if text and len(fields) != len(self.names):
            what = _count_problem(number, len(fields), self.names)
        else:
            value = fields[self.names.index(column)] if column in self.names and fields else ""
            what = f"line {number}: {column} is " + (f"{value!r}, {problem}" if value else "empty")
        shown = text.replace(self.sep, self.shown_sep) if self.shown_sep else text
        return _malformed(self.files, self.name, f"{what}: {shown[:120]!r}")


def _check_no_wraparound(table: _Table, col: str, values: np.ndarray, read: Callable) -> None:
    """pandas 2.0 to 2.2 read an integer of 2**63 or more into an ``Int64`` column as a
    negative number (2**63 becomes -2**63) without an error. A negative value whose text has
    no minus sign is such a value: refuse it (the file is read again as text, only on this
    rare path: a file with negative values)."""
    text = read(dtype=str)[col].astype(str).str.strip()
    wrapped = np.flatnonzero((values < 0) & ~text.str.startswith("-").to_numpy())
    if wrapped.size:
        raise table.error(int(wrapped[0]), col, "not an integer that int64 holds (2**63 or more)")


def _first_bad_value(
    table: _Table, columns: dict[str, str], read: Callable
) -> DatasetNotAvailable | None:
    """After the typed read failed: the error for the first row with a value that is not a
    number (or a field too many), or ``None``.

    Reads the file again as text, a chunk of rows at a time (memory stays bounded); pandas 1.5
    refuses the chunked read of a file with fewer fields than names, which is then read whole.
    """
    try:
        return _scan_chunks(table, columns, read(dtype=str, chunksize=1 << 20))
    except ValueError:
        return _scan_chunks(table, columns, [read(dtype=str)])


def _scan_chunks(
    table: _Table, columns: dict[str, str], chunks: Iterable[pd.DataFrame]
) -> DatasetNotAvailable | None:
    start = 0
    for chunk in chunks:
        found: list[tuple[int, str | None, str]] = []
        extra = (chunk[_EXTRA].fillna("") != "").to_numpy()
        if extra.any():
            found.append((int(np.flatnonzero(extra)[0]), None, ""))
        for col, kind in columns.items():
            if kind == "str":
                continue
            values = pd.to_numeric(chunk[col], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            bad = ~np.isfinite(values)
            if kind == "int":
                with np.errstate(invalid="ignore"):
                    bad |= (np.trunc(values) != values) | (np.abs(values) >= 2.0**63)
            if bad.any():
                kind_text = "not an integer (int64)" if kind == "int" else "not a finite number"
                found.append((int(np.flatnonzero(bad)[0]), col, kind_text))
        if found:
            row, col, problem = min(found, key=lambda f: f[0])
            return table.error(start + row, col, problem)
        start += len(chunk)
    return None


def _read_table(
    files: _Files,
    name: str,
    columns: dict[str, str],
    *,
    sep: str,
    encoding: str,
    header: list[str] | None = None,
    normalize: Callable[[str], str] = str.strip,
    quoted: bool = False,
    data: bytes | None = None,
    shown_sep: str | None = None,
) -> pd.DataFrame:
    """Read the file ``name`` strictly: its ``columns`` (name -> "int" | "float" | "str").

    Every non-blank line must have exactly ``len(columns)`` fields; "int" fields must be
    integers that int64 holds and "float" fields finite numbers, none empty; the file must
    hold at least one data line and, with ``header``, start with that header (each name passed
    through ``normalize``). ``data`` replaces the file's bytes (ml-1m's ``::`` separators,
    shown as ``shown_sep`` in messages).

    Returns:
        A frame with the columns in order: int64 and float32 numpy columns, str columns as read.

    Raises:
        DatasetNotAvailable: naming the dataset, the file, the line and what to do.
    """
    data = files.read(name) if data is None else data
    names = list(columns)
    if not data or data.isspace():  # (isspace stops at the first other byte; no copy)
        raise _malformed(files, name, "it is empty")
    skip = 0
    if header is not None:
        skip, text = _header(data, encoding)
        found = [normalize(h) for h in _split_fields(text, sep, quoted)]
        if found != header:
            raise _malformed(files, name, f"line {skip}: the header is {found}, expected {header}")
    if "str" in columns.values():
        problem = _field_count_problem(data, sep, names, quoted, encoding, shown_sep)
        if problem is not None:
            raise _malformed(files, name, problem)
    else:
        # Numbers only (the big ratings files): pandas reads a trailing separator as one empty
        # field too many that it cannot tell from a missing one; bytes.find is a fast scan.
        tail = sep.encode()
        hits = [i for i in (data.find(tail + b"\n"), data.find(tail + b"\r")) if i >= 0]
        end = len(data)
        while data[end - 1 : end] in (b"\r", b"\n"):  # the final line breaks (no copy)
            end -= 1
        if data[end - len(tail) : end] == tail:
            hits.append(end - len(tail))
        if hits:
            number = data.count(b"\n", 0, min(hits)) + 1
            raise _malformed(
                files,
                name,
                f"line {number} ends with a separator, so its last field is empty (expected "
                f"{len(names)} non-empty fields: {', '.join(names)})",
            )

    def read(**kw):
        return pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            header=None,
            skiprows=skip,
            names=[*names, _EXTRA],
            index_col=False,
            encoding=encoding,
            quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
            keep_default_na=False,
            engine="c",
            **kw,
        )

    dtypes = {c: _PARSE_DTYPES[k] for c, k in columns.items()}
    empty_is_na = [c for c, k in columns.items() if k == "float"] + [_EXTRA]
    table = _Table(files, name, data, names, skip, sep, quoted, encoding, shown_sep)
    if "str" not in columns.values():
        # pandas guesses the number of columns from the first data line: with two fields too
        # many or more there, it warns (ParserWarning) instead of failing. Count that one line.
        _, text = table.line(0)
        if text and len(_split_fields(text, sep, quoted)) != len(names):
            raise table.error(0, None, "")
    try:
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            # A number beyond int64 in an integer column makes pandas cast it with numpy's
            # "invalid value" warning before refusing it (the error below reports it); a
            # ParserWarning would mean a line pandas cut short: an error, never a silent read.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            frame = read(
                dtype={**dtypes, _EXTRA: np.float64}, na_values={c: [""] for c in empty_is_na}
            )
    except pd.errors.ParserWarning as exc:
        raise _malformed(files, name, f"pandas could not split its lines ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise _malformed(files, name, _decode_problem(files, name, data, encoding)) from exc
    except pd.errors.EmptyDataError as exc:
        raise _malformed(files, name, "it holds no data lines") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # pandas' ParserError is a ValueError
        match = re.search(r"Expected \d+ fields in line (\d+), saw (\d+)", str(exc))
        if match:
            raise _malformed(files, name, _count_problem(*match.groups(), names)) from exc
        try:
            error = _first_bad_value(table, columns, read)
        except Exception:  # noqa: BLE001 - the diagnosis is best effort; report pandas' error
            error = None
        if error is not None:
            raise error from exc
        raise _malformed(files, name, f"pandas could not read it ({exc})") from exc
    if len(frame) == 0:
        raise _malformed(files, name, "it holds no data lines")
    extra = ~np.isnan(frame[_EXTRA].to_numpy())
    if extra.any():
        raise table.error(int(np.flatnonzero(extra)[0]), None, "")
    out = {}
    for col, kind in columns.items():
        s = frame[col]
        if kind == "int":
            missing = s.isna().to_numpy()
            if missing.any():
                raise table.error(int(np.flatnonzero(missing)[0]), col, "not an integer")
            out[col] = np.array(s.to_numpy(dtype=np.int64))  # a writable copy of the column
            if (out[col] < 0).any():  # rare: then tell a real "-5" from a wrapped 2**63
                _check_no_wraparound(table, col, out[col], read)
        elif kind == "float":
            values = s.to_numpy()
            bad = ~(np.abs(values) <= _FLOAT32_MAX)  # NaN, infinities, beyond float32
            if bad.any():
                problem = "not a finite number that float32 holds"
                raise table.error(int(np.flatnonzero(bad)[0]), col, problem)
            out[col] = values.astype(np.float32)
        else:
            out[col] = s
    del frame
    if "str" not in columns.values():  # what pandas read as numbers but is not (True/False)
        _check_number_bytes(files, name, data, skip, sep.encode())
    return pd.DataFrame(out, copy=False)  # the numeric columns are fresh arrays: no 2nd copy


def _check_unique(table_frame: pd.DataFrame, col: str, files: _Files, name: str) -> None:
    """The ids of an item or user table must be unique."""
    dup = table_frame[col].duplicated().to_numpy()
    if dup.any():
        value = table_frame[col].to_numpy()[np.flatnonzero(dup)[0]]
        raise _malformed(
            files, name, f"{col} {value} occurs on more than one line (ids must be unique)"
        )


def _ratings_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The course's ratings frame from the four parsed columns (int64, int64, float32, int64
    from :func:`_read_table`), in file order."""
    return raw.set_axis(list(_RATING_DTYPES), axis=1)  # no copy of the columns


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
    """The users table from the parsed columns of ``u.user``, ``users.dat`` or the mirror.

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


def _ml100k_genres(files: _Files) -> list[str]:
    """The genre names of ``u.genre`` (``name|index`` lines), in index order."""
    text = files.read("u.genre").decode("latin-1")
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):  # about 20 lines
        if not line.strip():
            continue
        parts = line.rsplit("|", 1)
        if len(parts) != 2 or not re.fullmatch(r"\s*[0-9]+\s*", parts[1]):
            raise _malformed(files, "u.genre", f"line {number} is {line!r}, expected 'name|index'")
        pairs.append((int(parts[1]), parts[0]))
    if not pairs:
        raise _malformed(files, "u.genre", "it lists no genre")
    indices = sorted(i for i, _ in pairs)
    if indices != list(range(len(pairs))):
        raise _malformed(
            files,
            "u.genre",
            f"the genre indices are {indices}, expected 0 to {len(pairs) - 1} once each",
        )
    return [g for _, g in sorted(pairs)]


def _parse_ml100k(files: _Files) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = _ratings_frame(
        _read_table(files, "u.data", _RATING_FIELDS, sep="\t", encoding="latin-1")
    )
    genre_names = _ml100k_genres(files)
    flag_cols = [f"genre {k} ({g})" for k, g in enumerate(genre_names)]
    fields = {"item_id": "int", "title": "str", "release_date": "str", "video_date": "str"}
    fields |= {"url": "str", **dict.fromkeys(flag_cols, "int")}
    raw = _read_table(files, "u.item", fields, sep="|", encoding="latin-1")
    _check_unique(raw, "item_id", files, "u.item")
    title, year = _split_titles(raw["title"])
    # The year is the one in the title (as in the other datasets and the mirror); the release
    # date's year is only a fallback for titles that have none.
    date_year = pd.to_numeric(raw["release_date"].str[-4:], errors="coerce").astype("Int64")
    year = year.fillna(date_year.reset_index(drop=True))
    flags = raw[flag_cols].to_numpy(dtype=np.int64)
    if not np.isin(flags, (0, 1)).all():
        row, col = (int(k[0]) for k in np.nonzero(~np.isin(flags, (0, 1))))
        raise _malformed(
            files,
            "u.item",
            f"item {raw['item_id'].to_numpy()[row]} has the flag {flags[row, col]} for the genre "
            f"{genre_names[col]!r}, expected 0 or 1",
        )
    items = _items_frame(raw["item_id"], title, year, _flags_to_lists(flags, genre_names))
    u = _read_table(
        files,
        "u.user",
        {"user_id": "int", "age": "int", "gender": "str", "occupation": "str", "zip_code": "str"},
        sep="|",
        encoding="latin-1",
    )
    _check_unique(u, "user_id", files, "u.user")
    return ratings, items, _users_frame(u)


_MIRROR_HEADERS = {
    "inter": ["user_id", "item_id", "rating", "timestamp"],
    "item": ["item_id", "movie_title", "release_year", "class"],
    "user": ["user_id", "age", "gender", "occupation", "zip_code"],
}


def _mirror_files(paths: dict[str, Path], fix: str) -> _Files:
    """The mirror's files (``paths`` keyed as :data:`MIRROR_FILES`), by base name."""
    return _Files(
        next(iter(paths.values())).parent,
        "ml-100k",
        fix,
        paths={Path(MIRROR_FILES[k]).name: p for k, p in paths.items()},
    )


def _parse_mirror(files: _Files) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    def table(key: str, kinds: list[str]) -> pd.DataFrame:
        return _read_table(
            files,
            Path(MIRROR_FILES[key]).name,
            dict(zip(_MIRROR_HEADERS[key], kinds, strict=True)),
            sep="\t",
            encoding="utf-8",
            header=_MIRROR_HEADERS[key],
            normalize=lambda h: h.split(":", 1)[0].strip(),  # "user_id:token" -> "user_id"
        )

    ratings = _ratings_frame(table("inter", ["int", "int", "float", "int"]))
    it = table("item", ["int", "str", "str", "str"])
    _check_unique(it, "item_id", files, Path(MIRROR_FILES["item"]).name)
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
    items = _items_frame(it["item_id"], title, year, genres)
    us = table("user", ["int", "int", "str", "str", "str"])
    _check_unique(us, "user_id", files, Path(MIRROR_FILES["user"]).name)
    return ratings, items, _users_frame(us)


def _parse_ml1m(files: _Files) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    def table(name: str, fields: dict[str, str]) -> pd.DataFrame:
        # "::" is two characters, which pandas' fast C parser cannot split on.
        data = files.read(name).replace(b"::", b"\t")
        return _read_table(
            files, name, fields, sep="\t", encoding="latin-1", data=data, shown_sep="::"
        )

    ratings = _ratings_frame(table("ratings.dat", _RATING_FIELDS))
    mv = table("movies.dat", {"item_id": "int", "title": "str", "genres": "str"})
    _check_unique(mv, "item_id", files, "movies.dat")
    title, year = _split_titles(mv["title"])
    genres = [g.split("|") if g else [] for g in mv["genres"].tolist()]
    items = _items_frame(mv["item_id"], title, year, genres)
    fields = {"user_id": "int", "gender": "str", "age": "int", "occupation": "int"}
    us = table("users.dat", fields | {"zip_code": "str"})
    _check_unique(us, "user_id", files, "users.dat")
    codes = us["occupation"].to_numpy()
    bad = (codes < 0) | (codes >= len(_ML1M_OCCUPATIONS))
    if bad.any():
        raise _malformed(
            files,
            "users.dat",
            f"user {us['user_id'].to_numpy()[bad][0]} has the occupation code "
            f"{codes[bad][0]}, expected 0 to {len(_ML1M_OCCUPATIONS) - 1}",
        )
    occupation = np.asarray(_ML1M_OCCUPATIONS, dtype=object)[codes]
    return ratings, items, _users_frame(us, occupation)


def _parse_csv(files: _Files) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    header = ["userId", "movieId", "rating", "timestamp"]
    raw = _read_table(
        files,
        "ratings.csv",
        dict(zip(header, _RATING_FIELDS.values(), strict=True)),
        sep=",",
        encoding="utf-8",
        header=header,
        quoted=True,
    )
    ratings = _ratings_frame(raw)
    mv = _read_table(
        files,
        "movies.csv",
        {"movieId": "int", "title": "str", "genres": "str"},
        sep=",",
        encoding="utf-8",
        header=["movieId", "title", "genres"],
        quoted=True,
    )
    _check_unique(mv, "movieId", files, "movies.csv")
    title, year = _split_titles(mv["title"])
    genres = [
        [] if g in ("", "(no genres listed)") else g.split("|") for g in mv["genres"].tolist()
    ]
    items = _items_frame(mv["movieId"], title, year, genres)
    return ratings, items, None


_PARSERS: dict[str, Callable[[_Files], tuple]] = {
    "ml-100k": _parse_ml100k,
    "ml-1m": _parse_ml1m,
    "ml-latest-small": _parse_csv,
    "ml-25m": _parse_csv,
}


def _parse(name: str, kind: str, path: Path, fix: str = "") -> tuple:
    """Parse ``path``: a zip or folder (``kind`` "zip"/"dir"), or a folder of mirror files.

    ``fix`` says what to do if a file is malformed (where the files come from decides it).
    """
    if kind == "mirror":
        return _parse_mirror(
            _mirror_files({k: path / Path(p).name for k, p in MIRROR_FILES.items()}, fix)
        )
    files = _Files(path, name, fix)
    spec = _archive_spec(name)
    if not files.has(spec.files):
        raise DatasetNotAvailable(
            f"{path} does not hold the {name} files {list(spec.files)}: is it the right archive?"
        )
    return _PARSERS[name](files)


# --------------------------------------------------------------------------------------------
# The parsed-table cache: one .npz file (no pickle) holding three uint8 arrays: ``meta`` (JSON:
# the tables' layout), ``payload`` (every column's bytes, each part 8-byte aligned) and
# ``sha256`` (of meta and payload: a zip's CRC is only checked when a member is read to its
# end, so it cannot be relied on). Written atomically; any failure to read it means "rebuild".

_ROW_SEP = "\x1e"
_LIST_SEP = "\x1f"
_CACHE_MEMBERS = {"meta", "payload", "sha256"}


class _Payload:
    """Collects the bytes of the columns; each part is ``[dtype, byte offset, count]``."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.size = 0

    def add(self, arr: np.ndarray) -> list:
        arr = np.ascontiguousarray(arr)
        pad = -self.size % 8
        if pad:
            self.chunks.append(np.zeros(pad, dtype=np.uint8))
            self.size += pad
        part = [arr.dtype.str, self.size, int(arr.size)]
        self.chunks.append(arr.reshape(-1).view(np.uint8))
        self.size += arr.nbytes
        return part

    def array(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.uint8)


def _text_bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _encode_frame(df: pd.DataFrame, payload: _Payload) -> list:
    schema = []
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.Int64Dtype):
            parts = [payload.add(s.fillna(0).to_numpy(dtype=np.int64))]
            parts.append(payload.add(s.isna().to_numpy()))
            kind = "Int64"
        elif s.dtype == object and len(s) and isinstance(s.iloc[0], list):
            parts = [payload.add(_text_bytes(_ROW_SEP.join(_LIST_SEP.join(v) for v in s)))]
            kind = "lists"
        elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            parts = [payload.add(s.to_numpy())]
            kind = "numeric"
        else:
            parts = [payload.add(_text_bytes(_ROW_SEP.join(s.astype(str).tolist())))]
            kind = "str"
        schema.append([col, kind, parts])
    return [len(df), schema]


def _payload_part(payload: np.ndarray, part: list) -> np.ndarray:
    dtype, offset, count = part
    dt = np.dtype(dtype)
    end = offset + count * dt.itemsize
    if dt.hasobject or offset < 0 or count < 0 or end > payload.size:
        raise ValueError(f"part {part} does not fit the payload")
    return payload[offset:end].view(dt)


def _decode_frame(payload: np.ndarray, layout: list) -> pd.DataFrame:
    n_rows, schema = layout
    data = {}
    for col, kind, parts in schema:
        first = _payload_part(payload, parts[0])
        if kind == "numeric":
            data[col] = first
        elif kind == "Int64":
            data[col] = pd.arrays.IntegerArray(
                first.copy(), _payload_part(payload, parts[1]).copy()
            )
        else:
            text = first.tobytes().decode("utf-8")
            rows = text.split(_ROW_SEP) if n_rows else []
            if kind == "lists":
                data[col] = pd.Series(
                    [r.split(_LIST_SEP) if r else [] for r in rows], dtype=object
                ).to_numpy()
            else:
                data[col] = pd.Series(rows).to_numpy()
        if len(data[col]) != n_rows:
            raise ValueError(f"column {col} has {len(data[col])} rows, expected {n_rows}")
    frame = pd.DataFrame(data)  # copies the numeric columns out of the payload
    for col, kind, _ in schema:
        if kind == "lists":
            frame[col] = pd.Series(data[col], dtype=object)
    return frame


def _digest(meta: np.ndarray, payload: np.ndarray) -> bytes:
    h = hashlib.sha256(meta.size.to_bytes(8, "little"))
    h.update(meta)
    h.update(payload)
    return h.hexdigest().encode("ascii")


def _parsed_path(cache: Path, name: str) -> Path:
    return cache / f"{name}.parsed.npz"


def _atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then ``os.replace`` it."""
    atomic_write(path, write)


def _write_parsed(cache: Path, name: str, tables: tuple, origin: str) -> None:
    ratings, items, users = tables
    if len(ratings) == 0 or len(items) == 0:  # the parsers never return these; never cache them
        raise DatasetNotAvailable(f"MovieLens {name!r}: refusing to cache an empty table")
    payload = _Payload()
    meta = {
        "format": CACHE_FORMAT,
        "name": name,
        "origin": origin,
        "sha256": REGISTRY[name].sha256 if origin == "archive" else None,
        "ratings": _encode_frame(ratings, payload),
        "items": _encode_frame(items, payload),
        "users": None if users is None else _encode_frame(users, payload),
    }
    arrays = {"meta": _text_bytes(json.dumps(meta)), "payload": payload.array()}
    arrays["sha256"] = np.frombuffer(_digest(arrays["meta"], arrays["payload"]), dtype=np.uint8)
    path = _parsed_path(cache, name)
    try:
        _atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:
        if path.exists() and not path.is_file():
            fix = f"{path} is a folder (or not a regular file): remove it"
        else:
            fix = f"make {cache} writable, or set RECS_COURSE_DATA to a writable folder"
        warnings.warn(
            f"could not cache the parsed {name} tables in {cache} ({exc}); every load will "
            f"parse the files again until you fix it: {fix}.",
            RuntimeWarning,
            stacklevel=3,
        )


def _read_parsed(cache: Path, name: str) -> tuple[tuple | None, str]:
    """``(tables, "")`` from the parsed cache, or ``(None, why not)``.

    Any failure to read it (a truncated or corrupt file, whatever the zip and npy readers
    raise, a SHA-256 that does not match) means "parse the files again"; the caller then
    rewrites it.
    """
    path = _parsed_path(cache, name)
    if not path.is_file():
        return None, "absent" if not path.exists() else "not a file (remove it)"
    try:
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != _CACHE_MEMBERS:
                return None, "written by another version: rebuilding it"
            arrays = {key: z[key] for key in _CACHE_MEMBERS}
        if any(a.dtype != np.uint8 or a.ndim != 1 for a in arrays.values()):
            raise ValueError("an array is not 1-D uint8")
        if arrays["sha256"].tobytes() != _digest(arrays["meta"], arrays["payload"]):
            return None, "corrupt (its SHA-256 does not match its contents): rebuilding it"
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        if meta.get("format") != CACHE_FORMAT or meta.get("name") != name:
            return None, "written by another version: rebuilding it"
        if meta["origin"] == "archive" and meta["sha256"] != REGISTRY[name].sha256:
            return None, "made from another archive: rebuilding it"
        payload = arrays["payload"]
        ratings = _decode_frame(payload, meta["ratings"])
        items = _decode_frame(payload, meta["items"])
        users = None if meta["users"] is None else _decode_frame(payload, meta["users"])
    except Exception as exc:  # noqa: BLE001 - whatever the zip and npy readers raise
        return None, f"unreadable ({type(exc).__name__}): rebuilding it"
    return (ratings, items, users), ""


# --------------------------------------------------------------------------------------------
# Downloading


def _import_pooch():
    """``import pooch`` without the warning its import can print.

    pooch's downloaders import ``tqdm.auto`` at import time; inside a Jupyter kernel without
    ipywidgets that import prints ``TqdmWarning: IProgress not found`` on stderr (once per
    kernel), which a strict book build turns into an error. The course draws its own bars
    (:func:`recs_course.utils.progress_bar`), so the warning says nothing useful here.
    """
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        import pooch
    return pooch


def _download(name: str, spec: Archive, cache: Path) -> tuple[Path | None, str]:
    """Fetch the archive into the cache. Returns ``(path, "")`` or ``(None, why it failed)``.

    A cached archive with the wrong hash is fetched again (pooch's "update"). A download whose
    hash does not match raises :class:`DatasetNotAvailable`.
    """
    import requests

    pooch = _import_pooch()
    # A bar only for the large archives, drawn by the course's helper (never tqdm.auto).
    bar = (
        progress_bar(spec.size, desc=f"{name}.zip", unit="B", unit_scale=True, leave=False)
        if spec.size > PROGRESS_MIN_BYTES and progress_enabled()
        else False
    )
    downloader = pooch.HTTPDownloader(progressbar=bar, timeout=DOWNLOAD_TIMEOUT)
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
            ``<name>.zip``, or the zip's path. Tried first; not cached; when given, it must
            hold the dataset (else :class:`DatasetNotAvailable`, never another source).
        download: whether to fetch the official archive when it is not in the cache.

    Returns:
        A :class:`MovieLens` with ``ratings`` (``user_id`` int64, ``item_id`` int64,
        ``rating`` float32, ``timestamp`` int64; raw ids), ``items`` and ``users`` (or
        ``None``), and ``source`` saying where it came from.

    Raises:
        ValueError: unknown ``name``, or the cache path (``RECS_COURSE_DATA``) is not a folder.
        DatasetNotAvailable: nothing worked (the message says what to do), a zip does not
            match the registry's SHA-256, a download was corrupt, or a file is malformed (the
            message names the file and line; see the module docstring).
    """
    spec = _archive_spec(name)
    download = check_flag("download", download)
    tried: list[str] = []

    if data_home is not None:
        if not isinstance(data_home, (str, os.PathLike)):
            raise ValueError(
                f"data_home must be a folder or a zip file's path (str or pathlib.Path), got "
                f"{type(data_home).__name__} {data_home!r:.60}"
            )
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
            fix = (
                "Fix or replace that file (the official files are in "
                f"{spec.url}), or load without data_home to use the cache or the download."
            )
            return _dataset(name, _parse(name, kind, path, fix), "data_home")
        raise _data_home_error(home, name, spec)

    cache = cache_dir()
    parsed, why = _read_parsed(cache, name)
    if parsed is not None:
        return _dataset(name, parsed, "cache")
    tried.append(f"parsed cache {_parsed_path(cache, name)}: {why}")

    archive = cache / f"{name}.zip"
    refetch = (
        f"Delete {archive} and load again to download it afresh, or pass "
        "data_home=<a folder holding good files>."
    )
    if archive.is_file():
        if _sha256(archive) == spec.sha256:
            tables = _parse(name, "zip", archive, refetch)
            _write_parsed(cache, name, tables, "archive")
            return _dataset(name, tables, "archive")
        tried.append(f"cached archive {archive}: corrupt (SHA-256 mismatch)")
    else:
        tried.append(f"cached archive {archive}: absent")

    if download:
        path, why = _download(name, spec, cache)
        if path is not None:
            tables = _parse(name, "zip", path, refetch)
            _write_parsed(cache, name, tables, "archive")
            return _dataset(name, tables, "download")
        tried.append(why)
    else:
        tried.append("download: skipped (download=False)")

    if name == "ml-100k":
        paths = _mirror_paths()
        if paths is not None:
            reinstall = (
                f"Reinstall the mirror (pip install --force-reinstall --no-deps "
                f"{MIRROR_DISTRIBUTION}=={MIRROR_VERSION}), or pass data_home=<a folder "
                "holding the official files>."
            )
            tables = _parse_mirror(_mirror_files(paths, reinstall))
            _write_parsed(cache, name, tables, "mirror")
            return _dataset(name, tables, "mirror")
        tried.append(f"offline mirror: the {MIRROR_DISTRIBUTION!r} wheel is not installed")

    raise DatasetNotAvailable(_not_available_message(name, spec, tried, cache))
