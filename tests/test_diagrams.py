"""The teaching diagrams: each renders cleanly, says what the reader needs, draws what it
claims (the reach of graph propagation against a breadth-first search, the splits' parts, the
sampled negatives), and refuses bad arguments before drawing anything."""

from __future__ import annotations

import io
import warnings
from collections import deque

import matplotlib
import matplotlib.pyplot as plt  # the Agg backend: tests/conftest.py sets MPLBACKEND
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from recs_course import diagrams
from recs_course.diagrams import (
    TOY_EDGES,
    draw_factorization,
    draw_masked_autoencoder,
    draw_ncf_architectures,
    draw_negative_sampling,
    draw_propagation,
    draw_splits,
)

DRAWINGS = {
    "factorization": draw_factorization,
    "negative_sampling": draw_negative_sampling,
    "splits": draw_splits,
    "ncf_architectures": draw_ncf_architectures,
    "propagation": draw_propagation,
    "masked_autoencoder": draw_masked_autoencoder,
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[Text]:
    """The visible, non-empty texts the reader sees: axes texts and titles, legends and the
    figure's own texts (not the tick labels of the hidden axes)."""
    found: list[Text] = list(fig.texts)
    for legend in fig.legends:
        found += legend.get_texts()
    for ax in fig.axes:
        found += ax.texts
        found += [ax.title, ax._left_title, ax._right_title]
        if ax.get_legend() is not None:
            found += ax.get_legend().get_texts()
    return [t for t in found if t.get_visible() and t.get_text().strip()]


def _strings(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in _texts(fig))


def _render(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(DRAWINGS))
def test_each_diagram_is_a_figure_that_renders_without_warnings(name):
    rc_before = dict(matplotlib.rcParams)
    mine = plt.figure()  # a figure the caller owns stays open
    fig = DRAWINGS[name]()
    assert isinstance(fig, Figure) and fig is not mine
    assert plt.fignum_exists(mine.number) and plt.fignum_exists(fig.number)
    png = _render(fig)
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    assert dict(matplotlib.rcParams) == rc_before
    width, _ = fig.get_size_inches()
    assert width <= 10.0


@pytest.mark.parametrize("name", list(DRAWINGS))
def test_texts_are_legible_inside_the_figure_and_do_not_overlap(name):
    fig = DRAWINGS[name]()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig)
    assert texts
    assert min(t.get_fontsize() for t in texts) >= 10
    frame = fig.bbox
    boxes = []
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1, text.get_text()
        assert box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1, text.get_text()
        # a hair smaller: mathtext's boxes carry a little padding
        boxes.append((text.get_text(), box.expanded(0.98, 0.9)))
    for a, (text_a, box_a) in enumerate(boxes):
        for text_b, box_b in boxes[a + 1 :]:
            assert not box_a.overlaps(box_b), f"{text_a!r} overlaps {text_b!r}"


@pytest.mark.parametrize(
    ("name", "needed"),
    [
        (
            "factorization",
            [
                r"$R$",
                r"$P$",
                r"$Q^\top$",
                r"$p_u$",
                r"$q_i$",
                r"$s_{ui}$",
                r"p_u^\top q_i",
                "?",
                r"\approx",
            ],
        ),
        (
            "negative_sampling",
            [
                "epoch 1",
                "epoch 2",
                "observed positive, y = 1",
                "sampled negative, y = 0",
                "has not seen yet",
            ],
        ),
        (
            "splits",
            [
                "random",
                "leave-one-out by time",
                "per-user chronological",
                "global chronological",
                "train",
                "validation",
                "test",
                "the user's own future",
                "other users' future",
                "nothing from the future",
            ],
        ),
        (
            "ncf_architectures",
            [
                "GMF",
                "MLP",
                "NeuMF",
                "user $u$",
                "item $i$",
                r"\odot",
                "[p_u; q_i]",
                "ReLU layers",
                "concatenate both",
                r"$\hat y_{ui}$",
                r"\sigma",
                "p_u^G",
                "q_i^M",
            ],
        ),
        ("propagation", ["l = 0", "l = 1", "l = 2", "u0", "i3", "reached at hop l", "not reached"]),
        (
            "masked_autoencoder",
            [
                "$r_i$",
                "encoder",
                r"g(V r_i + v_0)",
                "code",
                "$d$ units",
                "decoder",
                r"f(W \cdot + w_0)",
                "$h(r_i)$",
                "not in the loss",
                r"\Omega",
                "are the predictions",
            ],
        ),
    ],
)
def test_the_texts_a_reader_needs_are_there(name, needed):
    text = _strings(DRAWINGS[name]())
    missing = [s for s in needed if s not in text]
    assert not missing, f"{name} lacks {missing}"


def test_ncf_names_the_three_models_once_each():
    titles = [t.get_text() for t in _texts(draw_ncf_architectures())]
    assert [titles.count(m) for m in ("GMF", "MLP", "NeuMF")] == [1, 1, 1]
    assert sum("output layer" in t for t in titles) == 3  # one head per model


