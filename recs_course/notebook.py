"""Helpers for the book's chapters: set-up, quick mode and recording key figures.

Every chapter starts with a ``parameters`` cell (for papermill) and then::

    from recs_course.notebook import quick_mode, setup, record
    QUICK = QUICK or quick_mode()          # RECS_COURSE_QUICK=1 shrinks every chapter
    device = setup(DEVICE, SEED)           # seeds, thread count, device, in one line

and ends by recording the figures it reports, e.g. ``record("rmse_mf", rmse)``. A recorded
value is stored in the executed notebook in the format of ``myst_nb.glue`` (so the book can
paste it into the text with ``{glue:}``) without displaying anything, and the tests read it back
with :func:`read_records`. This module imports neither torch nor myst_nb at import time.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .utils import check_flag, env_flag

__all__ = [
    "QUICK_ENV",
    "RECORD_PREFIX",
    "RESULTS_URL",
    "benchmark_result",
    "quick_mode",
    "read_records",
    "record",
    "setup",
]

QUICK_ENV = "RECS_COURSE_QUICK"
# The mime prefix myst_nb.glue uses for values it stores without showing them.
RECORD_PREFIX = "application/papermill.record/"
# Where a reader without the repository (Colab) finds the recorded benchmark results.
RESULTS_URL = "https://raw.githubusercontent.com/recs-course/recs-course/main/benchmarks/results/"


def quick_mode() -> bool:
    """``True`` when the environment variable ``RECS_COURSE_QUICK`` asks for quick runs.

    Quick mode shrinks a chapter (fewer users, fewer epochs) so that the whole book builds in a
    few minutes; the chapter's claims are checked on the shrunk data too.
    """
    return env_flag(QUICK_ENV, False, "1 (quick) or 0 (full)")


def setup(device: Any = "auto", seed: int = 0, threads: int | None = None, verbose: bool = True):
    """Seed every RNG, set torch's thread count and pick the device; return the device.

    Args:
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ...
        seed: passed to :func:`recs_course.training.seed_everything`.
        threads: torch's intra-op threads on the CPU, a positive integer (``None``: the course
            default, see :func:`recs_course.utils.default_threads`).
        verbose: print one line saying what was chosen (a bool).
    """
    from .training import seed_everything
    from .utils import check_positive_int, get_device, set_threads

    verbose = check_flag("verbose", verbose)
    if threads is not None:
        threads = check_positive_int("threads", threads)
    dev = get_device(device)
    n = set_threads(threads)
    seed_everything(seed)
    if verbose:
        print(f"device: {dev}, torch threads: {n}, seed: {seed}")
    return dev


def _plain(value: Any, where: str = "value") -> Any:
    """Turn numpy/torch scalars and arrays into plain Python values (JSON-able), checked.

    Every number, at any depth, must be finite (a NaN in a recorded figure would read back as
    the string ``'[nan]'``) and real; anything but numbers, strings, booleans, None and
    lists/tuples/dicts of them is a ``ValueError`` naming where it is (``value[1]['a']``).
    """
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        try:
            value = value.tolist()  # numpy arrays/scalars, torch tensors
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"record() cannot convert {where} ({type(value).__name__}): {exc}"
            ) from None
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"record() got a non-finite number in {where}: {value} (a recorded figure must "
                "be finite: check the computation that produced it)"
            )
        return value
    raise ValueError(
        f"record() stores numbers, strings, booleans and lists/dicts of them, got "
        f"{type(value).__name__} in {where}: convert it first (e.g. float(x))"
    )


def record(name: str, value: Any) -> Any:
    """Store ``value`` under ``name`` in the notebook's output, without showing it.

    The output has the format of ``myst_nb.glue(name, value, display=False)``: the book can
    insert it with ``{glue:}`name```, and the tests read it back with :func:`read_records`.
    Returns ``value`` unchanged, so ``x = record("x", compute())`` works.

    Raises:
        ValueError: ``name`` is not an identifier; ``value`` holds, at any depth, a NaN or an
            infinity, a complex number or an object other than numbers, strings, booleans,
            None, lists, tuples and dicts (numpy and torch values are converted first).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"record names must be identifiers such as 'rmse_mf', got {name!r}")
    plain = _plain(value, f"record({name!r}, ...)")
    # text/plain only: a notebook's schema allows non-string data only under JSON mime types,
    # and the repr of plain values reads back exactly with ast.literal_eval.
    bundle = {RECORD_PREFIX + "text/plain": repr(plain)}
    metadata = {"scrapbook": {"name": name, "mime_prefix": RECORD_PREFIX}}
    try:
        from IPython.display import display
    except ImportError:  # plain Python: nothing to attach the value to
        return value
    display(bundle, raw=True, metadata=metadata)
    return value


