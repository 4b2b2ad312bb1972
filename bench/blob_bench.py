"""Workspace snapshot cost per turn, on a local directory store vs S3 (moto's server over
loopback HTTP): a workspace of N files, then (1) the first snapshot, (2) a snapshot after a
turn that changed nothing, (3) after a turn that changed one file, (4) a restore on a fresh
replica. Median of several runs.

    PYTHONPATH=src .venv/bin/python -m bench.blob_bench [files] [kib_per_file]
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlagent.blobs import LocalBlobs, open_blob_store
from mlagent.runtime.snapshots import WorkspaceSnapshots
from mlagent.sandbox import Sandbox


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def run(blobs, files: int, kib: int, rounds: int = 5) -> dict[str, float]:
    out: dict[str, list[float]] = {"first": [], "unchanged": [], "one_changed": [], "restore": []}
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Sandbox(Path(tmp) / "a", isolation="none"), Sandbox(Path(tmp) / "b", isolation="none")
            session = f"bench{r}{os.getpid()}"
            for i in range(files):
                a.write_bytes(session, f"d{i % 10}/f{i}.bin", os.urandom(kib * 1024))
            sa, sb = WorkspaceSnapshots(blobs, a, 1 << 40), WorkspaceSnapshots(blobs, b, 1 << 40)
            out["first"].append(timed(sa.snapshot_sync, session))
            out["unchanged"].append(timed(sa.snapshot_sync, session))
            a.write_bytes(session, "d0/f0.bin", os.urandom(kib * 1024))
            out["one_changed"].append(timed(sa.snapshot_sync, session))
            out["restore"].append(timed(sb.restore_sync, session))
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    logging.disable(logging.WARNING)  # moto's request log and the sandbox's no-isolation warning
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    kib = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    import boto3
    from moto.server import ThreadedMotoServer

    for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    boto3.client("s3", endpoint_url=f"http://{host}:{port}").create_bucket(Bucket="bench")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores = {"local dir": LocalBlobs(Path(tmp)),
                      "s3 (moto, loopback)": open_blob_store("s3://bench/w", Path(tmp),
                                                             s3_endpoint_url=f"http://{host}:{port}")}
            print(f"workspace: {files} files x {kib} KiB; median ms of 5 runs")
            print(f"{'store':<22}{'first':>10}{'unchanged':>12}{'1 changed':>12}{'restore':>10}")
            for name, blobs in stores.items():
                m = run(blobs, files, kib)
                print(f"{name:<22}{m['first']:>10.1f}{m['unchanged']:>12.1f}{m['one_changed']:>12.1f}"
                      f"{m['restore']:>10.1f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
