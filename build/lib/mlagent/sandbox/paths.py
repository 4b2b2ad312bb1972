"""Open files inside a session directory without trusting what sandboxed code did to it.

Sandboxed code runs while the server reads and writes the same directory (parallel tool
calls, the no-bwrap fallback), so a path checked first and opened later can have a parent
swapped for a symlink in between. Here every component is opened relative to the fd of
its parent with O_NOFOLLOW: no symlink is ever followed, so nothing outside the root can
be reached whatever the directory looks like at any moment.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SandboxPathError(ValueError):
    """A path that is absent from, or escapes, the session's directory."""


def parts_of(rel: str) -> list[str]:
    """The components of a relative path ('.' parts dropped, a trailing '/' allowed);
    absolute paths, '..' and empty components are refused."""
    if not rel or rel.startswith("/"):
        raise SandboxPathError(f"path {rel!r} must be relative to the sandbox directory")
    parts = [p for p in rel.rstrip("/").split("/") if p != "."]
    if "" in parts or "\0" in rel:
        raise SandboxPathError(f"path {rel!r} has an empty component")
    if ".." in parts:
        raise SandboxPathError(f"path {rel!r} leaves the sandbox directory")
    return parts


def _link_error(rel: str) -> SandboxPathError:
    return SandboxPathError(f"path {rel!r} goes through a symbolic link, which the server does not follow (a "
                            "link can point anywhere, so it is treated as a path that leaves the sandbox directory)")


def open_beneath(root: Path, rel: str, flags: int, mode: int = 0o600, *,
                 make_parents: bool = False, on_mkdir: Callable[[int], None] | None = None) -> int:
    """An fd for `rel` under `root`, opened with `flags` | O_NOFOLLOW, never through a symlink.

    `make_parents` creates missing directories (each new one's fd is passed to `on_mkdir`,
    e.g. to chown it). Raises SandboxPathError for a bad path or a symlink on the way, and
    the OSError of the failed open otherwise (FileNotFoundError, NotADirectoryError, ...).
    """
    parts = parts_of(rel)
    fd = os.open(root, _DIR)
    try:
        for part in parts[:-1]:
            child = _step(fd, part, rel, make_parents, on_mkdir)
            os.close(fd)
            fd = child
        try:
            return os.open(parts[-1] if parts else ".", flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _is_link(fd, parts[-1])):
                raise _link_error(rel) from None
            raise
    finally:
        os.close(fd)


def _step(parent: int, part: str, rel: str, make: bool, on_mkdir: Callable[[int], None] | None) -> int:
    """The fd of directory `part` in `parent` (created if `make`)."""
    try:
        try:
            return os.open(part, _DIR, dir_fd=parent)
        except FileNotFoundError:
            if not make:
                raise
        try:
            os.mkdir(part, 0o777, dir_fd=parent)
            created = True
        except FileExistsError:  # raced with the sandbox: open whatever is there now, still no links
            created = False
        child = os.open(part, _DIR, dir_fd=parent)
        if created and on_mkdir is not None:
            on_mkdir(child)
        return child
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _is_link(parent, part)):
            raise _link_error(rel) from None
        raise


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def files_beneath(dir_fd: int) -> Iterator[tuple[str, int]]:
    """(relative path, read-only fd) of each regular file in the tree of `dir_fd`; symlinks
    (to files or directories) and special files are skipped. The caller closes each fd."""
    for dirpath, _dirs, names, dfd in os.fwalk(".", dir_fd=dir_fd, follow_symlinks=False):
        for name in sorted(names):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
            except OSError:  # a symlink, or gone meanwhile
                continue
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                continue
            yield os.path.normpath(os.path.join(dirpath, name)), fd
