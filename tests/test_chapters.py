"""The book's chapters: structure, pairing, and execution on shrunk data.

Static checks (fast) run with the unit tests. The ``notebooks`` tests execute each chapter's
paired ``.ipynb`` with papermill, injecting ``QUICK = True`` into its ``parameters`` cell (the
chapter then shrinks itself: fewer users, fewer epochs, and still asserts its claims), and read
back the figures the chapter recorded with ``recs_course.notebook.record``. Each chapter's
expected ranges live in ``tests/chapters/<chapter>.json``::

    {"records": {"rmse_mf_bias": [0.8, 1.05], "hr10_neumf": [0.3, 1.0]}}
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import jupytext
import nbformat
import pytest
from book_toc import toc_pages

from recs_course.notebook import read_records

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
EXPECT = Path(__file__).resolve().parent / "chapters"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.md"))
IDS = [p.stem for p in CHAPTERS]
REQUIRED_PARAMETERS = {"DATASET", "SAMPLE_USERS", "EPOCHS", "DEVICE", "SEED", "QUICK"}


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_toc_lists_every_chapter_and_only_existing_files():
    listed = toc_pages()
    for f in listed:
        assert (ROOT / f).with_suffix(".md").exists(), f"_toc.yml lists {f}, which does not exist"
    for md in CHAPTERS:
        assert md.relative_to(ROOT).with_suffix("").as_posix() in listed, (
            f"{md.name} is not in _toc.yml"
        )


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_paired_notebook_is_in_sync_and_stripped(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"run: jupytext --to ipynb {md.relative_to(ROOT)}"
    want = jupytext.read(md)
    have = nbformat.read(ipynb, as_version=4)
    assert [(c.cell_type, c.source) for c in want.cells] == [
        (c.cell_type, c.source) for c in have.cells
    ], f"{ipynb.name} differs from {md.name}: run jupytext --to ipynb --update {md.name}"
    for c in code_cells(have):
        assert c.get("outputs", []) == [] and c.get("execution_count") is None, (
            f"{ipynb.name} has outputs: strip them (jupytext --to ipynb writes none)"
        )
    assert have.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_chapter_structure(md):
    nb = jupytext.read(md)
    cells = code_cells(nb)
    # 1. The guarded Colab install cell comes first and is hidden in the book.
    first = cells[0]
    assert "remove-cell" in first.metadata.get("tags", []), "first code cell: tag remove-cell"
    assert "google.colab" in first.source and "pip" in first.source
    # 2. Exactly one parameters cell with the course's parameter names.
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "one code cell tagged `parameters`"
    names = {
        t.id
        for node in ast.parse(params[0].source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert REQUIRED_PARAMETERS <= names, f"missing parameters {REQUIRED_PARAMETERS - names}"
    # 3. Exercises with solutions hidden in the book but executed.
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{exercise}" in text or "{exercise-start}" in text
    assert "{solution-start}" in text and "{solution-end}" in text
    # 4. It records figures, and the tests know what to expect of them.
    assert any("record(" in c.source for c in cells)
    assert (EXPECT / f"{md.stem}.json").exists(), f"write tests/chapters/{md.stem}.json"
    # 5. No hard-coded device.
    assert not any(".cuda()" in c.source for c in cells)


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_install_cell_installs_package_and_data_mirror_on_colab_only(md, monkeypatch):
    """On Colab the first data cell must work without GroupLens: the install cell also installs
    the offline ml-100k mirror (RecBole's wheel, without its dependencies). Elsewhere: no-op."""
    import subprocess
    import sys
    import types

    from recs_course.data.movielens import MIRROR_DISTRIBUTION, MIRROR_VERSION

    source = code_cells(jupytext.read(md))[0].source
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, md.name, "exec"), {})
    assert calls == [], "the install cell must do nothing outside Colab"

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(compile(source, md.name, "exec"), {})
    commands = [cmd for cmd, kw in calls]
    assert all(kw.get("check") for _, kw in calls), "every install must fail loudly"
    assert all(cmd[:4] == [sys.executable, "-m", "pip", "install"] for cmd in commands)
    assert any(any(a.startswith("recs_course @ git+") for a in cmd) for cmd in commands)
    mirror = f"{MIRROR_DISTRIBUTION}=={MIRROR_VERSION}"
    assert any(mirror in cmd and "--no-deps" in cmd for cmd in commands), (
        f"{md.name}: the install cell must also run pip install --no-deps {mirror}"
    )


def warm_matplotlib_font_cache() -> None:
    """Build matplotlib's font cache in ``$MPLCONFIGDIR`` (``make book`` does it first too):
    when that takes over 5 s (many fonts, a loaded machine), matplotlib says so on stderr."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=True)


def _check_outputs(nb, name: str) -> None:
    """No error and nothing at all on stderr: the strict book build fails on either."""
    for cell in code_cells(nb):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{name}: error output in\n{cell.source}"
            if out.output_type == "stream":
                assert out.name != "stderr", f"{name}: wrote to stderr:\n{out.text}"


@pytest.mark.notebooks
@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_chapter_runs_on_shrunk_data(md, tmp_path, monkeypatch):
    import papermill

    # As on a reader's first run: empty data and matplotlib caches, progress bars on (their
    # default), and no ipywidgets (the chapters must not depend on it).
    monkeypatch.setenv("RECS_COURSE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    warm_matplotlib_font_cache()  # as make book does: a slow first build says so on stderr
    monkeypatch.delenv("RECS_COURSE_PROGRESS", raising=False)
    hidden = tmp_path / "no-ipywidgets" / "ipywidgets"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("ipywidgets is hidden by the test")')
    monkeypatch.setenv("PYTHONPATH", str(hidden.parent))
    monkeypatch.setenv("PYTHONWARNINGS", "default")
    monkeypatch.delenv("RECS_COURSE_QUICK", raising=False)
    out = tmp_path / md.with_suffix(".ipynb").name
    papermill.execute_notebook(
        str(md.with_suffix(".ipynb")),
        str(out),
        parameters={"QUICK": True},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=600,
    )
    nb = nbformat.read(out, as_version=4)
    _check_outputs(nb, md.name)
    records = read_records(out)
    expect = json.loads((EXPECT / f"{md.stem}.json").read_text())["records"]
    assert expect, "expect at least one recorded figure"
    for name, (lo, hi) in expect.items():
        assert name in records, f"{md.name} did not record {name!r} (has {sorted(records)})"
        value = records[name]
        assert isinstance(value, (int, float)) and math.isfinite(value), (name, value)
        assert lo <= value <= hi, f"{md.name}: {name} = {value}, expected in [{lo}, {hi}]"
