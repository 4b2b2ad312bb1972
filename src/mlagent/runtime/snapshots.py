"""Workspaces follow the session across replicas (docs/scaling.md, "Workspaces").

At the end of each turn the session's sandbox directory is snapshotted to the blob store:
each regular file is stored once under its sha256 (`workspaces/<session>/files/<sha>`) and a
manifest (`workspaces/<session>/manifest.json`: path → sha256, size, mode) names the
tree. Only files that changed since the last snapshot are read and uploaded (a local state
file remembers each file's size and mtime), so a turn that touched nothing costs one stat
per file. Symlinks and special files are skipped; past the size cap the remaining files are
left out (and logged).

A turn first compares the stored manifest with the one this replica last synced; when they
differ (the previous turn ran elsewhere) the files are fetched, checked against their
sha256 and written into the sandbox through `Sandbox.open` — component by component, never
through a symlink, with '..' and absolute paths refused — so a crafted manifest cannot
write outside the session's directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import weakref
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ThreadPoolExecutor,
    as_completed,
    wait,
)
from pathlib import Path
from typing import Protocol, TypedDict

from ..blobs import BlobNotFound, BlobStore
from ..sandbox.paths import SandboxPathError, files_beneath, parts_of

log = logging.getLogger("mlagent.runtime")

MAX_FILES = 100_000
TRANSFER_THREADS = 8  # concurrent blob uploads/downloads per snapshot or restore


class FileState(TypedDict):
    """A file as this replica last synced it (the manifest's entry, with its mtime)."""

    sha256: str
    size: int
    mode: int
    mtime_ns: int


class SyncState(TypedDict):
    """What this replica last synced of a session: the manifest's digest and its files."""

    digest: str | None
    files: dict[str, FileState]


class ManifestEntry(TypedDict):
    """A file the stored manifest names (`_parse_manifest` checks `sha256` and `mode`)."""

    sha256: str
    mode: int


class SandboxDirs(Protocol):
    root: Path

    def open(self, session_id: str, relative: str, flags: int, *, make_parents: bool = False) -> int: ...


class WorkspaceSnapshots:
    def __init__(self, blobs: BlobStore, sandbox: SandboxDirs, max_bytes: int, state_dir: Path | None = None) -> None:
        self.blobs = blobs
        self.sandbox = sandbox
        self.max_bytes = max_bytes
        # Outside the sandboxes (sandboxed code must not edit what the server trusts).
        self.state_dir = state_dir or Path(sandbox.root).parent / "workspace-state"
        (self.state_dir / "tmp").mkdir(parents=True, exist_ok=True)
        # One lock per session while someone holds it (weak: no entry per session ever seen).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- the runner's two hooks (never fail a turn: a snapshot problem is logged) -------------
    async def restore(self, session_id: str) -> None:
        async with self._lock(session_id):
            try:
                restored = await asyncio.to_thread(self.restore_sync, session_id)
                if restored:
                    log.info("restored %d file(s) of session %s from %s", restored, session_id, self.blobs.url)
            except Exception:
                log.exception("restoring the workspace of session %s failed", session_id)

    async def snapshot(self, session_id: str) -> None:
        async with self._lock(session_id):
            try:
                await asyncio.to_thread(self.snapshot_sync, session_id)
            except Exception:
                log.exception("snapshotting the workspace of session %s failed", session_id)

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        return lock

    # -- keys and local state -------------------------------------------------------------
    @staticmethod
    def _manifest_key(session_id: str) -> str:
        return f"workspaces/{session_id}/manifest.json"

    @staticmethod
    def _file_key(session_id: str, sha256: str) -> str:
        return f"workspaces/{session_id}/files/{sha256}"

    def _state_path(self, session_id: str) -> Path:
        return self.state_dir / f"{session_id}.json"

    def _load_state(self, session_id: str) -> SyncState:
        """What this replica last synced: {"digest", "files": {path: {sha256, size, mode, mtime_ns}}};
        empty when the session's directory is gone (e.g. removed by the retention sweep)."""
        if not (Path(self.sandbox.root) / session_id).is_dir():
            return {"digest": None, "files": {}}
        try:
            state: SyncState = json.loads(self._state_path(session_id).read_text())  # written by _save_state
            return state
        except (OSError, ValueError):
            return {"digest": None, "files": {}}

    def _save_state(self, session_id: str, digest: str, files: dict[str, FileState]) -> None:
        tmp = self._state_path(session_id).with_suffix(".tmp")
        tmp.write_text(json.dumps({"digest": digest, "files": files}))
        os.replace(tmp, self._state_path(session_id))

    # -- snapshot -----------------------------------------------------------------------
    def snapshot_sync(self, session_id: str) -> str | None:
        """Store the session's tree; returns the manifest's sha256 (None: no directory)."""
        root = Path(self.sandbox.root) / session_id
        try:
            dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        state = self._load_state(session_id)
        old = state["files"]
        files: dict[str, FileState] = {}
        total, left_out = 0, []
        # Changed files are copied aside here (one at a time, local) and sent by a few
        # threads (network); a failed send fails the snapshot before its manifest is written.
        with ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="snapshot") as pool:
            sending: set[Future[None]] = set()
            try:
                for rel, fd in files_beneath(dir_fd):
                    try:
                        st = os.fstat(fd)
                        if len(files) >= MAX_FILES or total + st.st_size > self.max_bytes:
                            left_out.append(rel)
                            continue
                        prev = old.get(rel)
                        if prev and prev["size"] == st.st_size and prev["mtime_ns"] == st.st_mtime_ns:
                            sha256, size = prev["sha256"], st.st_size
                        else:
                            sha256, size, tmp = self._copy_aside(fd)
                            if len(sending) >= 2 * TRANSFER_THREADS:
                                done, sending = wait(sending, return_when=FIRST_COMPLETED)
                                for f in done:
                                    f.result()
                            sending.add(pool.submit(self._send, session_id, sha256, tmp))
                        entry = FileState(sha256=sha256, size=size, mode=stat.S_IMODE(st.st_mode) & 0o755,
                                          mtime_ns=st.st_mtime_ns)
                        files[rel] = entry
                        total += entry["size"]
                    finally:
                        os.close(fd)
            finally:
                os.close(dir_fd)
                for f in as_completed(sending):
                    f.result()
        if left_out:
            log.warning("workspace snapshot of session %s left out %d file(s) past the %d-byte cap (e.g. %s)",
                        session_id, len(left_out), self.max_bytes, left_out[0])
        manifest = json.dumps({"version": 1, "files": {p: {k: e[k] for k in ("sha256", "size", "mode")}
                                                       for p, e in sorted(files.items())}},
                              sort_keys=True).encode()
        digest = hashlib.sha256(manifest).hexdigest()
        if digest != state["digest"]:
            self.blobs.put_bytes(self._manifest_key(session_id), manifest)
            # Contents no longer named by the manifest (this replica's last view) are dropped.
            for sha in {e["sha256"] for e in old.values()} - {e["sha256"] for e in files.values()}:
                self.blobs.delete(self._file_key(session_id, sha))
        self._save_state(session_id, digest, files)
        return digest

    def _copy_aside(self, fd: int) -> tuple[str, int, Path]:
        """Copy the open file aside while hashing: what is stored is what was hashed, even if
        the file changes meanwhile."""
        digest, size = hashlib.sha256(), 0
        tmp_fd, tmp = tempfile.mkstemp(dir=self.state_dir / "tmp")
        try:
            with os.fdopen(tmp_fd, "wb") as out:
                while block := os.read(fd, 1 << 20):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest.hexdigest(), size, Path(tmp)

    def _send(self, session_id: str, sha256: str, tmp: Path) -> None:
        """Store the copy under its sha256 unless it is already there; the copy is removed."""
        try:
            key = self._file_key(session_id, sha256)
            if not self.blobs.exists(key):
                self.blobs.put_file(key, tmp)
        finally:
            tmp.unlink(missing_ok=True)

    # -- restore ------------------------------------------------------------------------
    def restore_sync(self, session_id: str) -> int:
        """Bring the directory to the stored manifest if this replica's copy is older; the
        number of files written."""
        try:
            raw = self.blobs.get_bytes(self._manifest_key(session_id))
        except BlobNotFound:
            return 0
        digest = hashlib.sha256(raw).hexdigest()
        state = self._load_state(session_id)
        if digest == state["digest"]:
            return 0
        wanted = _parse_manifest(raw)
        old = state["files"]
        files: dict[str, FileState] = {}
        written = 0
        needed: list[tuple[str, ManifestEntry]] = []
        for rel, entry in wanted.items():
            prev = old.get(rel)
            current = self._stat(session_id, rel)
            if prev and current and prev["sha256"] == entry["sha256"] and \
                    (prev["size"], prev["mtime_ns"]) == (current.st_size, current.st_mtime_ns):
                files[rel] = prev
            else:
                needed.append((rel, entry))
        # Fetched and checked by a few threads; written into the sandbox here, one at a time.
        with ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="restore") as pool:
            fetches = {pool.submit(self._fetch, session_id, entry["sha256"]): (rel, entry) for rel, entry in needed}
            for future in as_completed(fetches):
                rel, entry = fetches[future]
                try:
                    tmp = future.result()
                except (OSError, BlobNotFound, ValueError) as exc:
                    log.warning("workspace restore of session %s skipped %r: %s", session_id, rel, exc)
                    continue
                try:
                    files[rel] = self._write(session_id, rel, entry, tmp)
                    written += 1
                except (SandboxPathError, OSError, ValueError) as exc:
                    log.warning("workspace restore of session %s skipped %r: %s", session_id, rel, exc)
                finally:
                    tmp.unlink(missing_ok=True)
        for rel in set(old) - set(wanted):  # synced before, deleted by a turn elsewhere since
            try:
                fd = self.sandbox.open(session_id, os.path.dirname(rel) or ".", os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.unlink(os.path.basename(rel), dir_fd=fd)
                finally:
                    os.close(fd)
            except (SandboxPathError, OSError):
                pass
        self._save_state(session_id, digest, files)
        return written

    def _stat(self, session_id: str, rel: str) -> os.stat_result | None:
        try:
            fd = self.sandbox.open(session_id, rel, os.O_RDONLY | os.O_NONBLOCK)
        except (SandboxPathError, OSError):
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def _fetch(self, session_id: str, sha256: str) -> Path:
        """The stored content in a temporary file, checked against its sha256."""
        tmp_fd, tmp = tempfile.mkstemp(dir=self.state_dir / "tmp")
        os.close(tmp_fd)
        try:
            self.blobs.get_file(self._file_key(session_id, sha256), Path(tmp))
            digest = hashlib.sha256()
            with open(tmp, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != sha256:
                raise ValueError("stored content does not match its sha256")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp)

    def _write(self, session_id: str, rel: str, entry: ManifestEntry, tmp: Path) -> FileState:
        """Write the fetched content at `rel` in the sandbox (never through a symlink)."""
        fd = self.sandbox.open(session_id, rel, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, make_parents=True)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError("not a regular file here")
            os.ftruncate(fd, 0)
            with open(tmp, "rb") as src, os.fdopen(os.dup(fd), "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            os.fchmod(fd, (entry["mode"] & 0o755) | 0o600)
            if os.getuid() == 0:  # the sandboxed code's user owns its files (see Sandbox)
                owner = (Path(self.sandbox.root) / session_id).stat()
                os.fchown(fd, owner.st_uid, owner.st_gid)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return FileState(sha256=entry["sha256"], size=st.st_size, mode=entry["mode"], mtime_ns=st.st_mtime_ns)


def _parse_manifest(raw: bytes) -> dict[str, ManifestEntry]:
    """The manifest's files, each path checked (relative, no '..', no empty part)."""
    data = json.loads(raw)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise ValueError("workspace manifest has no 'files' object")  # noqa: TRY004 - bad data, not a bad call
    out: dict[str, ManifestEntry] = {}
    for rel, entry in files.items():
        try:
            parts_of(rel)
        except SandboxPathError:
            log.warning("workspace manifest names an unsafe path %r: skipped", rel)
            continue
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64 \
                and isinstance(entry.get("mode"), int):
            out[rel] = ManifestEntry(sha256=entry["sha256"], mode=entry["mode"])
    return out

