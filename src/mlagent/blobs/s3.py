"""The S3-compatible backend (AWS S3, MinIO, Ceph, moto…) through boto3. Credentials and
region come from boto3's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_REGION, profiles, instance roles); the endpoint from MLAGENT_S3_ENDPOINT_URL or
AWS_ENDPOINT_URL. Uploads are single PUTs or multipart (boto3's transfer manager), both of
which S3 makes visible atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from .base import BlobNotFound, check_key

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Blobs:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60))

    def check(self) -> None:
        """Fail at start-up, with a message an operator can act on, when the bucket cannot be
        reached (wrong endpoint, credentials or name) rather than at the first upload."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise RuntimeError(f"MLAGENT_BLOB_URL {self.url}: the bucket cannot be used ({exc})") from None

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put_file(self, key: str, src: Path) -> None:
        self.client.upload_file(str(src), self.bucket, self._key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_file(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        os.close(fd)
        try:  # one streamed GET (download_file's HEAD + transfer threads cost more for small blobs)
            with self.open(key) as body, open(tmp, "wb") as out:
                shutil.copyfileobj(body, out, 1 << 20)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def open(self, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            raise _translate(exc, key) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][len(self.prefix):]

    def local_path(self, key: str) -> Path | None:
        return None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: ClientError, key: str) -> Exception:
    return BlobNotFound(key) if _code(exc) in _MISSING else exc
