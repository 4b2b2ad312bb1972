"""Chooses the backend from MLAGENT_BLOB_URL: unset → `<data dir>` on local disk (as
before); `file:///shared/path` or a plain path → that directory (e.g. an NFS mount every
replica sees); `s3://bucket/prefix` → S3-compatible object storage."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from .base import BlobStore
from .local import LocalBlobs


def open_blob_store(url: str | None, data_dir: Path, *, s3_endpoint_url: str | None = None) -> BlobStore:
    if not url:
        return LocalBlobs(data_dir)
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"MLAGENT_BLOB_URL {url!r} names no bucket (expected s3://bucket/prefix)")
        from .s3 import S3Blobs  # boto3 only when configured

        store = S3Blobs(parsed.netloc, parsed.path,
                        endpoint_url=s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
                        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
        store.check()
        return store
    if parsed.scheme in ("file", ""):
        return LocalBlobs(Path(parsed.path if parsed.scheme else url))
    raise ValueError(f"MLAGENT_BLOB_URL {url!r}: unsupported scheme {parsed.scheme!r} (use s3:// or file://)")
