"""The start-up preflight of every storage (`Storage.check`), at the HTTP boundary for Supabase: an httpx
MockTransport plays the Storage API. A refused key, a missing bucket, a malformed URL or an unwritable directory
is a ConfigurationError (the worker refuses to start); an unreachable or failing Storage is only a warning."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tenkaigen_tools.memory_storage import MemoryStorage
from tenkaigen_tools.testing import FaultInjectingStorage
from worker.exceptions import ConfigurationError
from worker.storage.base import Storage
from worker.storage.local import LocalStorage
from worker.storage.supabase import SupabaseStorage

SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.service-role-key-for-tests.c2lnbmF0dXJl"
BASE = "https://abcd.supabase.co"
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def bucket_body(bucket: str, *, owner: str | None = None) -> dict[str, object]:
    """What Storage answers for GET /bucket/<id>; buckets made by the migrations have no owner (null)."""
    return {"id": bucket, "name": bucket, "owner": owner, "public": False, "file_size_limit": 10485760,
            "allowed_mime_types": ["image/png"], "created_at": "2026-11-25T00:00:00.000Z",
            "updated_at": "2026-11-25T00:00:00.000Z"}


def exists(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=bucket_body(request.url.path.rsplit("/", 1)[-1], owner=""))


def storage_error(status: int, body_status: int | str, error: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"statusCode": str(body_status), "error": error, "message": message})


def storage_with(handler: Handler, url: str = BASE, **kwargs: float) -> tuple[SupabaseStorage, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        response = handler(request)
        return await response if asyncio.iscoroutine(response) else response  # type: ignore[return-value]

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return SupabaseStorage(url, SERVICE_KEY, http_client=client, **kwargs), seen


@pytest.fixture
def warnings_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Records of the storage logger, even after configure_logging stopped `tenkaigen` from propagating."""
    storage_logger = logging.getLogger("tenkaigen.storage")
    attach = not logging.getLogger("tenkaigen").propagate
    if attach:
        storage_logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        if attach:
            storage_logger.removeHandler(caplog.handler)


def assert_key_absent(*texts: str) -> None:
    for text in texts:
        assert SERVICE_KEY not in text
        assert "service-role-key-for-tests" not in text


# ## Supabase: outcomes by answer
async def test_both_buckets_are_fetched_with_the_service_key_and_the_check_passes() -> None:
    storage, seen = storage_with(exists)
    await storage.check()
    assert [(r.method, str(r.url)) for r in seen] == [
        ("GET", f"{BASE}/storage/v1/bucket/generated-designs"),
        ("GET", f"{BASE}/storage/v1/bucket/generation-inputs"),
    ]
    for request in seen:
        assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
        assert request.headers["apikey"] == SERVICE_KEY
    await storage.aclose()


async def test_a_bucket_without_an_owner_still_passes() -> None:
    """Buckets inserted by the migrations have owner null, which storage3's Bucket model refuses to parse."""
    storage, seen = storage_with(lambda r: httpx.Response(200, json=bucket_body("generated-designs")))
    await storage.check()
    assert len(seen) == 2


@pytest.mark.parametrize("answer", [
    storage_error(401, 401, "Unauthorized", "Invalid JWT"),
    storage_error(403, 403, "Unauthorized", "new row violates row-level security policy"),
    storage_error(400, 403, "Unauthorized", "invalid signature"),       # Storage's 400 with the real status inside
    httpx.Response(401, json={"message": "Invalid API key", "hint": "Double check your Supabase `anon` key"}),
], ids=["401", "403", "400-with-403-inside", "gateway-401"])
async def test_a_refused_key_is_a_configuration_error_naming_the_setting_never_the_key(
        answer: httpx.Response, warnings_logged: pytest.LogCaptureFixture) -> None:
    storage, seen = storage_with(lambda r: answer)
    with pytest.raises(ConfigurationError) as raised:
        await storage.check()
    message = str(raised.value)
    assert message.startswith("SUPABASE_SERVICE_ROLE_KEY:")
    assert "refused the service key" in message and "service_role" in message and "anon key" in message
    assert f"HTTP {answer.status_code}" in message and "abcd.supabase.co" in message
    assert_key_absent(message, repr(raised.value), warnings_logged.text)
    assert len(seen) == 1, "no point asking about the second bucket"


async def test_a_server_message_that_echoes_the_key_is_redacted() -> None:
    storage, _ = storage_with(lambda r: storage_error(403, 403, "Unauthorized", f"bad token {SERVICE_KEY}"))
    with pytest.raises(ConfigurationError) as raised:
        await storage.check()
    assert_key_absent(str(raised.value))


