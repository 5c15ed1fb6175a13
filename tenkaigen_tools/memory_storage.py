"""In-memory storage for the queue benchmark only: it measures the queue path without disk or network.
Never use it for real work: results vanish with the process."""

from __future__ import annotations

from collections.abc import Sequence

from worker.exceptions import BadRequest
from worker.storage.base import INPUTS_BUCKET, RESULTS_BUCKET, StoredObject


class MemoryStorage:
    """Objects in a dict keyed by (bucket, key)."""

    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    async def check(self) -> None:
        return None

    async def upload_result(self, key: str, png: bytes) -> StoredObject:
        self.objects[(RESULTS_BUCKET, key)] = png
        return StoredObject(RESULTS_BUCKET, key, len(png))

    async def download_input(self, path: str) -> bytes:
        try:
            return self.objects[(INPUTS_BUCKET, path)]
        except KeyError:
            raise BadRequest(f"init_image_path: no object {path} in bucket {INPUTS_BUCKET}") from None

    async def delete_results(self, keys: Sequence[str]) -> int:
        for key in keys:
            self.objects.pop((RESULTS_BUCKET, key), None)
        return len(keys)

    async def aclose(self) -> None:
        return None
