"""A real S3 server over HTTP for the blob-store tests: moto's standalone server on a free
loopback port, with a bucket made for each test."""

from __future__ import annotations

import uuid

import boto3
from moto.server import ThreadedMotoServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


class S3Server:
    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def new_bucket(self) -> str:
        name = f"mlagent-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def server_env(self, bucket: str, prefix: str = "blobs") -> dict[str, str]:
        """Environment for a server process using this S3 as its blob store."""
        return {**CREDENTIALS, "MLAGENT_BLOB_URL": f"s3://{bucket}/{prefix}", "MLAGENT_S3_ENDPOINT_URL": self.url}
