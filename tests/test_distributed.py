"""Data-parallel NCF training with torch.distributed (``recs_course.distributed``).

The multi-process runs go through ``launch`` (torchrun, gloo, one thread per process): they cost
a few seconds each, mostly importing torch in every process, so a few module-scoped runs serve
several tests. One-process runs call ``main`` in this process (no start-up cost).
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch

from recs_course import distributed as D
from recs_course.models import GMF
from recs_course.training import load_checkpoint

# 300 users (all kept: 300 test users), 200 items; lr 1e-3 learns visibly between epochs 1
# and 3 (HR@10 from 0.1-0.3 to about 0.5 on this data).
BASE = dict(
    data="synthetic:300:200:6000",
    user_fraction=1.0,
    model="gmf",
    dim=16,
    lr=1e-3,
    batch_size=256,
    epochs=3,
    data_seed=0,
)
TRAIN_SEEDS = range(5)  # the one-process runs whose spread the two-process run is held to


def config(tmp, name, **changes):
    return D.DDPConfig(**{**BASE, "out_dir": str(tmp / name), **changes})


def run_here(cfg: D.DDPConfig, resume: bool = False) -> dict:
    """One process, in this process: ``main`` on the config's JSON."""
    D._atomic_write_json(D.Path(cfg.out_dir) / D.CONFIG_FILE, cfg.to_dict())
    args = ["--config", str(D.Path(cfg.out_dir) / D.CONFIG_FILE)] + (["--resume"] * resume)
    with contextlib.redirect_stdout(io.StringIO()):
        return D.main(args)


def final(results, key="HR@10"):
    return results["epochs"][-1][key]


# --------------------------------------------------------------------------- shared runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    out = {"tmp": tmp}
    out["two"] = D.launch(config(tmp, "two", seed=0), nproc=2, timeout=240)
    # Interrupted after one epoch, then resumed to three: two processes again.
    out["two_part"] = D.launch(config(tmp, "two_resumed", seed=0, epochs=1), nproc=2, timeout=240)
    out["two_resumed"] = D.launch(
        config(tmp, "two_resumed", seed=0), nproc=2, resume=True, timeout=240
    )
    # One process in this process, for the training seeds' spread ...
    out["one"] = [run_here(config(tmp, f"one_{s}", seed=s)) for s in TRAIN_SEEDS]
    # ... and through launch (plain python, no torchrun), two epochs of seed 0, to resume here.
    out["one_part"] = D.launch(config(tmp, "one_resumed", seed=0, epochs=2), nproc=1, timeout=240)
    return out


def test_two_processes_learn(runs):
    res = runs["two"]
    assert res["world_size"] == 2 and res["backend"] == "gloo" and res["device"] == "cpu"
    assert res["threads_per_process"] == 1
    hr = [e["HR@10"] for e in res["epochs"]]
    assert len(hr) == 3
    # Random ranking gets HR@10 = 10 / 100; the trained model at least three times that, and
    # clearly more than after its first epoch.
    assert hr[-1] > 0.3
    assert hr[-1] > hr[0] + 0.1
    losses = [e["loss"] for e in res["epochs"]]
    assert losses[-1] < losses[0] < math.log(2) + 1e-3


def test_one_and_two_processes_agree(runs):
    """Two processes take the same optimiser steps over the same global batches of positives
    as one (shard_positions guarantees it, test below); only the negatives differ (drawn per
    rank). So a two-process run is one more draw of the training randomness, and it is held to
    the spread of one-process runs over training seeds on the same data (data_seed fixed).

    Tolerances: a prediction interval, 3 standard deviations of the one-process seeds (times
    sqrt(1 + 1/k) for k seeds), floored because 5 seeds estimate the deviation loosely: HR@10
    at 0.03, about one binomial standard error of an HR near 0.5 over the 300 test users
    (sqrt(0.25 / 300) = 0.029; two runs ranked on the same users and candidates differ by less
    than the error of one), and the mean training loss at 1e-3, a tenth of its drop over the
    last epoch. A run whose gradients were not averaged right (a DDP sum instead of a mean, or
    a halved rate) moves its loss by several times that.
    """
    one, two = runs["one"], runs["two"]
    k = len(one)
    for key, floor in (("HR@10", 0.03), ("loss", 1e-3)):
        values = np.array([final(r, key) for r in one])
        tol = max(3 * values.std(ddof=1) * math.sqrt(1 + 1 / k), floor)
        assert abs(final(two, key) - values.mean()) <= tol, (key, final(two, key), values, tol)
    assert two["steps_per_epoch"] == one[0]["steps_per_epoch"]
    assert two["local_batch_size"] * 2 == one[0]["local_batch_size"] == 256
    assert [e["positives"] for e in two["epochs"]] == [e["positives"] for e in one[0]["epochs"]]


