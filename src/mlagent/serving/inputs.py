"""Turn a predict call's `data` into a numeric matrix in the model's feature order."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ServiceError


def _bad(message: str) -> ServiceError:
    return ServiceError(422, "invalid_request_error", message, "data", retryable=False)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"Every feature value must be a number; got {value!r}.")
    if not math.isfinite(value):
        raise _bad("Feature values must be finite numbers.")
    return float(value)


def _row(item: Any, names: list[str] | None, n: int | None) -> list[float]:
    if isinstance(item, dict):
        if not names:
            raise _bad("This model has no feature names: send each row as a list of numbers.")
        missing = [k for k in names if k not in item]
        unknown = [k for k in item if k not in names]
        if missing or unknown:
            raise _bad(f"Row keys must be exactly the model's features {names}; missing {missing}, unknown {unknown}.")
        return [_number(item[k]) for k in names]
    if isinstance(item, (list, tuple)):
        row = [_number(v) for v in item]
        if n is not None and len(row) != n:
            raise _bad(f"Each row must have {n} feature values; got {len(row)}.")
        return row
    raise _bad("A row must be a list of numbers or an object of feature values.")


def _plain_floats(data: list[Any], n: int | None) -> np.ndarray | None:
    """`data` as a float64 matrix when it is already rows of n finite floats (the common case,
    checked in bulk: one type set, one conversion, one `isfinite`), else None."""
    if not all(type(r) is list for r in data) or len({len(r) for r in data}) != 1 or n is not None and len(data[0]) != n:
        return None
    if {type(v) for r in data for v in r} != {float}:
        return None
    x = np.array(data, dtype=np.float64)
    return x if bool(np.isfinite(x).all()) else None


def parse_rows(data: Any, names: list[str] | None, n: int | None, max_rows: int) -> tuple[np.ndarray, bool]:
    """(rows as a C-ordered float64 matrix, batch): `batch` is False when `data` was a single row."""
    if isinstance(data, dict):
        return np.array([_row(data, names, n)], dtype=np.float64), False
    if not isinstance(data, (list, tuple)) or not data:
        raise _bad("'data' must be a row (list of numbers or object) or a non-empty list of rows.")
    if all(not isinstance(v, (list, tuple, dict)) for v in data):
        return np.array([_row(data, names, n)], dtype=np.float64), False
    if len(data) > max_rows:
        raise _bad(f"At most {max_rows} rows per call.")
    if isinstance(data, list):
        x = _plain_floats(data, n)
        if x is not None:
            return x, True
    rows = [_row(item, names, n) for item in data]
    if len({len(r) for r in rows}) != 1:  # only when the model does not say how many features it has
        raise _bad("Every row must have the same number of feature values.")
    return np.array(rows, dtype=np.float64), True
