"""The storage interface the runner uploads through.

Results go to bucket `generated-designs` under `<user_id>/<job_id>.png` (contract) with content type image/png,
overwriting any earlier object (upsert), so a retried attempt is harmless. Input images of edit jobs come from
bucket `generation-inputs`. Implementations raise `BadRequest` for problems that retrying cannot fix (a missing
input object, a refused upload) and `Transient` for the rest (server errors, timeouts, network).

`check()` is the start-up preflight `tenkaigen worker` runs before it claims anything: it raises
`ConfigurationError` for what only the operator can fix (a refused key, a missing bucket, an unwritable
directory), so a misconfigured worker refuses to start instead of failing every job it claims.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from worker.exceptions import BadRequest

RESULTS_BUCKET = "generated-designs"
INPUTS_BUCKET = "generation-inputs"
PNG_CONTENT_TYPE = "image/png"
OBJECT_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """Where an upload landed."""

    bucket: str
    key: str
    size: int


def check_key(key: str, what: str = "object key") -> str:
    """Keys are `<uuid folder>/<file name>`: nothing that could escape the owner's folder."""
    if not OBJECT_KEY.match(key):
        raise BadRequest(f"{what}: must be <user id>/<file name> (got {key!r})")
    return key


@runtime_checkable
class Storage(Protocol):
    """Result and input object storage."""

    name: str

    async def check(self) -> None:
        """Start-up preflight: ConfigurationError when this storage cannot work as configured."""
        ...

    async def upload_result(self, key: str, png: bytes) -> StoredObject:
        """Store a PNG at `generated-designs/<key>`, replacing any existing object."""
        ...

    async def download_input(self, path: str) -> bytes:
        """The bytes of `generation-inputs/<path>`."""
        ...

    async def delete_results(self, keys: Sequence[str]) -> int:
        """Remove result objects (retention purge); returns how many were asked to be removed."""
        ...

    async def aclose(self) -> None: ...
