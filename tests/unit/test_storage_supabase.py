"""SupabaseStorage at the HTTP boundary: what storage3 sends to the Storage API, and how failures are classified.
An httpx MockTransport plays the Storage server and records every request."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from worker.exceptions import BadRequest, Transient, WorkerFault
from worker.storage.supabase import SupabaseStorage

USER = "6f1b7a0e-8a3c-4f5e-9b1d-2c3d4e5f6a7b"
JOB = "0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d6e"
KEY = f"{USER}/{JOB}.png"
PNG = b"\x89PNG\r\n\x1a\nfake-png-bytes"
SERVICE_KEY = "service-role-key-for-tests"


def storage_with(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[SupabaseStorage, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return SupabaseStorage("https://abcd.supabase.co", SERVICE_KEY, http_client=client), seen


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"Id": "x", "Key": f"generated-designs/{KEY}"})


async def test_an_upload_posts_the_png_to_its_owner_folder_with_png_type_and_upsert() -> None:
    storage, seen = storage_with(ok)
    stored = await storage.upload_result(KEY, PNG)
    assert (stored.bucket, stored.key, stored.size) == ("generated-designs", KEY, len(PNG))
    (request,) = seen
    assert request.method == "POST"
    assert request.url == f"https://abcd.supabase.co/storage/v1/object/generated-designs/{KEY}"
    assert request.headers["x-upsert"] == "true"
    assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert request.headers["apikey"] == SERVICE_KEY
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert b'Content-Type: image/png' in body and PNG in body
    assert f'filename="{JOB}.png"'.encode() in body
    assert b"text/plain" not in body, "storage3's default content type must be overridden"
    await storage.aclose()


async def test_an_input_image_is_downloaded_from_generation_inputs() -> None:
    storage, seen = storage_with(lambda r: httpx.Response(200, content=b"input-bytes"))
    assert await storage.download_input(f"{USER}/photo.png") == b"input-bytes"
    assert seen[0].method == "GET"
    assert seen[0].url == f"https://abcd.supabase.co/storage/v1/object/generation-inputs/{USER}/photo.png"


async def test_purged_results_are_removed_in_one_request() -> None:
    storage, seen = storage_with(lambda r: httpx.Response(200, json=[]))
    assert await storage.delete_results([KEY, f"{USER}/other.png"]) == 2
    assert seen[0].method == "DELETE"
    assert seen[0].url == "https://abcd.supabase.co/storage/v1/object/generated-designs"
    assert json.loads(seen[0].content) == {"prefixes": [KEY, f"{USER}/other.png"]}


def error(status: int, message: str = "nope") -> Callable[[httpx.Request], httpx.Response]:
    return lambda r: httpx.Response(status, json={"statusCode": str(status), "error": "Error", "message": message})


@pytest.mark.parametrize(("status", "kind"), [
    (400, BadRequest), (413, BadRequest), (415, BadRequest),
    (408, Transient), (429, Transient), (500, Transient), (502, Transient), (503, Transient),
    (401, WorkerFault), (403, WorkerFault),
])
async def test_upload_failures_are_classified_by_status(status: int, kind: type[Exception]) -> None:
    storage, _ = storage_with(error(status, "mime type text/plain is not supported"))
    with pytest.raises(kind) as raised:
        await storage.upload_result(KEY, PNG)
    assert f"HTTP {status}" in str(raised.value)
    assert SERVICE_KEY not in str(raised.value)


def storage_api_error(status: int, code: str, message: str) -> Callable[[httpx.Request], httpx.Response]:
    """What the Storage API really sends: HTTP 400 for every error but a 500, the real status in the body."""
    return lambda r: httpx.Response(400, json={"statusCode": str(status), "code": code, "error": code,
                                               "message": message})


@pytest.mark.parametrize(("status", "code", "kind"), [
    (503, "LockTimeout", Transient), (503, "SlowDown", Transient), (423, "ResourceLocked", Transient),
    (504, "DatabaseTimeout", Transient), (544, "DatabaseTimeout", Transient),
    (403, "AccessDenied", WorkerFault), (401, "InvalidJWT", WorkerFault),
    (400, "InvalidMimeType", BadRequest), (413, "EntityTooLarge", BadRequest),
])
async def test_the_status_inside_a_storage_400_decides(status: int, code: str, kind: type[Exception]) -> None:
    storage, _ = storage_with(storage_api_error(status, code, "acquiring lock timeout"))
    with pytest.raises(kind) as raised:
        await storage.upload_result(KEY, PNG)
    assert f"HTTP {status}" in str(raised.value) and SERVICE_KEY not in str(raised.value)


async def test_a_bucket_removed_after_start_up_is_the_workers_fault_not_the_jobs() -> None:
    storage, _ = storage_with(storage_api_error(404, "NoSuchBucket", "Bucket not found"))
    with pytest.raises(WorkerFault, match="the bucket is gone; apply the migrations"):
        await storage.upload_result(KEY, PNG)


async def test_an_unparseable_error_body_is_still_classified_by_status() -> None:
    storage, _ = storage_with(lambda r: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(Transient, match="HTTP 502"):
        await storage.upload_result(KEY, PNG)


@pytest.mark.parametrize("failure", [httpx.ConnectError("connection refused"), httpx.ReadTimeout("slow")])
async def test_network_failures_are_transient(failure: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    storage, _ = storage_with(fail)
    with pytest.raises(Transient):
        await storage.upload_result(KEY, PNG)


async def test_a_missing_input_image_is_a_bad_request_naming_the_field() -> None:
    storage, _ = storage_with(error(404, "Object not found"))
    with pytest.raises(BadRequest, match="init_image_path: no object"):
        await storage.download_input(f"{USER}/gone.png")
    storage, _ = storage_with(error(400, "Object not found"))        # Storage answers 400 for this sometimes
    with pytest.raises(BadRequest, match="init_image_path"):
        await storage.download_input(f"{USER}/gone.png")


async def test_keys_outside_an_owner_folder_are_refused_before_any_request() -> None:
    storage, seen = storage_with(ok)
    for key in ("../x.png", f"{USER}/../y.png", "x.png", f"{USER}/a/b.png"):
        with pytest.raises(BadRequest):
            await storage.upload_result(key, PNG)
    assert seen == []
