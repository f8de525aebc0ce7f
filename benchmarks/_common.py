"""Helpers shared by the benchmark scripts.

Standard library only: the peers' scripts (``recbole_run.py``, ``surprise_run.py``) run in
their own environments and import it too. The scripts are run as ``python benchmarks/X.py``,
so this folder is on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine_line() -> str:
    """One line naming the machine, e.g. ``Linux x86_64, 2 logical CPUs``."""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs"


def write_json(path: Path, obj: Any, indent: int = 2, **dumps_kw: Any) -> None:
    """Write ``obj`` as JSON atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=indent, **dumps_kw) + "\n")
    os.replace(tmp, path)
