"""Content-addressed artifact files: blob key `artifacts/<sha[:2]>/<sha256>` in the blob store
(`blobs/`). With the default local store that is the file `MLAGENT_DATA_DIR/artifacts/…` as
before; with a shared store (S3) the same path on this machine is a cache, filled on first
use and checked against the sha256 before it is used, so a model uploaded through one
replica is deployed from any other.

Uploads stream to a temporary file while hashing and counting; past the size cap they are
discarded. Identical bytes are stored once however many models reference them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ..blobs import BlobNotFound, BlobStore
from ..errors import ServiceError


@dataclass(frozen=True)
class Ingested:
    path: Path
    sha256: str
    size: int


def key_for(sha256: str) -> str:
    return f"artifacts/{sha256[:2]}/{sha256}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ArtifactStore:
    def __init__(self, blobs: BlobStore, cache: Path) -> None:
        self.blobs = blobs
        self.cache = cache  # this machine's copies when the store is remote; temp files always
        (cache / "tmp").mkdir(parents=True, exist_ok=True)
        self._fetching: dict[str, asyncio.Future[Path]] = {}

    def _cached(self, sha256: str) -> Path:
        return self.cache / sha256[:2] / sha256

    async def ingest(self, chunks: AsyncIterator[bytes], max_bytes: int) -> Ingested:
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.cache / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ServiceError(413, "file_too_large",
                                           f"The file exceeds the upload limit of {max_bytes} bytes.", "file",
                                           retryable=False)
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            return Ingested(Path(tmp), sha, size)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _store(self, src: Path, sha256: str, *, move: bool) -> None:
        """Put checked bytes at their content address (a no-op if the bytes are known)."""
        key = key_for(sha256)
        final = self.blobs.local_path(key)
        if final is None:  # remote store: upload, and keep this machine's copy as the cache entry
            if not self.blobs.exists(key):
                self.blobs.put_file(key, src)
            final = self._cached(sha256)
        if final.exists():
            if move:
                src.unlink(missing_ok=True)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        if move:
            os.replace(src, final)
        else:
            tmp = final.with_name(f".part-{sha256}-{os.getpid()}")
            shutil.copyfile(src, tmp)
            os.replace(tmp, final)

    async def commit(self, ingested: Ingested) -> None:
        """Move a checked upload into the store."""
        await asyncio.to_thread(self._store, ingested.path, ingested.sha256, move=True)

    def add_file(self, path: Path) -> Ingested:
        """Store a file produced on this machine (e.g. by a training job); blocking."""
        ingested = Ingested(path, sha256_of(path), path.stat().st_size)
        self._store(path, ingested.sha256, move=False)
        return ingested

    async def fetch(self, sha256: str) -> Path:
        """A local file holding the artifact: the blob itself (local store) or the verified
        cache copy, downloaded once however many callers ask at the same time."""
        local = self.blobs.local_path(key_for(sha256))
        if local is not None:
            return local
        cached = self._cached(sha256)
        if cached.exists():
            return cached
        pending = self._fetching.get(sha256)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self._download, sha256))
            self._fetching[sha256] = pending
            pending.add_done_callback(lambda _f: self._fetching.pop(sha256, None))
        return await asyncio.shield(pending)

    def _download(self, sha256: str) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.cache / "tmp")
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            try:
                self.blobs.get_file(key_for(sha256), tmp_path)
            except BlobNotFound:
                raise ServiceError(409, "artifact_missing", f"The stored file {sha256} is missing from the blob "
                                   f"store ({self.blobs.url}).", None, retryable=False) from None
            if sha256_of(tmp_path) != sha256:
                raise ServiceError(502, "artifact_corrupt", f"The stored file {sha256} did not match its sha256 "
                                   "when fetched from the blob store.", None, retryable=True)
            final = self._cached(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_path, final)
            return final
        finally:
            tmp_path.unlink(missing_ok=True)

    def remove(self, sha256: str) -> None:
        self.blobs.delete(key_for(sha256))
        self._cached(sha256).unlink(missing_ok=True)