def test_launch_one_process_is_main(runs):
    """The plain-python child gives what main gives in this process, number for number."""
    launched, here = runs["one_part"], runs["one"][0]
    assert launched["world_size"] == 1 and launched["backend"] is None
    for a, b in zip(launched["epochs"], here["epochs"][:2], strict=True):
        assert (a["HR@10"], a["NDCG@10"], a["loss"]) == (b["HR@10"], b["NDCG@10"], b["loss"])


def test_results_hold_the_chapters_figures(runs):
    res = runs["two"]
    epoch = res["epochs"][-1]
    for key in ("HR@10", "NDCG@10", "loss", "wall_s", "examples_per_s", "positives_per_s"):
        assert math.isfinite(epoch[key]) and epoch[key] >= 0
    times = epoch["time"]
    for key in ("sampling", "forward", "backward", "optimizer", "evaluation", "checkpoint"):
        assert times[key] >= 0
    assert times["allreduce_per_step"] > 0
    assert times["allreduce_estimate"] == pytest.approx(
        times["allreduce_per_step"] * res["steps_per_epoch"]
    )
    assert runs["one"][0]["epochs"][-1]["time"]["allreduce_per_step"] is None
    mem = epoch["peak_memory"]
    assert len(mem["maxrss_bytes"]) == 2 and min(mem["maxrss_bytes"]) > 10**7
    assert mem["cuda_max_allocated_bytes"] is None
    assert epoch["examples"] == epoch["positives"] * 5
    assert res["final"]["HR@10"] == epoch["HR@10"]
    assert res["config"] == config(runs["tmp"], "two", seed=0).to_dict()


def test_checkpoint_written_once_by_rank_zero(runs):
    out = runs["tmp"] / "two"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [D.CONFIG_FILE, D.CHECKPOINT_FILE, D.RESULTS_FILE]
    )  # one checkpoint, no temporary file left
    stored = torch.load(out / D.CHECKPOINT_FILE, weights_only=True)
    assert stored["saved_by_rank"] == 0 and stored["world_size"] == 2 and stored["epoch"] == 3
    assert stored["config"] == runs["two"]["config"]
    res = runs["two"]
    model = GMF(res["n_users"], res["n_items"], dim=16)
    extra = load_checkpoint(out / D.CHECKPOINT_FILE, model)
    assert extra["records"][-1]["HR@10"] == res["epochs"][-1]["HR@10"]


def _checkpoint_state(path):
    return torch.load(path, weights_only=True)["model"]


