"""The `benchmarks` package: its rendering, its command line, and what the peers' environments
can import (they have no recs_course, torch or numpy at import time). Nothing here trains."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_peer_side_modules_import_with_the_standard_library_only():
    """What runs in .venv-recbole / .venv-surprise imports no third-party module at import."""
    code = """
import importlib.abc, sys
BLOCKED = {"recs_course", "torch", "numpy", "pandas", "scipy", "tabulate", "recbole", "surprise"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} imported")
sys.meta_path.insert(0, Block())
import benchmarks, benchmarks.common, benchmarks.recbole_settings, benchmarks.recbole_split
import benchmarks.recbole_run, benchmarks.surprise_run
args = benchmarks.recbole_run.parse_args(["--protocol", "ncf", "--split-dir", "x"])
assert args.protocol == "ncf" and args.threads == 1
assert benchmarks.surprise_run.parse_args(["--ratings", "r", "--out", "o"]).models == ["SVD", "SVDpp"]
print("ok")
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_recbole_settings_shared_by_both_sides():
    from benchmarks.recbole_settings import MODELS, PROTOCOLS

    assert set(MODELS) == set(PROTOCOLS) == {"ncf", "temporal", "recbole"}
    # RecBole's own protocol ranks and stops as the temporal one, with its own description
    temporal, own = PROTOCOLS["temporal"], PROTOCOLS["recbole"]
    assert list(own) == list(temporal) and own["text"] != temporal["text"]
    assert {k: v for k, v in own.items() if k != "text"} == {
        k: v for k, v in temporal.items() if k != "text"
    }


def test_peers_command_line_sections():
    from benchmarks.peers.__main__ import parse_args

    assert parse_args(["--only", "scaling, explicit"]).only == ["explicit", "scaling"]
    assert parse_args([]).only == ["explicit", "ranking", "speed", "scaling"]
    for bad in (["--only", "explicit,nope"], ["--only", ","], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_tables_are_unpadded_pipe_tables():
    pytest.importorskip("tabulate")
    from benchmarks.peers.report import fmt, table

    assert table(["model", "RMSE", "RMSE"], [["a", 0.91234, None], ["b c", 12.34, 3]]) == (
        "| model | RMSE | RMSE |\n|---|---|---|\n| a | 0.912 | n/a |\n| b c | 12.3 | 3 |"
    )
    assert table(["x", "y"], []) == "| x | y |\n|---|---|"
    formatted = [fmt(x) for x in (0.001234, 0.5, 123.4, "s", 7)]
    assert formatted == ["0.001234", "0.500", "123", "s", "7"]


def test_render_only_rewrites_the_stored_report_byte_for_byte(tmp_path):
    """`--render-only` reproduces the committed peers.md from the committed JSON, without
    torch or recs_course. A failure here means peers.md is stale (or the rendering changed):
    run `python -m benchmarks.peers --render-only`."""
    pytest.importorskip("tabulate")
    pytest.importorskip("matplotlib")
    stored = RESULTS / "peers.json"
    if not stored.exists():
        pytest.skip("no stored peers.json")
    shutil.copy(stored, tmp_path / "peers.json")
    code = f"""
import sys
from benchmarks.peers.__main__ import main
assert main(["--render-only", "--out-dir", {str(tmp_path)!r}]) == 0
heavy = sorted(m for m in ("torch", "recs_course") if m in sys.modules)
assert not heavy, heavy
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "peers.md").read_bytes() == (RESULTS / "peers.md").read_bytes()
    report = json.loads(stored.read_text())
    expected = {"peers.md"}
    if report.get("speed", {}).get("rows"):
        expected.add("peers_speed.png")
    if report.get("scaling"):
        expected.add("peers_scaling.png")
    assert expected <= {p.name for p in tmp_path.iterdir()}
