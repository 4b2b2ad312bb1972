"""A disk limit for the directories untrusted code may write to (RLIMIT_FSIZE bounds one
file, not how many): while the code runs, the directories are measured every `interval`
seconds by a thread of the guard's own (not the event loop, not the shared thread pool, so a
busy server does not delay the check), and the code is killed once they grew past the limit.
The interval is short (50 ms: a page-cache writer fills ~250 MB in a quarter second here)
and stretches to ten times what a walk took (at most 1 s), so a big workspace costs at most
about a tenth of a core to watch.

With `baseline`, a directory already over the limit when the code starts (an agent
session that filled it earlier) may not grow further, so a command that deletes files can still run. The walk
never follows a link and stops counting at `max_entries` files (an inode filler trips it
too). Checked by polling: the code can overshoot by what it writes in one interval."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

MAX_ENTRIES = 100_000
MAX_INTERVAL = 1.0  # seconds between two walks of a big tree


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
                 interval: float = 0.05, baseline: bool = False) -> None:
        self.paths = list(paths)
        self.limit = None if not limit_mb else int(limit_mb) * 1024 * 1024
        self.kill = kill
        self.interval = interval
        self.baseline = baseline  # measure first: a directory already over the limit may not grow
        self.tripped = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    async def __aenter__(self) -> Self:
        if self.limit is not None:
            start = (await asyncio.to_thread(usage, self.paths))[0] if self.baseline else 0
            self._allowed = max(self.limit, start)
            self._thread = threading.Thread(target=self._watch, name="disk-guard", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            started = time.monotonic()
            used, entries = usage(self.paths)
            wait = min(MAX_INTERVAL, max(self.interval, 10 * (time.monotonic() - started)))
            if used > self._allowed or entries >= MAX_ENTRIES:
                self.tripped = True
                self.kill()  # a signal to a process group: safe from this thread
                return

    async def __aexit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            await asyncio.to_thread(self._thread.join)  # `tripped` is final once it returns
