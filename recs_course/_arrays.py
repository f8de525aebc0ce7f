"""Exact conversion of ids and indices to int64, shared by ``recs_course.data`` and
``recs_course.models`` (one rule: integers that int64 holds exactly; see
``recs_course.data._common`` for the whole list of input rules)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

_INT64_MIN = -(2**63)
_INT64_LIMIT = 2**63  # first integer int64 cannot hold


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _numpy_values(x: object, name: str) -> tuple[np.ndarray, str]:
    """``x`` (tensor, Series, Index, array, list or scalar) as numpy, with its dtype's name.

    Missing values of pandas' nullable dtypes (``Int64``, ``Float64``, ``boolean``) are an
    error here, since numpy has no way to carry them exactly.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        arr = (x.float() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()
        return arr, str(arr.dtype)
    if isinstance(x, pd.api.extensions.ExtensionArray):
        x = pd.Series(x)
    if isinstance(x, (pd.Series, pd.Index)):
        label = str(x.dtype)
        if isinstance(x.dtype, pd.api.extensions.ExtensionDtype) and hasattr(
            x.dtype, "numpy_dtype"
        ):
            na = np.asarray(x.isna())
            if na.any():
                raise ValueError(
                    f"{name} holds {int(na.sum())} missing value(s) (NA), e.g. at position "
                    f"{_first(na)}: drop or fill those rows first"
                )
            return x.to_numpy(dtype=x.dtype.numpy_dtype), label
        arr = x.to_numpy()
        return arr, label
    arr = np.asarray(x)
    return arr, str(arr.dtype)


def check_finite(arr: np.ndarray, name: str, noun: str, advice: str) -> None:
    """``ValueError`` if a float array holds NaN or an infinity: how many, the first one and
    where, then ``advice``."""
    if arr.dtype.kind != "f":
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} holds {int(bad.sum())} NaN or infinite {noun} (e.g. {arr[bad][0]} at "
            f"position {_first(bad)}): {advice}"
        )


def _exact_int64(arr: np.ndarray, name: str, label: str) -> np.ndarray:
    """``arr`` as a new, writable int64 array, or ``ValueError`` if that would change a value."""
    kind = arr.dtype.kind
    if arr.size == 0 and kind in "iufO":
        return np.zeros(0, dtype=np.int64)  # np.asarray([]) is float64
    if kind == "u" and arr.size and arr.max() >= _INT64_LIMIT:
        big = arr >= _INT64_LIMIT
        raise ValueError(
            f"{name} holds {int(big.sum())} value(s) of 2**63 or more (e.g. {arr[big][0]} at "
            f"position {_first(big)}), which int64 cannot hold: map the ids to smaller "
            "integers first (e.g. with pandas.factorize)"
        )
    if kind == "f":
        # Compared in float64 (exact for every float dtype numpy has up to float64): against
        # float16, the bound 2**63 would itself overflow to inf, with a RuntimeWarning.
        arr = arr.astype(np.float64) if arr.dtype.itemsize < 8 else arr
        check_finite(arr, name, "value(s)", "ids must be integers; drop or fill those rows first")
        outside = (arr < float(_INT64_MIN)) | (arr >= float(_INT64_LIMIT))
        if outside.any():
            raise ValueError(
                f"{name} holds {int(outside.sum())} value(s) outside the int64 range (e.g. "
                f"{arr[outside][0]} at position {_first(outside)}): ids must be integers that "
                "int64 holds; map them to smaller integers first (e.g. with pandas.factorize)"
            )
        fractional = np.trunc(arr) != arr
        if fractional.any():
            raise ValueError(
                f"{name} holds {int(fractional.sum())} non-integer value(s) (e.g. "
                f"{arr[fractional][0]} at position {_first(fractional)}): ids must be integers"
            )
    elif kind not in "iu":
        raise ValueError(
            f"{name} must hold integers, got dtype {label}: convert the ids to integers "
            "(e.g. .astype('int64'), or pandas.factorize for strings)"
        )
    return np.array(arr, dtype=np.int64)  # a writable copy: pandas hands out read-only views
