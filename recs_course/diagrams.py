"""The course's teaching diagrams: the pictures a teacher draws on the board, in matplotlib.

Each function draws one picture on a new figure and returns the ``Figure``:

- :func:`draw_factorization`: the users x items matrix ``R`` approximated by ``P Q^T``; one
  missing cell is the dot product of the user's row ``p_u`` and the item's column ``q_i``.
- :func:`draw_negative_sampling`: one user's row of items over two epochs: the positives stay,
  the sampled negatives are drawn anew.
- :func:`draw_splits`: the random, leave-one-out, per-user chronological and global
  chronological splits as timelines, with what each leaks from the future.
- :func:`draw_ncf_architectures`: GMF, MLP and NeuMF side by side.
- :func:`draw_propagation`: a small bipartite graph and the nodes whose layer-0 embeddings
  reach one node's embedding after ``k = 0 .. layers`` propagation layers.
- :func:`draw_masked_autoencoder`: an item's rating vector through an autoencoder, the loss
  taken on the observed entries only.

The figures are made with ``pyplot`` (so a notebook shows them; end the cell's last line with
``;`` to show them once) and sized for the book's width. The options are keyword-only; every
function takes ``figsize=(width, height)`` in inches. Nothing here calls ``plt.show()``,
closes a figure or changes ``rcParams``: fonts, colours and sizes are set on each artist. The
colours are matplotlib's colour-blind-safe "tab10" blue and orange, plus greys, and where a
colour carries meaning a shape, a letter or a label carries it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Polygon, Rectangle

from .utils import is_real_number

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "draw_factorization",
    "draw_negative_sampling",
    "draw_splits",
    "draw_ncf_architectures",
    "draw_propagation",
    "draw_masked_autoencoder",
]

BLUE = "#1f77b4"  # tab10 blue
ORANGE = "#ff7f0e"  # tab10 orange
LIGHT_BLUE = "#c6dbef"
LIGHT_ORANGE = "#fdd0a2"
GREY = "#7f7f7f"
LIGHT_GREY = "#e6e6e6"
DARK = "#262626"

FONT = 11  # labels
SMALL = 10  # notes: the smallest size used

# The toy graph of chapter 7: (user, item) edges.
TOY_EDGES: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3))

_MAX_NODES = 8  # users (and items) draw_propagation can lay out legibly
_MAX_LAYERS = 5


# --------------------------------------------------------------------------------------------
# Shared helpers


def _figure(figsize: Any) -> Figure:
    """A new pyplot figure of ``figsize`` inches, checked first (nothing is drawn on refusal)."""
    if (
        isinstance(figsize, (str, bytes))
        or not isinstance(figsize, Sequence)
        or len(figsize) != 2
        or not all(is_real_number(v) and np.isfinite(v) and 0 < v <= 50 for v in figsize)
    ):
        raise ValueError(
            f"figsize must be a pair (width, height) of positive numbers of inches (at most 50), "
            f"got {figsize!r}"
        )
    return plt.figure(figsize=(float(figsize[0]), float(figsize[1])))


def _canvas(fig: Figure, width: float, height: float, x0: float = 0.0) -> Axes:
    """One axes filling ``fig`` with data coordinates ``[x0, x0 + width] x [0, height]``
    (equal aspect: one unit is as long across as up), no ticks and no frame."""
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(x0, x0 + width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return ax


def _text(ax: Axes, x: float, y: float, s: str, size: float = FONT, **kw: Any) -> None:
    kw.setdefault("ha", "center")
    kw.setdefault("va", "center")
    kw.setdefault("color", DARK)
    ax.text(x, y, s, fontsize=size, **kw)


def _cell(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str = "",
    *,
    face: str = "white",
    edge: str = GREY,
    color: str = DARK,
    lw: float = 0.8,
    size: float = SMALL,
    **kw: Any,
) -> None:
    """A rectangle with lower-left corner ``(x, y)`` and ``text`` at its centre."""
    ax.add_patch(Rectangle((x, y), w, h, facecolor=face, edgecolor=edge, lw=lw, **kw))
    if text:
        _text(ax, x + w / 2, y + h / 2, text, size=size, color=color)


def _box(
    ax: Axes,
    cx: float,
    cy: float,
    w: float,
    h: float,
    text: str,
    *,
    face: str = LIGHT_GREY,
    edge: str = DARK,
    size: float = SMALL,
) -> None:
    """A rounded box centred on ``(cx, cy)`` with ``text`` in it."""
    pad = min(w, h) * 0.15
    ax.add_patch(
        FancyBboxPatch(
            (cx - w / 2 + pad, cy - h / 2 + pad),
            w - 2 * pad,
            h - 2 * pad,
            boxstyle=f"round,pad={pad}",
            facecolor=face,
            edgecolor=edge,
            lw=1.0,
        )
    )
    _text(ax, cx, cy, text, size=size)


def _arrow(
    ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str = DARK
) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "lw": 1.2,
            "shrinkA": 0,
            "shrinkB": 0,
            "mutation_scale": 12,
        },
    )


# --------------------------------------------------------------------------------------------
# Matrix factorization


def draw_factorization(*, figsize: tuple[float, float] = (10, 3.6)) -> Figure:
    """``R ≈ P Q^T``: a small users x items grid of ratings and ``?`` (not observed), the tall
    thin ``P`` (``U x d``) and the wide thin ``Q^T`` (``d x I``). User ``u``'s row ``p_u`` of
    ``P`` (orange) and item ``i``'s column ``q_i`` of ``Q^T`` (blue) give the score
    ``s_ui = p_u^T q_i`` that fills the missing cell ``(u, i)`` of ``R``.
    """
    fig = _figure(figsize)
    ax = _canvas(fig, 100, 36, x0=-6.0)  # the drawing spans x = 1 .. 86: centred
    n_users, n_items, d, u, i = 6, 8, 3, 2, 5
    c = 3.0  # cell size
    ratings = [
        "5?3??1?4",
        "?4??2?5?",
        "3?4?5???",
        "??1?4?2?",
        "4???3?5?",
        "?2?5???1",
    ]
    rx, top = 8.0, 30.0  # R's left edge and the top of R and P
    for row in range(n_users):
        for col in range(n_items):
            x, y = rx + col * c, top - (row + 1) * c
            value = ratings[row][col]
            if (row, col) == (u, i):
                _cell(ax, x, y, c, c, r"$s_{ui}$", face="white", edge=DARK, lw=2.2, zorder=3)
            elif value == "?":
                face = LIGHT_ORANGE if row == u else LIGHT_BLUE if col == i else "white"
                _cell(ax, x, y, c, c, "?", face=face, color=GREY)
            else:
                face = LIGHT_ORANGE if row == u else LIGHT_BLUE if col == i else LIGHT_GREY
                _cell(ax, x, y, c, c, value, face=face)
    _text(ax, rx + n_items * c / 2, 33.5, r"$R$   ($U$ users $\times$ $I$ items)")
    _text(ax, rx - 1.5, top - (u + 0.5) * c, r"$u$")
    _text(ax, rx + (i + 0.5) * c, top + 1.2, r"$i$")
    _text(ax, rx - 4.5, top - n_users * c / 2, "users", size=SMALL, rotation=90)
    _text(
        ax, rx + n_items * c / 2, top - n_users * c - 2.5, "numbers: observed ratings", size=SMALL
    )
    _text(ax, rx + n_items * c / 2, top - n_users * c - 5.5, "?: not observed", size=SMALL)

    _text(ax, 37.5, top - n_users * c / 2, r"$\approx$", size=22)

    px = 43.0  # P: U x d
    for row in range(n_users):
        for col in range(d):
            face = ORANGE if row == u else LIGHT_GREY
            _cell(ax, px + col * c, top - (row + 1) * c, c, c, face=face)
    _text(ax, px + d * c / 2, 33.5, r"$P$   ($U \times d$)")
    _text(ax, px + d * c + 2.2, top - (u + 0.5) * c, r"$p_u$", color=ORANGE, weight="bold")

    qx = 60.0  # Q^T: d x I
    for row in range(d):
        for col in range(n_items):
            face = BLUE if col == i else LIGHT_GREY
            _cell(ax, qx + col * c, top - (row + 1) * c, c, c, face=face)
    _text(ax, qx + n_items * c / 2, 33.5, r"$Q^\top$   ($d \times I$)")
    _text(ax, qx + (i + 0.5) * c, top - d * c - 1.8, r"$q_i$", color=BLUE, weight="bold")

    fx = qx + n_items * c / 2
    _text(ax, fx, 14.5, r"$s_{ui} = p_u^\top q_i = \sum_{f=1}^{d} p_{uf}\, q_{if}$", size=14)
    _text(ax, fx, 9.5, r"fills the missing cell $(u, i)$ of $R$", size=SMALL)
    _text(ax, fx, 5.5, r"with biases: $s_{ui} = b + b_u + b_i + p_u^\top q_i$", size=SMALL)
    return fig


# --------------------------------------------------------------------------------------------
# Negative sampling


def draw_negative_sampling(*, figsize: tuple[float, float] = (10, 3.4)) -> Figure:
    """One user's row of 20 items in two epochs: the 4 observed positives (``y = 1``, blue)
    stay, 4 sampled negatives (``y = 0``, orange; one per positive) are drawn anew each epoch,
    the other unobserved items are left out. One sampled "negative" is an item the user would
    like but has not seen: unobserved is not disliked.

    Each item's square has the ``gid`` ``"epoch <e>:<item>:<positive|negative|unobserved>"``.
    """
    fig = _figure(figsize)
    ax = _canvas(fig, 100, 34)
    n_items, c = 20, 3.6
    x0 = 15.0
    positives = {1, 4, 9, 15}
    negatives = {"epoch 1": {2, 6, 12, 17}, "epoch 2": {0, 7, 13, 19}}
    unseen_positive = 13  # a "negative" of epoch 2 the user would in fact like
    _text(
        ax,
        50,
        31,
        "One user's 20 items: the positives stay, the negatives (one per positive) are drawn "
        "anew each epoch",
    )
    rows = {"epoch 1": 22.0, "epoch 2": 13.0}
    for label, y in rows.items():
        _text(ax, x0 - 1.5, y + c / 2, label, ha="right")
        for item in range(n_items):
            x, gid = x0 + item * c, f"{label}:{item}"
            if item in positives:
                _cell(
                    ax, x, y, c, c, "1", face=BLUE, edge=DARK, color="white", gid=f"{gid}:positive"
                )
            elif item in negatives[label]:
                _cell(ax, x, y, c, c, "0", face=ORANGE, edge=DARK, gid=f"{gid}:negative")
            else:
                _cell(ax, x, y, c, c, face="white", edge=GREY, gid=f"{gid}:unobserved")
    _text(ax, x0 - 1.5, 19.4, "item", size=SMALL, ha="right", color=GREY)
    for item in range(n_items):  # item indices between the rows
        if item % 5 == 0 or item == n_items - 1:
            _text(ax, x0 + (item + 0.5) * c, 19.4, f"{item}", size=SMALL, color=GREY)
    ux = x0 + (unseen_positive + 0.5) * c
    _arrow(ax, (ux - 6, 8.0), (ux - 0.4, 12.8), color=DARK)
    _text(
        ax,
        ux - 7,
        7.5,
        'a sampled "negative" may be a positive the user has not seen yet',
        size=SMALL,
        ha="right",
        va="center",
    )
    # legend
    lx, ly = 3.0, 2.2
    for face, mark, color, label in (
        (BLUE, "1", "white", "observed positive, y = 1"),
        (ORANGE, "0", DARK, "sampled negative, y = 0"),
        ("white", "", DARK, "unobserved, not drawn this epoch"),
    ):
        _cell(ax, lx, ly, 2.6, 2.6, mark, face=face, edge=DARK, color=color)
        _text(ax, lx + 3.6, ly + 1.3, label, size=SMALL, ha="left")
        lx += 32.0
    return fig


# --------------------------------------------------------------------------------------------
# Splits

_PARTS = {  # part -> (colour, marker)
    "train": (BLUE, "o"),
    "valid": (DARK, "s"),
    "test": (ORANGE, "D"),
}

# Three users' interaction times on a [0, 1] timeline (A: early, B: throughout, C: late).
_TIMES = (
    (0.02, 0.09, 0.15, 0.22, 0.30, 0.38, 0.46, 0.55),
    (0.10, 0.19, 0.28, 0.37, 0.46, 0.55, 0.64, 0.73, 0.84, 0.95),
    (0.50, 0.60, 0.70, 0.79, 0.88, 0.97),
)
# The random split, as a fixed draw (a test rating before training ones for every user).
_RANDOM = (
    "ttvttdtt",
    "tdtttvtttt",
    "tttdvt",
)
_GLOBAL_CUTS = (0.68, 0.82)  # valid from the first cut, test from the second


def _tail_parts(n: int, n_test: int, n_valid: int) -> list[str]:
    return ["train"] * (n - n_test - n_valid) + ["valid"] * n_valid + ["test"] * n_test


def _split_parts(kind: str, times: Sequence[float], row: int) -> list[str]:
    n = len(times)
    if kind == "random":
        return [{"t": "train", "v": "valid", "d": "test"}[p] for p in _RANDOM[row]]
    if kind == "loo":
        return _tail_parts(n, 1, 1)
    if kind == "user":  # the last 20 % test, then the last 20 % of the rest valid
        n_test = max(1, int(0.2 * n + 0.5))
        n_valid = max(1, int(0.2 * (n - n_test) + 0.5))
        return _tail_parts(n, n_test, n_valid)
    cut_valid, cut_test = _GLOBAL_CUTS
    return ["test" if t >= cut_test else "valid" if t >= cut_valid else "train" for t in times]


def draw_splits(*, figsize: tuple[float, float] = (10, 5.2)) -> Figure:
    """Four ways to split interactions, one row each: random; leave-one-out by time (each
    user's latest -> test, second latest -> validation); per-user chronological (each user's
    last 20 % -> test, the 20 % before -> validation); global chronological (one cut date for
    everyone). Three users' interactions are dots along time, coloured and shaped by part, with
    what each split leaks from the future beside it.

    The dots of one user and part are one ``Line2D`` with the ``gid``
    ``"<split name>:<user row>:<train|valid|test>"``, its x data the times.
    """
    fig = _figure(figsize)
    ax = _canvas(fig, 100, 52)
    t0, t1 = 26.0, 64.0  # the timeline's extent
    splits = (
        (
            "random",
            "80 / 10 / 10 % at random",
            "random",
            "leaks the user's own future:\ntest ratings come before\ntraining ones",
        ),
        (
            "leave-one-out by time",
            "latest: test, 2nd latest: valid",
            "loo",
            "leaks other users' future:\nwhat became popular after\na user's test date is trained on",
        ),
        (
            "per-user chronological",
            "each user's last 20 %: test",
            "user",
            "leaks other users' future,\nas leave-one-out does",
        ),
        (
            "global chronological",
            "one cut date for everyone",
            "global",
            "leaks nothing from the future:\ntraining ends before any\ntest rating",
        ),
    )
    band, gap, row_gap = 9.5, 1.4, 2.5
    top = 46.0
    for index, (name, rule, kind, leak) in enumerate(splits):
        y_top = top - index * (band + gap)
        y_mid = y_top - band / 2
        ax.add_patch(
            Rectangle((0.5, y_top - band), 99, band, facecolor="#f4f4f4", edgecolor="none")
        )
        _text(ax, 1.5, y_mid + 1.4, name, ha="left", weight="bold")
        _text(ax, 1.5, y_mid - 1.6, rule, size=SMALL, ha="left", color=DARK)
        _text(ax, 67.0, y_mid, leak, size=SMALL, ha="left", linespacing=1.15)
        for row, times in enumerate(_TIMES):
            y = y_mid + (1 - row) * row_gap
            ax.plot([t0, t1], [y, y], color="#bdbdbd", lw=0.8, zorder=1)
            parts = _split_parts(kind, times, row)
            for part in _PARTS:
                xs = [t0 + t * (t1 - t0) for t, p in zip(times, parts, strict=True) if p == part]
                color, marker = _PARTS[part]
                ax.plot(
                    xs,
                    [y] * len(xs),
                    ls="",
                    marker=marker,
                    ms=6.5,
                    mfc=color,
                    mec="white",
                    mew=0.6,
                    zorder=3,
                    gid=f"{name}:{row}:{part}",
                )
        if kind == "global":
            for cut in _GLOBAL_CUTS:
                x = t0 + cut * (t1 - t0)
                ax.plot(
                    [x, x], [y_top - band + 0.4, y_top - 0.4], color=DARK, lw=1.0, ls="--", zorder=2
                )
    # time axis and legend
    y_axis = top - 4 * (band + gap) + gap - 1.0
    _arrow(ax, (t0, y_axis), (t1 + 1.0, y_axis))
    _text(ax, t1 + 2.0, y_axis, "time", size=SMALL, ha="left")
    handles = [
        Line2D([], [], ls="", marker=marker, ms=7, mfc=color, mec="white", label=part)
        for part, (color, marker) in _PARTS.items()
    ]
    ax.legend(
        handles=handles,
        labels=["train", "validation", "test"],
        loc="upper center",
        bbox_to_anchor=(0.45, 1.0),
        ncol=3,
        frameon=False,
        fontsize=SMALL,
        handletextpad=0.3,
        columnspacing=1.5,
    )
    _text(ax, 1.5, 50.2, "each row: one user's interactions", size=SMALL, ha="left", color=GREY)
    return fig


# --------------------------------------------------------------------------------------------
# NCF architectures


def draw_ncf_architectures(*, figsize: tuple[float, float] = (10, 5.4)) -> Figure:
    """GMF, MLP and NeuMF side by side, read from the bottom up: user id and item id ->
    embeddings -> (GMF: the element-wise product | MLP: the concatenation through ReLU layers |
    NeuMF: both pathways, each with its own embeddings, concatenated) -> output layer -> sigmoid
    -> the predicted probability of an interaction. GMF's parts are blue, MLP's orange.
    """
    fig = _figure(figsize)
    ax = _canvas(fig, 100, 54)
    levels = {"id": 4.0, "emb": 11.5, "op": 19.0, "relu": 27.0, "cat": 34.5, "out": 41.0}
    title_y, y_hat = 52.0, 47.0
    bw, bh = 8.0, 4.0  # an embedding's box

    def tower(cx: float, face: str, name_u: str, name_i: str, kind: str) -> tuple[float, float]:
        """The embeddings and the operation of one pathway; returns the top of its output."""
        xu, xi = cx - 4.6, cx + 4.6
        _box(ax, xu, levels["emb"], bw, bh, name_u, face=face)
        _box(ax, xi, levels["emb"], bw, bh, name_i, face=face)
        top_emb = levels["emb"] + bh / 2
        if kind == "gmf":
            _box(ax, cx, levels["op"], 13.0, bh, r"$p_u \odot q_i$", face=face)
            _arrow(ax, (xu, top_emb), (cx - 2.5, levels["op"] - bh / 2))
            _arrow(ax, (xi, top_emb), (cx + 2.5, levels["op"] - bh / 2))
            return cx, levels["op"] + bh / 2
        _box(ax, cx, levels["op"], 13.0, bh, r"$[p_u; q_i]$", face=face)
        _arrow(ax, (xu, top_emb), (cx - 2.5, levels["op"] - bh / 2))
        _arrow(ax, (xi, top_emb), (cx + 2.5, levels["op"] - bh / 2))
        _box(ax, cx, levels["relu"], 13.0, 6.0, "ReLU layers\n(narrowing)", face=face)
        _arrow(ax, (cx, levels["op"] + bh / 2), (cx, levels["relu"] - 3.0))
        return cx, levels["relu"] + 3.0

    def ids(cx_user: float, cx_item: float) -> None:
        _box(ax, cx_user, levels["id"], 10.0, bh, "user $u$")
        _box(ax, cx_item, levels["id"], 10.0, bh, "item $i$")

    def head(cx: float, bottom: tuple[float, float]) -> None:
        _box(ax, cx, levels["out"], 17.0, bh, r"output layer, $\sigma$")
        _arrow(ax, bottom, (cx, levels["out"] - bh / 2))
        _arrow(ax, (cx, levels["out"] + bh / 2), (cx, y_hat - 1.6))
        _text(ax, cx, y_hat, r"$\hat y_{ui}$", size=FONT)

    # GMF
    cx = 13.0
    _text(ax, cx, title_y, "GMF", size=13, weight="bold")
    ids(cx - 5.6, cx + 5.6)
    _arrow(ax, (cx - 5.6, levels["id"] + bh / 2), (cx - 4.6, levels["emb"] - bh / 2))
    _arrow(ax, (cx + 5.6, levels["id"] + bh / 2), (cx + 4.6, levels["emb"] - bh / 2))
    top_g = tower(cx, LIGHT_BLUE, r"$p_u$", r"$q_i$", "gmf")
    head(cx, top_g)

    # MLP
    cx = 39.0
    _text(ax, cx, title_y, "MLP", size=13, weight="bold")
    ids(cx - 5.6, cx + 5.6)
    _arrow(ax, (cx - 5.6, levels["id"] + bh / 2), (cx - 4.6, levels["emb"] - bh / 2))
    _arrow(ax, (cx + 5.6, levels["id"] + bh / 2), (cx + 4.6, levels["emb"] - bh / 2))
    top_m = tower(cx, LIGHT_ORANGE, r"$p_u$", r"$q_i$", "mlp")
    head(cx, top_m)

    ax.plot([52.5, 52.5], [1.0, 53.0], color="#bdbdbd", lw=1.0)
    ax.plot([26.0, 26.0], [1.0, 53.0], color="#bdbdbd", lw=1.0)

    # NeuMF: both pathways, each with its own embeddings
    cg, cm, cx = 65.0, 88.0, 76.5
    _text(ax, cx, title_y, "NeuMF", size=13, weight="bold")
    xu, xi = cx - 8.0, cx + 8.0
    ids(xu, xi)
    for target in (cg - 4.6, cm - 4.6):
        _arrow(ax, (xu, levels["id"] + bh / 2), (target, levels["emb"] - bh / 2))
    for target in (cg + 4.6, cm + 4.6):
        _arrow(ax, (xi, levels["id"] + bh / 2), (target, levels["emb"] - bh / 2))
    top_g = tower(cg, LIGHT_BLUE, r"$p_u^G$", r"$q_i^G$", "gmf")
    top_m = tower(cm, LIGHT_ORANGE, r"$p_u^M$", r"$q_i^M$", "mlp")
    _box(ax, cx, levels["cat"], 18.0, bh, "concatenate both")
    _arrow(ax, top_g, (cx - 4.0, levels["cat"] - bh / 2))
    _arrow(ax, top_m, (cx + 4.0, levels["cat"] - bh / 2))
    head(cx, (cx, levels["cat"] + bh / 2))
    return fig


# --------------------------------------------------------------------------------------------
# Graph propagation


def _is_index(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 0


def _check_edges(edges: Any) -> tuple[tuple[int, int], ...]:
    """``edges`` as a tuple of ``(user, item)`` int pairs: any iterable of pairs (a list of
    tuples, a ``(n, 2)`` integer array), each pair once, at most 8 users and 8 items."""
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
        raise ValueError(f"edges must be a sequence of (user, item) pairs, got {edges!r}")
    pairs: list[tuple[int, int]] = []
    for edge in edges:
        if (
            isinstance(edge, (str, bytes))
            or not isinstance(edge, (Sequence, np.ndarray))
            or np.ndim(edge) != 1
            or len(edge) != 2
            or not all(_is_index(v) for v in edge)
        ):
            raise ValueError(
                f"each edge must be a (user, item) pair of integers >= 0, got {edge!r}"
            )
        pairs.append((int(edge[0]), int(edge[1])))
    if not pairs:
        raise ValueError("edges is empty: give at least one (user, item) pair")
    if len(set(pairs)) != len(pairs):
        dup = next(p for p in pairs if pairs.count(p) > 1)
        raise ValueError(f"edges holds the pair {dup} more than once")
    n_users = max(u for u, _ in pairs) + 1
    n_items = max(i for _, i in pairs) + 1
    if n_users > _MAX_NODES or n_items > _MAX_NODES:
        raise ValueError(
            f"draw_propagation draws small graphs: at most {_MAX_NODES} users and {_MAX_NODES} "
            f"items (ids 0..{_MAX_NODES - 1}), got {n_users} users and {n_items} items"
        )
    return tuple(pairs)


def _reach(
    edges: Sequence[tuple[int, int]], n_users: int, n_items: int, start: int, layers: int
) -> list[np.ndarray]:
    """For ``k = 0 .. layers``, the hop distance-within-``k`` mask over the ``n_users + n_items``
    nodes (users first) from node ``start``: row ``start`` of ``(I + A)^k`` is nonzero, ``A``
    the adjacency matrix of the bipartite graph."""
    n = n_users + n_items
    adjacency = np.zeros((n, n), dtype=np.int64)
    for u, i in edges:
        adjacency[u, n_users + i] = adjacency[n_users + i, u] = 1
    step = adjacency + np.eye(n, dtype=np.int64)
    reached = np.zeros(n, dtype=np.int64)
    reached[start] = 1
    masks = [reached > 0]
    for _ in range(layers):
        reached = np.minimum(reached @ step, 1)  # clipped: counts of walks can overflow
        masks.append(reached > 0)
    return masks


def draw_propagation(
    *,
    layers: int = 2,
    edges: Iterable[tuple[int, int]] = TOY_EDGES,
    start: str = "u0",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The nodes whose layer-0 embeddings reach ``start``'s embedding after ``k`` layers.

    One panel per ``k = 0 .. layers``: users (``u0, u1, ...``) on the left, items (``i0, ...``)
    on the right, an edge for each interaction. After ``k`` propagation layers, the embedding
    of ``start`` mixes the layer-0 embeddings of every node within ``k`` hops (with the
    self-connection of NGCF, or the sum over layers of LightGCN); those nodes are filled:
    orange where first reached at hop ``k``, blue where reached earlier; the edges between
    them are dark. The reach is computed from ``edges`` (row ``start`` of ``(I + A)^k``).

    Args:
        layers: the last ``k`` drawn, an integer in ``[0, 5]``.
        edges: the (user, item) interactions, integers ``>= 0``, each pair once; the graph has
            ``max(user) + 1`` users and ``max(item) + 1`` items, at most 8 of each. The
            default is chapter 7's toy graph ``(0,0), (0,1), (1,1), (1,2), (2,2), (2,3)``.
        start: the node whose embedding is followed: ``"u<index>"`` or ``"i<index>"``.
        figsize: inches; by default 3.3 per panel (at most 10 wide), about 4 high.

    Each node is a ``Line2D`` with ``gid`` ``"<name>:<state>"``, ``state`` being ``start``,
    ``new`` (first reached at this hop), ``earlier`` or ``unreached``; the panels are
    ``fig.axes[k]``.
    """
    if isinstance(layers, (bool, np.bool_)) or not isinstance(layers, (int, np.integer)):
        raise ValueError(f"layers must be an integer in [0, {_MAX_LAYERS}], got {layers!r}")
    if not 0 <= layers <= _MAX_LAYERS:
        raise ValueError(f"layers must be an integer in [0, {_MAX_LAYERS}], got {layers}")
    layers = int(layers)
    pairs = _check_edges(edges)
    n_users = max(u for u, _ in pairs) + 1
    n_items = max(i for _, i in pairs) + 1
    names = [f"u{u}" for u in range(n_users)] + [f"i{i}" for i in range(n_items)]
    match = re.fullmatch(r"([ui])(\d+)", start) if isinstance(start, str) else None
    if match is None:
        raise ValueError(f"start must be a node name such as 'u0' or 'i2', got {start!r}")
    if start not in names:
        raise ValueError(
            f"start {start!r} is not a node of the graph: its nodes are "
            f"u0..u{n_users - 1} and i0..i{n_items - 1}"
        )
    if figsize is None:
        figsize = (min(10.0, 3.3 * (layers + 1)), 3.8 if layers >= 2 else 4.1)
    fig = _figure(figsize)
    masks = _reach(pairs, n_users, n_items, names.index(start), layers)

    span = max(n_users, n_items) - 1
    # users at x = 0, items at x = 1, each column centred on y = 0, the first node on top
    pos = {f"u{u}": (0.0, (n_users - 1) / 2 - u) for u in range(n_users)}
    pos.update({f"i{i}": (1.0, (n_items - 1) / 2 - i) for i in range(n_items)})

    axes = fig.subplots(1, layers + 1, squeeze=False)[0]
    marker_size = 24 if span < 5 else 18
    for k, ax in enumerate(axes):
        mask, before = masks[k], masks[k - 1] if k else np.zeros(len(names), dtype=bool)
        for u, i in pairs:
            a, b = f"u{u}", f"i{i}"
            lit = mask[names.index(a)] and mask[names.index(b)]
            ax.plot(
                [pos[a][0], pos[b][0]],
                [pos[a][1], pos[b][1]],
                color=DARK if lit else "#c8c8c8",
                lw=2.2 if lit else 1.0,
                zorder=1,
            )
        for index, name in enumerate(names):
            x, y = pos[name]
            if not mask[index]:
                state, face, text, edge = "unreached", "white", GREY, "#9e9e9e"
            elif before[index]:
                state, face, text, edge = "earlier", BLUE, "white", DARK
            else:
                state, face, text, edge = "new", ORANGE, DARK, DARK
            if name == start:
                state = "start"
            ax.plot(
                [x],
                [y],
                ls="",
                marker="o",
                ms=marker_size,
                mfc=face,
                mec=edge,
                mew=3.0 if name == start else 1.2,
                zorder=3,
                gid=f"{name}:{state}",
            )
            ax.text(x, y, name, ha="center", va="center", fontsize=SMALL, color=text, zorder=4)
        hops = "start" if k == 0 else f"{k} layer" + ("s" if k > 1 else "")
        ax.set_title(f"l = {k}  ({hops})", fontsize=FONT, color=DARK)
        ax.text(0.0, -span / 2 - 0.85, "users", ha="center", fontsize=SMALL, color=GREY)
        ax.text(1.0, -span / 2 - 0.85, "items", ha="center", fontsize=SMALL, color=GREY)
        ax.set_xlim(-0.6, 1.6)
        ax.set_ylim(-span / 2 - 1.2, span / 2 + 0.6)
        ax.set_axis_off()
    handles = [
        Line2D([], [], ls="", marker="o", ms=10, mfc=ORANGE, mec=DARK, label="reached at hop l"),
        Line2D([], [], ls="", marker="o", ms=10, mfc=BLUE, mec=DARK, label="reached earlier"),
        Line2D([], [], ls="", marker="o", ms=10, mfc="white", mec="#9e9e9e", label="not reached"),
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=10,
            mfc="white",
            mec=DARK,
            mew=3.0,
            label=f"{start}, the start",
        ),
    ]
    ncol = 4 if layers >= 2 else 2  # one row of legend where the figure is wide enough
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=ncol,
        frameon=False,
        fontsize=SMALL,
        handletextpad=0.3,
        columnspacing=1.2,
    )
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(
        left=0.02,
        right=0.98,
        top=1 - 0.5 / height,
        bottom=(0.55 if ncol == 4 else 0.85) / height,
        wspace=0.1,
    )
    return fig


