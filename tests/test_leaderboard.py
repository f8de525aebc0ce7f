"""The recorded leaderboard (``python -m benchmarks.leaderboard``) is today's recipes' and is
self-consistent: a recipe changed without a new run, or a verdict that contradicts its
interval, fails here (and the book's leaderboard page refuses to build)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recs_course.compare import TIE
from recs_course.recipes import RECIPES

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "benchmarks" / "results" / "leaderboard.json"


@pytest.fixture(scope="module")
def board() -> dict:
    return json.loads(BOARD.read_text())


def test_every_recipe_has_its_row_with_todays_settings(board):
    recorded = {
        row["recipe"]: row for protocol in board["protocols"].values() for row in protocol["rows"]
    }
    assert set(recorded) == set(RECIPES), "run python -m benchmarks.leaderboard"
    for key, row in recorded.items():
        assert row["settings"] == json.loads(json.dumps(RECIPES[key].summary())), key
        assert len(row["per_seed"]) == len(board["training_seeds"]) >= 3, key


def test_leader_is_the_best_mean_and_verdicts_follow_the_intervals(board):
    for name, protocol in board["protocols"].items():
        metric = protocol["ranked_by"]
        lower = metric == "RMSE"
        means = {row["model"]: row["mean"][metric] for row in protocol["rows"]}
        best = min(means, key=means.get) if lower else max(means, key=means.get)
        assert protocol["leader"] == best == protocol["rows"][0]["model"], name
        for row in protocol["rows"][1:]:
            vs = row["vs_leader"]
            assert vs["low"] <= vs["difference"] <= vs["high"], row["model"]
            if vs["low"] <= 0 <= vs["high"]:
                assert vs["verdict"] == TIE, row["model"]
            else:
                assert vs["verdict"] != TIE, row["model"]
            assert vs["line"].endswith(vs["verdict"])
            per_seed = [s[metric] for s in row["per_seed"]]
            assert row["mean"][metric] == pytest.approx(sum(per_seed) / len(per_seed))
