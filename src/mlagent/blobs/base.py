"""The blob-store protocol. Keys are '/'-separated relative names ("artifacts/ab/abcd…");
methods are blocking (call them through `asyncio.to_thread`): both backends do file or
network I/O, and boto3 is synchronous."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobNotFound(KeyError):
    """No blob under that key."""


class BlobStore(Protocol):
    #: Human-readable location for logs ("/data/artifacts", "s3://bucket/prefix").
    url: str

    def put_file(self, key: str, src: Path) -> None:
        """Store the file's bytes under `key` (replacing what was there), atomically: a reader
        sees the old blob or the new one, never a part."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_file(self, key: str, dest: Path) -> None:
        """Write the blob to `dest` (via a temporary file beside it). Raises BlobNotFound."""

    def get_bytes(self, key: str) -> bytes:
        """The whole blob (for small ones: manifests). Raises BlobNotFound."""

    def open(self, key: str) -> BinaryIO:
        """A readable stream of the blob; the caller closes it. Raises BlobNotFound."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing one is not an error."""

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with `prefix`."""

    def local_path(self, key: str) -> Path | None:
        """Where the blob already sits on this machine's disk, if it does (the local backend);
        None means: fetch it with `get_file`."""


def check_key(key: str) -> str:
    """Keys are relative, normalised names: no empty, '.' or '..' component, no leading '/'."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or "\0" in key:
        raise ValueError(f"invalid blob key {key!r}")
    return key
