"""How a serving worker process is launched: inside bubblewrap where it works, else a logged fallback.

The worker loads uploaded models, and a pickle runs arbitrary code when loaded. Under `bwrap`
(the agent sandbox's own argv builder, sandbox/runner.py) it runs with no network, its own
pid/ipc/uts namespaces, the system and the Python runtime read-only, a private /tmp, and a
writable home that is its deployment's own directory; a root server drops it to `nobody`.
It sees no data directory at all: the parent opens the model and training-data files and
passes them as inherited file descriptors. The setrlimit limits (jobs/limits.py) apply
either way. Without a working bwrap (MLAGENT_SANDBOX_ISOLATION=auto) the worker runs with
the limits and a scrubbed environment only, and the server logs that at the first start.
The one rule for all untrusted code is sandbox/confine.py."""

from __future__ import annotations

import sys
from pathlib import Path

from ..jobs.limits import scrubbed_env
from ..sandbox.confine import SANDBOX_MOUNT, SRC, IsolationError, isolation, wrap

__all__ = ["IsolationError", "worker_command"]


def worker_command(home: Path, wanted: str) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment, isolation) for a worker whose writable home is `home`."""
    mode = isolation(wanted, "serving workers (uploaded models)")
    argv = [sys.executable, "-m", "mlagent.serving.worker"]
    if mode == "none":
        return argv, scrubbed_env(str(home), {"PYTHONPATH": SRC}), mode
    env = scrubbed_env(SANDBOX_MOUNT, {"PYTHONPATH": SRC, "TMPDIR": "/tmp"})
    return wrap(argv, home, with_source=True), env, mode
