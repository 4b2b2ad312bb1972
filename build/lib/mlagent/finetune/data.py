"""Reading an uploaded training or validation file into rows of one TRL dataset format.

JSONL rows are `{"prompt", "completion"}` (TRL trains on the completion only),
`{"messages": [...]}` (conversational, rendered by the tokenizer's chat template) or
`{"text"}`. A file whose rows all share the first two shapes keeps that shape; a file
that mixes shapes, or is plain text, becomes `text` rows. Texts longer than the model's
context are cut into consecutive pieces rather than truncated, so no data is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _as_text(row: dict[str, Any]) -> str:
    if isinstance(row.get("messages"), list):
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in row["messages"]
                         if isinstance(m, dict))
    if "prompt" in row or "completion" in row:
        return f"{row.get('prompt', '')}{row.get('completion', '')}"
    return str(row.get("text", ""))


def _kind(row: dict[str, Any]) -> str:
    if isinstance(row.get("messages"), list) and row["messages"]:
        return "messages"
    if isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str) and row["completion"]:
        return "prompt-completion"
    return "text"


def chunks(text: str, max_bytes: int) -> list[str]:
    """Consecutive pieces of at most `max_bytes` UTF-8 bytes (one token per byte here),
    cut at a line break when there is one in the second half of the piece."""
    out: list[str] = []
    data = text.encode("utf-8")
    while data:
        piece = data[:max_bytes]
        if len(data) > max_bytes and (cut := piece.rfind(b"\n")) > max_bytes // 2:
            piece = piece[:cut + 1]
        data = data[len(piece):]
        decoded = piece.decode("utf-8", errors="ignore")
        if decoded.strip():
            out.append(decoded)
    return out


def load_rows(path: Path, max_bytes: int) -> list[dict[str, Any]]:
    raw = path.read_text(encoding="utf-8", errors="replace")
    rows: list[dict[str, Any]] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            rows = []
            break
        if not isinstance(row, dict):
            rows = []
            break
        rows.append(row)
    else:
        kinds = {_kind(r) for r in rows}
        if kinds == {"prompt-completion"}:
            return [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
        if kinds == {"messages"}:
            return [{"messages": [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
                                  for m in r["messages"] if isinstance(m, dict)]} for r in rows]
        return [{"text": piece} for r in rows for piece in chunks(_as_text(r), max_bytes)]
    return [{"text": piece} for piece in chunks(raw, max_bytes)]  # plain text
