"""The `benchmarks` package: its rendering, its command line, what the peers' environments can
import (they have no recs_course, torch or numpy at import time), and the quality benchmark's
plumbing on tiny synthetic data (how a peer's scores are evaluated by a protocol, the recipes'
translation for RecBole). Neither RecBole's nor surprise's environment is needed."""

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
args = benchmarks.recbole_run.parse_args(
    ["--protocol", "temporal", "--models-json", "m.json", "--scores-dir", "s", "--seed", "2"]
)
assert (args.models_json, args.scores_dir, args.seed) == ("m.json", "s", 2)
args = benchmarks.surprise_run.parse_args(["--ratings", "r", "--out", "o"])
assert args.models == ["SVD", "SVDpp"] and args.seeds == [0] and args.params == {}
args = benchmarks.surprise_run.parse_args(
    ["--ratings", "r", "--out", "o", "--seeds", "0", "1", "--params", '{"SVD": {"n_factors": 8}}']
)
assert args.seeds == [0, 1] and args.params == {"SVD": {"n_factors": 8}}
cls, config, notes = benchmarks.recbole_settings.from_recipe(
    {"model": "LightGCN", "options": {"dim": 8, "n_layers": 2, "reg": 1e-4}, "loss": "bpr",
     "optimizer": "adam", "lr": 0.01, "weight_decay": 0.0, "decay": "all", "batch_size": 64,
     "n_neg": 1, "epochs": 7, "patience": 3, "schedule": None}
)
assert cls == "LightGCN" and config["stopping_step"] == 3 and config["require_pow"] is True
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


# ------------------------------------------------------------------ benchmarks.quality


