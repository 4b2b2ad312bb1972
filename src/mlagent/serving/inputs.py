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


def _plain_floats(data: list[Any] | tuple[Any, ...], n: int | None) -> bool:
    """Whether `data` is already rows of n finite floats (the common case, checked in bulk)."""
    if not all(type(r) is list for r in data) or len({len(r) for r in data}) != 1 or n is not None and len(data[0]) != n:
        return False
    return {type(v) for r in data for v in r} == {float} and bool(np.isfinite(np.array(data, dtype=np.float64)).all())


def parse_rows(data: Any, names: list[str] | None, n: int | None, max_rows: int) -> tuple[list[list[float]], bool]:
    """(rows, batch): `batch` is False when `data` was a single row."""
    if isinstance(data, dict):
        return [_row(data, names, n)], False
    if not isinstance(data, (list, tuple)) or not data:
        raise _bad("'data' must be a row (list of numbers or object) or a non-empty list of rows.")
    if all(not isinstance(v, (list, tuple, dict)) for v in data):
        return [_row(data, names, n)], False
    if len(data) > max_rows:
        raise _bad(f"At most {max_rows} rows per call.")
    if isinstance(data, list) and _plain_floats(data, n):
        return data, True
    return [_row(item, names, n) for item in data], True
