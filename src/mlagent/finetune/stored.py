"""Fine-tuning files and what local jobs leave, in the blob store (blobs/), so any replica
can use them: a job started through replica B reads the training file uploaded through A,
and the model a job made on A is downloaded, registered or fine-tuned further through B.

Keys (the database keeps them, never absolute paths):

- `files/<file id>`: an uploaded file (`UploadedFile.path`); checked against its sha256
  when fetched.
- `finetune/<job id>/`: a local job's directory (`FineTuningJob.output_dir`):
  `model/<path>` the trained model's files, then `model.json` (path → sha256, size; written
  last, so a model is complete once it is there), and `trainer.log`, `events.jsonl`.

Each replica works on its own copies under `MLAGENT_DATA_DIR` (the same paths as the keys),
fetched once; with the default store (`MLAGENT_DATA_DIR` itself) key and copy are one file,
so nothing is copied.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import uuid
from pathlib import Path

from ..blobs import BlobNotFound, BlobStore
from ..blobs.base import check_key
from ..errors import ServiceError
from ..registry.artifacts import sha256_of

NOTES = ("trainer.log", "events.jsonl")
MANIFEST = "model.json"


def file_key(file_id: str) -> str:
    return f"files/{file_id}"


def job_key(job_id: str) -> str:
    return f"finetune/{job_id}"


class FineTuneBlobs:
    def __init__(self, blobs: BlobStore, data_dir: Path) -> None:
        self.blobs = blobs
        self.data_dir = data_dir

    def local(self, key: str) -> Path:
        """This replica's copy of `key` (not necessarily there yet)."""
        return self.data_dir / check_key(key)

    def _put(self, key: str, path: Path) -> None:
        if self.blobs.local_path(key) != path.resolve():  # the default store: it already is the blob
            self.blobs.put_file(key, path)

    # -- uploaded files --------------------------------------------------------------------
    def put_upload(self, key: str, path: Path) -> None:
        self._put(key, path)

    def upload_path(self, key: str, sha256: str, param: str) -> Path:
        """The uploaded file on this disk, fetched (and checked) if it was uploaded elsewhere."""
        path = self.local(key)
        if path.exists():
            return path
        try:
            self.blobs.get_file(key, path)
        except BlobNotFound:
            raise ServiceError(409, "file_missing", f"The uploaded file {key.rsplit('/', 1)[-1]!r} is missing from "
                               "the blob store; upload it again.", param, retryable=False) from None
        if sha256_of(path) != sha256:
            path.unlink(missing_ok=True)
            raise ServiceError(502, "file_corrupt", f"The stored file {key.rsplit('/', 1)[-1]!r} did not match "
                               "its sha256; it was not used.", param)
        return path

    # -- a job's outputs ---------------------------------------------------------------------
    def put_model(self, job_id: str, out: Path) -> None:
        """The job's `model/` (regular files only; the trainer's links are not followed), then
        its manifest."""
        files = {}
        model = out / "model"
        for dirpath, dirs, names in os.walk(model):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(dirpath, d))]
            for name in names:
                path = Path(dirpath, name)
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode):
                    continue
                rel = path.relative_to(model).as_posix()
                self._put(f"{job_key(job_id)}/model/{rel}", path)
                files[rel] = {"sha256": sha256_of(path), "size": st.st_size}
        self.blobs.put_bytes(f"{job_key(job_id)}/{MANIFEST}", json.dumps({"files": files}).encode())

    def put_notes(self, job_id: str, out: Path) -> None:
        """The trainer's log and the job's events, as they are now."""
        for name in NOTES:
            if (out / name).exists():
                self._put(f"{job_key(job_id)}/{name}", out / name)

    def notes(self, job_key_: str, name: str, last_bytes: int | None = None) -> str:
        """A job's log or events (at most the `last_bytes`): this replica's file if it ran
        the job, else the stored copy, read each time (a finished job's events can still grow
        by its last line); "" when neither exists."""
        path = self.local(f"{job_key_}/{name}")
        try:
            with open(path, "rb") as f:
                if last_bytes is not None:
                    f.seek(max(0, os.fstat(f.fileno()).st_size - last_bytes))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            pass
        with contextlib.suppress(BlobNotFound):
            return self.blobs.get_bytes(f"{job_key_}/{name}")[-(last_bytes or 0):].decode(errors="replace")
        return ""

    def model_dir(self, job_key_: str) -> Path | None:
        """The job's directory with its `model/` on this disk, fetched from the store and
        checked if the job ran elsewhere; None when the store holds no model for it."""
        out = self.local(job_key_)
        if (out / "model").is_dir():
            return out
        try:
            manifest = json.loads(self.blobs.get_bytes(f"{job_key_}/{MANIFEST}"))
        except BlobNotFound:
            return None
        tmp = out / f".model-{uuid.uuid4().hex[:8]}"
        try:
            for rel, meta in manifest["files"].items():
                dest = tmp / check_key(rel)
                self.blobs.get_file(f"{job_key_}/model/{rel}", dest)
                if sha256_of(dest) != meta["sha256"]:
                    raise ServiceError(502, "model_corrupt", f"A stored file of {job_key_} ({rel}) did not match "
                                       "its sha256; the model was not used.", "job_id")
            with contextlib.suppress(OSError):  # another request fetched it first: keep that one
                tmp.rename(out / "model")
        except BlobNotFound:
            raise ServiceError(409, "model_missing", f"Files of {job_key_}'s model are missing from the blob "
                               "store.", "job_id", retryable=False) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out
