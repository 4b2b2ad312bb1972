"""A job's directories through the blob store, for Ray workers on other hosts (jobs/ray_backend.py).

Each mount (and the job's home) is one tree under `<prefix>/m<i>/`: a directory's regular
files by relative path, a single file as `<prefix>/m<i>/_`. Pushing walks without following
links and takes regular files only: the output side of a tree was written by untrusted
code, and a link it planted must not carry the worker's own files into the store."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from ..blobs import BlobStore

FILE_KEY = "_"


def push(blobs: BlobStore, prefix: str, host: Path) -> Literal["file", "dir"]:
    """Upload `host` (a file or a directory tree) under `prefix/`; what it was."""
    st = os.lstat(host)
    if stat.S_ISREG(st.st_mode):
        blobs.put_file(f"{prefix}/{FILE_KEY}", host)
        return "file"
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{host} is neither a regular file nor a directory")
    for dirpath, _dirs, names in os.walk(host):  # followlinks=False: a linked directory is skipped
        for name in names:
            path = Path(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                blobs.put_file(f"{prefix}/{path.relative_to(host).as_posix()}", path)
    return "dir"


def pull(blobs: BlobStore, prefix: str, host: Path, kind: Literal["file", "dir"]) -> None:
    """Write what `push` stored under `prefix/` to `host` (readable by a sandbox user)."""
    if kind == "file":
        blobs.get_file(f"{prefix}/{FILE_KEY}", host)
        host.chmod(0o644)
        return
    host.mkdir(parents=True, exist_ok=True)
    host.chmod(0o755)
    for key in blobs.list(f"{prefix}/"):
        dest = host.joinpath(*key[len(prefix) + 1:].split("/"))  # blob keys have no '..' (check_key)
        for parent in reversed(dest.relative_to(host).parents[:-1]):
            (host / parent).mkdir(mode=0o755, exist_ok=True)
        blobs.get_file(key, dest)
        dest.chmod(0o644)


def drop(blobs: BlobStore, prefix: str) -> None:
    for key in list(blobs.list(f"{prefix}/")):
        blobs.delete(key)
