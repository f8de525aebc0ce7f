"""`recs_course.notebook`: quick mode, set-up, recording figures and reading them back."""

import json

import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

from recs_course import notebook as rn


def test_quick_mode_reads_the_environment(monkeypatch):
    monkeypatch.delenv(rn.QUICK_ENV, raising=False)
    assert rn.quick_mode() is False
    for v in ("1", "true", "YES", " on "):
        monkeypatch.setenv(rn.QUICK_ENV, v)
        assert rn.quick_mode() is True
    for v in ("0", "false", "", "off"):
        monkeypatch.setenv(rn.QUICK_ENV, v)
        assert rn.quick_mode() is False
    monkeypatch.setenv(rn.QUICK_ENV, "maybe")
    with pytest.raises(ValueError, match="RECS_COURSE_QUICK"):
        rn.quick_mode()


def test_setup_seeds_and_returns_device(capsys):
    old = torch.get_num_threads()
    try:
        dev = rn.setup("cpu", seed=3, threads=1)
        a = torch.rand(3)
        rn.setup("cpu", seed=3, threads=1, verbose=False)
        b = torch.rand(3)
    finally:
        torch.set_num_threads(old)
    assert dev == torch.device("cpu")
    assert torch.equal(a, b)
    assert "device: cpu" in capsys.readouterr().out
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        rn.setup("cpu", threads=0)
    with pytest.raises(ValueError, match="verbose must be True or False"):
        rn.setup("cpu", verbose="no")


def test_setup_takes_numpy_integers_for_threads():
    old = torch.get_num_threads()
    try:
        rn.setup("cpu", seed=np.int64(3), threads=np.int64(1), verbose=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_record_rejects_bad_names_and_values():
    with pytest.raises(ValueError, match="identifier"):
        rn.record("not a name", 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        rn.record("x", float("nan"))
    with pytest.raises(ValueError, match="record"):
        rn.record("x", object())


def test_record_converts_numpy_and_torch_values():
    assert rn._plain(np.float32(0.5)) == 0.5
    assert rn._plain(torch.tensor([1, 2])) == [1, 2]
    assert rn._plain({"a": np.arange(2)}) == {"a": [0, 1]}
    assert rn.record("x", 2.5) == 2.5  # returned unchanged (no IPython display outside a kernel)


def test_records_round_trip_through_a_kernel(tmp_path):
    """Executed in a real kernel, values come back from the notebook file, as myst_nb reads them."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import numpy as np\nfrom recs_course.notebook import record\n"
            "record('rmse', np.float64(0.91))\nrecord('curve', [0.1, 0.2])\n"
            "record('label', 'NeuMF')\nrecord('flags', {'ok': True})"
        )
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    got = rn.read_records(path)
    assert got == {"rmse": 0.91, "curve": [0.1, 0.2], "label": "NeuMF", "flags": {"ok": True}}
    # The outputs carry myst_nb.glue's metadata, so {glue:} works in the book.
    outs = [o for o in nb.cells[0].outputs if o.output_type == "display_data"]
    assert len(outs) == 4
    assert all(o.metadata["scrapbook"]["mime_prefix"] == rn.RECORD_PREFIX for o in outs)
    # Nothing visible: every mime type is behind the glue prefix.
    assert all(k.startswith(rn.RECORD_PREFIX) for o in outs for k in o.data)


def test_read_records_falls_back_to_text(tmp_path):
    """Values glued by myst_nb itself (text/plain only) are read with literal_eval."""
    cell = {
        "cell_type": "code",
        "outputs": [
            {
                "output_type": "display_data",
                "metadata": {"scrapbook": {"name": "hr", "mime_prefix": rn.RECORD_PREFIX}},
                "data": {rn.RECORD_PREFIX + "text/plain": "0.65"},
            },
            {"output_type": "stream", "name": "stdout", "text": "hello"},
        ],
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [cell, {"cell_type": "markdown", "source": ""}]}))
    assert rn.read_records(path) == {"hr": 0.65}


def test_benchmark_result_finds_the_local_copy_from_a_subfolder(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "peer.json").write_text('{"rmse": 0.91}')
    sub = tmp_path / "book"
    sub.mkdir()
    assert rn.benchmark_result("peer.json", start=sub, url=None) == {"rmse": 0.91}


def test_benchmark_result_reads_the_repository_copy():
    # The chapters run from book/ or a temporary folder; the clone's own results are found.
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "quality.json"
    got = rn.benchmark_result("quality.json", start="/", url=None)
    assert got == json.loads(repo.read_text())


def test_benchmark_result_rejects_paths_and_corrupt_files(tmp_path, monkeypatch):
    for bad in ("../secret.json", "results/quality.json", "quality.csv", ".hidden.json", 3):
        with pytest.raises(ValueError, match="file name"):
            rn.benchmark_result(bad, start=tmp_path, url=None)
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "broken.json").write_text('{"rmse": 0.9')
    with pytest.raises(ValueError, match="not valid JSON"):
        rn.benchmark_result("broken.json", start=tmp_path, url=None)


def test_benchmark_result_says_what_to_do_when_missing(tmp_path, monkeypatch):
    # Not in the working copy, not beside the package, no fetching: a clear error.
    monkeypatch.setattr(rn, "_results_dirs", lambda start: [tmp_path / "none"])
    with pytest.raises(FileNotFoundError, match="clone of the repository"):
        rn.benchmark_result("missing.json", start=tmp_path, url=None)
    # Fetching from an unreachable address fails with the same advice.
    with pytest.raises(FileNotFoundError, match="fetching"):
        rn.benchmark_result("missing.json", start=tmp_path, url="http://127.0.0.1:9/")