def test_resume_two_processes_equals_uninterrupted(runs):
    """gloo on the CPU sums two ranks' gradients in a fixed order: resuming is exact."""
    whole, resumed = runs["two"], runs["two_resumed"]
    assert runs["two_part"]["epochs"][0]["HR@10"] == whole["epochs"][0]["HR@10"]
    assert resumed["resumed_at"] == [2]
    for a, b in zip(whole["epochs"], resumed["epochs"], strict=True):
        assert (a["HR@10"], a["NDCG@10"], a["loss"]) == (b["HR@10"], b["NDCG@10"], b["loss"])
    tmp = runs["tmp"]
    s1 = _checkpoint_state(tmp / "two" / D.CHECKPOINT_FILE)
    s2 = _checkpoint_state(tmp / "two_resumed" / D.CHECKPOINT_FILE)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_resume_one_process_equals_uninterrupted(runs):
    """Two epochs in a child process, the third resumed in this one: the same run."""
    cfg = config(runs["tmp"], "one_resumed", seed=0)
    resumed = run_here(cfg, resume=True)
    assert resumed["resumed_at"] == [3]
    whole = runs["one"][0]
    for a, b in zip(whole["epochs"], resumed["epochs"], strict=True):
        assert (a["HR@10"], a["NDCG@10"], a["loss"]) == (b["HR@10"], b["NDCG@10"], b["loss"])
    s1 = _checkpoint_state(runs["tmp"] / "one_0" / D.CHECKPOINT_FILE)
    s2 = _checkpoint_state(runs["tmp"] / "one_resumed" / D.CHECKPOINT_FILE)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    # Resuming a finished run trains nothing and keeps the results.
    again = run_here(cfg, resume=True)
    assert again["epochs"] == resumed["epochs"]
    assert again["epochs"][-1]["time"]["checkpoint"] >= 0


def test_neumf_approximate_negatives_and_validation(tmp_path):
    cfg = config(
        tmp_path, "n", model="neumf", approximate_negatives=True, validation=True,
        max_batches=3, epochs=2, user_fraction=0.5,
    )  # fmt: skip
    res = run_here(cfg)
    assert res["steps_per_epoch"] == 3
    assert [e["positives"] for e in res["epochs"]] == [3 * 256] * 2
    for key in ("HR@10", "NDCG@10", "valid_HR@10", "valid_NDCG@10"):
        assert 0 <= res["final"][key] <= 1
    assert res["n_test_users"] <= 150


def test_resume_refuses_another_config(tmp_path):
    cfg = config(tmp_path, "r", seed=0, epochs=1, max_batches=2)
    run_here(cfg)
    with pytest.raises(ValueError, match=r"differs from the checkpoint's in lr"):
        run_here(cfg.replace(lr=0.01, epochs=2), resume=True)
    with pytest.raises(ValueError, match="no checkpoint.pt"):
        run_here(config(tmp_path, "empty"), resume=True)


def test_failing_children_raise_with_their_message(tmp_path):
    cfg = config(tmp_path, "nothing_to_resume")
    with pytest.raises(RuntimeError, match=r"2 process\(es\) failed.*no checkpoint\.pt"):
        D.launch(cfg, nproc=2, resume=True, timeout=120)


def test_launch_stops_a_run_past_its_timeout(tmp_path):
    with pytest.raises(RuntimeError, match=r"did not finish within timeout=0.5 s"):
        D.launch(config(tmp_path, "slow"), nproc=1, timeout=0.5)


