"""Server-side file access in a sandbox never follows a symlink: a parent directory swapped
for a link to outside the session directory is refused for reads, writes and uploads,
while ordinary nested paths work."""

from __future__ import annotations

import os

import pytest

from mlagent.sandbox import Sandbox, SandboxPathError, files_beneath, open_beneath


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET")
    (root / "data").symlink_to(outside)  # a parent directory that is really a link out
    return root, outside


def read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def test_a_symlinked_parent_is_refused_for_read_and_write(layout):
    root, outside = layout
    with pytest.raises(SandboxPathError, match="symbolic link.*leaves the sandbox directory"):
        open_beneath(root, "data/secret.txt", os.O_RDONLY)
    with pytest.raises(SandboxPathError, match="symbolic link"):
        open_beneath(root, "data/new.txt", os.O_WRONLY | os.O_CREAT, make_parents=True)
    with pytest.raises(SandboxPathError, match="symbolic link"):
        open_beneath(root, "data/deeper/new.txt", os.O_WRONLY | os.O_CREAT, make_parents=True)
    (root / "link.txt").symlink_to(outside / "secret.txt")  # and a link as the last component
    with pytest.raises(SandboxPathError, match="symbolic link"):
        open_beneath(root, "link.txt", os.O_RDONLY)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "TOP-SECRET"


def test_nested_paths_work_and_bad_paths_are_refused(tmp_path):
    root = tmp_path
    fd = open_beneath(root, "a/b/c.txt", os.O_WRONLY | os.O_CREAT, make_parents=True)
    os.write(fd, b"hello")
    os.close(fd)
    assert (root / "a" / "b" / "c.txt").read_bytes() == b"hello"
    assert read_all(open_beneath(root, "./a/b/c.txt", os.O_RDONLY)) == b"hello"
    with pytest.raises(FileNotFoundError):
        open_beneath(root, "a/missing/c.txt", os.O_RDONLY)
    with pytest.raises(FileNotFoundError):  # readers never create directories
        open_beneath(root, "x/c.txt", os.O_WRONLY | os.O_CREAT)
    assert not (root / "x").exists()
    for bad, why in (("../etc/passwd", "leaves the sandbox"), ("a/../../x", "leaves the sandbox"),
                     ("/etc/passwd", "must be relative"), ("", "must be relative"), ("a//c.txt", "empty")):
        with pytest.raises(SandboxPathError, match=why):
            open_beneath(root, bad, os.O_RDONLY)


def test_sandbox_reads_and_writes_go_beneath_the_session_directory(layout, tmp_path):
    sandbox = Sandbox(tmp_path / "sandboxes", isolation="none")
    session = sandbox.directory("s1")
    (session / "data").symlink_to(layout[1])
    sandbox.write_bytes("s1", "pkg/sub/mod.py", b"x = 1\n")
    assert sandbox.read_bytes("s1", "/sandbox/pkg/sub/mod.py", 100) == (b"x = 1\n", 6)
    sandbox.write_bytes("s1", "pkg/sub/mod.py", b"y")  # overwrite truncates
    assert sandbox.read_bytes("s1", "pkg/sub/mod.py", 100) == (b"y", 1)
    with pytest.raises(SandboxPathError, match="symbolic link.*leaves the sandbox directory"):
        sandbox.read_bytes("s1", "data/secret.txt", 100)
    with pytest.raises(SandboxPathError, match="symbolic link.*leaves the sandbox directory"):
        sandbox.write_bytes("s1", "data/owned.txt", b"pwned")
    with pytest.raises(SandboxPathError, match="'../s2/x' leaves the sandbox directory"):
        sandbox.read_bytes("s1", "../s2/x", 100)
    with pytest.raises(SandboxPathError, match="not a file"):
        sandbox.read_bytes("s1", "pkg", 100)
    os.link(layout[1] / "secret.txt", session / "hard.txt")  # a hard link to a file elsewhere
    with pytest.raises(SandboxPathError, match="not a regular file"):
        sandbox.write_bytes("s1", "hard.txt", b"pwned")
    assert (layout[1] / "secret.txt").read_text() == "TOP-SECRET"
    assert not (layout[1] / "owned.txt").exists()


def test_a_folder_walk_skips_links(layout):
    root, _ = layout
    (root / "out" / "sub").mkdir(parents=True)
    (root / "out" / "a.txt").write_text("a")
    (root / "out" / "sub" / "b.txt").write_text("b")
    (root / "out" / "escape").symlink_to(root / "data")
    (root / "out" / "leak.txt").symlink_to(layout[1] / "secret.txt")
    dfd = open_beneath(root, "out", os.O_RDONLY | os.O_DIRECTORY)
    try:
        found = {name: read_all(fd) for name, fd in files_beneath(dfd)}
    finally:
        os.close(dfd)
    assert found == {"a.txt": b"a", "sub/b.txt": b"b"}