@pytest.mark.parametrize("answer", [
    storage_error(404, 404, "Bucket not found", "Bucket not found"),
    storage_error(400, 404, "Bucket not found", "Bucket not found"),    # what Storage answers on many versions
], ids=["404", "400-bucket-not-found"])
async def test_a_missing_results_bucket_says_to_apply_the_migrations(answer: httpx.Response) -> None:
    storage, seen = storage_with(lambda r: answer)
    with pytest.raises(ConfigurationError) as raised:
        await storage.check()
    message = str(raised.value)
    assert "bucket generated-designs does not exist" in message
    assert "apply the migrations" in message and "supabase db push" in message and "tenkaigen db migrate" in message
    assert f"{BASE}/storage/v1/bucket/generated-designs" in message
    assert_key_absent(message)
    assert len(seen) == 1


async def test_a_missing_inputs_bucket_is_named_too() -> None:
    def only_results(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/generated-designs"):
            return exists(request)
        return storage_error(400, 404, "Bucket not found", "Bucket not found")

    storage, seen = storage_with(only_results)
    with pytest.raises(ConfigurationError, match=r"bucket generation-inputs does not exist.*tenkaigen db migrate"):
        await storage.check()
    assert len(seen) == 2


async def test_another_refusal_of_the_check_is_a_configuration_error() -> None:
    storage, _ = storage_with(lambda r: storage_error(400, 400, "InvalidRequest", "The request is not valid"))
    with pytest.raises(ConfigurationError, match=r"refused the start-up check of bucket generated-designs.*HTTP 400"):
        await storage.check()


async def test_a_url_that_is_not_the_storage_api_is_a_configuration_error() -> None:
    storage, _ = storage_with(lambda r: httpx.Response(200, text="<!doctype html><title>My app</title>"))
    with pytest.raises(ConfigurationError, match=r"^SUPABASE_URL: .*not the Storage API"):
        await storage.check()


@pytest.mark.parametrize("url", ["https://", "https://abcd.supabase.co:port", "http://[::1",
                                 "https://abcd supabase.co", "https://abcd.supabase.co/?x=1",
                                 "https://abcd.supabase.co#top", "ftp://abcd.supabase.co"])
async def test_a_malformed_url_is_a_configuration_error_before_any_request(url: str) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(ConfigurationError, match=r"^SUPABASE_URL: .*https://<ref>\.supabase\.co"):
        storage, seen = storage_with(exists, url=url)       # some are refused already by the constructor
        await storage.check()
    assert seen == []


# ## Supabase: Storage down is only a warning
@pytest.mark.parametrize("failure", [httpx.ConnectError("All connection attempts failed"),
                                     httpx.ConnectTimeout("timed out"), httpx.ReadTimeout("slow")])
async def test_an_unreachable_storage_is_a_warning_with_the_host_not_an_error(
        failure: Exception, warnings_logged: pytest.LogCaptureFixture) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    storage, seen = storage_with(fail)
    await storage.check()
    (record,) = [r for r in warnings_logged.records if r.name == "tenkaigen.storage"]
    assert record.levelno == logging.WARNING
    assert "abcd.supabase.co" in record.getMessage() and type(failure).__name__ in record.getMessage()
    assert "starting anyway" in record.getMessage()
    assert_key_absent(warnings_logged.text)
    assert len(seen) == 1, "one warning, no second try against a Storage that is down"


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_a_failing_storage_is_a_warning(status: int, warnings_logged: pytest.LogCaptureFixture) -> None:
    storage, _ = storage_with(lambda r: storage_error(status, status, "Error", "upstream unavailable"))
    await storage.check()
    messages = [r.getMessage() for r in warnings_logged.records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and f"HTTP {status}" in messages[0] and "abcd.supabase.co" in messages[0]


async def test_the_check_is_bounded_in_time(warnings_logged: pytest.LogCaptureFixture) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return exists(request)

    storage, _ = storage_with(hang, check_timeout=0.2)
    started = time.monotonic()
    await storage.check()
    assert time.monotonic() - started < 2
    assert "no answer within 0.2 s" in warnings_logged.text


# ## Local and memory
async def test_local_storage_checks_by_writing_a_probe_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "not-yet" / "storage"
    await LocalStorage(root).check()
    assert (root / "generated-designs").is_dir()
    assert list((root / "generated-designs").iterdir()) == []


async def test_local_storage_under_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(ConfigurationError, match=r"^TENKAIGEN_LOCAL_STORAGE_DIR: cannot write results under"):
        await LocalStorage(tmp_path / "a-file" / "storage").check()


async def test_a_results_folder_that_is_not_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "generated-designs").write_bytes(b"")      # unwritable for root too, unlike a chmod 555 folder
    with pytest.raises(ConfigurationError, match="TENKAIGEN_LOCAL_STORAGE_DIR"):
        await LocalStorage(tmp_path).check()


async def test_memory_storage_and_the_test_double_always_pass_and_every_storage_is_a_storage(
        tmp_path: Path) -> None:
    await MemoryStorage().check()
    await FaultInjectingStorage().check()
    supabase, _ = storage_with(exists)
    for storage in (MemoryStorage(), FaultInjectingStorage(), LocalStorage(tmp_path), supabase):
        assert isinstance(storage, Storage)