def test_masked_autoencoder_leaves_exactly_the_missing_entries_out_of_the_loss():
    texts = [t.get_text() for t in _texts(draw_masked_autoencoder())]
    missing, in_loss = texts.count("?"), sum(t.startswith("$(") for t in texts)
    assert missing == texts.count("not in the loss") == 3
    assert in_loss == 3  # one squared error per observed entry


# ---------------------------------------------------------------------------------------------
# What the splits and the negative sampling draw


def _split_dots(fig: Figure) -> dict[tuple[str, int, str], np.ndarray]:
    dots = {}
    for line in fig.axes[0].get_lines():
        gid = line.get_gid()
        if gid:
            name, row, part = gid.split(":")
            dots[name, int(row), part] = np.asarray(line.get_xdata(), dtype=float)
    return dots


def test_splits_put_each_users_dots_where_the_split_says():
    dots = _split_dots(draw_splits())
    names = ["random", "leave-one-out by time", "per-user chronological", "global chronological"]
    rows = sorted({row for _, row, _ in dots})
    assert rows == [0, 1, 2]

    def parts(name, row):
        return {p: dots.get((name, row, p), np.array([])) for p in ("train", "valid", "test")}

    for row in rows:
        for name in names:  # every split keeps every interaction, once
            sizes = [len(v) for v in parts(name, row).values()]
            assert sum(sizes) == len(diagrams._TIMES[row])
        loo = parts("leave-one-out by time", row)
        assert len(loo["test"]) == 1 and len(loo["valid"]) == 1
        assert loo["test"][0] > loo["valid"][0] > loo["train"].max()
        user = parts("per-user chronological", row)
        n = len(diagrams._TIMES[row])
        assert len(user["test"]) == max(1, round(0.2 * n))
        assert user["test"].min() > user["valid"].max() >= user["valid"].min() > user["train"].max()
    # random: some user has a test interaction before one of their training ones
    assert any(
        parts("random", row)["test"].min() < parts("random", row)["train"].max() for row in rows
    )
    # per-user splits: some user's test is earlier than another user's training interaction
    for name in ("leave-one-out by time", "per-user chronological"):
        assert any(
            parts(name, a)["test"].min() < parts(name, b)["train"].max()
            for a in rows
            for b in rows
            if a != b
        )
    # global: one cut for everyone, so train < valid < test across users
    glob = [parts("global chronological", row) for row in rows]
    train = np.concatenate([g["train"] for g in glob])
    valid = np.concatenate([g["valid"] for g in glob])
    test = np.concatenate([g["test"] for g in glob])
    assert len(valid) and len(test)
    assert train.max() < valid.min() and valid.max() < test.min()


def test_negative_sampling_redraws_negatives_among_unobserved_items():
    fig = draw_negative_sampling()
    state: dict[str, dict[int, str]] = {}
    for patch in fig.axes[0].patches:
        if isinstance(patch, Rectangle) and (patch.get_gid() or "").startswith("epoch"):
            epoch, item, kind = patch.get_gid().split(":")
            state.setdefault(epoch, {})[int(item)] = kind
    assert sorted(state) == ["epoch 1", "epoch 2"]
    pos = {e: {i for i, k in s.items() if k == "positive"} for e, s in state.items()}
    neg = {e: {i for i, k in s.items() if k == "negative"} for e, s in state.items()}
    assert all(len(s) == 20 for s in state.values())
    assert pos["epoch 1"] == pos["epoch 2"] and pos["epoch 1"]
    for epoch in state:
        assert not neg[epoch] & pos[epoch]
        assert len(neg[epoch]) == len(pos[epoch])  # one negative per positive
    assert neg["epoch 1"] != neg["epoch 2"]


# ---------------------------------------------------------------------------------------------
# Graph propagation against a breadth-first search


def _bfs_distances(edges, start: str) -> dict[str, int]:
    neighbours: dict[str, set[str]] = {}
    for u, i in edges:
        neighbours.setdefault(f"u{u}", set()).add(f"i{i}")
        neighbours.setdefault(f"i{i}", set()).add(f"u{u}")
    distance = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for other in neighbours.get(node, ()):
            if other not in distance:
                distance[other] = distance[node] + 1
                queue.append(other)
    return distance


def _panels(fig: Figure) -> list[dict[str, str]]:
    """Per panel k, node name -> state, from the nodes' gids."""
    panels = []
    for ax in fig.axes:
        nodes = {}
        for line in ax.get_lines():
            gid = line.get_gid()
            if gid:
                name, state = gid.split(":")
                nodes[name] = state
        panels.append(nodes)
    return panels


OTHER_EDGES = [(0, 0), (0, 1), (1, 0), (2, 2), (3, 1), (3, 2), (4, 4)]


