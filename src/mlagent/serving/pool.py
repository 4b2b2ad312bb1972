"""The API process's side of the serving workers: start, call, stop (one process per deployment).

A worker is started with the serving limits (memory, processes, file size, open files) in a
scrubbed environment, in its own directory, inside bwrap where it works (launch.py). Calls to
one worker are serialised over its pipe. If a worker dies, the call fails with the tail of
its log and the next call restarts it. Compiled models also answer plain predictions here
(`Worker.fast`, from the spec the worker exported), and compiled forests their explanations
(`Worker.spec_shap`, specshap.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..jobs.limits import Limits, budget, preexec
from ..sandbox.cgroups import spawn
from ..sandbox.confine import drop_uid
from ..sandbox.disk import DiskGuard
from .frames import HEADER, MAX_FRAME, encode
from .launch import IsolationError, worker_command

if TYPE_CHECKING:  # compiled.py (NumPy) is imported once a worker has started, not at start
    from .compiled import Predict, Spec

log = logging.getLogger("mlagent.serving")
# The worker sends 4 + 16 probes of at most 581 rows in all; checking more would let a
# hostile worker keep a thread of this process busy.
MAX_PROBES = 32
MAX_PROBE_ROWS = 4096


class WorkerInit(BaseModel):
    model_path: str
    model_format: str
    trusted_types: list[str] = []
    data_path: str | None = None
    inputs: list[str] = []
    targets: list[str] = []
    explain: bool = True
    model_fd: int | None = None
    data_fd: int | None = None


class WorkerInfo(BaseModel):
    model_type: str
    task: str = "predict"  # or "text-generation": a transformers causal LM (worker.Generator)
    feature_names: list[str] | None = None
    n_features: int | None = None
    classes: list[Any] | None = None
    compiled: bool = False
    in_process: bool = False
    isolation: str = "none"


class WorkerError(Exception):
    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path, info: WorkerInfo,
                 home: Path | None = None, disk_mb: int | None = None) -> None:
        self.proc = proc
        self.home = home
        self.disk_mb = disk_mb  # the worker's home may not grow past this while it works (sandbox/disk.py)
        self.log_path = log_path
        self.info = info
        # The compiled spec the worker exported, checked here: plain predictions run in this
        # process with NumPy (no pipe round trip); explanations still go to the worker.
        self.fast: Predict | None = None
        self.fast_work = 0  # its vectorised steps per row (compiled.work)
        self._shap_spec: Spec | None = None  # a checked spec to explain, until its explainer is built
        self._shap: Any = None
        self._shap_lock = asyncio.Lock()
        self._lock = asyncio.Lock()
        self._seq = 0

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def log_tail(self, size: int = 2000) -> str:
        try:
            data = self.log_path.read_bytes()[-size:]
        except OSError:
            return ""
        return data.decode("utf-8", errors="replace").strip()

    async def call(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        async with self._lock:
            if not self.alive:
                raise WorkerError(f"the serving worker exited: {self.log_tail(500)}") from None
            self._seq += 1
            message = {**message, "id": self._seq}
            guard = DiskGuard([self.home] if self.home else [], self.disk_mb, self._kill)
            try:
                async with guard:
                    stdin, stdout = _pipes(self.proc)
                    stdin.write(encode(message))
                    await stdin.drain()
                    reply = await asyncio.wait_for(_read(stdout), timeout)
            except TimeoutError:
                await self.stop()
                raise WorkerError(f"the model did not answer within {timeout:g}s; the worker was restarted", 504) from None
            except (ConnectionError, asyncio.IncompleteReadError, BrokenPipeError):
                await asyncio.sleep(0.05)
                if guard.tripped:
                    raise WorkerError(f"the serving worker was stopped: it wrote more than its disk limit of "
                                      f"{self.disk_mb} MB") from None
                raise WorkerError(f"the serving worker exited: {self.log_tail(500)}") from None
            if reply.get("id") != self._seq:
                await self.stop()
                raise WorkerError("the serving worker answered out of turn; it was restarted")
            return reply

    async def spec_shap(self) -> Any:
        """SHAP on the checked spec, in this process (specshap.py), built on the first explanation
        (shap imports slowly); None when explanations stay in the worker."""
        if self._shap is None and self._shap_spec is not None:
            async with self._shap_lock:
                if self._shap is None and self._shap_spec is not None:
                    from . import specshap
                    from .compiled import SpecError

                    spec, self._shap_spec = self._shap_spec, None
                    try:
                        self._shap = await asyncio.to_thread(specshap.build, spec)
                    except (SpecError, KeyError, TypeError, ValueError) as exc:
                        log.warning("explanations stay in the serving worker (%s): %s", self.log_path.parent.name,
                                    exc)
        return self._shap

    def _kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        self._kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 5)


def _pipes(proc: asyncio.subprocess.Process) -> tuple[asyncio.StreamWriter, asyncio.StreamReader]:
    """The worker's stdin and stdout (it is always started with both as pipes)."""
    if proc.stdin is None or proc.stdout is None:
        raise WorkerError("the serving worker was started without its pipes")
    return proc.stdin, proc.stdout


