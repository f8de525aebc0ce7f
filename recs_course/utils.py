"""Small helpers: device selection, thread count and progress bars."""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: recs_course.notebook imports this
    import torch  # module and must not load torch at import time

__all__ = [
    "atomic_write",
    "check_flag",
    "check_number",
    "check_positive_int",
    "check_non_negative_int",
    "is_real_number",
    "env_flag",
    "default_threads",
    "get_device",
    "progress_bar",
    "progress_enabled",
    "set_threads",
]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def env_flag(var: str, default: bool, choices: str) -> bool:
    """The on/off switch in the environment variable ``var`` (unset or empty: ``default``).

    ``1/true/yes/on`` and ``0/false/no/off`` (any case) are understood; anything else is a
    ``ValueError`` that names the variable and says ``choices`` (e.g. "1 (quick) or 0 (full)").
    """
    value = os.environ.get(var, "").strip().lower()
    if value == "":
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{var}={value!r} is not understood: use {choices}")


def check_flag(name: str, value: object) -> bool:
    """``value`` as a bool, refusing anything that is not a bool (``"no"`` is truthy in Python:
    a string given for a flag would silently mean ``True``)."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def is_real_number(value: object) -> bool:
    """Whether ``value`` is a real number: ``int``, ``float`` or a numpy integer or floating
    scalar, but not a bool (``True`` is an ``int`` in Python; ``numpy.bool_`` is no number)."""
    import numpy as np

    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_int(name: str, value: object, minimum: int, expected: str) -> int:
    """``value`` as an ``int`` if it is an integer (Python's or numpy's, never a bool or a float
    such as ``2.0``) of at least ``minimum``, else a ``ValueError`` saying ``expected``."""
    import operator

    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    try:
        number = operator.index(value)  # accepts int and numpy integers, rejects floats
    except TypeError:
        raise ValueError(f"{name} must be {expected}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(number)


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer (numpy integers included),
    else raise ``ValueError``. The one integer check of every layer (data, models, training)."""
    return _check_int(name, value, 1, "a positive integer")


def check_non_negative_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= 0`` (numpy integers included),
    else raise ``ValueError``."""
    return _check_int(name, value, 0, "an integer >= 0")


def check_number(
    name: str, value: object, *, low: float = -math.inf, strict: bool = False, hint: str = ""
) -> float:
    """``value`` as a float if it is a finite real number ``>= low`` (``> low`` where
    ``strict``), else a ``ValueError`` naming ``name`` (``hint`` is added after what is
    expected). Python and numpy ints and floats are numbers; bool, strings, None, tensors, NaN
    and infinities are not.

    The one check of real-valued arguments of :mod:`recs_course.schedules` (rates, step sizes,
    ``gamma``, ``smooth``, ...) and of :func:`recs_course.training.fit` (``min_delta``,
    ``clip_grad``).
    """

    if low == -math.inf:
        what = "a finite number"
    elif low == 0 and strict:
        what = "a finite positive number"
    else:
        what = f"a finite number {'>' if strict else '>='} {low:g}"
    if not is_real_number(value):
        raise ValueError(f"{name} must be {what}{hint}, got {value!r:.80} ({type(value).__name__})")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the floats: not finite either
        number = math.inf
    if not math.isfinite(number) or number < low or (strict and number == low):
        raise ValueError(f"{name} must be {what}{hint}, got {value!r}")
    return number


def get_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a ``torch.device``.

    ``"auto"`` (or ``None``) picks CUDA when available, then Apple's MPS, then the CPU. Any other
    value is passed to ``torch.device`` and checked: asking for CUDA on a machine without it is an
    error, not a silent fallback.
    """
    import torch

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
    """Set torch's intra-op thread count to ``n`` (a positive integer, numpy's included; ``None``:
    :func:`default_threads`) and return it."""
    n = default_threads() if n is None else check_positive_int("n", n)
    most = 4 * (os.cpu_count() or 1)
    if n > most:
        raise ValueError(
            f"thread count {n} is more than 4 x the {os.cpu_count()} cores here: use at most "
            f"{most} (the course's models are small: half the cores is the default)"
        )
    import torch

    torch.set_num_threads(n)
    return n


def progress_enabled(progress: bool = True) -> bool:
    """Whether progress bars are on: ``progress`` and not ``RECS_COURSE_PROGRESS=0``.

    The book build and the tests set ``RECS_COURSE_PROGRESS=0``; readers see bars by default.
    """
    bars = env_flag("RECS_COURSE_PROGRESS", True, "0 (no bars) or 1 (bars)")
    return check_flag("progress", progress) and bars


def _in_jupyter_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # noqa: BLE001 (any IPython oddity means: not a kernel we can draw in)
        return False


def _widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except Exception:  # noqa: BLE001 (ImportError, or a broken install: no widgets either way)
        return False
    return True


def progress_bar(total: int | None = None, *, progress: bool = True, **kwargs: Any) -> Any:
    """A tqdm progress bar that never writes a warning, with or without ipywidgets.

    - In a Jupyter kernel with ``ipywidgets`` installed: tqdm's widget bar.
    - Anywhere else (a terminal, a script, a kernel without ipywidgets): tqdm's text bar, which
      switches itself off when stderr is not a terminal (a notebook, a CI log, a book build), so
      nothing lands on stderr there.
    - Off when ``progress`` is false or ``RECS_COURSE_PROGRESS=0``.

    ``tqdm.auto`` is never used: in a kernel without ipywidgets it prints ``TqdmWarning:
    IProgress not found`` on stderr, which fails the book's strict build.
    """
    enabled = progress_enabled(progress)
    if enabled and _in_jupyter_kernel() and _widgets_available():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm.notebook's own version notices
            from tqdm.notebook import tqdm as tqdm_class
        return tqdm_class(total=total, disable=False, **kwargs)
    from tqdm.std import tqdm as tqdm_class

    # disable=None: tqdm turns the bar off when the stream is not a terminal.
    return tqdm_class(total=total, disable=None if enabled else True, **kwargs)


def atomic_write(path, write) -> None:
    """Write ``path`` through a temporary file in the same folder, then ``os.replace`` it: a
    reader sees the old file or the whole new one, never a half-written one.

    ``write`` is called with the temporary file opened in binary mode. The parent folder is
    created if needed; on any failure the temporary file is removed and the error re-raised.
    """
    import tempfile
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
