"""Supabase Storage through storage3's async client (the Storage HTTP API, authenticated with the service key).

Upload: `POST {SUPABASE_URL}/storage/v1/object/generated-designs/<user_id>/<job_id>.png`, multipart, with
`content-type: image/png` (storage3 defaults to text/plain, which the bucket's allowed_mime_types refuses) and
`x-upsert: true`, so a retried attempt overwrites instead of failing with 409. Download of edit inputs:
`GET …/object/generation-inputs/<path>`. Only storage3 is used: the PostgREST and Auth clients of supabase-py
(and PostgREST's automatic retries) are not involved, since the worker talks to the database directly.

Error mapping: 4xx → BadRequest (the request cannot succeed), except 408 and 429 (→ Transient) and 401/403
(→ Transient, logged: a wrong or rotated service key is the worker's fault, not the job's, and must not fail
every job permanently); 5xx, timeouts and connection errors → Transient.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from storage3 import AsyncStorageClient
from storage3.utils import StorageException

from worker.exceptions import BadRequest, Transient
from worker.logging import logger
from worker.storage.base import INPUTS_BUCKET, PNG_CONTENT_TYPE, RESULTS_BUCKET, StoredObject, check_key

TIMEOUT_SECONDS_DEFAULT = 60.0
CACHE_CONTROL_DEFAULT = "3600"
RETRYABLE_STATUSES = frozenset({408, 429})
CREDENTIAL_STATUSES = frozenset({401, 403})

log = logger("storage")


class SupabaseStorage:
    """Objects in Supabase Storage buckets generated-designs / generation-inputs."""

    name = "supabase"

    def __init__(
        self,
        supabase_url: str,
        service_role_key: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = TIMEOUT_SECONDS_DEFAULT,
    ) -> None:
        headers = {"apiKey": service_role_key, "Authorization": f"Bearer {service_role_key}"}
        self._http = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        self._client = AsyncStorageClient(
            url=f"{supabase_url.rstrip('/')}/storage/v1/", headers=headers, http_client=self._http)

    async def upload_result(self, key: str, png: bytes) -> StoredObject:
        check_key(key)
        try:
            await self._client.from_(RESULTS_BUCKET).upload(
                path=key,
                file=png,
                file_options={"content-type": PNG_CONTENT_TYPE, "upsert": "true", "cache-control": CACHE_CONTROL_DEFAULT},
            )
        except (StorageException, httpx.HTTPError) as exc:
            raise map_error(exc, f"upload of {RESULTS_BUCKET}/{key}") from exc
        return StoredObject(RESULTS_BUCKET, key, len(png))

    async def download_input(self, path: str) -> bytes:
        check_key(path, "init_image_path")
        try:
            return await self._client.from_(INPUTS_BUCKET).download(path)
        except (StorageException, httpx.HTTPError) as exc:
            if status_of(exc) == 404 or (status_of(exc) == 400 and "not found" in str(exc).lower()):
                raise BadRequest(f"init_image_path: no object {path} in bucket {INPUTS_BUCKET}") from exc
            raise map_error(exc, f"download of {INPUTS_BUCKET}/{path}") from exc

    async def delete_results(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            await self._client.from_(RESULTS_BUCKET).remove(list(keys))
        except (StorageException, httpx.HTTPError) as exc:
            raise map_error(exc, f"removal of {len(keys)} objects from {RESULTS_BUCKET}") from exc
        return len(keys)

    async def aclose(self) -> None:
        await self._http.aclose()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind a storage3 / httpx error, if there was a response."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx.HTTPStatusError):
            return cause.response.status_code
        cause = cause.__cause__
    status = getattr(exc, "status", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def map_error(exc: BaseException, what: str) -> BadRequest | Transient:
    """Classify a Storage failure for the runner (see the module docstring)."""
    if isinstance(exc, httpx.TransportError):
        return Transient(f"{what} failed: {type(exc).__name__}: {exc}".rstrip(": "))
    status = status_of(exc)
    message = getattr(exc, "message", None) or str(exc)
    if status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return Transient(f"{what} failed (HTTP {status or '?'}): {message}")
    if status in CREDENTIAL_STATUSES:
        log.error("storage refused the service key (HTTP %s): check SUPABASE_SERVICE_ROLE_KEY", status,
                  extra={"action": "upload_result"})
        return Transient(f"{what} refused (HTTP {status}): check SUPABASE_SERVICE_ROLE_KEY: {message}")
    return BadRequest(f"{what} refused (HTTP {status}): {message}")
