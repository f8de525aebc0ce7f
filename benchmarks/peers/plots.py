"""The figures of ``peers.md``: ``peers_speed.png`` (course / peer time ratios) and
``peers_scaling.png`` (the course on ml-100k- and ml-1m-shaped data). No torch.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def save(fig, path: Path) -> str:
    """Lay out, write and close ``fig``; its file name."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def speed_figure(speed: dict):
    """Course / peer time ratios of training and evaluation, one pair of bars per pairing."""
    rows = [r for r in speed["rows"] if r["train_ratio"] and r["eval_ratio"]]
    labels = [f"{r['model']} vs {r['peer']}\n({r['task']})" for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
    ax.barh(y - 0.2, [r["train_ratio"] for r in rows], 0.4, label="training, per epoch")
    ax.barh(y + 0.2, [r["eval_ratio"] for r in rows], 0.4, label="evaluation")
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("course time / peer time (log scale; < 1: course faster)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Speed of recs_course relative to surprise and RecBole")
    return fig


def scaling_figure(scaling: dict):
    """Training and evaluation seconds of each model on each data shape (log scales)."""
    labels = list(scaling["results"])
    models = list(scaling["results"][labels[0]]["models"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(models))
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        res = scaling["results"][label]["models"]
        for ax, key in zip(axes, ("train_s_per_epoch", "eval_s"), strict=True):
            ax.bar(
                x + k * width - 0.4 + width / 2,
                [res[m][key] for m in models],
                width,
                label=label,
            )
    for ax, title in zip(axes, ("training, one epoch", "evaluation"), strict=True):
        ax.set_yscale("log")
        ax.set_xticks(x, [m.replace(" (", "\n(") for m in models], fontsize=7)
        ax.set_ylabel("seconds (log scale)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("recs_course on synthetic data shaped like ml-100k and ml-1m")
    return fig


def plots(report: dict, out_dir: Path) -> list[str]:
    """Write the figures ``report`` has data for into ``out_dir``; their names."""
    written = []
    if report.get("speed") and report["speed"]["rows"]:
        written.append(save(speed_figure(report["speed"]), out_dir / "peers_speed.png"))
    if report.get("scaling"):
        written.append(save(scaling_figure(report["scaling"]), out_dir / "peers_scaling.png"))
    return written
