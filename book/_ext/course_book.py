"""Build-time behaviour of the course book, loaded through ``sphinx.local_extensions``.

1. **Quick mode.** ``RECS_COURSE_QUICK=1`` makes every chapter shrink itself (fewer users, fewer
   epochs). The build then executes every chapter afresh (``force``): a quick build never reads
   from, or writes to, the execution cache of the full book.
2. **An execution cache that cannot go stale.** jupyter-cache keys a notebook on its cell sources
   only, so a change in ``recs_course`` would not re-run the chapters that use it. The cache is
   therefore tied to a hash of the package's sources (and ``pyproject.toml``): when the hash
   changes, the cache is emptied and every page is read again.
3. **No warnings lost on a rebuild.** Sphinx does not re-read a page whose previous build
   warned, so a rebuild of a broken book can look clean. After a build that warned or failed,
   the next build re-reads every page (executed chapters come from the cache if it is valid).
4. **No duplicated inline scripts.** Sphinx 7.4 writes an inline script registered after the
   builder started twice (once as registered, once re-added from the registry), and the second
   copy of sphinx-thebe's ``const THEBE_JS_URL = ...`` is a script error on every page.
5. **No chapter served from the cache with stderr or an error.** jupyter-cache keeps every
   chapter whose execution did not raise, including one that wrote to stderr (a warning), which
   the strict build then reports as an error on every later build, without re-running it. Before
   and after each build, every cached chapter with a stderr stream or an error output is removed
   from the cache (:func:`purge_unclean`), so fixing the cause and building again re-runs it.
6. **MathJax served by the book itself**, so formulas render offline and in the browser test:
   MathJax 3 from the ``django-static-mathjax`` wheel (a plain copy of MathJax's ``es5`` files,
   in the ``book`` extras) is copied to ``_static/mathjax``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import resources
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

QUICK_ENV = "RECS_COURSE_QUICK"
EXEC_CACHE_ENV = "RECS_COURSE_EXEC_CACHE"  # where the execution cache lives, when set
QUICK_CELL_TIMEOUT = 300  # seconds per cell; a quick chapter takes well under a minute in all
MATHJAX_ENTRY = "tex-mml-chtml.js"
# What tex-mml-chtml.js loads on demand (TeX extensions, CHTML fonts, menu, accessibility).
MATHJAX_PARTS = ("input", "output/chtml", "ui", "a11y", "adaptors", "sre")
STATE_FILE = ".course_build.json"  # in the build folder: key and whether the last build was clean
KEY_FILE = "recs_course.sha256"  # in the execution cache: the package it was made with


def _quick() -> bool:
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def package_key(root: Path) -> str:
    """SHA-256 of the package sources, ``pyproject.toml`` and the quick-mode flag."""
    digest = hashlib.sha256(f"quick={_quick()}".encode())
    files = sorted((root / "recs_course").rglob("*.py")) + [root / "pyproject.toml"]
    for f in files:
        if f.is_file():
            digest.update(f.relative_to(root).as_posix().encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


def unclean_outputs(nb) -> list[str]:
    """What in an executed notebook must not be served from the cache: stderr and errors."""
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {index}: error {out.get('ename', '')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                found.append(f"cell {index}: stderr {text.strip()[:120]!r}")
    return found


def purge_unclean(cache_path: Path) -> list[str]:
    """Remove from the execution cache every notebook that wrote to stderr or raised.

    Returns the URIs of the removed notebooks. A cache that cannot be opened is emptied (it is
    only a cache): the next build executes every chapter again.
    """
    if not (Path(cache_path) / "global.db").is_file():
        return []
    from jupyter_cache import get_cache

    removed = []
    try:
        cache = get_cache(str(cache_path))
        for record in cache.list_cache_records():
            bundle = cache.get_cache_bundle(record.pk)
            problems = unclean_outputs(bundle.nb)
            if problems:
                cache.remove_cache(record.pk)
                removed.append(record.uri)
                logger.info(
                    "[course_book] removed %s from the execution cache: %s",
                    record.uri,
                    "; ".join(problems),
                )
    except Exception as exc:  # noqa: BLE001 (a corrupt cache: start afresh)
        logger.info("[course_book] unreadable execution cache %s (%s): emptied", cache_path, exc)
        shutil.rmtree(cache_path, ignore_errors=True)
        removed.append(str(cache_path))
    return removed


def mathjax_dir() -> Path:
    """The folder of MathJax 3's ``es5`` files shipped by the ``django-static-mathjax`` wheel."""
    try:
        base = Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    except ModuleNotFoundError:
        base = None
    if base is None or not (base / MATHJAX_ENTRY).is_file():
        raise ExtensionError(
            "MathJax is served by the book itself and its files are missing: "
            "pip install django-static-mathjax (it is in the book extras: pip install -e '.[book]')"
        )
    return base


