"""The course's figures, drawn with matplotlib.

Every function draws on ``ax`` (a new figure when ``ax`` is ``None``) and returns the ``Axes``,
so figures compose (``fig, axes = plt.subplots(1, 2)``) and tests can inspect what was drawn.
Nothing here calls ``plt.show()`` or changes ``rcParams``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .utils import check_flag

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "plot_matrix_slice",
    "plot_rating_distribution",
    "plot_popularity",
    "plot_lr_schedule",
    "plot_history",
    "plot_pca_components",
    "plot_embedding_map",
]


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _array(x: Any, name: str) -> np.ndarray:
    """A numpy copy of an array-like or a (CPU or GPU, dense) torch tensor."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu()
        if getattr(x, "layout", None) is not None and str(x.layout) != "torch.strided":
            x = x.to_dense()
        x = x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be array-like, got {type(x).__name__}") from exc


def _check_ratings(ratings: Any, column: str) -> pd.DataFrame:
    if not isinstance(ratings, pd.DataFrame):
        raise ValueError(f"ratings must be a pandas DataFrame, got {type(ratings).__name__}")
    if column not in ratings.columns:
        raise ValueError(f"ratings has no {column!r} column (columns: {list(ratings.columns)})")
    if len(ratings) == 0:
        raise ValueError("ratings is empty")
    return ratings


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (bool, floats and strings refused), else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def _selection(name: str, sel: Any, size: int) -> slice | np.ndarray:
    """Rows or columns to show: a slice of ints, or indices in ``[0, size)`` (a bool mask of
    length ``size`` is turned into its indices). Negative indices do not count from the end."""
    if isinstance(sel, slice):
        for part in (sel.start, sel.stop, sel.step):
            if part is not None and (
                isinstance(part, (bool, np.bool_)) or not isinstance(part, (int, np.integer))
            ):
                raise ValueError(f"{name} must be a slice of integers, got {sel!r}")
        return sel
    arr = np.atleast_1d(_array(sel, name))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a slice or a 1-D array of indices, got shape {arr.shape}")
    if arr.dtype == bool:
        if arr.size != size:
            raise ValueError(f"{name} is a mask of length {arr.size} for {size} rows/columns")
        return np.flatnonzero(arr)
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        raise ValueError(
            f"{name} must lie in [0, {size}), found values in [{arr.min()}, {arr.max()}]"
        )
    return arr


def plot_matrix_slice(
    matrix: Any,
    rows: slice | Sequence[int] | np.ndarray = slice(0, 50),
    cols: slice | Sequence[int] | np.ndarray = slice(0, 100),
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "Greys",
    colorbar: bool = True,
) -> Axes:
    """Show a block of a users x items matrix as an image.

    Args:
        matrix: shape ``(U, I)``: a numpy array, a scipy sparse matrix (only the slice is made
            dense) or a torch tensor.
        rows, cols: the users and items shown (slices or index arrays).
        cmap: the colour map (``"Greys"``: black for a rating, white for none).
        colorbar: add a colour bar beside the image.

    Returns:
        The Axes; ``ax.images[0].get_array()`` holds the slice. With contiguous slices the ticks
        show the original row and column indices.
    """
    colorbar = check_flag("colorbar", colorbar)
    if hasattr(matrix, "tocsr") and hasattr(matrix, "nnz"):  # scipy sparse, any format
        if len(matrix.shape) != 2:
            raise ValueError(f"matrix must be 2-D (users x items), got shape {matrix.shape}")
        n_rows, n_cols = matrix.shape
        rows, cols = _selection("rows", rows, n_rows), _selection("cols", cols, n_cols)
        data = np.asarray(matrix.tocsr()[rows][:, cols].toarray())
    else:
        full = _array(matrix, "matrix")
        if full.ndim != 2:
            raise ValueError(f"matrix must be 2-D (users x items), got shape {full.shape}")
        n_rows, n_cols = full.shape
        rows, cols = _selection("rows", rows, n_rows), _selection("cols", cols, n_cols)
        data = full[rows][:, cols]
    if data.dtype.kind not in "biuf":
        raise ValueError(f"matrix must hold real numbers, got dtype {data.dtype}")
    if data.size == 0:
        raise ValueError(
            f"the slice rows={rows}, cols={cols} of a {n_rows}x{n_cols} matrix is empty"
        )
    ax = _axes(ax)
    row_idx = np.arange(n_rows)[rows]
    col_idx = np.arange(n_cols)[cols]
    extent = None
    if np.all(np.diff(row_idx) == 1) and np.all(np.diff(col_idx) == 1):
        extent = (col_idx[0] - 0.5, col_idx[-1] + 0.5, row_idx[-1] + 0.5, row_idx[0] - 0.5)
    image = ax.imshow(data, cmap=cmap, aspect="auto", interpolation="nearest", extent=extent)
    ax.set_xlabel("item")
    ax.set_ylabel("user")
    if title is not None:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    return ax