def read_records(notebook: Any) -> dict[str, Any]:
    """Read the values recorded with :func:`record` (or ``myst_nb.glue``) from a notebook.

    Args:
        notebook: a path to an executed ``.ipynb``, or the notebook as a dict / NotebookNode.
    """
    if isinstance(notebook, (str, Path)):
        with open(notebook, encoding="utf-8") as f:
            try:
                notebook = json.load(f)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{notebook} is not a notebook (not JSON: {exc})") from None
    if not isinstance(notebook, Mapping) or not isinstance(notebook.get("cells", []), list):
        raise ValueError(
            "notebook must be the path of an .ipynb file or the notebook as a dict (with a list "
            f"of 'cells'), got {type(notebook).__name__}"
        )
    records: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            if not isinstance(out, Mapping) or not isinstance(out.get("metadata", {}), Mapping):
                continue
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta or out.get("output_type") not in ("display_data", "execute_result"):
                continue
            prefix = meta.get("mime_prefix", "")
            data = out.get("data", {})
            if prefix + "text/plain" in data:
                text = data[prefix + "text/plain"]
                text = "".join(text) if isinstance(text, list) else text
                try:
                    records[meta["name"]] = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    records[meta["name"]] = text
    return records


def _results_dirs(start: Path) -> list[Path]:
    """``benchmarks/results`` in ``start`` and its parents, then beside the package's folder."""
    start = start.resolve()
    dirs = [d / "benchmarks" / "results" for d in (start, *start.parents)]
    dirs.append(Path(__file__).resolve().parents[1] / "benchmarks" / "results")
    return dirs


def benchmark_result(name: str, *, start: str | Path | None = None, url: str | None = RESULTS_URL):
    """The parsed JSON of a recorded benchmark result, ``benchmarks/results/<name>``.

    Chapters quote peer libraries' figures from these files (with the command and the machine
    they record) rather than typing numbers. The file is looked for in ``benchmarks/results`` of
    ``start`` (default: the working directory) and its parents, then beside the installed
    package (a clone of the repository); where neither has it (Colab, a pip install), it is
    fetched from ``url`` + ``name``, the repository's copy.

    Args:
        name: a file name such as ``"quality.json"`` (no folders).
        start: the folder to search from (default: the working directory).
        url: the base URL to fetch from when no local copy exists; ``None`` never fetches.

    Raises:
        ValueError: ``name`` is not a plain ``.json`` file name, or the file is not valid JSON.
        FileNotFoundError: no local copy, and fetching is off or failed (the message says why).
    """
    if (
        not isinstance(name, str)
        or not name.endswith(".json")
        or Path(name).name != name
        or name.startswith(".")
    ):
        raise ValueError(
            f"name must be a file name in benchmarks/results such as 'quality.json', got {name!r}"
        )
    where = Path.cwd() if start is None else Path(start)
    for folder in _results_dirs(where):
        path = folder / name
        if path.is_file():
            text, source = path.read_text(encoding="utf-8"), str(path)
            break
    else:
        if url is None:
            raise FileNotFoundError(
                f"no benchmarks/results/{name} in {where} or its parents: run the chapter from "
                "a clone of the repository, or pass url= to fetch the recorded copy"
            )
        import urllib.error
        import urllib.request

        source = url + name
        try:
            with urllib.request.urlopen(source, timeout=30) as response:
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as exc:
            raise FileNotFoundError(
                f"no benchmarks/results/{name} in {where} or its parents, and fetching {source} "
                f"failed ({exc}): run the chapter from a clone of the repository"
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc}): restore it from the repository") from None
