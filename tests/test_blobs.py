"""The blob store: both backends keep the same contract (S3 through moto's server over real
HTTP); artifacts are fetched into a local cache and checked against their sha256; workspace
snapshots restore only inside the session's directory."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest

from mlagent.blobs import BlobNotFound, LocalBlobs, open_blob_store
from mlagent.errors import ServiceError
from mlagent.registry.artifacts import ArtifactStore, key_for
from mlagent.runtime.snapshots import WorkspaceSnapshots
from mlagent.sandbox import Sandbox

from .fakes.s3 import CREDENTIALS


@pytest.fixture
def s3_env(monkeypatch):
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(params=["local", "s3"])
def blobs(request, tmp_path):
    if request.param == "local":
        return LocalBlobs(tmp_path / "blobs")
    request.getfixturevalue("s3_env")
    s3 = request.getfixturevalue("s3_server")
    return open_blob_store(f"s3://{s3.new_bucket()}/some/prefix", tmp_path, s3_endpoint_url=s3.url)


def test_the_contract_holds_on_both_backends(blobs, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))
    blobs.put_file("a/b/big", src)
    blobs.put_bytes("a/small", b"hello")
    assert blobs.exists("a/b/big") and blobs.exists("a/small") and not blobs.exists("a/none")
    assert blobs.get_bytes("a/small") == b"hello"
    with blobs.open("a/b/big") as f:
        assert f.read() == src.read_bytes()
    blobs.get_file("a/b/big", tmp_path / "out" / "copy.bin")
    assert (tmp_path / "out" / "copy.bin").read_bytes() == src.read_bytes()
    assert sorted(blobs.list("a/")) == ["a/b/big", "a/small"]
    blobs.put_bytes("a/small", b"replaced")
    assert blobs.get_bytes("a/small") == b"replaced"
    blobs.delete("a/small")
    blobs.delete("a/small")  # a missing blob is not an error
    assert not blobs.exists("a/small")
    for missing in (lambda: blobs.get_bytes("a/small"), lambda: blobs.open("nope"),
                    lambda: blobs.get_file("nope", tmp_path / "x")):
        with pytest.raises(BlobNotFound):
            missing()
    assert not (tmp_path / "x").exists()
    for bad in ("", "/abs", "a/../b", "a//b", "./a"):
        with pytest.raises(ValueError):
            blobs.exists(bad)


def test_a_missing_bucket_is_refused_at_start(s3_env, s3_server, tmp_path):
    with pytest.raises(RuntimeError, match="the bucket cannot be used"):
        open_blob_store("s3://no-such-bucket/x", tmp_path, s3_endpoint_url=s3_server.url)


def test_an_s3_url_without_a_bucket_or_with_an_unknown_scheme_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no bucket"):
        open_blob_store("s3:///prefix", tmp_path)
    with pytest.raises(ValueError, match="unsupported scheme"):
        open_blob_store("gs://bucket/x", tmp_path)


async def _chunks(data: bytes):
    yield data


def test_artifacts_on_s3_are_fetched_once_into_the_cache_and_verified(s3_env, s3_server, tmp_path):
    bucket = s3_server.new_bucket()
    def store(name: str) -> ArtifactStore:
        return ArtifactStore(open_blob_store(f"s3://{bucket}/p", tmp_path, s3_endpoint_url=s3_server.url),
                             tmp_path / name / "artifacts")

    a, b = store("replica-a"), store("replica-b")
    data = b"model bytes " * 1000
    sha = hashlib.sha256(data).hexdigest()

    async def go():
        ingested = await a.ingest(_chunks(data), 1 << 20)
        await a.commit(ingested)
        assert s3_server.client().head_object(Bucket=bucket, Key=f"p/{key_for(sha)}")["ContentLength"] == len(data)
        paths = await asyncio.gather(*(b.fetch(sha) for _ in range(5)))  # one download for all
        assert len(set(paths)) == 1 and paths[0].read_bytes() == data
        assert paths[0].is_relative_to(tmp_path / "replica-b")
        # A blob whose bytes do not match its address is refused, and not cached.
        bad = hashlib.sha256(b"other").hexdigest()
        s3_server.client().put_object(Bucket=bucket, Key=f"p/{key_for(bad)}", Body=b"tampered")
        with pytest.raises(ServiceError) as exc:
            await b.fetch(bad)
        assert exc.value.code == "artifact_corrupt"
        assert not (tmp_path / "replica-b" / "artifacts" / bad[:2] / bad).exists()
        with pytest.raises(ServiceError) as exc:
            await b.fetch("0" * 64)
        assert exc.value.code == "artifact_missing"
        await asyncio.to_thread(a.remove, sha)
        assert not a.blobs.exists(key_for(sha))

    asyncio.run(go())


def test_local_artifacts_keep_todays_layout(tmp_path):
    store = ArtifactStore(LocalBlobs(tmp_path), tmp_path / "artifacts")
    data = b"abc"
    sha = hashlib.sha256(data).hexdigest()

    async def go():
        await store.commit(await store.ingest(_chunks(data), 100))
        return await store.fetch(sha)

    assert asyncio.run(go()) == (tmp_path / "artifacts" / sha[:2] / sha).resolve()


def _sandbox(root):
    return Sandbox(root, isolation="none")


def test_a_snapshot_restores_on_another_machine_incrementally_and_deletes_what_was_deleted(blobs, tmp_path):
    a, b = _sandbox(tmp_path / "a" / "sandboxes"), _sandbox(tmp_path / "b" / "sandboxes")
    snap_a, snap_b = WorkspaceSnapshots(blobs, a, 1 << 20), WorkspaceSnapshots(blobs, b, 1 << 20)
    a.write_bytes("s1", "notes.txt", b"epoch 1")
    a.write_bytes("s1", "src/train.py", b"print(1)")
    os.chmod(a.root / "s1" / "src" / "train.py", 0o755)
    os.symlink("/etc/passwd", a.root / "s1" / "link")  # skipped
    os.mkfifo(a.root / "s1" / "fifo")  # skipped
    snap_a.snapshot_sync("s1")
    assert snap_b.restore_sync("s1") == 2
    assert (b.root / "s1" / "notes.txt").read_bytes() == b"epoch 1"
    assert os.stat(b.root / "s1" / "src" / "train.py").st_mode & 0o100
    assert not os.path.lexists(b.root / "s1" / "link") and not os.path.lexists(b.root / "s1" / "fifo")
    assert snap_b.restore_sync("s1") == 0  # up to date: nothing fetched

    # B changes one file and deletes another; A catches up with only those.
    b.write_bytes("s1", "notes.txt", b"epoch 2")
    (b.root / "s1" / "src" / "train.py").unlink()
    snap_b.snapshot_sync("s1")
    assert snap_a.restore_sync("s1") == 1
    assert (a.root / "s1" / "notes.txt").read_bytes() == b"epoch 2"
    assert not (a.root / "s1" / "src" / "train.py").exists()
    # The deleted file's content is gone from the store too.
    assert len(list(blobs.list("workspaces/s1/files/"))) == 1


def test_the_size_cap_leaves_files_out(blobs, tmp_path):
    a, b = _sandbox(tmp_path / "a"), _sandbox(tmp_path / "b")
    a.write_bytes("s2", "small.txt", b"x" * 10)
    a.write_bytes("s2", "large.bin", b"y" * 5000)
    WorkspaceSnapshots(blobs, a, 1000).snapshot_sync("s2")
    WorkspaceSnapshots(blobs, b, 1000).restore_sync("s2")
    assert (b.root / "s2" / "small.txt").exists() and not (b.root / "s2" / "large.bin").exists()


def test_a_crafted_manifest_cannot_write_outside_the_session(tmp_path):
    blobs = LocalBlobs(tmp_path / "blobs")
    box = _sandbox(tmp_path / "box")
    outside = tmp_path / "box" / "escaped.txt"
    data = b"pwned"
    sha = hashlib.sha256(data).hexdigest()
    blobs.put_bytes(f"workspaces/s3/files/{sha}", data)
    box.directory("s3")
    os.symlink(tmp_path / "box", box.root / "s3" / "up")  # a link planted by sandboxed code
    entry = {"sha256": sha, "size": 5, "mode": 0o644}
    blobs.put_bytes("workspaces/s3/manifest.json", json.dumps({"version": 1, "files": {
        "../escaped.txt": entry, "/tmp/abs.txt": entry, "up/escaped.txt": entry, "ok.txt": entry}}).encode())
    assert WorkspaceSnapshots(blobs, box, 1 << 20).restore_sync("s3") == 1
    assert (box.root / "s3" / "ok.txt").read_bytes() == data
    assert not outside.exists() and not os.path.exists("/tmp/abs.txt")