def test_quality_command_line():
    from benchmarks.quality import parse_args

    args = parse_args([])
    assert args.only == ["explicit", "sampled", "full"]
    assert args.peers == ["surprise", "recbole", "implicit"]
    assert args.seeds == args.recbole_seeds == [0, 1, 2] and args.threads == 1
    args = parse_args(["--only", "full,explicit", "--peers", "none", "--recbole-seeds", "0"])
    assert args.only == ["explicit", "full"] and args.peers == [] and args.recbole_seeds == [0]
    assert parse_args(["--quick"]).out_dir != str(RESULTS)  # a smoke run writes elsewhere
    for bad in (["--only", "nope"], ["--peers", "x"], ["--seeds", "0,0"], ["--threads", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_quality_pairs_name_recipes_and_peers():
    from benchmarks.quality import COURSE, PAIRS, PEERS, SECTIONS
    from recs_course.recipes import RECIPES

    for name in SECTIONS:
        for label in COURSE[name]:
            assert f"{name}/{label}" in RECIPES
        for _, _, label in PEERS[name].values():
            assert label in COURSE[name]
        for course, peer, kind in PAIRS[name]:
            assert course in COURSE[name] and peer in PEERS[name]
            assert kind in ("same model", "best explicit", "other")


def test_recbole_gets_the_recipes_values():
    """Every recipe with a RecBole peer translates: sizes, rate, decay, batch, negatives,
    epochs and patience are the recipe's."""
    from benchmarks.quality import PEERS, recipe_fields
    from benchmarks.recbole_settings import from_recipe
    from recs_course.recipes import RECIPES

    for name, peers in PEERS.items():
        for library, model, label in peers.values():
            if library != "recbole":
                continue
            recipe = RECIPES[f"{name}/{label}"]
            cls, config, _ = from_recipe(recipe_fields(recipe))
            opts = recipe.model_options
            assert cls == ("NeuMF" if model == "GMF" else model)
            assert config["learning_rate"] == recipe.lr
            assert config["weight_decay"] == recipe.weight_decay
            assert config["train_batch_size"] == recipe.batch_size
            assert (config["epochs"], config["stopping_step"]) == (recipe.epochs, recipe.patience)
            negatives = recipe.n_neg if (recipe.loss == "bce" and cls == "NeuMF") else 1
            assert config["train_neg_sample_args"]["sample_num"] == negatives
            if cls == "NeuMF":
                assert config["mf_embedding_size"] == opts["dim"]
                assert config["mlp_train"] is (model == "NeuMF")
                if "layers" in opts:
                    assert config["mlp_embedding_size"] == opts["layers"][0] // 2
                    assert config["mlp_hidden_size"] == list(opts["layers"][1:])
            else:
                assert config["embedding_size"] == opts["dim"]
            if cls == "NGCF":
                assert config["hidden_size_list"] == list(opts["layer_dims"])
                assert config["reg_weight"] == opts["reg"]
            if cls == "LightGCN":
                assert (config["n_layers"], config["reg_weight"]) == (opts["n_layers"], opts["reg"])


@pytest.fixture(scope="module")
def tiny_ratings():
    from recs_course.data import synthetic_ratings

    return synthetic_ratings(n_users=40, n_items=200, n_ratings=1500, seed=3).ratings


def _same_metrics(a, b):
    assert dict(a) == pytest.approx(dict(b), abs=1e-6)
    assert a.per_user["user"].tolist() == b.per_user["user"].tolist()
    for column in a.per_user.columns:
        assert a.per_user[column].to_numpy() == pytest.approx(
            b.per_user[column].to_numpy(), abs=1e-6, nan_ok=True
        )


def test_a_peers_scores_are_evaluated_as_the_model_they_come_from(tiny_ratings):
    """A model's own scores, handed over as a peer's (a table by raw ids, in another order;
    predictions of the test pairs), give the same per-user metrics on every protocol."""
    import numpy as np
    import torch

    from benchmarks.quality import rating_lookup, raw_scores_table
    from recs_course.models import MF
    from recs_course.protocols import explicit_ratings, full_ranking, sampled_ranking

    for make in (sampled_ranking, full_ranking):
        protocol = make(tiny_ratings, seed=0)
        torch.manual_seed(0)
        model = MF(protocol.n_users, protocol.n_items, dim=4).eval()
        with torch.no_grad():
            scores = model.score_all(torch.arange(protocol.n_users)).numpy()
        perm_u = np.random.default_rng(0).permutation(protocol.n_users)
        perm_i = np.random.default_rng(1).permutation(protocol.n_items)
        raw_u = protocol.encoder.inverse_users(perm_u)
        raw_i = protocol.encoder.inverse_items(perm_i)
        extra_user = np.array([raw_u.max() + 1])  # a user the protocol does not know: ignored
        table, missing = raw_scores_table(
            protocol,
            np.vstack([scores[np.ix_(perm_u, perm_i)], np.zeros((1, protocol.n_items))]),
            np.concatenate([raw_u, extra_user]),
            raw_i,
        )
        assert missing == 1
        _same_metrics(protocol.evaluate(table), protocol.evaluate(model))

    protocol = explicit_ratings(tiny_ratings, seed=0)
    model = MF(protocol.n_users, protocol.n_items, dim=4, y_range=(0.5, 5.5)).eval()
    users = torch.tensor(protocol.test["user_id"].to_numpy())
    items = torch.tensor(protocol.test["item_id"].to_numpy())
    with torch.no_grad():
        predictions = model(users, items).numpy()
    order = np.random.default_rng(2).permutation(len(users))
    lookup = rating_lookup(
        users.numpy()[order], items.numpy()[order], predictions[order], protocol.n_items
    )
    _same_metrics(protocol.evaluate(lookup), protocol.evaluate(model))


def test_split_files_are_the_protocols_rows_in_raw_ids(tiny_ratings, tmp_path):
    import pandas as pd

    from benchmarks.quality import split_files
    from recs_course.protocols import full_ranking

    protocol = full_ranking(tiny_ratings)
    directory = split_files(protocol, tmp_path / "split")
    for part in ("train", "valid", "test"):
        frame = pd.read_csv(directory / f"{part}.tsv", sep="\t")
        assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
        again = protocol.encoder.transform(frame)
        expected = getattr(protocol, part)
        assert again[["user_id", "item_id"]].equals(expected[["user_id", "item_id"]])


def test_quality_sections_render_on_tiny_data(tiny_ratings, monkeypatch, tmp_path):
    """Every protocol's course side (one seed, one epoch) with the peers a test can run
    (implicit, when installed; surprise and RecBole need their environments), the targets and
    quality.md."""
    import argparse

    from benchmarks import quality

    peers = []
    try:
        import implicit  # noqa: F401

        peers = ["implicit"]
    except ImportError:
        pass
    args = argparse.Namespace(seeds=[0, 1], recbole_seeds=[0], threads=1, peers=peers)
    sections = {}
    for name in quality.SECTIONS:
        monkeypatch.setitem(
            quality.COURSE, name, quality.COURSE[name][:1] + ("ALS",) * (name != "explicit")
        )
        sections[name] = quality.run_section(name, tiny_ratings, args, tmp_path / name, cap=1)
        sections[name].update(command="python -m benchmarks.quality", created="now", wall_s=1.0)
        json.dumps(sections[name], allow_nan=False)  # plain data only
    if peers:
        pairs = [r for s in sections.values() for r in s["pairs"]]
        assert {r["peer"] for r in pairs} == {"implicit ALS"}
        assert all(r["n_seeds"] == [2, 2] for r in pairs)
    report = {"sections": sections, "machine": "m", "threads": 1, "quick": True}
    report["targets"] = quality.targets(sections)
    assert any("MF with biases RMSE" in t["target"] for t in report["targets"])
    text = quality.markdown(report)
    assert "## Explicit ratings" in text and "## Implicit, full ranking" in text
    assert "Quick run" in text
