"""Length-prefixed JSON frames between the API process and a serving worker.

JSON only, both ways: the API process never unpickles anything a worker sends."""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    return HEADER.pack(len(body)) + body


def read_sync(stream: BinaryIO) -> dict[str, Any] | None:
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    return json.loads(body)
