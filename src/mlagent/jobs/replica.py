"""This replica's stable identity: its host name and a name written once into its data
directory (or `MLAGENT_REPLICA_ID`, e.g. a StatefulSet pod's name).

Local jobs are processes on one host working in its `MLAGENT_DATA_DIR`, so host and data
directory are what own them: a replica restarted there is the same owner and recovers its
own jobs at once (it can see and stop what is left of them), while another replica — even
one in another container sharing the data volume — waits for the owner's job lease to
expire (store/leases.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

FILE = "replica-id"
log = logging.getLogger("mlagent.jobs")


def replica_id(data_dir: Path, configured: str | None = None) -> str:
    if configured:
        return configured[:100]
    return f"{socket.gethostname()[:60]}/{_saved_id(data_dir)}"


def _saved_id(data_dir: Path) -> str:
    path = data_dir / FILE
    with contextlib.suppress(FileNotFoundError):
        saved = path.read_text().strip()
        if saved:
            return saved
    data_dir.mkdir(parents=True, exist_ok=True)
    new = uuid.uuid4().hex[:16]
    tmp = data_dir / f".{FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(new + "\n")
    try:
        os.link(tmp, path)  # atomic and never replaces: two processes starting at once agree
    except FileExistsError:
        new = path.read_text().strip()
    finally:
        tmp.unlink()
    return new


def heartbeat(lease_seconds: float, beat: Callable[[], Awaitable[None]], name: str) -> asyncio.Task:
    """Run `beat` (renew this replica's job leases, fail lost jobs) a few times per lease
    until cancelled; a failed beat is logged and the next one tries again."""
    async def forever() -> None:
        while True:
            await asyncio.sleep(max(0.2, min(lease_seconds / 3, 10.0)))
            try:
                await beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", name)
    return asyncio.create_task(forever(), name=name)
