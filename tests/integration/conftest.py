"""Fixtures for worker tests against a real PostgreSQL: a job factory, settings, and an in-process runner."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support import create_user
from worker.backends.base import Backend
from worker.backends.placeholder import PlaceholderBackend
from worker.config import Settings, load_settings
from worker.db import open_pool
from worker.metrics import Metrics
from worker.queue import QueueClient
from worker.runner import Runner, make_worker_id
from worker.storage.base import Storage
from worker.storage.local import LocalStorage


@pytest.fixture
def user(admin: psycopg.Connection) -> uuid.UUID:
    return create_user(admin)


JobFactory = Callable[..., uuid.UUID]


@pytest.fixture
def make_job(admin: psycopg.Connection, user: uuid.UUID) -> JobFactory:
    """Insert a job as the owner (an admin insert: not rate limited) and return its id. Overrides are columns of
    generation_jobs; `status='running'` also fills a consistent lease (locked_by, lease_expires_at, attempts)."""

    def factory(prompt: str = "a test job", *, status: str = "queued", user_id: uuid.UUID | None = None,
                **overrides: Any) -> uuid.UUID:
        row: dict[str, Any] = {"user_id": user_id or user, "prompt": prompt, "width": 256, "height": 256,
                               "style": "none", "steps": 4}
        if status == "running":
            row.update(status="running", attempts=1, claims=1, locked_by="someone-else:1:abc", started_at="now",
                       lease_expires_at=datetime.now(UTC) + timedelta(seconds=60))
        row.update(overrides)
        columns = ", ".join(row)
        values = ", ".join(f"%({k})s" for k in row)
        return admin.execute(
            f"insert into generation_jobs ({columns}) values ({values}) returning id", row).fetchone()[0]

    return factory


def job_row(admin: psycopg.Connection, job_id: uuid.UUID) -> dict[str, Any]:
    with admin.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from generation_jobs where id = %s", (job_id,))
        row = cur.fetchone()
    assert row is not None
    return row


def completions(admin: psycopg.Connection, job_id: uuid.UUID) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in admin.execute(
        "select attempt, worker_id from queue.job_completions where job_id = %s order by id", (job_id,))]


async def wait_for(predicate: Callable[[], Any], within: float = 15.0, interval: float = 0.05,
                   message: str = "condition") -> Any:
    """Poll until predicate() is truthy (returns its value) or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {message}")
        await asyncio.sleep(interval)


def wait_status(admin: psycopg.Connection, job_id: uuid.UUID, *statuses: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        row = job_row(admin, job_id)
        return row if row["status"] in statuses else None
    return check


@pytest.fixture
def settings_for(database: str, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database, "backend": "placeholder", "storage": "local",
            "local_storage_dir": tmp_path / "storage", "metrics_port": 0, "poll_interval": 0.2,
            "lease_seconds": 10, "progress_interval": 0.2, "grace_period": 5, "log_format": "text",
        }
        values.update(overrides)
        return load_settings(**values)
    return build


class RunningWorker:
    """A runner in this process (its own pool and worker id), running as a task."""

    def __init__(self, runner: Runner, task: asyncio.Task[None], queue: QueueClient) -> None:
        self.runner = runner
        self.task = task
        self.queue = queue

    @property
    def worker_id(self) -> str:
        return self.runner.worker_id

    async def stop(self, within: float = 30.0) -> None:
        self.runner.stop()
        await asyncio.wait_for(asyncio.shield(self.task), within)


@pytest.fixture
async def start_worker(database: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await start_worker(backend=…, storage=…, **runner_kwargs)` → a RunningWorker; all are stopped at the end."""
    started: list[tuple[RunningWorker, Any]] = []

    async def start(backend: Backend | None = None, storage: Storage | None = None, *, lease_seconds: int = 10,
                    listen: bool = True, **kwargs: Any) -> RunningWorker:
        pool = await open_pool(database, min_size=1, max_size=4)
        queue = QueueClient(pool, make_worker_id(), lease_seconds=lease_seconds)
        runner_kwargs: dict[str, Any] = {"concurrency": 4, "poll_interval": 0.2, "grace_period": 5.0,
                                         "progress_interval": 0.2}
        runner_kwargs.update(kwargs)
        runner = Runner(queue=queue, backend=backend or PlaceholderBackend(),
                        storage=storage or LocalStorage(tmp_path / "storage"),
                        dsn=database if listen else None, metrics=Metrics(), **runner_kwargs)
        task = asyncio.create_task(runner.run())
        worker = RunningWorker(runner, task, queue)
        started.append((worker, pool))
        return worker

    yield start
    for worker, pool in started:
        with contextlib.suppress(Exception):
            if not worker.task.done():
                await worker.stop()
        await pool.close()