@pytest.mark.parametrize(
    ("edges", "start", "layers"),
    [
        (TOY_EDGES, "u0", 2),
        (TOY_EDGES, "u0", 5),
        (TOY_EDGES, "i2", 3),
        (OTHER_EDGES, "i2", 4),
        (OTHER_EDGES, "u4", 2),  # a component of its own
        (OTHER_EDGES, "u1", 0),
        ([(0, 3), (2, 0)], "u0", 3),  # isolated nodes: u1, i1, i2
    ],
)
def test_propagation_highlights_exactly_the_nodes_within_k_hops(edges, start, layers):
    fig = draw_propagation(layers=layers, edges=edges, start=start)
    panels = _panels(fig)
    assert len(panels) == layers + 1
    n_users = max(u for u, _ in edges) + 1
    n_items = max(i for _, i in edges) + 1
    every = {f"u{u}" for u in range(n_users)} | {f"i{i}" for i in range(n_items)}
    distance = _bfs_distances(edges, start)
    for k, nodes in enumerate(panels):
        assert set(nodes) == every
        assert nodes[start] == "start"
        reached = {n for n, s in nodes.items() if s != "unreached"}
        assert reached == {n for n, d in distance.items() if d <= k}, f"k = {k}"
        new = {n for n, s in nodes.items() if s == "new"}
        earlier = {n for n, s in nodes.items() if s == "earlier"}
        assert new == {n for n, d in distance.items() if d == k and n != start}
        assert earlier == {n for n, d in distance.items() if d < k and n != start}


def test_propagation_default_is_chapter_7s_toy_graph():
    assert TOY_EDGES == ((0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 3))
    panels = _panels(draw_propagation())
    reached = [{n for n, s in p.items() if s != "unreached"} for p in panels]
    assert reached == [{"u0"}, {"u0", "i0", "i1"}, {"u0", "i0", "i1", "u1"}]


def test_propagation_accepts_numpy_integers_and_any_iterable_of_pairs():
    as_array = np.array(TOY_EDGES, dtype=np.int64)  # an (n, 2) array
    as_lists = iter([list(edge) for edge in TOY_EDGES])  # a one-shot iterator of lists
    expected = _panels(draw_propagation(layers=3))
    for edges in (as_array, as_lists):
        assert _panels(draw_propagation(layers=np.int64(3), edges=edges)) == expected


# ---------------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": -1}, "layers must be an integer in"),
        ({"layers": 6}, "layers must be an integer in"),
        ({"layers": 1.0}, "layers must be an integer in"),
        ({"layers": True}, "layers must be an integer in"),
        ({"layers": "2"}, "layers must be an integer in"),
        ({"edges": []}, "edges is empty"),
        ({"edges": None}, "edges must be a sequence"),
        ({"edges": "u0i0"}, "edges must be a sequence"),
        ({"edges": [(0,)]}, "each edge must be a"),
        ({"edges": [(0, -1)]}, "each edge must be a"),
        ({"edges": [(0, 1.0)]}, "each edge must be a"),
        ({"edges": [(True, 0)]}, "each edge must be a"),
        ({"edges": ["ab"]}, "each edge must be a"),
        ({"edges": np.zeros((2, 2, 2), dtype=int)}, "each edge must be a"),
        ({"edges": [(0, 1, 2)]}, "each edge must be a"),
        ({"edges": [(0, 0), (1, 1), (0, 0)]}, r"holds the pair \(0, 0\) more than once"),
        ({"edges": [(8, 0)]}, "at most 8 users and 8 items"),
        ({"edges": [(0, 8)]}, "at most 8 users and 8 items"),
        ({"start": "x0"}, "start must be a node name"),
        ({"start": "u"}, "start must be a node name"),
        ({"start": 0}, "start must be a node name"),
        ({"start": "u3"}, r"not a node of the graph: its nodes are u0..u2 and i0..i3"),
        ({"start": "i4"}, "not a node of the graph"),
    ],
)
def test_propagation_refuses_bad_arguments_before_drawing(kwargs, match):
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=match):
        draw_propagation(**kwargs)
    assert plt.get_fignums() == before


@pytest.mark.parametrize("name", list(DRAWINGS))
@pytest.mark.parametrize(
    "figsize",
    [
        (10,),
        (10, 3, 1),
        "10x3",
        (0, 3),
        (10, -1),
        (10, float("nan")),
        (True, 3),
        (10, "3"),
        (100, 3),
        10,
    ],
)
def test_bad_figsize_is_refused_before_drawing(name, figsize):
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="figsize must be a pair"):
        DRAWINGS[name](figsize=figsize)
    assert plt.get_fignums() == before


@pytest.mark.parametrize("name", list(DRAWINGS))
def test_options_are_keyword_only_and_figsize_is_used(name):
    with pytest.raises(TypeError):
        DRAWINGS[name]((8, 3))
    fig = DRAWINGS[name](figsize=(8, 3))
    assert tuple(fig.get_size_inches()) == (8.0, 3.0)
    _render(fig)


def test_every_drawing_is_exported():
    assert sorted(diagrams.__all__) == sorted(f"draw_{name}" for name in DRAWINGS)
    for name in diagrams.__all__:
        assert callable(getattr(diagrams, name))
        assert getattr(diagrams, name).__doc__
