"""A disk limit for the directories untrusted code may write to (RLIMIT_FSIZE bounds one
file, not how many): while the code runs, the directories are measured every `interval`
seconds, off the event loop, and the code is killed once they grew past the limit.

With `baseline`, a directory already over the limit when the code starts (an agent
session that filled it earlier) may not grow further, so a command that deletes files can still run. The walk
never follows a link and stops counting at `max_entries` files (an inode filler trips it
too). Checked by polling: the code can overshoot by what it writes in one interval."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

MAX_ENTRIES = 100_000


def usage(paths: Sequence[Path], max_entries: int = MAX_ENTRIES) -> tuple[int, int]:
    """(bytes allocated, entries) under `paths`, walking no symlink; stops at `max_entries`."""
    total = entries = 0
    stack = [str(p) for p in paths]
    while stack and entries < max_entries:
        top = stack.pop()
        with contextlib.suppress(OSError), os.scandir(top) as it:
            for entry in it:
                entries += 1
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    return total, entries


class DiskGuard:
    """`async with DiskGuard(paths, limit_mb, kill):` around a running process; `tripped`
    says whether `kill` was called for the limit."""

    def __init__(self, paths: Sequence[Path], limit_mb: int | None, kill: Callable[[], None],
                 interval: float = 0.25, baseline: bool = False) -> None:
        self.paths = list(paths)
        self.limit = None if not limit_mb else int(limit_mb) * 1024 * 1024
        self.kill = kill
        self.interval = interval
        self.baseline = baseline  # measure first: a directory already over the limit may not grow
        self.tripped = False
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Self:
        if self.limit is not None:
            start = (await asyncio.to_thread(usage, self.paths))[0] if self.baseline else 0
            self._allowed = max(self.limit, start)
            self._task = asyncio.create_task(self._watch())
        return self

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            used, entries = await asyncio.to_thread(usage, self.paths)
            if used > self._allowed or entries >= MAX_ENTRIES:
                self.tripped = True
                self.kill()
                return

    async def __aexit__(self, *exc) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
