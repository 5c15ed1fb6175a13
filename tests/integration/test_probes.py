"""/livez and /readyz of a real worker: draining and a worker fault make it unready, never dead."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from tests.integration.conftest import job_row
from worker import commands
from worker.config import Settings
from worker.exceptions import WorkerFault
from worker.probes import MetricsServer
from worker.storage.base import StoredObject

WITHIN = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(check: Callable[[], Awaitable[Any]], message: str, within: float = WITHIN) -> Any:
    """Await check() until it returns something truthy (returned), failing after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {message}")
        await asyncio.sleep(0.05)


async def probe(client: httpx.AsyncClient, path: str) -> tuple[int, dict[str, Any]]:
    answer = await client.get(path)
    return answer.status_code, answer.json()


async def test_a_draining_worker_is_unready_but_alive(settings_for: Callable[..., Settings], make_job,
                                                      admin: psycopg.Connection) -> None:
    port = free_port()
    settings = settings_for(metrics_port=port, metrics_host="127.0.0.1", placeholder_step_seconds=0.4,
                            grace_period=30, scheduler_enabled=False)
    stop = asyncio.Event()
    worker = asyncio.create_task(commands.worker(settings, stop_event=stop, install_signal_handlers=False))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False          # not listening yet
            await until(ready, "the worker to be ready")
            assert (await probe(client, "/livez"))[0] == 200
            job_id = make_job("slow enough to drain", steps=15)                  # 15 steps x 0.4 s
            await until(lambda: _status_is(admin, job_id, "running"), "the job to run")
            stop.set()                                                          # what SIGTERM does
            status, body = await until(lambda: _unready(client), "/readyz to turn 503")
            assert status == 503 and "draining" in body["failing"], body
            assert body["checks"]["draining"].startswith("draining"), body
            assert job_row(admin, job_id)["status"] == "running", "the job is still being finished"
            alive, live_body = await probe(client, "/livez")
            assert alive == 200 and live_body["status"] == "ok", live_body
            healthz = await probe(client, "/healthz")
            assert healthz[0] == 503 and "draining" in healthz[1]["failing"], "/healthz is /readyz"
        await asyncio.wait_for(worker, WITHIN)
        assert job_row(admin, job_id)["status"] == "succeeded", "the drain let the in-flight job finish"
    finally:
        stop.set()
        if not worker.done():
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


async def _status_is(admin: psycopg.Connection, job_id: uuid.UUID, status: str) -> bool:
    return job_row(admin, job_id)["status"] == status


async def _unready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]] | None:
    status, body = await probe(client, "/readyz")
    return (status, body) if status == 503 else None


@dataclass
class RefusedKeyStorage:
    """Storage whose service key is refused on upload: the worker's own fault, not the job's."""

    name: str = "refused-key-storage"
    uploads: list[str] = field(default_factory=list)

    async def check(self) -> None:
        return None

    async def upload_result(self, key: str, png: bytes) -> StoredObject:
        self.uploads.append(key)
        raise WorkerFault("storage: the service key was refused (HTTP 403); set SUPABASE_SERVICE_ROLE_KEY")

    async def download_input(self, path: str) -> bytes:
        raise AssertionError("no input is downloaded in this test")

    async def delete_results(self, keys: Sequence[str]) -> int:
        return 0

    async def aclose(self) -> None:
        return None


async def test_a_worker_fault_makes_the_worker_unready_but_not_dead(start_worker, make_job,
                                                                      admin: psycopg.Connection) -> None:
    storage = RefusedKeyStorage()
    worker = await start_worker(storage=storage, fault_pause=60.0)
    server = MetricsServer(worker.runner.metrics, worker.runner.health, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            await until(lambda: _ready(client), "the worker to be ready")
            job_id = make_job("meets a refused key")
            status, body = await until(lambda: _unready(client), "/readyz to turn 503")
            assert status == 503 and body["failing"] == ["fault"] and "service key was refused" in body["fault"], body
            alive, live_body = await probe(client, "/livez")
            assert alive == 200 and live_body["failing"] == [], "a refused key must not restart-loop the worker"
            assert storage.uploads, "the fault came from the upload"
            row = await until(lambda: _row_if_queued(admin, job_id), "the job to be handed back")
            assert row["attempts"] == 0, "the handed-back job kept its attempt"
    finally:
        await server.close()


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def _row_if_queued(admin: psycopg.Connection, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = job_row(admin, job_id)
    return row if row["status"] == "queued" else None