def _on_config(app: Sphinx, config) -> None:
    # The course's stylesheet (book/_static/course.css): a text column wide enough for code.
    static = Path(__file__).resolve().parents[1] / "_static"
    config.html_static_path = [*config.html_static_path, str(static)]
    app.add_css_file("course.css")
    # MathJax: a path relative to the built _static folder.
    mathjax_dir()  # fail early, with a clear message, if the files are not installed
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"

    build_dir = Path(app.outdir).parent
    app.course_reread_all = False  # type: ignore[attr-defined]
    if _quick():
        config.nb_execution_mode = "force"
        config.nb_execution_timeout = min(config.nb_execution_timeout, QUICK_CELL_TIMEOUT)
        logger.info("[course_book] quick mode: every chapter shrinks itself and is re-executed")

    # The cache carries the key of the package it was made with (so a cache restored from
    # elsewhere, e.g. by CI, is checked too); the build folder remembers whether the last build
    # was clean.
    key = package_key(Path(app.confdir))
    # RECS_COURSE_EXEC_CACHE moves the cache (CI points it at a fresh folder).
    cache = Path(
        os.environ.get(EXEC_CACHE_ENV)
        or config.nb_execution_cache_path
        or build_dir / ".jupyter_cache"
    ).resolve()
    config.nb_execution_cache_path = str(cache)
    key_file = cache / KEY_FILE
    if cache.exists() and (not key_file.is_file() or key_file.read_text() != key):
        logger.info("[course_book] recs_course changed: emptying the execution cache %s", cache)
        shutil.rmtree(cache)
        app.course_reread_all = True  # type: ignore[attr-defined]
    if purge_unclean(cache):
        app.course_reread_all = True  # type: ignore[attr-defined]
    app.course_cache = cache  # type: ignore[attr-defined]
    cache.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key)
    state_path = build_dir / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    if state.get("key") != key or not state.get("clean", False):
        app.course_reread_all = True  # type: ignore[attr-defined]
    state_path.write_text(json.dumps({"key": key, "clean": False}))


def _on_outdated(app: Sphinx, env, added, changed, removed) -> list[str]:
    if getattr(app, "course_reread_all", False):
        return sorted(set(env.found_docs) - set(added) - set(changed))
    return []


def _dedupe_inline_scripts(app: Sphinx, env, docnames) -> None:
    # Inline scripts added through app.add_js_file(None, body=...) after Builder.init() reach the
    # builder as filename None; prepare_writing re-adds them from the registry as filename "".
    files = getattr(app.builder, "_js_files", None)
    if files is not None:
        app.builder._js_files = [js for js in files if js.filename is not None]  # noqa: SLF001


def _on_finished(app: Sphinx, exception) -> None:
    cache = getattr(app, "course_cache", None)
    if cache is not None and app.config.nb_execution_mode == "cache":
        purge_unclean(cache)
    if exception is not None or app.builder.format != "html":
        return
    src = mathjax_dir()
    dest = Path(app.outdir) / "_static" / "mathjax"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / MATHJAX_ENTRY, dest / MATHJAX_ENTRY)
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, dirs_exist_ok=True)
    licence = src.parent / "LICENSE"
    if licence.is_file():
        shutil.copy2(licence, dest / "LICENSE")
    state_path = Path(app.outdir).parent / STATE_FILE
    state = json.loads(state_path.read_text())
    state["clean"] = app._warncount == 0  # noqa: SLF001 (Sphinx keeps no public counter)
    state_path.write_text(json.dumps(state))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _on_config, priority=900)
    app.connect("env-get-outdated", _on_outdated)
    app.connect("env-before-read-docs", _dedupe_inline_scripts, priority=900)
    app.connect("build-finished", _on_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
