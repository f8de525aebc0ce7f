"""``peers.md``: the tables of ``peers.json`` in Markdown, rendered by pandas' ``to_markdown``
(tabulate). Imports neither torch nor ``recs_course``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from tabulate import DataRow, TableFormat

from benchmarks.common import ratio

# GitHub's pipe table without padding: "| a | b |", "|---|---|", "| 1 | 2 |".
_ROW = DataRow("| ", " | ", " |")
PIPE = TableFormat(
    lineabove=None,
    linebelowheader=lambda widths, aligns: "|" + "---|" * len(widths),
    linebetweenrows=None,
    linebelow=None,
    headerrow=_ROW,
    datarow=_ROW,
    padding=0,
    with_header_hide=None,
)


def fmt(x, digits=4):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return str(x)
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}" if abs(x) < 0.01 else f"{x:.{digits - 1}f}"


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table of ``rows`` (numbers formatted by ``fmt``) under ``header``."""
    frame = pd.DataFrame([[fmt(v) for v in row] for row in rows], columns=header, dtype=object)
    return frame.to_markdown(
        index=False, tablefmt=PIPE, disable_numparse=True, stralign=None, numalign=None
    )


def stamp(section: dict) -> str:
    return f"_Measured {section['created']} with `{section['command']}`._"


RANKING_TABLES = (
    ("ncf", "Implicit, NCF protocol (leave-one-out, 100 sampled negatives)", ["HR@10", "NDCG@10"]),
    ("temporal", "Implicit, full ranking (per-user chronological split)", ["recall@20", "NDCG@20"]),
)


QUALITY_POINTER = (
    "The course's own recipes (`recs_course.recipes.RECIPES`) against these peers, on the "
    "evaluation spine's protocols with paired intervals over users and training seeds, are in "
    "`quality.md` (`python -m benchmarks.quality`)."
)


def explicit_recipes(ex: dict) -> str:
    """One line on the recipes the explicit section's MF and AutoRec were trained with."""
    course = ex["course"]
    mf = course.get("MF (biases)", {}).get("params", {}).get("recipe")
    a = course.get("AutoRec (item)", {})
    if not mf or "recipe" not in a.get("params", {}):
        return ""
    fold_epochs = [f["epochs"] for f in a.get("cv", {}).get("folds", [])]
    text = (
        f"MF with biases and AutoRec: `{mf}` and `{a['params']['recipe']}` (AutoRec: epochs "
        f"picked by early stopping on 10 % of each training part, {a['split']['epochs']} on the "
        "80/20 split"
    )
    if fold_epochs:
        text += ", " + ", ".join(map(str, fold_epochs)) + " on the folds"
    return text + ", then a refit on the whole training part). " + QUALITY_POINTER


def explicit_part(ex: dict) -> list[str]:
    rows = []
    for library, models in (("course", ex["course"]), ("surprise", ex["surprise"])):
        for name, r in models.items():
            cv, split = r.get("cv", {}), r["split"]
            epochs = split["epochs"] if library == "course" else r["params"]["n_epochs"]
            rows.append(
                [f"{library} {name}", split["RMSE"], split["MAE"], cv.get("RMSE_mean")]
                + [cv.get("RMSE_std"), epochs, split["train_s_per_epoch"], split["test_s"]]
            )
    folds = ex["data"].get("folds")
    header = ["model", "RMSE 80/20", "MAE 80/20", f"RMSE {folds}-fold" if folds else "RMSE CV"]
    header += ["sd", "epochs", "train s/epoch", "predict s (test)"]
    data = ex["data"]
    out = ["## Explicit ratings (ml-100k): RMSE, lower is better", "", stamp(ex), ""]
    out += [table(header, rows), ""]
    out += [
        f"{data['ratings']} ratings, {data['users']} users, {data['items']} items; "
        f"test {data['test']} ratings.",
        "",
    ]
    recipes = explicit_recipes(ex)
    return out + ([recipes, ""] if recipes else [])


def ranking_part(rk: dict) -> list[str]:
    out = []
    for protocol, title, metric_keys in RANKING_TABLES:
        if protocol not in rk:
            continue
        b = rk[protocol]
        out += [f"## {title}", "", stamp(rk), "", b["split"]["method"] + ".", ""]
        rows = []
        for name, c in b["course"].items():
            p = b["recbole"]["models"].get(name, {})
            pt = p.get("test", {})
            rows.append(
                [name]
                + [v for k in metric_keys for v in (c["test"].get(k), pt.get(k))]
                + [f"{c['best_epoch']}/{c['epochs_run']}"]
                + [f"{p.get('best_epoch')}/{p.get('epochs_run')}"]
                + [c["train_s_per_epoch"], p.get("train_s_per_epoch")]
                + [c["valid_s_per_eval"], p.get("valid_s_per_eval")]
            )
        header = ["model"] + [f"{k} {lib}" for k in metric_keys for lib in ("course", "RecBole")]
        header += ["best/run epochs course", "RecBole", "train s/epoch course", "RecBole"]
        header += ["eval s course", "RecBole"]
        out += [table(header, rows), ""]
    if out:
        out += [
            "Both libraries get RecBole's settings here (Adam, lr 1e-3, RecBole's epochs and "
            "early stopping), to compare the implementations. " + QUALITY_POINTER,
            "",
        ]
    return out


