"""Blob storage: the bytes that must outlive one machine (model artifacts and uploads,
workspace snapshots) behind one small interface, with a local-directory backend (the
default, one machine) and an S3-compatible one (replicas share it). See docs/scaling.md."""

from .base import BlobNotFound, BlobStore
from .factory import open_blob_store
from .local import LocalBlobs

__all__ = ["BlobNotFound", "BlobStore", "LocalBlobs", "open_blob_store"]
