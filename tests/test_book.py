"""The built book, opened page by page in a real browser (Debian's headless chromium).

Runs against the quick build (``make book-quick``: every chapter executed on shrunk data) and is
run by ``make browser``. For every page of ``_toc.yml`` it checks that the page loads without
script errors and without fetching anything from outside the book, that every image is present
and decoded and has alt text, that the math is typeset by MathJax (served by the book itself),
that chapter pages link "Open in Colab" to their paired ``.ipynb``, hide their install cell
and exercise solutions, draw every figure their ``tests/chapters/<chapter>.json`` lists (with alt
text and a caption) and show no code cell that only tests (those are collapsed), and that no
page shows an error, a traceback, a warning or a progress bar. A full-page screenshot of each page is saved to ``_build/screenshots/``.

Environment: ``RECS_COURSE_BOOK_HTML`` (the built HTML, default ``_build/quick/_build/html``),
``RECS_COURSE_SCREENSHOTS`` (default ``_build/screenshots``), ``CHROMIUM`` (default
``/usr/bin/chromium``). Without a build the test is skipped, unless
``RECS_COURSE_REQUIRE_BOOK=1`` (set by ``make browser``), which makes a missing build a failure.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from book_toc import toc_pages

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("RECS_COURSE_BOOK_HTML", ROOT / "_build/quick/_build/html"))
SHOTS = Path(os.environ.get("RECS_COURSE_SCREENSHOTS", ROOT / "_build/screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTER = re.compile(r"^book/\d\d_\w+$")
# Text that must never appear in a rendered page's outputs.
BAD_OUTPUT = re.compile(
    r"Traceback \(most recent call last\)|\b\w*(Warning|Error):|\d+%\|[^\n]*\|\s*\d+/\d+"
)

# Code that tests rather than teaches (the static twin is tests/test_book_cells.py).
CHECK_CODE = re.compile(r"\bassert\b|assert_close|np\.testing|\brecord\(|\bQUICK\b")

PAGES = toc_pages()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def site():
    """A local HTTP server (127.0.0.1, a free port) serving the built HTML."""
    if not (HTML / "index.html").is_file():
        message = (
            f"no built book at {HTML}: run `make book-quick` first "
            "(`make browser` runs this test against it)"
        )
        if os.environ.get("RECS_COURSE_REQUIRE_BOOK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`make setup` does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    """A fresh page that records script errors and blocks every request leaving the book."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.errors, pg.external, pg.failed = [], [], []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: pg.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    pg.on("requestfailed", lambda req: pg.failed.append(req.url))

    def route(r):
        if r.request.url.startswith(site):
            r.continue_()
        else:
            pg.external.append(f"{r.request.resource_type} {r.request.url}")
            r.abort()

    pg.route("**/*", route)
    yield pg
    context.close()


def colab_url(page_file: str) -> str:
    repo = urlsplit(CONFIG["repository"]["url"]).path.strip("/")
    branch = CONFIG["repository"]["branch"]
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{page_file}.ipynb"


def test_every_toc_page_was_built():
    if not (HTML / "index.html").is_file():
        pytest.skip(f"no built book at {HTML}: run `make book-quick` first")
    missing = [f for f in PAGES if not (HTML / f"{f}.html").is_file()]
    assert not missing, f"pages of _toc.yml missing from {HTML}: {missing}"