# --------------------------------------------------------------------------- sharding
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [1, 5, 12, 103])
def test_shards_are_disjoint_and_cover_the_epoch(world_size, n):
    shards = [D.shard_positions(n, world_size, r, seed=7, epoch=3) for r in range(world_size)]
    assert {len(s) for s in shards} == {-(-n // world_size)}  # the same steps on every rank
    real = torch.cat([s[s >= 0] for s in shards])
    assert torch.equal(real.sort().values, torch.arange(n))  # disjoint, and every positive once
    for s in shards:  # a padding marker can only be a rank's last entry
        assert bool((s[:-1] >= 0).all())
    assert sum(int((s < 0).sum()) for s in shards) == -(-n // world_size) * world_size - n
    # Interleaved, the shards are one permutation, the same whatever the world size: global
    # batch t of B positives is the same set of positives with 1 or W processes.
    woven = torch.stack(shards, dim=1).reshape(-1)
    assert torch.equal(woven[woven >= 0], D.shard_positions(n, 1, 0, seed=7, epoch=3))


def test_shards_change_with_the_epoch_and_seed():
    a = D.shard_positions(1000, 2, 0, seed=0, epoch=1)
    assert not torch.equal(a, D.shard_positions(1000, 2, 0, seed=0, epoch=2))
    assert not torch.equal(a, D.shard_positions(1000, 2, 0, seed=1, epoch=1))
    assert torch.equal(a, D.shard_positions(1000, 2, 0, seed=0, epoch=1))
    with pytest.raises(ValueError, match=r"rank must be an integer in \[0, 2\)"):
        D.shard_positions(10, 2, 2, seed=0, epoch=1)


# --------------------------------------------------------------------------- negatives
def _positives(n_users=50, n_items=40, seed=0):
    """Dense positives: user u owns a random u / n_users share (up to 98%) of the items."""
    g = torch.Generator().manual_seed(seed)
    share = torch.linspace(0.02, 0.98, n_users)
    member = torch.rand(n_users, n_items, generator=g) < share[:, None]
    member[:, 0] = False  # everyone keeps a negative
    u, i = member.nonzero(as_tuple=True)
    keys = torch.unique(u * n_items + i)
    return member, keys


def test_exact_negatives_are_never_positives():
    n_items = 40
    member, keys = _positives(n_items=n_items)
    users = torch.arange(member.shape[0]).repeat(200)
    neg = D.draw_negatives(users, n_items, 4, keys=keys, generator=torch.Generator().manual_seed(1))
    assert neg.shape == (len(users), 4) and neg.dtype == torch.int64
    assert not bool(member[users[:, None], neg].any())
    # Uniform over each user's negatives: the heaviest user's few negatives all come up.
    heavy = member.shape[0] - 1
    got = torch.unique(neg[users == heavy])
    assert torch.equal(got, (~member[heavy]).nonzero().squeeze(1))


def test_approximate_negatives_collide_at_deg_over_n_items():
    n_items = 40
    member, _ = _positives(n_items=n_items)
    users = torch.arange(member.shape[0]).repeat(400)
    neg = D.draw_negatives(users, n_items, 5, keys=None, generator=torch.Generator().manual_seed(2))
    hits = member[users[:, None], neg].double()
    rate = member.sum(1).double() / n_items  # deg(u) / n_items
    expected = rate[users].mean()
    draws = hits.numel()
    se = math.sqrt(float((rate[users] * (1 - rate[users])).mean()) / draws)
    assert abs(float(hits.mean()) - float(expected)) < 4 * se
    # per user too, for a light and a heavy user (2,000 draws each)
    for u in (5, 45):
        observed = float(hits[users == u].mean())
        se_u = math.sqrt(float(rate[u] * (1 - rate[u])) / 2000)
        assert abs(observed - float(rate[u])) < 4 * se_u + 1e-12


def test_negatives_follow_the_generator():
    _, keys = _positives()
    users = torch.arange(50)
    a = D.draw_negatives(users, 40, 3, keys=keys, generator=torch.Generator().manual_seed(5))
    b = D.draw_negatives(users, 40, 3, keys=keys, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


# --------------------------------------------------------------------------- memory
def test_embedding_memory_by_hand():
    m = D.embedding_memory(10, 6, 4, world_size=4)
    # 16 rows of 4 float32 = 16 bytes each: 256 B of parameters, as much gradient, 2 x for Adam
    assert m["replicated"] == {
        "parameters": 256, "gradients": 256, "optimizer_state": 512, "total": 1024,
    }  # fmt: skip
    # row-sharded over 4: ceil(10/4) + ceil(6/4) = 3 + 2 rows = 80 B
    assert m["row_sharded"] == {
        "parameters": 80, "gradients": 80, "optimizer_state": 160, "total": 320,
    }  # fmt: skip
    sgd = D.embedding_memory(10, 6, 4, world_size=1, dtype_bytes=2, optimizer="sgd")
    assert sgd["replicated"]["total"] == sgd["row_sharded"]["total"] == 2 * 16 * 4 * 2
    # ML-25M: 162,541 users, 59,047 rated movies, dim 32, float32, Adam, 8 ranks.
    ml = D.embedding_memory(162_541, 59_047, 32, world_size=8)
    assert ml["replicated"]["parameters"] == 221_588 * 128 == 28_363_264
    assert ml["replicated"]["total"] == 113_453_056
    assert ml["rows_per_rank"] == 20_318 + 7_381
    assert ml["row_sharded"]["total"] == 27_699 * 128 * 4 == 14_181_888
    with pytest.raises(ValueError, match="optimizer must be one of"):
        D.embedding_memory(10, 6, 4, 2, optimizer="lion")
    with pytest.raises(ValueError, match="world_size"):
        D.embedding_memory(10, 6, 4, 0)


# --------------------------------------------------------------------------- configuration
def test_config_round_trip(tmp_path):
    cfg = config(tmp_path, "c", seed=3, max_batches=5, approximate_negatives=True)
    assert D.DDPConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(dataclasses_frozen()):
        cfg.lr = 1.0
    assert D.DDPConfig(out_dir=tmp_path).out_dir == str(tmp_path)


def dataclasses_frozen():
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(model="mlp"), r"model must be one of \('gmf', 'neumf'\)"),
        (dict(data="synthetic:300:200"), "synthetic:<n_users>:<n_items>:<n_ratings>"),
        (dict(data="synthetic:10:5:100"), "n_ratings <= n_users \\* n_items"),
        (dict(data="ml-7m"), "is not a dataset name"),
        (dict(data="shaped:ml-1m:2"), "fraction in \\(0, 1\\]"),
        (dict(user_fraction=0.0), "user_fraction"),
        (dict(user_fraction=1.5), r"user_fraction must be in \(0, 1\]"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(epochs=2.5), "epochs"),
        (dict(lr=-1.0), "lr"),
        (dict(seed=True), "seed must be an integer"),
        (dict(data_seed=-1), "data_seed must be an integer"),
        (dict(approximate_negatives="no"), "approximate_negatives"),
        (dict(max_batches=0), "max_batches"),
        (dict(device="gpu"), "device must be one of"),
        (dict(out_dir=""), "out_dir"),
    ],
)
def test_bad_config_values(changes, message):
    with pytest.raises(ValueError, match=message):
        D.DDPConfig(**{**BASE, **changes})


def test_from_dict_names_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['lrate'\]"):
        D.DDPConfig.from_dict({"lrate": 0.1})


def test_launch_refuses_bad_arguments(tmp_path):
    cfg = config(tmp_path, "x")
    with pytest.raises(ValueError, match="nproc must be a positive integer"):
        D.launch(cfg, nproc=0)
    with pytest.raises(ValueError, match="make it a multiple of 3 .e.g. 255 or 258"):
        D.launch(cfg, nproc=3)
    with pytest.raises(ValueError, match="config must be a DDPConfig"):
        D.launch(cfg.to_dict(), nproc=1)
    with pytest.raises(ValueError, match="resume"):
        D.launch(cfg, nproc=1, resume="yes")
    assert not (tmp_path / "x").exists()  # nothing started, nothing written


def test_shaped_data_is_read_lazily(tmp_path, monkeypatch):
    """``shaped:<name>:<fraction>`` calls recs_course.data.synthetic.movielens_shaped, imported
    only when used (it may not exist yet)."""
    import recs_course.data.synthetic as synthetic

    calls = []

    def fake(name, fraction, seed):
        calls.append((name, fraction, seed))
        return synthetic.synthetic_ratings(60, 50, 900, seed=seed)

    monkeypatch.setattr(synthetic, "movielens_shaped", fake, raising=False)
    cfg = config(tmp_path, "s", data="shaped:ml-1m:0.25", data_seed=4, eval_negatives=20)
    data = D.prepare_data(cfg)
    assert calls == [("ml-1m", 0.25, 4)]
    assert data.test_candidates.shape == (len(data.test_users), 21)
    monkeypatch.delattr(synthetic, "movielens_shaped")
    with pytest.raises(ValueError, match="movielens_shaped"):
        D.prepare_data(cfg)


def test_prepared_data_is_the_protocol(tmp_path):
    cfg = config(tmp_path, "p", validation=True, user_fraction=0.5)
    d = D.prepare_data(cfg)
    # a user sample: half the users (each with a test item), 1 + 99 candidates each
    assert len(d.test_users) <= 150 and d.test_candidates.shape[1] == 100
    assert d.valid_candidates.shape[1] == 100
    # keys are the training pairs, sorted and unique; no candidate negative is a training pair
    assert torch.equal(d.keys, torch.unique(d.users * d.n_items + d.items))
    cand_keys = d.test_users[:, None] * d.n_items + d.test_candidates[:, 1:]
    assert not bool(torch.isin(cand_keys, d.keys).any())
    # the same on every call (every rank prepares its own)
    again = D.prepare_data(cfg)
    assert torch.equal(again.test_candidates, d.test_candidates)
    assert torch.equal(again.users, d.users)


def test_a_ratings_file_round_trips_and_bad_files_are_refused(tmp_path):
    from recs_course.data import synthetic_ratings
    from recs_course.distributed import DDPConfig, load_ratings, save_ratings

    ratings = synthetic_ratings(50, 40, 600, seed=3).ratings
    path = save_ratings(ratings, tmp_path / "sample.npz")
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind
    back = load_ratings(DDPConfig(data=f"file:{path}", out_dir=str(tmp_path / "run")))
    for column in ("user_id", "item_id", "timestamp"):
        np.testing.assert_array_equal(back[column].to_numpy(), ratings[column].to_numpy())
    with pytest.raises(ValueError, match=r"file:<path>.npz"):
        DDPConfig(data="file:sample.csv", out_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="does not exist: write it with save_ratings"):
        load_ratings(DDPConfig(data=f"file:{tmp_path / 'none.npz'}", out_dir=str(tmp_path)))
    np.savez(tmp_path / "other.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="is not a ratings file of save_ratings"):
        load_ratings(DDPConfig(data=f"file:{tmp_path / 'other.npz'}", out_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="missing"):
        save_ratings(ratings.drop(columns="timestamp"), tmp_path / "x.npz")


def test_results_carry_the_popularity_yardstick(tmp_path):
    """Rank 0 ranks the same candidates by training popularity, once; it must equal the
    package's Popularity evaluated on the run's own data."""
    from recs_course.evaluation import evaluate_sampled
    from recs_course.models import Popularity

    config = D.DDPConfig(
        data="synthetic:120:600:2400",
        epochs=1,
        batch_size=128,
        out_dir=str(tmp_path / "run"),
        dim=4,
    )
    results = run_here(config)
    data = D.prepare_data(config)
    model = Popularity.from_interactions(
        data.users.numpy(), data.items.numpy(), data.n_users, data.n_items
    )
    want = evaluate_sampled(model, data.test_users, data.test_candidates, ks=(10,))
    assert results["popularity"]["HR@10"] == pytest.approx(want["HR@10"])
    assert results["popularity"]["NDCG@10"] == pytest.approx(want["NDCG@10"])


def _weights(out_dir):
    return load_checkpoint_state(D.Path(out_dir) / "checkpoint.pt")


def load_checkpoint_state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_and_two_processes_compute_the_same_weights_on_the_same_examples(tmp_path, optimizer):
    """With same_negatives, 1 and 2 processes train on identical examples, so DDP must give the
    weights one process computes, up to float rounding (sums taken in another order). With SGD
    a step is proportional to the gradient: a gradient averaged with a wrong scale (a missing
    or doubled 1/W), a rank that trained alone, or ranks on overlapping shards would all show;
    the tolerance is far below the size of one step."""
    common = dict(
        BASE, epochs=2, batch_size=64, same_negatives=True, optimizer=optimizer,
        lr=0.5 if optimizer == "sgd" else 1e-2, max_batches=12,
    )  # fmt: skip
    one = D.DDPConfig(**{**common, "out_dir": str(tmp_path / "one")})
    two = D.DDPConfig(**{**common, "out_dir": str(tmp_path / "two")})
    run_here(one)
    D.launch(two, nproc=2, timeout=240)
    a, b = _weights(one.out_dir), _weights(two.out_dir)
    start = D._build_model(one, *(lambda d: (d.n_users, d.n_items))(D.prepare_data(one)))
    moved = max(float((a[k] - start.state_dict()[k]).abs().max()) for k in a)
    assert moved > 1e-3, "training did not move the weights: the check would be vacuous"
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
