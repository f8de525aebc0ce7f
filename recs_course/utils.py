"""Small helpers: device selection and thread count."""

from __future__ import annotations

import os

import torch

__all__ = ["get_device", "set_threads", "default_threads"]


def get_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a ``torch.device``.

    ``"auto"`` (or ``None``) picks CUDA when available, then Apple's MPS, then the CPU. Any other
    value is passed to ``torch.device`` and checked: asking for CUDA on a machine without it is an
    error, not a silent fallback.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:0' or 'mps'"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for but CUDA is not available here: "
            "use device='auto' or 'cpu'"
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device {device!r} was asked for but MPS is not available: use 'auto' or 'cpu'"
            )
    return dev


def default_threads() -> int:
    """The thread count the course uses on the CPU.

    ``RECS_COURSE_THREADS`` overrides it; otherwise half the cores (at least 1, at most 8). The
    course's models are small: on few cores torch's default (all cores) makes them several times
    slower as soon as anything else runs on the machine.
    """
    env = os.environ.get("RECS_COURSE_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError as exc:
            raise ValueError(f"RECS_COURSE_THREADS={env!r} is not an integer") from exc
        if n < 1:
            raise ValueError(f"RECS_COURSE_THREADS={env!r} must be at least 1")
        return n
    cores = os.cpu_count() or 1
    return max(1, min(8, cores // 2))


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (``None``: :func:`default_threads`) and return it."""
    if n is None:
        n = default_threads()
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"thread count must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
    return n
