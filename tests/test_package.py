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
