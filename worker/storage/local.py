"""Storage in a local directory (the embedded default): `<root>/<bucket>/<user_id>/<file>`.

Writes go to a temporary file that is fsynced, renamed into place, and then the directory is fsynced: a reader
never sees half a PNG, a power cut leaves either the old object or the whole new one, and a retried upload simply
replaces the object. The start-up check creates `<root>/generated-designs` if needed and writes and removes a probe
file there: a directory the worker cannot write is a ConfigurationError naming TENKAIGEN_LOCAL_STORAGE_DIR.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from worker.exceptions import BadRequest, ConfigurationError, Transient
from worker.storage.base import INPUTS_BUCKET, RESULTS_BUCKET, StoredObject, check_key


class LocalStorage:
    """Objects as files under `root`."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    async def check(self) -> None:
        folder = self.root / RESULTS_BUCKET
        try:
            await asyncio.to_thread(_probe_writable, folder)
        except OSError as exc:
            raise ConfigurationError(
                f"TENKAIGEN_LOCAL_STORAGE_DIR: cannot write results under {folder} ({exc.strerror or exc}); "
                "choose a directory the worker may create and write") from None

    def path_of(self, bucket: str, key: str) -> Path:
        return self.root / bucket / check_key(key)

    async def upload_result(self, key: str, png: bytes) -> StoredObject:
        path = self.path_of(RESULTS_BUCKET, key)
        try:
            await asyncio.to_thread(_write_atomically, path, png)
        except OSError as exc:
            raise Transient(f"cannot write {path}: {exc.strerror or exc}") from exc
        return StoredObject(RESULTS_BUCKET, key, len(png))

    async def download_input(self, path: str) -> bytes:
        file = self.path_of(INPUTS_BUCKET, check_key(path, "init_image_path"))
        try:
            return await asyncio.to_thread(file.read_bytes)
        except FileNotFoundError as exc:
            raise BadRequest(f"init_image_path: no object {path} in bucket {INPUTS_BUCKET}") from exc
        except OSError as exc:
            raise Transient(f"cannot read {file}: {exc.strerror or exc}") from exc

    async def delete_results(self, keys: Sequence[str]) -> int:
        def remove() -> int:
            for key in keys:
                self.path_of(RESULTS_BUCKET, key).unlink(missing_ok=True)
            return len(keys)

        return await asyncio.to_thread(remove)

    async def aclose(self) -> None:
        return None


def _probe_writable(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-", suffix=".tmp")
    os.close(fd)
    Path(probe).unlink()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: the new entry lives in the directory, not in the file)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
