"""Content-addressed artifact files under `MLAGENT_DATA_DIR/artifacts/<sha[:2]>/<sha256>`.

Uploads stream to a temporary file while hashing and counting; past the size cap they are
discarded. Identical bytes are stored once however many models reference them."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ServiceError


@dataclass(frozen=True)
class Ingested:
    path: Path
    sha256: str
    size: int


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    async def ingest(self, chunks: AsyncIterator[bytes], max_bytes: int) -> Ingested:
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
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

    def commit(self, ingested: Ingested) -> Path:
        """Move a checked upload into its content address (a no-op if the bytes are known)."""
        final = self.path_for(ingested.sha256)
        if final.exists():
            ingested.path.unlink(missing_ok=True)
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(ingested.path, final)
        return final

    def add_file(self, path: Path) -> Ingested:
        """Store a file produced on this machine (e.g. by a training job)."""
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        ingested = Ingested(path, digest.hexdigest(), path.stat().st_size)
        final = self.path_for(ingested.sha256)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_suffix(".part")
            tmp.write_bytes(path.read_bytes())
            os.replace(tmp, final)
        return ingested

    def remove(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)
