"""The local-directory backend: a blob is the file `<root>/<key>`. The default; with
`MLAGENT_DATA_DIR` as root it keeps today's layout (`artifacts/<sha[:2]>/<sha256>`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .base import BlobNotFound, check_key


class LocalBlobs:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, fill) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, src: Path) -> None:
        def fill(out):
            with open(src, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
        self._write(key, fill)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda out: out.write(data))

    def get_file(self, key: str, dest: Path) -> None:
        with self.open(key) as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        for dirpath, _dirs, names in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            for name in sorted(names):
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix) and not name.startswith(".part-"):
                    yield key

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
