"""What a finished fine-tuning job leaves behind, for its owner: the model as a `.tar.gz`
(a `save_pretrained` directory: safetensors weights, config, tokenizer), the trainer's log,
and the job's events (`events.jsonl` in the job directory, written as the job moves)."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"
MAX_LOG_BYTES = 1 << 20


PICKLED = (".bin", ".pt", ".pth", ".pkl", ".pickle")  # e.g. the Trainer's training_args.bin


def model_archive(out_dir: Path) -> Path:
    """`<job dir>/model/` packed as `<job dir>/model.tar.gz` (files at the archive's top
    level), built once: the model of a finished job does not change. Pickled files (the
    Trainer's `training_args.bin`) are left out: the weights are safetensors, and a model
    archive holds nothing that runs code when loaded (registry/checks.audit_archive)."""
    target = out_dir / "model.tar.gz"
    if target.exists():
        return target
    partial = out_dir / "model.tar.gz.partial"
    with tarfile.open(partial, "w:gz") as tar:
        for path in sorted((out_dir / "model").rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.lower().endswith(PICKLED):
                tar.add(path, arcname=str(path.relative_to(out_dir / "model")), recursive=False)
    partial.replace(target)
    return target


def add_event(out_dir: Path, kind: str, message: str, data: dict[str, Any] | None = None,
              level: str = "info") -> None:
    """One line of the job's event log (OpenAI's fine-tuning event shape, less the id)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    line = {"created_at": time.time(), "level": level, "type": kind, "message": message, "data": data or {}}
    with open(out_dir / EVENTS_FILE, "a") as f:
        f.write(json.dumps(line) + "\n")


def parse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for raw in text.splitlines():
        try:
            events.append(json.loads(raw))
        except ValueError:
            continue  # a line cut by a crash
    return events


def log_tail(text: str, lines: int) -> str:
    """The last `lines` lines of a log."""
    return "\n".join(text.splitlines()[-lines:])
