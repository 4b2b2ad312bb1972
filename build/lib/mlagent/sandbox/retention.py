"""Retention of per-session sandbox directories: they are removed once unused for long
enough (the runtime decides which sessions may lose theirs; see docs/agent-tools.md,
"Sandbox retention").

A directory's last use is its mtime, refreshed by `Sandbox.directory()` on every file
access or command. Removal renames the directory into `.trash/` (atomic: a later call
for the session gets a fresh, empty directory at once) and leaves a tombstone in
`.expired/`, so the next sandbox tool call can tell the agent its files are gone; the
trash is deleted afterwards, off the event loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from pathlib import Path

TRASH = ".trash"
EXPIRED = ".expired"
TOMBSTONE_SECONDS = 30 * 86400  # a tombstone nobody came back for is dropped after 30 days


def touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def idle_dirs(root: Path, idle_seconds: float, valid) -> list[str]:
    """Session ids whose directory was last used at least `idle_seconds` ago."""
    cutoff = time.time() - idle_seconds
    out = []
    with os.scandir(root) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if valid(entry.name) and entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime <= cutoff:
                    out.append(entry.name)
    return out


def retire(root: Path, session_id: str) -> bool:
    """Move the session's directory to the trash and leave a tombstone; False if it had none."""
    trash, expired = root / TRASH, root / EXPIRED
    for d in (trash, expired):
        d.mkdir(mode=0o700, exist_ok=True)
    try:
        os.rename(root / session_id, trash / f"{session_id}.{time.time_ns()}")
    except FileNotFoundError:
        return False
    (expired / session_id).write_text(str(time.time()))
    return True


def purge(root: Path) -> None:
    """Delete the trash, and tombstones older than 30 days."""
    trash = root / TRASH
    if trash.is_dir():
        for entry in os.scandir(trash):
            shutil.rmtree(entry.path, onerror=_writable_and_retry)
    expired = root / EXPIRED
    if expired.is_dir():
        cutoff = time.time() - TOMBSTONE_SECONDS
        for entry in os.scandir(expired):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)


def take_tombstone(root: Path, session_id: str) -> float | None:
    """When the session's directory was removed (epoch seconds), once; None if it was not."""
    path = root / EXPIRED / session_id
    try:
        removed_at = float(path.read_text() or 0)
        path.unlink()
    except (OSError, ValueError):
        return None
    return removed_at


def _writable_and_retry(func, path, _exc_info) -> None:
    """Code in the sandbox may leave read-only or unlistable directories: open them up, retry."""
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), stat.S_IRWXU)
    with contextlib.suppress(OSError):
        if not os.path.islink(path) and os.path.isdir(path):
            os.chmod(path, stat.S_IRWXU)
    if func in (os.unlink, os.remove, os.rmdir):
        with contextlib.suppress(FileNotFoundError):
            func(path)
    else:  # it could not be listed or opened: the whole subtree again
        shutil.rmtree(path, ignore_errors=True)