@pytest.mark.parametrize("page_file", PAGES, ids=[Path(f).name for f in PAGES])
def test_page_renders(page, site, page_file):
    html_file = HTML / f"{page_file}.html"
    assert html_file.is_file(), f"{page_file} was not built ({html_file})"
    response = page.goto(f"{site}/{page_file}.html", wait_until="load")
    assert response is not None and response.ok, f"{page_file}: HTTP {response and response.status}"
    article = page.locator("article.bd-article")
    assert article.count() == 1, f"{page_file}: no article (the page did not render)"
    assert page.locator("article h1").count() >= 1, f"{page_file}: no title"

    # Math: every formula Sphinx left for MathJax is typeset, without TeX errors.
    n_math = page.locator("article .math").count()
    if n_math:
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000
        )
        page.evaluate("() => MathJax.startup.promise")
        typeset = page.locator("article .math mjx-container").count()
        assert typeset >= n_math, f"{page_file}: {typeset} of {n_math} formulas typeset"
        errors = page.locator("article mjx-merror").all_inner_texts()
        assert not errors, f"{page_file}: TeX errors {errors}"

    # Images: present, decoded and described.
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=30_000
    )
    images = page.evaluate(
        "() => Array.from(document.querySelectorAll('article img')).map(i => "
        "({src: i.currentSrc || i.src, w: i.naturalWidth, alt: (i.alt || '').trim()}))"
    )
    broken = [i["src"] for i in images if i["w"] == 0]
    assert not broken, f"{page_file}: images not decoded: {broken}"
    no_alt = [i["src"] for i in images if not i["alt"]]
    assert not no_alt, f"{page_file}: images without alt text: {no_alt}"
    for fig in page.locator("article figure").all():
        if fig.locator("img").count():
            assert fig.locator("figcaption").count() == 1, f"{page_file}: a figure has no caption"

    # No error output, traceback, warning or progress bar anywhere in the page.
    assert page.locator(
        "article .output.error, article .output.traceback, article .output.stderr, "
        "article .system-message, article .problematic"
    ).count() == 0, f"{page_file}: an error output or a build problem is shown"
    outputs = "\n".join(page.locator("article .cell_output").all_inner_texts())
    bad = BAD_OUTPUT.search(outputs)
    assert bad is None, f"{page_file}: output shows {bad.group(0)!r}"
    assert "Traceback (most recent call last)" not in page.inner_text("body")

    if CHAPTER.match(page_file):
        # Open in Colab: the paired notebook, which must exist in the repository.
        hrefs = page.eval_on_selector_all(
            "a[href*='colab.research.google.com']", "els => els.map(e => e.href)"
        )
        assert hrefs == [colab_url(page_file)], f"{page_file}: Colab links {hrefs}"
        assert (ROOT / f"{page_file}.ipynb").is_file()
        # Repository and download buttons.
        repo = CONFIG["repository"]["url"]
        assert page.locator(f"a[href='{repo}']").count() >= 1, f"{page_file}: no repository link"
        downloads = page.eval_on_selector_all(
            ".dropdown-download-buttons a[href*='_sources']", "els => els.map(e => e.href)"
        )
        assert any(h.endswith(".ipynb") for h in downloads), f"{page_file}: downloads {downloads}"
        for href in downloads:
            assert page.request.get(href).ok, f"{page_file}: download link {href} is broken"
        # The Colab install cell is removed from the page; solutions are collapsed.
        assert "google.colab" not in page.content(), f"{page_file}: the install cell is shown"
        solutions = page.locator("article .solution")
        assert solutions.count() >= 1, f"{page_file}: no exercise solution"
        for i in range(solutions.count()):
            body = solutions.nth(i).locator("section, .cell").first
            assert not body.is_visible(), f"{page_file}: solution {i + 1} is not hidden"
        assert page.locator("article .exercise").count() >= 1, f"{page_file}: no exercise"
        # Every figure the chapter promises is drawn, described and captioned.
        expect = json.loads((ROOT / "tests/chapters" / f"{Path(page_file).name}.json").read_text())
        for name in expect.get("figures", []):
            figure = page.locator(f"article figure#{name}")
            assert figure.count() == 1, f"{page_file}: figure {name} is missing"
            img = figure.locator("img")
            assert img.count() == 1, f"{page_file}: figure {name} has no image"
            assert (img.get_attribute("alt") or "").strip(), f"{page_file}: {name} has no alt text"
            assert figure.locator("figcaption").count() == 1, f"{page_file}: {name} no caption"
        # The checks run but stay out of the way: no visible code tests, outside solutions.
        shown = page.evaluate(
            "() => Array.from(document.querySelectorAll('article .cell .cell_input'))"
            ".filter(e => !e.closest('.solution, .tag_parameters') && e.offsetParent !== null)"
            ".map(e => e.innerText)"
        )
        tests_shown = [t.splitlines()[0] for t in shown if CHECK_CODE.search(t)]
        assert not tests_shown, f"{page_file}: visible cells that test: {tests_shown}"
        hidden = page.locator("article .cell.tag_hide-cell")
        assert hidden.count() >= 1, f"{page_file}: no collapsed check cell"
        for i in range(hidden.count()):
            body = hidden.nth(i).locator(".cell_input")
            assert body.count() == 0 or not body.first.is_visible(), (
                f"{page_file}: collapsed cell {i + 1} is open"
            )
    if page_file.endswith("references"):
        n_refs = len(re.findall(r"^@\w+\{", (ROOT / "book/references.bib").read_text(), re.M))
        shown = page.locator("article .citation, article dl.citation > dt").count()
        assert shown >= n_refs, f"references: {shown} entries shown, {n_refs} in references.bib"

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{Path(page_file).name}.png"), full_page=True)
    assert not page.errors, f"{page_file}: script errors {page.errors}"
    assert not page.external, f"{page_file}: requests outside the book {page.external}"
    failed = [u for u in page.failed if u.startswith(site)]
    assert not failed, f"{page_file}: failed requests {failed}"
