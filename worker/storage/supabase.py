"""Supabase Storage through storage3's async client (the Storage HTTP API, authenticated with the service key).

Upload: `POST {SUPABASE_URL}/storage/v1/object/generated-designs/<user_id>/<job_id>.png`, multipart, with
`content-type: image/png` (storage3 defaults to text/plain, which the bucket's allowed_mime_types refuses) and
`x-upsert: true`, so a retried attempt overwrites instead of failing with 409. Download of edit inputs:
`GET …/object/generation-inputs/<path>`. Only storage3 is used: the PostgREST and Auth clients of supabase-py
(and PostgREST's automatic retries) are not involved, since the worker talks to the database directly.

Error mapping, by the status Storage means (its API answers HTTP 400 for every error but a 500 and puts the real
status in the body's `statusCode`: `storage_status_of`): 4xx → BadRequest (the request cannot succeed), except
408, 423 and 429 (→ Transient), 401/403 and a missing bucket (→ WorkerFault, logged: a key rotated or revoked, or a
bucket removed, while the worker runs is the worker's fault, not the job's, so the job is handed back without using
an attempt and the worker pauses its claims); 5xx, timeouts and connection errors → Transient.

Start-up preflight (`check`, called by `tenkaigen worker` before it claims anything): one
`GET {SUPABASE_URL}/storage/v1/bucket/<id>` (storage3's `get_bucket`) per bucket, generated-designs then
generation-inputs, within 10 s in all. There 401/403 are fatal: a `ConfigurationError` naming
SUPABASE_SERVICE_ROLE_KEY (never the key itself), so a worker with a wrong key or the anon key refuses to start
instead of claiming jobs and burning their attempts. A missing bucket (404, or Storage's 400 "Bucket not found")
is a `ConfigurationError` saying to apply the migrations, and so is a malformed SUPABASE_URL. A connection error,
timeout, 408/429 or 5xx is only a warning: Storage may be briefly down, and uploads are retried anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Sequence

import httpx
import pydantic
from storage3 import AsyncStorageClient
from storage3.utils import StorageException

from worker.exceptions import BadRequest, ConfigurationError, Transient, WorkerFault
from worker.logging import logger
from worker.storage.base import INPUTS_BUCKET, PNG_CONTENT_TYPE, RESULTS_BUCKET, StoredObject, check_key

TIMEOUT_SECONDS_DEFAULT = 60.0
CACHE_CONTROL_DEFAULT = "3600"
RETRYABLE_STATUSES = frozenset({408, 423, 429})   # timeout, resource locked, rate limited
CREDENTIAL_STATUSES = frozenset({401, 403})
CHECK_TIMEOUT_SECONDS = 10.0
CHECKED_BUCKETS = (RESULTS_BUCKET, INPUTS_BUCKET)
MIGRATE_HINT = "apply the migrations (supabase db push, or tenkaigen db migrate)"
HOST_NAME = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")

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
        check_timeout: float = CHECK_TIMEOUT_SECONDS,
    ) -> None:
        headers = {"apiKey": service_role_key, "Authorization": f"Bearer {service_role_key}"}
        self._supabase_url = supabase_url
        self._secret = service_role_key
        self._check_timeout = check_timeout
        self._http = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        try:
            self._client = AsyncStorageClient(
                url=f"{supabase_url.rstrip('/')}/storage/v1/", headers=headers, http_client=self._http)
        except ValueError as exc:                           # yarl: a port that is not a number, a broken IPv6 host
            raise ConfigurationError(f"SUPABASE_URL: not a valid URL ({exc}); it must be the project URL, "
                                     "https://<ref>.supabase.co") from None

    async def check(self) -> None:
        """Start-up preflight: the URL is well formed, the key is accepted and both buckets exist (see the module
        docstring). Raises ConfigurationError for what only the operator can fix; logs a warning and returns when
        Storage cannot be reached or answers 5xx."""
        host = self._checked_host()
        unchecked: str | None = None
        try:
            async with asyncio.timeout(self._check_timeout):
                for bucket in CHECKED_BUCKETS:
                    unchecked = await self._check_bucket(bucket, host)
                    if unchecked:
                        break
        except TimeoutError:
            unchecked = f"no answer within {self._check_timeout:g} s"
        except httpx.TransportError as exc:
            unchecked = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if unchecked:
            log.warning("storage start-up check did not complete: Supabase Storage at %s: %s; starting anyway, "
                        "uploads are retried (check SUPABASE_URL if this persists)", host, self._redact(unchecked),
                        extra={"action": "check_storage"})

    def _checked_host(self) -> str:
        """The host of SUPABASE_URL, or ConfigurationError when the URL cannot be a Storage endpoint."""
        expected = "it must be the project URL, https://<ref>.supabase.co"
        try:
            url = httpx.URL(self._supabase_url)
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"SUPABASE_URL: not a valid URL ({exc}); {expected}") from None
        if url.scheme not in ("http", "https") or not url.host or not HOST_NAME.fullmatch(url.host) \
                or url.query or url.fragment:
            raise ConfigurationError(f"SUPABASE_URL: malformed ({self._redact(self._supabase_url)!r}); {expected}")
        return url.host

    async def _check_bucket(self, bucket: str, host: str) -> str | None:
        """None when the bucket is there; why it could not be checked (5xx…); or ConfigurationError."""
        endpoint = f"{self._supabase_url.rstrip('/')}/storage/v1/bucket/{bucket}"
        try:
            await self._client.get_bucket(bucket)
        except pydantic.ValidationError:
            return None         # a 2xx bucket body that storage3's model is stricter about: the bucket exists
        except json.JSONDecodeError:
            raise ConfigurationError(
                f"SUPABASE_URL: GET {endpoint} answered with something that is not the Storage API (not JSON); "
                "it must be the project URL, https://<ref>.supabase.co") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConfigurationError(f"SUPABASE_URL: malformed ({exc}); it must be the project URL, "
                                     "https://<ref>.supabase.co") from None
        except StorageException as exc:
            return self._classify_check_failure(exc, bucket, endpoint, host)
        return None

    def _classify_check_failure(self, exc: StorageException, bucket: str, endpoint: str, host: str) -> str:
        """Raise ConfigurationError for a refused key, a missing bucket or another 4xx; the reason for the rest."""
        http_status = status_of(exc)
        statuses = {http_status, storage_status_of(exc)}    # Storage's own statusCode, e.g. "404" in an HTTP 400
        message = self._redact(str(getattr(exc, "message", None) or exc))[:200]
        shown = f"HTTP {http_status or '?'}: {message}"
        if statuses & CREDENTIAL_STATUSES:
            raise ConfigurationError(
                f"SUPABASE_SERVICE_ROLE_KEY: the Storage API at {host} refused the service key ({shown}); check "
                "SUPABASE_SERVICE_ROLE_KEY: it must be the project's service_role (or sb_secret_…) key, not the "
                "anon key") from None
        if 404 in statuses or (http_status == 400 and "not found" in message.lower()):
            raise ConfigurationError(
                f"Storage bucket {bucket} does not exist (GET {endpoint} → {shown}); {MIGRATE_HINT}. If it does "
                "exist, check that SUPABASE_SERVICE_ROLE_KEY is the service_role key (the anon key cannot see "
                "buckets)") from None
        if http_status is None or http_status >= 500 or http_status in RETRYABLE_STATUSES:
            return f"GET {endpoint} → {shown}"
        raise ConfigurationError(
            f"SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY: the Storage API refused the start-up check of bucket "
            f"{bucket} (GET {endpoint} → {shown})") from None

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if len(self._secret) >= 8 else text

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


def storage_status_of(exc: BaseException) -> int | None:
    """The status Storage means: its API answers HTTP 400 for every error but a 500 and puts the real status in
    the body's `statusCode` (storage3 exposes it as `.status`), e.g. 503 for a lock timeout or 403 for a refused
    key inside an HTTP 400."""
    status = status_of(exc)
    if status == 400:
        with contextlib.suppress(TypeError, ValueError):
            inner = int(getattr(exc, "status", None))  # type: ignore[arg-type]
            if 100 <= inner <= 599:
                return inner
    return status


def map_error(exc: BaseException, what: str) -> BadRequest | Transient | WorkerFault:
    """Classify a Storage failure for the runner (see the module docstring)."""
    if isinstance(exc, httpx.TransportError):
        return Transient(f"{what} failed: {type(exc).__name__}: {exc}".rstrip(": "))
    status = storage_status_of(exc)
    message = getattr(exc, "message", None) or str(exc)
    if status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return Transient(f"{what} failed (HTTP {status or '?'}): {message}")
    if status in CREDENTIAL_STATUSES:
        log.error("storage refused the service key (HTTP %s): check SUPABASE_SERVICE_ROLE_KEY", status,
                  extra={"action": "upload_result"})
        return WorkerFault(f"{what} refused (HTTP {status}): check SUPABASE_SERVICE_ROLE_KEY: {message}")
    if status == 404 and "bucket" in message.lower():     # removed after start-up: the operator's to fix
        return WorkerFault(f"{what} refused (HTTP 404): the bucket is gone; {MIGRATE_HINT}: {message}")
    return BadRequest(f"{what} refused (HTTP {status}): {message}")

