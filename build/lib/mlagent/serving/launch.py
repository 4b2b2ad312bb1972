"""How a serving worker process is launched: inside bubblewrap where it works, else a logged fallback.

The worker loads uploaded models, and a pickle runs arbitrary code when loaded. Under `bwrap`
(the agent sandbox's own argv builder, sandbox/runner.py) it runs with no network, its own
pid/ipc/uts namespaces, the system and the Python runtime read-only, a private /tmp, and a
writable home that is its deployment's own directory; a root server drops it to `nobody`.
It sees no data directory at all: the parent opens the model and training-data files and
passes them as inherited file descriptors. The setrlimit limits (jobs/limits.py) apply
either way. Without a working bwrap (MLAGENT_SANDBOX_ISOLATION=auto) the worker runs with
the limits and a scrubbed environment only, and the server logs that at the first start."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from pathlib import Path

from ..jobs.limits import scrubbed_env
from ..sandbox.runner import NOBODY, SANDBOX_MOUNT, bwrap_argv, bwrap_works

log = logging.getLogger("mlagent.serving")
SRC = str(Path(__file__).resolve().parents[2])  # where `mlagent` is imported from


class IsolationError(RuntimeError):
    pass


@functools.lru_cache(maxsize=4)
def isolation(wanted: str) -> str:
    """'bwrap' or 'none' for MLAGENT_SANDBOX_ISOLATION `wanted` (auto | bwrap | none); probed once."""
    if wanted == "none":
        log.warning("serving workers run WITHOUT bwrap isolation (disabled by configuration): resource limits "
                    "and a scrubbed environment only")
        return "none"
    if bwrap_works(shutil.which("bwrap")):
        return "bwrap"
    if wanted == "bwrap":
        raise IsolationError("MLAGENT_SANDBOX_ISOLATION=bwrap but bwrap is missing or does not work here")
    log.warning("bwrap is %s: FALLBACK for serving workers — uploaded models load with resource limits and a "
                "scrubbed environment, but WITHOUT filesystem or network isolation",
                "not installed" if not shutil.which("bwrap") else "not usable (no user namespaces?)")
    return "none"


def worker_command(home: Path, wanted: str) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment, isolation) for a worker whose writable home is `home`."""
    mode = isolation(wanted)
    argv = [sys.executable, "-m", "mlagent.serving.worker"]
    if mode == "none":
        return argv, scrubbed_env(str(home), {"PYTHONPATH": SRC}), mode
    setpriv = shutil.which("setpriv")
    drop = NOBODY if os.getuid() == 0 and setpriv else None
    if drop is not None:
        os.chown(home, drop, drop)
    binds = () if SRC.startswith(("/usr/", sys.prefix)) else (SRC,)
    wrap = bwrap_argv(shutil.which("bwrap") or "bwrap", home, network=False, drop_uid=drop, setpriv=setpriv,
                      ro_binds=binds)
    env = scrubbed_env(SANDBOX_MOUNT, {"PYTHONPATH": SRC, "TMPDIR": "/tmp"})
    return wrap + argv, env, mode