# --------------------------------------------------------------------------------------------
# Masked autoencoder


def draw_masked_autoencoder(*, figsize: tuple[float, float] = (10, 4.0)) -> Figure:
    """I-AutoRec on one item: the item's rating vector ``r_i`` (one entry per user, some
    missing ``?``) -> encoder ``g(V r_i + v_0)`` -> code (``d`` units) -> decoder
    ``f(W . + w_0)`` -> the reconstruction ``h(r_i)``. The loss compares the observed entries
    only; the missing ones (grey) are not in the loss, and their reconstructions are the
    predictions.
    """
    fig = _figure(figsize)
    ax = _canvas(fig, 100, 40)
    observed = ("5", None, "3", None, "4", None)
    recon = ("4.7", "3.9", "3.2", "2.8", "4.1", "3.6")
    cw, ch = 5.0, 3.6
    top = 31.5
    n = len(observed)
    bottom = top - n * ch
    mid = (top + bottom) / 2

    rx = 6.0
    for row, value in enumerate(observed):
        y = top - (row + 1) * ch
        if value is None:
            _cell(ax, rx, y, cw, ch, "?", face=LIGHT_GREY, edge=GREY, color=GREY)
        else:
            _cell(ax, rx, y, cw, ch, value, face=LIGHT_BLUE, edge=DARK)
        _text(ax, rx - 2.0, y + ch / 2, f"$u_{row}$", size=SMALL, color=GREY)
    _text(ax, rx + cw / 2, top + 4.6, r"$r_i$", size=FONT)
    _text(ax, rx + cw / 2, top + 1.8, "item $i$'s ratings", size=SMALL, color=GREY)

    def trapezoid(x0: float, x1: float, h0: float, h1: float, face: str) -> None:
        ax.add_patch(
            Polygon(
                [(x0, mid - h0 / 2), (x1, mid - h1 / 2), (x1, mid + h1 / 2), (x0, mid + h0 / 2)],
                closed=True,
                facecolor=face,
                edgecolor=DARK,
                lw=1.0,
            )
        )

    trapezoid(15.0, 33.0, n * ch, 3 * ch, LIGHT_BLUE)
    _text(ax, 24.0, mid + 2.0, "encoder", size=SMALL)
    _text(ax, 24.0, mid - 1.8, r"$g(V r_i + v_0)$", size=FONT)
    _arrow(ax, (rx + cw + 0.4, mid), (15.0, mid))

    kx = 35.5  # the code
    for row in range(3):
        _cell(ax, kx, mid + 1.5 * ch - (row + 1) * ch, 3.6, ch, face=BLUE, edge=DARK)
    _text(ax, kx + 1.8, mid + 1.5 * ch + 2.6, "code", size=SMALL)
    _text(ax, kx + 1.8, mid - 1.5 * ch - 2.4, "$d$ units", size=SMALL)

    trapezoid(41.5, 59.5, 3 * ch, n * ch, LIGHT_ORANGE)
    _text(ax, 50.5, mid + 2.0, "decoder", size=SMALL)
    _text(ax, 50.5, mid - 1.8, r"$f(W \cdot + w_0)$", size=FONT)
    _arrow(ax, (59.5 + 0.2, mid), (62.5, mid))

    hx = 63.0
    for row, (value, guess) in enumerate(zip(observed, recon, strict=True)):
        y = top - (row + 1) * ch
        if value is None:
            _cell(ax, hx, y, cw, ch, guess, face=LIGHT_GREY, edge=GREY, color=GREY)
            _text(
                ax,
                hx + cw + 1.5,
                y + ch / 2,
                "not in the loss",
                size=SMALL,
                ha="left",
                color=GREY,
                style="italic",
            )
        else:
            _cell(ax, hx, y, cw, ch, guess, face=LIGHT_ORANGE, edge=DARK)
            _text(ax, hx + cw + 1.5, y + ch / 2, f"$({value} - {guess})^2$", size=SMALL, ha="left")
    _text(ax, hx + cw / 2, top + 4.6, r"$h(r_i)$", size=FONT)
    _text(ax, hx + cw / 2, top + 1.8, "reconstruction", size=SMALL, color=GREY)

    _text(
        ax,
        50,
        5.8,
        r"loss: $\mathcal{L} = \sum_{u:\,(u,i) \in \Omega} \,(h(r_i)_u - r_{ui})^2$,"
        " the observed entries only",
        size=FONT,
    )
    _text(
        ax,
        50,
        1.8,
        "the grey entries of $h(r_i)$, for the users who did not rate item $i$, "
        "are the predictions",
        size=SMALL,
        color=GREY,
    )
    return fig
