"""A reader's first contact: a Jupyter kernel, an empty data cache, with or without ipywidgets.

The book's strict build fails on anything a chapter writes to stderr. On a cold data cache the
loader imports pooch, whose import of ``tqdm.auto`` used to print ``TqdmWarning: IProgress not
found`` in kernels without ipywidgets; the warm caches of the developers' machines hid it. These
tests run the first steps of a chapter (load the data on an empty cache, train with the default
progress bar, draw a plot with a new matplotlib cache) in a real kernel, and fail on any
stderr output.
"""

from __future__ import annotations

import importlib.util
import socket
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient
from test_chapters import warm_matplotlib_font_cache

from recs_course.data import movielens


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cells(port: int) -> list[str]:
    return [
        # GroupLens unreachable (a closed local port): the loader falls back to the mirror.
        textwrap.dedent(
            f"""
            from recs_course.data import movielens
            spec = movielens.REGISTRY["ml-100k"]
            movielens.REGISTRY["ml-100k"] = movielens.Archive(
                "http://127.0.0.1:{port}/ml-100k.zip", spec.size, spec.sha256, spec.files
            )
            """
        ),
        textwrap.dedent(
            """
            from recs_course.data import load_movielens
            ml = load_movielens("ml-100k")
            assert ml.source == "mirror", ml.source
            ml
            """
        ),
        textwrap.dedent(
            """
            import torch
            from recs_course.models import MF
            from recs_course.training import fit
            u = torch.randint(0, 5, (64,)); i = torch.randint(0, 7, (64,)); r = torch.rand(64)
            model = MF(5, 7, dim=4)
            history = fit(model, [(u, i, r)], "mse", torch.optim.Adam(model.parameters()), epochs=2)
            """
        ),
        textwrap.dedent(
            """
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots()
            ax.plot([0, 1], [1, 0])
            plt.show()
            """
        ),
    ]


def _block_widgets(folder) -> str:
    """A folder that, put first on PYTHONPATH, makes ``import ipywidgets`` fail."""
    pkg = folder / "ipywidgets"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('raise ImportError("ipywidgets is hidden by the test")\n')
    return str(folder)


@pytest.mark.skipif(movielens._mirror_paths() is None, reason="the offline mirror is not installed")
@pytest.mark.parametrize("widgets", ["without-ipywidgets", "with-ipywidgets"])
def test_first_cells_write_nothing_to_stderr_on_cold_caches(widgets, tmp_path, monkeypatch):
    if widgets == "with-ipywidgets" and importlib.util.find_spec("ipywidgets") is None:
        pytest.skip("ipywidgets is not installed")
    monkeypatch.setenv("RECS_COURSE_DATA", str(tmp_path / "data"))  # empty data cache
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))  # a new matplotlib cache,
    warm_matplotlib_font_cache()  # with its font list built first, as make book does
    monkeypatch.delenv("RECS_COURSE_PROGRESS", raising=False)  # a reader's default: bars on
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own inline backend
    if widgets == "without-ipywidgets":
        monkeypatch.setenv("PYTHONPATH", _block_widgets(tmp_path / "block"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in _cells(_closed_port())]
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    stderr = [
        out.text
        for cell in nb.cells
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stderr"
    ]
    assert stderr == [], f"the cells wrote to stderr ({widgets}):\n" + "".join(stderr)
    assert (tmp_path / "data" / "ml-100k.parsed.npz").is_file(), "the cold load was cached"
    images = [o for o in nb.cells[-1].outputs if "image/png" in o.get("data", {})]
    assert images, "the plot was drawn inline"
