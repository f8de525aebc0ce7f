"""The pages `_toc.yml` lists, for the tests of the chapters and of the rendered book."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _files(entries) -> list[str]:
    files = []
    for entry in entries or []:
        if "file" in entry:
            files.append(entry["file"])
        files += _files(entry.get("sections"))
        for part in entry.get("parts") or []:
            files += _files(part.get("chapters"))
    return files


def toc_pages() -> list[str]:
    """Every page of the book in `_toc.yml`'s order: the root, its chapters, then its parts'."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + _files(toc.get("chapters"))
    for part in toc.get("parts") or []:
        files += _files(part.get("chapters"))
    return files
