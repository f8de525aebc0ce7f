"""The book's execution cache never serves a chapter that wrote to stderr or raised.

jupyter-cache keeps every notebook whose execution did not raise, stderr included; the strict
build then fails on that stderr at every later build without re-running the chapter. The book's
extension (``book/_ext/course_book.py``) removes such notebooks from the cache before and after
each build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("sphinx")
pytest.importorskip("jupyter_cache")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))

import course_book  # noqa: E402
from jupyter_cache import get_cache  # noqa: E402
from jupyter_cache.base import CacheBundleIn  # noqa: E402


def _executed(tmp_path: Path, name: str, outputs: list) -> tuple[Path, nbformat.NotebookNode]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    cell = nbformat.v4.new_code_cell(f"print({name!r})")
    cell.outputs = outputs
    cell.execution_count = 1
    nb.cells = [cell]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path, nb


def _cache_of(tmp_path: Path, notebooks: dict[str, list]) -> Path:
    folder = tmp_path / ".jupyter_cache"
    cache = get_cache(str(folder))
    for name, outputs in notebooks.items():
        path, nb = _executed(tmp_path, name, outputs)
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(path)), check_validity=False, overwrite=True
        )
    return folder


def _cached_uris(folder: Path) -> set[str]:
    return {Path(r.uri).stem for r in get_cache(str(folder)).list_cache_records()}


def test_notebooks_with_stderr_or_errors_leave_the_cache_clean_ones_stay(tmp_path):
    stdout = nbformat.v4.new_output("stream", name="stdout", text="fine\n")
    stderr = nbformat.v4.new_output(
        "stream", name="stderr", text="TqdmWarning: IProgress not found\n"
    )
    error = nbformat.v4.new_output("error", ename="ValueError", evalue="x", traceback=[])
    folder = _cache_of(tmp_path, {"clean": [stdout], "warned": [stdout, stderr], "raised": [error]})
    assert _cached_uris(folder) == {"clean", "warned", "raised"}

    removed = course_book.purge_unclean(folder)

    assert {Path(u).stem for u in removed} == {"warned", "raised"}
    assert _cached_uris(folder) == {"clean"}
    assert course_book.purge_unclean(folder) == []  # nothing left to remove


def test_unclean_outputs_names_the_cell_and_the_text():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="careful\n")]
    nb.cells = [nbformat.v4.new_code_cell("y"), cell]
    assert course_book.unclean_outputs(nb) == ["cell 1: stderr 'careful'"]


def test_a_missing_or_unreadable_cache_is_handled(tmp_path):
    assert course_book.purge_unclean(tmp_path / "absent") == []
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "global.db").write_bytes(b"not a database")
    assert course_book.purge_unclean(folder) == [str(folder)]
    assert not folder.exists()  # emptied: the next build executes every chapter
