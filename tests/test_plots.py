"""Each plot returns its Axes with what it was asked to draw; bad inputs are refused."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recs_course.plots import (
    plot_embedding_map,
    plot_history,
    plot_lr_schedule,
    plot_matrix_slice,
    plot_pca_components,
    plot_popularity,
    plot_rating_distribution,
)
from recs_course.training import History


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def ratings() -> pd.DataFrame:
    # item 0: 4 ratings, item 1: 2, item 2: 1; user 0: 3, user 1: 2, user 2: 2
    return pd.DataFrame(
        {
            "user_id": [0, 0, 0, 1, 1, 2, 2],
            "item_id": [0, 1, 2, 0, 1, 0, 0],
            "rating": np.array([5, 3, 4, 5, 1, 4, 4], dtype=np.float32),
            "timestamp": np.arange(7),
        }
    )


def _matrix() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, size=(20, 30)).astype(float)


@pytest.mark.parametrize("kind", ["dense", "sparse", "tensor"])
def test_matrix_slice_shows_exactly_the_slice(kind):
    dense = _matrix()
    matrix = {"dense": dense, "sparse": sp.csr_matrix(dense), "tensor": torch.tensor(dense)}[kind]
    ax = plot_matrix_slice(matrix, rows=slice(5, 15), cols=slice(10, 25), title="slice")
    image = ax.images[0]
    assert np.array_equal(np.asarray(image.get_array()), dense[5:15, 10:25])
    # the ticks speak in the matrix's own indices
    assert list(image.get_extent()) == [9.5, 24.5, 14.5, 4.5]
    assert ax.get_title() == "slice" and len(ax.figure.axes) == 2  # image and colour bar


def test_matrix_slice_with_index_arrays_and_bad_inputs():
    dense = _matrix()
    ax = plot_matrix_slice(dense, rows=[3, 1], cols=np.arange(4), colorbar=False)
    assert np.array_equal(np.asarray(ax.images[0].get_array()), dense[[3, 1]][:, :4])
    assert len(ax.figure.axes) == 1
    with pytest.raises(ValueError, match="2-D"):
        plot_matrix_slice(np.zeros(5))
    with pytest.raises(ValueError, match="empty"):
        plot_matrix_slice(dense, rows=slice(30, 40))


def test_rating_distribution_has_one_bar_per_value(ratings):
    ax = plot_rating_distribution(ratings)
    assert [p.get_height() for p in ax.patches] == [1, 1, 3, 2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3", "4", "5"]
    half_stars = pd.DataFrame({"rating": [0.5, 1.0, 1.0, 4.5]})
    ax = plot_rating_distribution(half_stars)
    assert len(ax.patches) == 3 and ax.patches[0].get_width() == pytest.approx(0.4)
    with pytest.raises(ValueError, match="rating"):
        plot_rating_distribution(ratings.drop(columns="rating"))
    with pytest.raises(ValueError, match="empty"):
        plot_rating_distribution(ratings.iloc[:0])


@pytest.mark.parametrize(("by", "counts"), [("item", [4, 2, 1]), ("user", [3, 2, 2])])
def test_popularity_is_the_sorted_count_curve(ratings, by, counts):
    ax = plot_popularity(ratings, by=by)
    x, y = ax.lines[0].get_data()
    assert list(x) == [1, 2, 3] and list(y) == counts
    assert ax.get_yscale() == "log"
    assert ax.get_title().startswith(f"the top 20% of {by}s hold")


def test_popularity_options(ratings):
    ax = plot_popularity(ratings, log=False, title="tail")
    assert ax.get_yscale() == "linear" and ax.get_title() == "tail"
    # 1 item of 3 is the top 20%: it holds 4 of the 7 ratings
    assert plot_popularity(ratings).get_title().endswith("57% of the ratings")
    with pytest.raises(ValueError, match="'item' or 'user'"):
        plot_popularity(ratings, by="genre")


def test_lr_schedule_lines_hold_the_rates():
    lrs = np.linspace(1e-3, 1e-2, 50)
    ax = plot_lr_schedule(lrs)
    x, y = ax.lines[0].get_data()
    assert np.array_equal(x, np.arange(50)) and np.array_equal(y, lrs)
    curves = {"triangular": [0.1, 0.2, 0.1], "cosine": torch.tensor([0.2, 0.1])}
    ax = plot_lr_schedule(curves, log=True)
    assert [line.get_label() for line in ax.lines] == ["triangular", "cosine"]
    assert np.allclose(ax.lines[1].get_ydata(), [0.2, 0.1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["triangular", "cosine"]
    ax = plot_lr_schedule(History(lrs=[0.5, 0.25]))
    assert list(ax.lines[0].get_ydata()) == [0.5, 0.25]
    for bad in ([], [[0.1, 0.2]], [0.1, float("nan")], {}):
        with pytest.raises(ValueError):
            plot_lr_schedule(bad)


def test_history_plot_draws_the_chosen_metrics():
    frame = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [0.9, 0.5, 0.4],
            "HR@10": [0.2, 0.4, 0.3],
            "lr": 0.1,
            "time": 1,
        }
    )
    ax = plot_history(frame)
    assert [line.get_label() for line in ax.lines] == ["loss", "HR@10"]
    assert list(ax.lines[1].get_ydata()) == [0.2, 0.4, 0.3]
    assert list(ax.lines[1].get_xdata()) == [1, 2, 3]
    history = History(records=frame.to_dict("records"), best_epoch=2)
    ax = plot_history(history, metrics="HR@10")
    assert [line.get_label() for line in ax.lines] == ["HR@10", "best epoch (2)"]
    with pytest.raises(ValueError, match=r"\['NDCG@10'\].*\['loss', 'HR@10'\]"):
        plot_history(frame, metrics=["NDCG@10"])
    with pytest.raises(ValueError, match="empty"):
        plot_history(History())


def test_pca_components_bars_and_titles():
    coords = np.column_stack([np.arange(30.0) - 15, np.zeros(30)])
    titles = [f"movie {i}" for i in range(30)]
    ax = plot_pca_components(coords, titles, component=0, n=3)
    assert len(ax.patches) == 6
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["movie 0", "movie 1", "movie 2", "movie 27", "movie 28", "movie 29"]
    assert [p.get_width() for p in ax.patches] == [-15, -14, -13, 12, 13, 14]
    # fewer items than 2 n: each shown once
    assert len(plot_pca_components(coords[:4], titles[:4], n=3).patches) == 4
    with pytest.raises(ValueError, match="titles"):
        plot_pca_components(coords, titles[:5])
    with pytest.raises(ValueError, match="component"):
        plot_pca_components(coords, titles, component=2)
    with pytest.raises(ValueError, match="n must"):
        plot_pca_components(coords, titles, n=0)
    for bad in (True, 0.0, "0"):
        with pytest.raises(ValueError, match="component must be an integer"):
            plot_pca_components(coords, titles, component=bad)
        with pytest.raises(ValueError, match="n must be an integer"):
            plot_pca_components(coords, titles, n=bad)
    ax = plot_pca_components(coords, titles, component=np.int64(1), n=np.int32(2))
    assert len(ax.patches) == 4 and ax.get_xlabel() == "component 1"


def test_embedding_map_colours_categories_and_annotates():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(12, 2))
    coords[7] = [10.0, 10.0]  # the most distinctive point
    cats = ["Drama"] * 6 + ["Comedy"] * 4 + [None, "Horror"]
    labels = [f"film {i}" for i in range(12)]
    ax = plot_embedding_map(coords, labels=labels, categories=cats, annotate=1)
    assert len(ax.collections) == 4
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["Drama (6)", "Comedy (4)"] and set(legend[2:]) == {
        "Horror (1)",
        "unknown (1)",
    }
    assert [t.get_text() for t in ax.texts] == ["film 7"]
    assert np.allclose(ax.collections[0].get_offsets(), coords[:6])

    grouped = plot_embedding_map(coords, categories=cats, max_categories=2)
    assert [t.get_text() for t in grouped.get_legend().get_texts()] == ["Drama (6)", "other (6)"]
    plain = plot_embedding_map(coords, labels=labels, annotate=np.array([0, 3]))
    assert len(plain.collections) == 1 and [t.get_text() for t in plain.texts] == [
        "film 0",
        "film 3",
    ]
    mask = np.zeros(12, dtype=bool)
    mask[5] = True
    assert [t.get_text() for t in plot_embedding_map(coords, labels, annotate=mask).texts] == [
        "film 5"
    ]

    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot_embedding_map(rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="labels"):
        plot_embedding_map(coords, annotate=3)
    with pytest.raises(ValueError, match="categories"):
        plot_embedding_map(coords, categories=cats[:3])
    with pytest.raises(ValueError, match="out of range"):
        plot_embedding_map(coords, labels, annotate=[12])


def test_embedding_map_labels_neither_overlap_nor_leave_the_axes():
    # Two pairs of nearly equal points at the left and right edges, as close titles are on a
    # real map, plus a cloud: every label is readable and inside the axes.
    rng = np.random.default_rng(1)
    coords = np.vstack([rng.normal(size=(40, 2)), [[6.0, 0.0], [6.0, 0.02], [-6, 1], [-6, 1.01]]])
    labels = [f"a rather long film title {i} (1997)" for i in range(len(coords))]
    fig, ax = plt.subplots(figsize=(8, 6))
    plot_embedding_map(coords, labels=labels, categories=["x"] * len(coords), annotate=4, ax=ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 4
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (ax.texts[a].get_text(), ax.texts[b].get_text())
    frame = ax.get_window_extent(renderer)
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, "a label runs out of the axes"
    # the legend sits beside the axes, over no point
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= frame.x1
    plt.close(fig)


def test_plots_draw_on_the_given_axes_and_leave_rcparams_alone(ratings):
    before = dict(matplotlib.rcParams)
    fig, axes = plt.subplots(1, 3)
    assert plot_rating_distribution(ratings, ax=axes[0]) is axes[0]
    assert plot_popularity(ratings, ax=axes[1]) is axes[1]
    assert plot_lr_schedule([0.1, 0.2], ax=axes[2]) is axes[2]
    assert len(plt.get_fignums()) == 1
    assert dict(matplotlib.rcParams) == before
