"""This replica's stable identity: a name written once into its data directory.

Local jobs live in a replica's `MLAGENT_DATA_DIR` (their directories, logs and process
records), so the data directory is what owns them: a replica restarted on the same
directory is the same owner and recovers its own jobs at once, while another replica
waits for the owner's job lease to expire (store/leases.py)."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

FILE = "replica-id"


def replica_id(data_dir: Path) -> str:
    path = data_dir / FILE
    with contextlib.suppress(FileNotFoundError):
        saved = path.read_text().strip()
        if saved:
            return saved
    data_dir.mkdir(parents=True, exist_ok=True)
    new = f"replica-{uuid.uuid4().hex[:16]}"
    tmp = data_dir / f".{FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(new + "\n")
    try:
        os.link(tmp, path)  # atomic and never replaces: two processes starting at once agree
    except FileExistsError:
        new = path.read_text().strip()
    finally:
        tmp.unlink()
    return new
