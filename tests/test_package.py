"""The package root and `recs_course.utils`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import recs_course
from recs_course import utils


def test_import_is_silent_offline_and_does_not_import_torch():
    code = (
        "import sys, recs_course; "
        "assert 'torch' not in sys.modules, 'torch imported eagerly'; "
        "assert 'pandas' not in sys.modules, 'pandas imported eagerly'; "
        "print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "ok"
    assert out.stderr == ""


def test_submodules_load_lazily_and_unknown_attribute_fails():
    assert recs_course.utils is utils
    assert "data" in dir(recs_course)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        recs_course.nope  # noqa: B018


def test_get_device_auto_and_explicit():
    dev = utils.get_device("auto")
    assert isinstance(dev, torch.device)
    if not torch.cuda.is_available():
        assert dev.type in {"cpu", "mps"}
    assert utils.get_device("cpu") == torch.device("cpu")
    assert utils.get_device(None) == dev


def test_get_device_rejects_unavailable_and_unknown():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            utils.get_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        utils.get_device("tpu-please")


def test_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert utils.set_threads(1) == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("RECS_COURSE_THREADS", "2")
        assert utils.default_threads() == 2
        monkeypatch.delenv("RECS_COURSE_THREADS")
        assert 1 <= utils.default_threads() <= 8
        monkeypatch.setenv("RECS_COURSE_THREADS", "many")
        with pytest.raises(ValueError, match="not an integer"):
            utils.default_threads()
        monkeypatch.setenv("RECS_COURSE_THREADS", "0")
        with pytest.raises(ValueError, match="at least 1"):
            utils.default_threads()
        with pytest.raises(ValueError, match="positive integer"):
            utils.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_oldest_constraints_pin_the_declared_floors():
    """constraints/oldest.txt (make test-oldest) installs exactly the floors pyproject declares."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement
    from packaging.version import Version

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for r in project["optional-dependencies"]["test"]]
    floors = {}
    for req in declared:
        for spec in req.specifier:
            if spec.operator == ">=":
                floors[req.name.lower()] = spec.version
    pins = {}
    for line in (root / "constraints" / "oldest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower()] = spec.version
    declared_names = {req.name.lower() for req in declared}
    runtime = {Requirement(r).name.lower() for r in project["dependencies"]} - {"torch"}
    assert runtime <= set(pins), f"pin the floors of {sorted(runtime - set(pins))}"
    for name, version in pins.items():
        if name not in declared_names:
            continue  # a pin of a dependency's dependency, of its time (commented in the file)
        assert name in floors and Version(floors[name]) == Version(version), (
            f"constraints/oldest.txt pins {name}=={version}, pyproject's floor is "
            f"{floors.get(name)}: keep them equal"
        )


def test_flags_and_environment_switches_are_strict(monkeypatch):
    """A string for a flag is truthy in Python ("no" would mean True): refuse it."""
    import pandas as pd

    from recs_course.data import chronological_split
    from recs_course.models import MF
    from recs_course.training import fit

    assert utils.check_flag("x", True) is True and utils.check_flag("x", False) is False
    for bad in ("no", 1, None):
        with pytest.raises(ValueError, match="x must be True or False"):
            utils.check_flag("x", bad)
    r = pd.DataFrame({"user_id": [0, 0, 1], "item_id": [0, 1, 0], "timestamp": [1, 2, 3]})
    with pytest.raises(ValueError, match="per_user must be True or False"):
        chronological_split(r, per_user="no")
    model = MF(2, 2, dim=2)
    batch = [(torch.tensor([0]), torch.tensor([1]), torch.tensor([1.0]))]
    with pytest.raises(ValueError, match="progress must be True or False"):
        fit(model, batch, "mse", torch.optim.SGD(model.parameters(), lr=0.1), 1, progress="no")
    monkeypatch.setenv("RECS_COURSE_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="RECS_COURSE_PROGRESS='maybe'"):
        utils.progress_enabled()
    monkeypatch.setenv("RECS_COURSE_PROGRESS", "0")
    assert utils.progress_enabled() is False
    monkeypatch.setenv("RECS_COURSE_PROGRESS", "1")
    assert utils.progress_enabled() is True and utils.progress_enabled(False) is False
    with pytest.raises(ValueError, match="more than 4 x"):
        utils.set_threads(10**6)


def _flag_calls(tmp_path):
    """``flag name -> call`` for a flag of each function that takes one, given the string "no"."""
    import numpy as np
    import pandas as pd

    from recs_course import plots
    from recs_course.data import Batches, interaction_matrix, load_movielens, sample_negatives
    from recs_course.models import MF
    from recs_course.notebook import setup
    from recs_course.training import load_checkpoint

    frame = pd.DataFrame({"user_id": [0, 0], "item_id": [0, 1]})
    return {
        "Batches(shuffle)": lambda: Batches(torch.arange(3), batch_size=2, shuffle="no"),
        "Batches(drop_last)": lambda: Batches(torch.arange(3), batch_size=2, drop_last="no"),
        "load_movielens(download)": lambda: load_movielens(data_home=tmp_path, download="no"),
        "load_checkpoint(strict)": lambda: load_checkpoint(
            tmp_path / "none.pt", MF(2, 2, dim=2), strict="no"
        ),
        "setup(verbose)": lambda: setup("cpu", 0, verbose="no"),
        "plot_lr_schedule(log)": lambda: plots.plot_lr_schedule([0.1, 0.2], log="no"),
        "plot_popularity(log)": lambda: plots.plot_popularity(frame, log="no"),
        "plot_matrix_slice(colorbar)": lambda: plots.plot_matrix_slice(np.eye(3), colorbar="no"),
        "sample_negatives(replace)": lambda: sample_negatives(
            [0], interaction_matrix(frame, values="ones"), 1, replace="no"
        ),
    }


@pytest.mark.parametrize(
    "call",
    [
        "Batches(shuffle)",
        "Batches(drop_last)",
        "load_movielens(download)",
        "load_checkpoint(strict)",
        "setup(verbose)",
        "plot_lr_schedule(log)",
        "plot_popularity(log)",
        "plot_matrix_slice(colorbar)",
        "sample_negatives(replace)",
    ],
)
def test_every_flag_refuses_a_string_naming_it(call, tmp_path):
    """``"no"`` is truthy: each flag is checked by utils.check_flag before anything happens."""
    import matplotlib.pyplot as plt

    flag = call[call.index("(") + 1 : -1]
    threads = torch.get_num_threads()
    try:
        with pytest.raises(ValueError, match=f"^{flag} must be True or False, got 'no'$"):
            _flag_calls(tmp_path)[call]()
        assert plt.get_fignums() == []  # refused before drawing
    finally:
        plt.close("all")
        torch.set_num_threads(threads)


def test_set_threads_takes_numpy_integers_and_names_n():
    import numpy as np

    before = torch.get_num_threads()
    try:
        assert utils.set_threads(np.int64(1)) == 1 and torch.get_num_threads() == 1
        for bad in (0, True, 1.0, "2"):
            with pytest.raises(ValueError, match="n must be a positive integer"):
                utils.set_threads(bad)
    finally:
        torch.set_num_threads(before)


def test_check_number_takes_finite_real_numbers_only():
    import math

    import numpy as np

    assert utils.check_number("x", 3) == 3.0 and isinstance(utils.check_number("x", 3), float)
    assert utils.check_number("x", np.float32(0.5), low=0.0, strict=True) == 0.5
    assert utils.check_number("x", np.int64(0), low=0.0) == 0.0
    for bad in (True, np.bool_(False), "1", None, torch.tensor(1.0), math.nan, math.inf, 10**400):
        with pytest.raises(ValueError, match="x must be a finite number"):
            utils.check_number("x", bad)
    with pytest.raises(ValueError, match=r"x must be a finite positive number \(hint\), got 0"):
        utils.check_number("x", 0, low=0.0, strict=True, hint=" (hint)")
    with pytest.raises(ValueError, match="x must be a finite number >= 1, got 0.5"):
        utils.check_number("x", 0.5, low=1.0)


def test_metric_names_must_be_a_name_or_a_sequence_of_names():
    from recs_course.metrics import metric_keys, ranking_metrics

    scores, relevant = torch.rand(2, 4), torch.eye(2, 4, dtype=torch.bool)
    for bad in (None, 5):
        with pytest.raises(ValueError, match="metrics must be a metric name or a sequence"):
            metric_keys(10, bad)
        with pytest.raises(ValueError, match="metrics must be a metric name or a sequence"):
            ranking_metrics(scores, relevant, ks=2, metrics=bad)
    assert metric_keys(10, "HR") == ["HR@10"]
