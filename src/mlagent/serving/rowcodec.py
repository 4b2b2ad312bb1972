"""How the operations log stores a predict's input rows: compact, lossless, cheap to write.

The seed's log hands `data` back as text, and JSON text of float rows costs ~19 bytes and a
float-to-decimal conversion per value, on every predict. Rows are stored instead as
`f8:<columns>:<base64 of the little-endian float64 matrix>` (~10.7 bytes a value, no
conversion), written by the log's writer thread; reading turns them back into the very JSON the log used to hold (float64
round-trips exactly), and drift reads the matrix without parsing text. Anything else (a
text-generation call's prompts, records written before this format, operations a client
posted) is read as it is stored. JSON never starts with `f8:`; a client's own text that does
(or that starts with the escape `t:`) is stored behind `t:` (`text`), so it reads back exactly
as posted."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np

PREFIX = "f8:"
ESCAPE = "t:"  # a client's text that would read as a compact record (or as escaped)


def encode(data: Any) -> str:
    """Rows of floats (a float64 matrix, or lists) compactly; anything else as JSON."""
    if isinstance(data, np.ndarray) and data.ndim == 2 and data.dtype == np.float64:
        return f"{PREFIX}{data.shape[1]}:{base64.b64encode(data.astype('<f8', copy=False).tobytes()).decode()}"
    if isinstance(data, list) and data and all(type(r) is list for r in data):
        x = np.asarray(data, dtype="<f8")
        if x.ndim == 2:
            return f"{PREFIX}{x.shape[1]}:{base64.b64encode(x.tobytes()).decode()}"
    return json.dumps(data, separators=(",", ":"))


def text(data: str) -> str:
    """A client's `data` text as stored: as it is, unless it would read as something else."""
    return ESCAPE + data if data.startswith((PREFIX, ESCAPE)) else data


def matrix(text: str) -> np.ndarray | None:
    """The rows of a compact record, else None (a JSON record, or a damaged one)."""
    if not text.startswith(PREFIX):
        return None
    cols, _, b64 = text[len(PREFIX):].partition(":")
    try:
        raw = base64.b64decode(b64, validate=True)
        n = int(cols)
        if n <= 0 or not raw or len(raw) % (8 * n):
            return None
    except (ValueError, binascii.Error):
        return None
    return np.frombuffer(raw, dtype="<f8").reshape(-1, n)


def as_json(text: str) -> str:
    """The record's `data` as the log's clients read it: JSON text."""
    if text.startswith(ESCAPE):
        return text[len(ESCAPE):]
    x = matrix(text)
    return text if x is None else json.dumps(x.tolist(), separators=(",", ":"))
