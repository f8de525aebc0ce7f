"""The chapters read as a course: checks out of the way, every figure described, one vocabulary.

Static checks of each chapter's MyST source (fast, run with the unit tests; the browser check in
``test_book.py`` verifies the same on the rendered pages):

- a code cell that exists to test (``assert``, ``assert_close``, ``np.testing``, ``record(...)``,
  a quick-mode branch) is hidden or collapsed in the book (tag ``hide-cell``, ``remove-cell``,
  ``hide-input`` or ``remove-input``), except the ``parameters`` cell and the cells of an
  exercise's solution (collapsed already, and a solution checks what its exercise asks);
- every figure a cell draws has a name, a caption and alt text, and the chapter's expected
  figures in ``tests/chapters/<chapter>.json`` (``"figures"``) are exactly the ones it draws;
- the prose never says "the seed" (the tutorials the course grew from are credited once, in the
  introduction), and every chapter ends with a summary and a pointer to what comes next.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
EXPECT = Path(__file__).resolve().parent / "chapters"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.md"))
IDS = [p.stem for p in CHAPTERS]

HIDDEN = {"hide-cell", "remove-cell", "hide-input", "remove-input"}
CHECK = re.compile(r"\bassert\b|assert_close|np\.testing|\brecord\(|\bQUICK\b")
DRAWS = re.compile(r"plt\.show\(\)|\bdraw_\w+\(|\bplot_\w+\(")
THE_SEED = re.compile(r"\bthe seeds?\b(?!\s*=)", re.IGNORECASE)


def _cells(md: Path):
    """(cell, in_solution) for every cell of the chapter, in order."""
    in_solution = False
    for cell in jupytext.read(md).cells:
        if cell.cell_type == "markdown":
            # one markdown cell may close a solution, set the next exercise and open its solution
            start, end = cell.source.rfind("{solution-start}"), cell.source.rfind("{solution-end}")
            if start >= 0 or end >= 0:
                in_solution = start > end
        yield cell, in_solution


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _figure(cell) -> dict | None:
    return cell.metadata.get("mystnb", {}).get("figure")


def test_the_patterns_tell_checks_and_figures_from_teaching_code():
    assert CHECK.search("assert rmse < 1.0")
    assert CHECK.search("torch.testing.assert_close(a, b)")
    assert CHECK.search('record("rmse", rmse);')
    assert CHECK.search("if QUICK:\n    EPOCHS = 2")
    assert not CHECK.search("history = fit(model, train, epochs=EPOCHS)")
    assert not CHECK.search("recorder = []")
    assert DRAWS.search("plot_history(history)\nplt.show()")
    assert DRAWS.search("draw_splits();")
    assert not DRAWS.search("model = MF(n_users, n_items)")
    assert THE_SEED.search("as the seed did") and THE_SEED.search("The seeds train")
    assert not THE_SEED.search("the training seed") and not THE_SEED.search("the seed = 3")


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_checks_are_hidden_in_the_book(md):
    shown = []
    for cell, in_solution in _cells(md):
        if cell.cell_type != "code" or in_solution or _tags(cell) & (HIDDEN | {"parameters"}):
            continue
        if CHECK.search(cell.source):
            shown.append(cell.source.strip().splitlines()[0][:80])
    assert not shown, (
        f"{md.name}: visible code cells that test (tag them hide-cell, after splitting off the "
        f"teaching part): {shown}"
    )


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_every_figure_is_named_captioned_and_described(md):
    names = []
    for cell, _ in _cells(md):
        if cell.cell_type != "code" or "remove-cell" in _tags(cell):
            continue
        figure = _figure(cell)
        if figure is None:
            assert not DRAWS.search(cell.source) or "hide-cell" in _tags(cell), (
                f"{md.name}: a cell draws without a figure caption (mystnb.figure): "
                f"{cell.source.strip().splitlines()[0][:80]}"
            )
            continue
        alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
        assert figure.get("name") and figure.get("caption"), f"{md.name}: {figure}"
        assert len(str(alt).split()) >= 5, f"{md.name}: {figure['name']} has no real alt text"
        names.append(figure["name"])
    assert len(names) == len(set(names)), f"{md.name}: figure names repeat: {names}"
    expect = json.loads((EXPECT / f"{md.stem}.json").read_text()).get("figures")
    assert expect is not None, f"tests/chapters/{md.stem}.json: list the figures under 'figures'"
    assert sorted(expect) == sorted(names), (
        f"{md.name} draws {names}, tests/chapters/{md.stem}.json expects {expect}"
    )


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_the_prose_speaks_to_a_reader(md):
    prose = "\n".join(c.source for c, _ in _cells(md) if c.cell_type == "markdown")
    said = THE_SEED.findall(prose)
    assert not said, f"{md.name} says {said!r}: name what is meant (the tutorial, a training seed)"
    headings = re.findall(r"^##\s+(.+?)\s*$", prose, re.M)
    assert "Summary" in headings, f"{md.name}: end with a '## Summary' of what it showed"
    assert "Where next" in headings, f"{md.name}: add '## Where next'"


def test_figure_names_are_unique_across_the_book():
    """Sphinx labels are global: two chapters naming a figure alike is a warning, and the
    strict build fails on it (only the full build showed it, after a chapter was added)."""
    where: dict[str, str] = {}
    for md in CHAPTERS:
        for cell, _ in _cells(md):
            figure = _figure(cell) if cell.cell_type == "code" else None
            if figure and figure.get("name"):
                name = figure["name"]
                assert name not in where, f"{name} is named in {where.get(name)} and {md.name}"
                where[name] = md.name
    assert len(where) >= len(CHAPTERS), where  # the chapters do draw named figures