SPEED_COLUMNS = {  # speed row key -> column header
    "task": "task",
    "model": "course model",
    "peer": "peer",
    "course_train_s": "train s/epoch course",
    "peer_train_s": "peer",
    "train_ratio": "ratio",
    "course_eval_s": "eval s course",
    "peer_eval_s": "peer",
    "eval_ratio": "ratio",
    "basis": "clock",
}


def speed_part(sp: dict) -> list[str]:
    out = ["## Speed: course / peer", "", stamp(sp), ""]
    if sp.get("timing_runs"):
        out += ["(from timing runs of at most 3 epochs)", ""]
    else:
        src = sp.get("sources", {})
        out += [
            f"Training and evaluation times from the explicit section ({src.get('explicit')})"
            f" and the ranking section ({src.get('ranking')}): each times the course and its "
            "peer in the same invocation, one after the other.",
            "",
        ]
    rows = [[r[k] for k in SPEED_COLUMNS] for r in sp["rows"]]
    out += [
        table(list(SPEED_COLUMNS.values()), rows),
        "",
        "Evaluation: predicting the test ratings (explicit), one validation pass (ranking). "
        "`cpu`: process CPU seconds, `wall`: wall-clock seconds.",
        "",
        "### Data preparation",
        "",
    ]
    prep = sp["prep"]
    rows = [["course", k, v["s"]] for k, v in prep["course"].items()]
    rows += [
        ["course", f"{k} construction (normalised adjacency)", v]
        for k, v in prep.get("course_model_init", {}).items()
    ]
    rows += [["RecBole", k, v] for k, v in prep.get("recbole", {}).items()]
    return out + [table(["library", "step", "seconds"], rows), ""]


def scaling_part(sc: dict) -> list[str]:
    results = sc["results"]
    labels = list(results)
    small, large = results[labels[0]]["models"], results[labels[-1]]["models"]
    rows = [
        [model, a["train_s_per_epoch"], large[model]["train_s_per_epoch"]]
        + [ratio(large[model]["train_cpu_s_per_epoch"], a["train_cpu_s_per_epoch"])]
        + [a["eval_s"], large[model]["eval_s"], ratio(large[model]["eval_cpu_s"], a["eval_cpu_s"])]
        + [large[model]["eval"]]
        for model, a in small.items()
    ]
    header = ["model", f"train s/epoch {labels[0]}", labels[-1], "growth"]
    header += [f"eval s {labels[0]}", labels[-1], "growth", "evaluation"]
    shapes = ", ".join(
        f"{k}: {v['users']} users x {v['items']} items, {v['ratings']} ratings"
        for k, v in results.items()
    )
    return [
        "## Scaling (course, synthetic data)",
        "",
        stamp(sc),
        "",
        table(header, rows),
        "",
        shapes + ". Growth: ratio of CPU times.",
        "",
    ]


def markdown(report: dict) -> str:
    """``peers.md`` for ``report`` (``peers.json``)."""
    m = report.get("machine", {})
    out = [
        "# Peer benchmarks: recs_course vs scikit-surprise and RecBole",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('threads', '?')} "
        f"thread(s) for every library; Python {m.get('python', '?')}, torch {m.get('torch', '?')}."
        " Times are seconds; ratios are course / peer (below 1: the course is faster).",
        "",
    ]
    if report.get("explicit"):
        out += explicit_part(report["explicit"])
    if report.get("ranking"):
        out += ranking_part(report["ranking"])
    if report.get("speed"):
        out += speed_part(report["speed"])
    if report.get("scaling"):
        out += scaling_part(report["scaling"])
    return "\n".join(out)


def render(report: dict, out_dir: Path) -> list[str]:
    """Write ``peers.md`` and the figures for ``report`` into ``out_dir``; their names."""
    from benchmarks.peers.plots import plots

    (out_dir / "peers.md").write_text(markdown(report) + "\n")
    return ["peers.md", *plots(report, out_dir)]


def render_stored(out_dir: Path) -> int:
    """``--render-only``: ``peers.md`` and the figures from ``out_dir/peers.json``, run nothing."""
    json_path = out_dir / "peers.json"
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    if not report:
        raise SystemExit(f"--render-only: {json_path} is missing or empty")
    written = render(report, out_dir)
    print(f"rendered {', '.join(written)} in {out_dir} from {json_path.name}", file=sys.stderr)
    return 0
