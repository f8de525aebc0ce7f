"""Companion package of the course "Neural recommender systems in PyTorch".

Importing the package is fast and has no side effects: the submodules (``data``, ``models``,
``losses``, ``metrics``, ``evaluation``, ``compare``, ``training``, ``protocols``, ``recipes``,
``schedules``, ``plots``, ``diagrams``, ``utils``, ``notebook``) are imported on first use, so ``import recs_course`` does not even
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_SUBMODULES = (
    "data",
    "models",
    "losses",
    "metrics",
    "evaluation",
    "compare",
    "training",
    "protocols",
    "recipes",
    "schedules",
    "plots",
    "diagrams",
    "utils",
    "notebook",
    "distributed",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from . import (  # noqa: F401
        compare,
        data,
        diagrams,
        evaluation,
        losses,
        metrics,
        models,
        notebook,
        plots,
        protocols,
        recipes,
        schedules,
        training,
        utils,
    )