async def _read(stream: asyncio.StreamReader) -> dict[str, Any]:
    (size,) = HEADER.unpack(await stream.readexactly(HEADER.size))
    if size > MAX_FRAME:
        raise WorkerError("the serving worker sent an oversized reply")
    reply = json.loads(await stream.readexactly(size))
    if not isinstance(reply, dict):
        raise WorkerError("the serving worker sent a malformed reply")
    return reply


async def start_worker(init: WorkerInit, workdir: Path, limits: Limits, timeout: float,
                       isolation: str = "auto") -> Worker:
    """Start a worker and wait until its model is loaded; WorkerError says why it could not be.
    The model and data files reach it as inherited descriptors (launch.py: it sees no paths)."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "worker.log"
    try:
        argv, env, mode = await asyncio.to_thread(worker_command, home, isolation)  # probes bwrap once
        files = [open(p, "rb") for p in (init.model_path, init.data_path) if p]
    except (IsolationError, OSError) as exc:
        raise WorkerError(str(exc)) from None
    fds = [f.fileno() for f in files]
    init = init.model_copy(update={"model_fd": fds[0], "data_fd": fds[1] if init.data_path else None})
    try:
        with open(log_path, "ab") as log_file:
            own = budget(limits)
            proc = await spawn(
                own, *argv, cwd=home, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=log_file, preexec_fn=preexec(limits, drop_uid() if mode == "bwrap" else None, own),
                pass_fds=fds, limit=MAX_FRAME)
    finally:
        for f in files:
            f.close()
    worker = Worker(proc, log_path, WorkerInfo(model_type="?"), home, limits.disk_mb)
    guard = DiskGuard([home], limits.disk_mb, worker._kill)
    try:
        async with guard:
            stdin, stdout = _pipes(proc)
            stdin.write(encode(init.model_dump()))
            await stdin.drain()
            ready = await asyncio.wait_for(_read(stdout), timeout)
    except TimeoutError:
        await worker.stop()
        raise WorkerError(f"the model did not load within {timeout:g}s") from None
    except (ConnectionError, asyncio.IncompleteReadError, BrokenPipeError):
        await worker.stop()
        if guard.tripped:
            raise WorkerError(f"the serving worker was stopped while loading the model: it wrote more than its "
                              f"disk limit of {limits.disk_mb} MB") from None
        raise WorkerError(f"the serving worker exited while loading the model: {worker.log_tail(800)}") from None
    if not ready.get("ok"):
        await worker.stop()
        raise WorkerError(f"the model could not be loaded: {ready.get('error')}")
    spec = ready.pop("spec", None)
    worker.info = WorkerInfo.model_validate({**ready, "isolation": mode})
    if spec is not None:
        from .compiled import work

        worker.fast = await asyncio.to_thread(_in_process, spec, worker.log_path)
        worker.fast_work = work(spec["spec"]) if worker.fast is not None else 0
        worker.info.in_process = worker.fast is not None
        if worker.fast is not None and init.explain and (spec["spec"].get("kind") == "forest" or "mean" in spec["spec"]):
            worker._shap_spec = spec["spec"]
    return worker


def _in_process(message: Any, log_path: Path) -> Predict | None:
    """The worker's compiled spec as a predict function here, if it checks out (else None: the
    worker keeps answering). A spec is numbers only; nothing the worker sends is unpickled."""
    from .compiled import SpecError, checked, unpack

    try:
        if len(message["probes"]) > MAX_PROBES:
            raise SpecError("too many probes")
        probes = [(unpack(p["rows"], "<f8", 2), p["expected"]) for p in message["probes"]]
        if sum(len(rows) for rows, _ in probes) > MAX_PROBE_ROWS:
            raise SpecError("too many probe rows")
        if not all(isinstance(e, str) for _, e in probes):
            raise SpecError("bad probe answers")
        return checked(message["spec"], probes)
    except (SpecError, KeyError, TypeError, ValueError, IndexError) as exc:
        log.warning("predictions stay in the serving worker (%s): %s", log_path.parent.name, exc)
        return None
