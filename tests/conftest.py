"""Shared test set-up.

Tests run with one torch thread: the models are small, CI has two cores, and torch's default
(all cores) makes small models several times slower as soon as anything else runs.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RECS_COURSE_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(int(os.environ["RECS_COURSE_THREADS"]))
    yield
