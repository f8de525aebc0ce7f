"""``peers.md``: the tables of ``peers.json`` in Markdown, rendered by pandas' ``to_markdown``
(tabulate). Imports neither torch nor ``recs_course``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from tabulate import DataRow, TableFormat

from benchmarks.common import RESULTS, ratio

QUALITY_JSON = RESULTS / "quality.json"

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


# quality.py's protocol and model names for the ranking tables' protocols and model names
QUALITY_RANKING = {
    "ncf": ("neumf", {"Pop": "Pop", "GMF": "GMF", "MLP": "MLP", "NeuMF": "NeuMF"}),
    "temporal": ("graph", {"BPR": "BPR-MF", "NGCF": "NGCF", "LightGCN": "LightGCN"}),
}
RANKING_TABLES = (
    ("ncf", "Implicit, NCF protocol (leave-one-out, 100 sampled negatives)", ["HR@10", "NDCG@10"]),
    ("temporal", "Implicit, full ranking (per-user chronological split)", ["recall@20", "NDCG@20"]),
)


def load_quality(path: Path = QUALITY_JSON) -> dict:
    """``quality.json``'s results by protocol, or ``{}`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text()).get("results", {})
    except (OSError, ValueError):
        return {}


def quality_settings(protocol: str, params: dict, model: str) -> str:
    """A few words on the hyper-parameters quality.py trained ``model`` with."""

    def lr(x):
        return f"lr {x:.0e}".replace("e-0", "e-")

    if protocol == "ncf":
        if model == "Pop":
            return "no training"
        if model == "NeuMF":
            return f"pre-trained GMF + MLP, {lr(params['neumf_lr'])}"
        tower = "-".join(map(str, params["layers"]))
        size = f"tower {tower}" if model == "MLP" else f"dim {params['dim']}"
        return f"{size}, {lr(params['lr'])}, patience {params['patience']}"
    q = params[{"BPR-MF": "bpr", "NGCF": "ngcf", "LightGCN": "lightgcn"}[model]]
    extra = f"reg {q['reg']:.0e}" if "reg" in q else f"init std {q['init_std']:g}"
    return f"{lr(q['lr'])}, {extra.replace('e-0', 'e-')}"


def course_defaults(protocol: str, block: dict, metric_keys: list[str], quality: dict) -> list:
    """The course's tuned results (quality.json) beside this protocol's same-settings rows."""
    key, names = QUALITY_RANKING[protocol]
    res = quality.get(key)
    if not res:
        return []
    rows = []
    for name, q_name in names.items():
        q = res["models"].get(q_name)
        if q is None:
            continue
        c = block["course"].get(name, {}).get("test", {})
        p = block["recbole"]["models"].get(name, {}).get("test", {})
        epochs = f"{q['best_epoch']}/{q['epochs_run']}" if "best_epoch" in q else "1/1"
        rows.append(
            [q_name]
            + [v for k in metric_keys for v in (q["test"].get(k), c.get(k), p.get(k))]
            + [epochs, quality_settings(protocol, res["params"], q_name)]
        )
    header = ["model"]
    for k in metric_keys:
        header += [f"{k} course defaults", "same settings: course", "RecBole"]
    header += ["best/run epochs", "course defaults"]
    why = (
        "The same-settings rows above give both libraries RecBole's hyper-parameters (Adam, "
        "lr 1e-3, RecBole's epochs and early stopping) to compare the implementations; the "
        "course-defaults rows are the course's tuned recipes, the ones the chapters use."
    )
    if protocol == "ncf":
        why += " Same split; the 100 sampled negatives are drawn with another seed."
    else:
        why += (
            " Same split; the course defaults rank on the validation set every 5 epochs and stop"
            " after 4 such evaluations without improvement."
        )
    command = res.get("command", "benchmarks/quality.py")
    return [
        "### Course defaults (benchmarks/quality.py)",
        "",
        f"From `benchmarks/results/quality.json` (`{command}`).",
        "",
        table(header, rows),
        "",
        why,
        "",
    ]


def explicit_recipes(ex: dict, quality: dict) -> str:
    """One line on the explicit section's recipes, with quality.json's figures next to them."""
    course = ex["course"]
    if "recipe" not in course.get("MF (biases)", {}).get("params", {}):
        return ""
    a = course["AutoRec (item)"]
    fold_epochs = [f["epochs"] for f in a.get("cv", {}).get("folds", [])]
    text = (
        "MF with biases and AutoRec use the course's default recipes, `MF_PARAMS` and "
        "`AUTOREC_PARAMS` of `benchmarks/quality.py` (AutoRec: epochs picked by early stopping "
        f"on 10 % of each training part, {a['split']['epochs']} on the 80/20 split"
    )
    if fold_epochs:
        text += ", " + ", ".join(map(str, fold_epochs)) + " on the folds"
    text += ", then a refit on the whole training part)."
    if "mf" in quality and "autorec" in quality:
        text += (
            f" `quality.json` has MF {quality['mf']['test']['RMSE']:.4f} and AutoRec "
            f"{quality['autorec']['test']['RMSE']:.4f} on the same 80/20 split: its MF trains "
            "on 90 % of the training ratings (the rest is its validation curve), and it leaves "
            f"out the {quality['mf']['n_test_dropped_unknown']} test ratings whose user or item "
            "has no training rating, which are predicted here."
        )
    return text


def explicit_part(ex: dict, quality: dict) -> list[str]:
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
    recipes = explicit_recipes(ex, quality)
    return out + ([recipes, ""] if recipes else [])


def ranking_part(rk: dict, quality: dict) -> list[str]:
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
        out += course_defaults(protocol, b, metric_keys, quality)
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


def markdown(report: dict, quality: dict | None = None) -> str:
    """``peers.md`` for ``report`` (``peers.json``); ``quality``: quality.json's results."""
    quality = load_quality() if quality is None else quality
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
        out += explicit_part(report["explicit"], quality)
    if report.get("ranking"):
        out += ranking_part(report["ranking"], quality)
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