def plot_rating_distribution(
    ratings: pd.DataFrame, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Bar chart of how many ratings each rating value has (one bar per distinct value).

    Args:
        ratings: a ratings frame with a ``rating`` column.
    """
    ratings = _check_ratings(ratings, "rating")
    column = ratings["rating"]
    try:
        values = column.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(f"ratings['rating'] must hold numbers, got dtype {column.dtype}") from None
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(
            f"ratings['rating'] holds {int((~finite).sum())} missing or infinite value(s) out "
            f"of {len(values)}, e.g. {values[~finite][0]}: they have no bar; drop those rows "
            "first (ratings.dropna(subset=['rating']))"
        )
    counts = column.value_counts().sort_index()
    values = counts.index.to_numpy(dtype=float)
    width = 0.8 * (float(np.min(np.diff(values))) if len(values) > 1 else 1.0)
    ax = _axes(ax)
    ax.bar(values, counts.to_numpy(), width=width)
    ax.set_xticks(values, labels=[f"{v:g}" for v in values])
    ax.set_xlabel("rating")
    ax.set_ylabel("number of ratings")
    ax.set_title(title if title is not None else f"{len(ratings):,} ratings")
    return ax


def plot_popularity(
    ratings: pd.DataFrame,
    ax: Axes | None = None,
    log: bool = True,
    by: str = "item",
    title: str | None = None,
) -> Axes:
    """The long tail: ratings per item (or per user), sorted from the most to the least.

    Args:
        ratings: a ratings frame with ``item_id`` (or ``user_id``) column.
        log: a logarithmic count axis, where the tail stays visible.
        by: ``"item"`` (item popularity) or ``"user"`` (user activity).

    Returns:
        The Axes; ``ax.lines[0]`` has the ranks ``1..n`` as x and the sorted counts as y. The
        default title says which share of the ratings the top 20% of items (users) receive.
    """
    if by not in ("item", "user"):
        raise ValueError(f"by must be 'item' or 'user', got {by!r}")
    log = check_flag("log", log)
    ratings = _check_ratings(ratings, f"{by}_id")
    counts = ratings.groupby(f"{by}_id").size().sort_values(ascending=False).to_numpy()
    ranks = np.arange(1, len(counts) + 1)
    ax = _axes(ax)
    ax.plot(ranks, counts)
    ax.fill_between(ranks, counts, alpha=0.3)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(f"{by} rank (most {'rated' if by == 'item' else 'active'} first)")
    ax.set_ylabel("number of ratings")
    if title is None:
        top = max(1, int(round(0.2 * len(counts))))
        share = counts[:top].sum() / counts.sum()
        title = f"the top 20% of {by}s hold {share:.0%} of the ratings"
    ax.set_title(title)
    return ax


def _lr_values(lrs: Any, name: str) -> np.ndarray:
    if hasattr(lrs, "lrs") and not isinstance(lrs, np.ndarray):  # a History
        lrs = lrs.lrs
    values = _array(lrs, name).astype(float, copy=False)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of rates, got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains non-finite learning rates")
    return values


def plot_lr_schedule(
    lrs: Any,
    ax: Axes | None = None,
    title: str | None = None,
    log: bool = False,
) -> Axes:
    """Plot learning rates against the step.

    Args:
        lrs: a sequence (list, array, tensor) of rates, a :class:`~recs_course.training.History`
            (its per-batch ``lrs``), or a dict ``name -> rates`` for several curves with a legend.
        log: a logarithmic rate axis.

    Returns:
        The Axes, one line per schedule with the steps ``0..n-1`` as x and the rates as y.
    """
    log = check_flag("log", log)
    curves = (
        {str(k): _lr_values(v, f"lrs[{k!r}]") for k, v in lrs.items()}
        if isinstance(lrs, Mapping)
        else {"": _lr_values(lrs, "lrs")}
    )
    if not curves:
        raise ValueError("lrs is an empty dict")
    ax = _axes(ax)
    for name, values in curves.items():
        ax.plot(np.arange(len(values)), values, label=name or None)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if isinstance(lrs, Mapping):
        ax.legend()
    if title is not None:
        ax.set_title(title)
    return ax


def plot_history(
    history: Any,
    metrics: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Plot the training loss and metrics per epoch.

    Args:
        history: a :class:`~recs_course.training.History` or its ``to_frame()`` DataFrame.
        metrics: the columns to plot; default: every numeric column but ``epoch``, ``lr`` and
            ``time``.

    Returns:
        The Axes, one line per metric; for a History with a monitored value, a dashed vertical
        line marks the best epoch.
    """
    frame = history.to_frame() if hasattr(history, "to_frame") else history
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"history must be a History or a DataFrame, got {type(history).__name__}")
    if len(frame) == 0:
        raise ValueError("the history is empty: nothing to plot")
    numeric = [
        c
        for c in frame.columns
        if c not in ("epoch", "lr", "time") and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if metrics is None:
        metrics = numeric
    elif isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in numeric]
    if unknown or not metrics:
        raise ValueError(f"cannot plot {unknown or metrics}: the history has {numeric}")
    epochs = frame["epoch"].to_numpy() if "epoch" in frame.columns else np.arange(1, len(frame) + 1)
    ax = _axes(ax)
    for name in metrics:
        ax.plot(epochs, frame[name].to_numpy(dtype=float), marker="o", label=name)
    best = getattr(history, "best_epoch", None)
    if best is not None:
        ax.axvline(best, color="grey", linestyle="--", label=f"best epoch ({best})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return ax


def plot_pca_components(
    coords: Any,
    titles: Sequence[str],
    component: int = 0,
    n: int = 10,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Horizontal bars of the ``n`` items at each end of one principal component.

    Args:
        coords: shape ``(n_items, k)``, the items' coordinates on the components (row ``i`` is
            item ``i``, the same order as ``titles``).
        titles: ``n_items`` item titles.
        component: which column of ``coords`` to read.
        n: how many items per end (all items, once each, if ``2 * n >= n_items``).

    Returns:
        The Axes: ``2 * n`` bars, most negative at the bottom, most positive at the top, the
        titles as y tick labels.
    """
    values = _array(coords, "coords")
    if values.ndim != 2:
        raise ValueError(f"coords must have shape (n_items, k), got {values.shape}")
    titles = [str(t) for t in titles]
    if len(titles) != values.shape[0]:
        raise ValueError(f"{len(titles)} titles for {values.shape[0]} rows of coords")
    component = _check_int("component", component, 0, values.shape[1] - 1)
    n = _check_int("n", n, 1)
    column = values[:, component].astype(float)
    order = np.argsort(column, kind="stable")
    chosen = order if 2 * n >= len(order) else np.concatenate([order[:n], order[-n:]])
    ax = _axes(ax)
    positions = np.arange(len(chosen))
    half = len(chosen) // 2
    colors = ["tab:blue"] * half + ["tab:orange"] * (len(chosen) - half)
    ax.barh(positions, column[chosen], color=colors)
    ax.set_yticks(positions, labels=[titles[i] for i in chosen])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"component {component}")
    if title is not None:
        ax.set_title(title)
    return ax


def plot_embedding_map(
    coords: Any,
    labels: Sequence[str] | None = None,
    categories: Sequence[Any] | None = None,
    annotate: int | Sequence[int] | np.ndarray | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    max_categories: int = 10,
    s: float = 12.0,
    alpha: float = 0.7,
) -> Axes:
    """Scatter plot of 2-D item (or user) coordinates, coloured by category.

    Args:
        coords: shape ``(n, 2)``, e.g. the first two principal components of the embeddings.
        labels: ``n`` names (titles), needed to annotate points.
        categories: ``n`` category values (e.g. each movie's first genre); one colour and one
            legend entry per category, the most frequent first. Beyond ``max_categories``
            (at most 20) the rarest are grouped as "other" in grey.
        annotate: which points to label with their name: an integer ``k`` (the ``k`` points
            farthest from the centre, the most distinctive ones), an index array, or a boolean
            mask of length ``n``.

    Returns:
        The Axes: one scatter collection per category (a single one without categories), the
        annotations in ``ax.texts``.
    """
    xy = _array(coords, "coords").astype(float, copy=False)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must have shape (n, 2), got {xy.shape}")
    n_points = xy.shape[0]
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != n_points:
            raise ValueError(f"{len(labels)} labels for {n_points} points")
    max_categories = _check_int("max_categories", max_categories, 1, 20)
    ax = _axes(ax)
    if categories is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=s, alpha=alpha)
    else:
        cats = pd.Series(list(categories), dtype=object)
        if len(cats) != n_points:
            raise ValueError(f"{len(cats)} categories for {n_points} points")
        cats = cats.where(cats.notna(), "unknown").astype(str)
        order = cats.value_counts(sort=True).index.tolist()
        grouped = len(order) > max_categories
        if grouped:
            kept = set(order[: max_categories - 1])
            cats = cats.where(cats.isin(kept), "other")
            order = [c for c in order if c in kept] + ["other"]
        palette = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
        for k, name in enumerate(order):
            mask = (cats == name).to_numpy()
            color = "lightgrey" if grouped and name == "other" else palette(k % palette.N)
            ax.scatter(
                xy[mask, 0],
                xy[mask, 1],
                s=s,
                alpha=alpha,
                color=color,
                label=f"{name} ({int(mask.sum())})",
            )
        # beside the axes, where it hides neither points nor labels
        ax.legend(
            fontsize="small", markerscale=1.5, loc="upper left", bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
        )
    if annotate is not None:
        if labels is None:
            raise ValueError("annotate needs labels (the names to write)")
        for i, (dx, dy, ha) in _label_offsets(xy, _annotated(annotate, xy)):
            ax.annotate(
                labels[i], xy[i], xytext=(dx, dy), textcoords="offset points", ha=ha,
                fontsize=8,
            )
    if title is not None:
        ax.set_title(title)
    return ax


def _label_offsets(xy: np.ndarray, index: np.ndarray) -> list[tuple[int, float, float, str]]:
    """Where to write each annotated point's label, in points from the point.

    Labels of points right of the centre are written to their left (they stay inside the
    axes), the others to their right; a label whose point is close to an already placed one
    on the same side (within 3 % of the y range and 30 % of the x range) moves up or down by a
    line, alternately, so that neighbouring titles do not print over each other.
    """
    span = np.ptp(xy, axis=0) if len(xy) else np.ones(2)
    span = np.where(span > 0, span, 1.0)
    centre = xy.mean(axis=0) if len(xy) else np.zeros(2)
    placed: list[tuple[np.ndarray, bool, float]] = []
    out = []
    for i in np.asarray(index, dtype=int):
        right = bool(xy[i, 0] > centre[0])
        near = [
            dy
            for p, side, dy in placed
            if side == right
            and abs(p[0] - xy[i, 0]) < 0.3 * span[0]
            and abs(p[1] - xy[i, 1]) < 0.03 * span[1]
        ]
        dy = 3.0
        step = 0
        while any(abs(dy - other) < 9.0 for other in near):
            step += 1
            dy = 3.0 + 10.0 * ((step + 1) // 2) * (1 if step % 2 else -1)
        placed.append((xy[i], right, dy))
        out.append((int(i), (-3.0 if right else 3.0, dy, "right" if right else "left")))
    return out


def _annotated(annotate: Any, xy: np.ndarray) -> np.ndarray:
    n_points = xy.shape[0]
    if isinstance(annotate, (int, np.integer)) and not isinstance(annotate, bool):
        if annotate < 0:
            raise ValueError(f"annotate must be >= 0, got {annotate}")
        distance = np.linalg.norm(xy - xy.mean(axis=0), axis=1)
        return np.argsort(-distance, kind="stable")[:annotate]
    index = np.asarray(annotate)
    if index.dtype == bool:
        if index.shape != (n_points,):
            raise ValueError(f"an annotate mask must have shape ({n_points},), got {index.shape}")
        return np.flatnonzero(index)
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        raise ValueError("annotate must be an integer, an index array or a boolean mask")
    if index.size and (index.min() < -n_points or index.max() >= n_points):
        raise ValueError(f"annotate indices out of range for {n_points} points")
    return index
