"""The retention purge deletes images through an outbox (queue.storage_deletions): the purge's transaction deletes
the rows and queues `<user_id>/<job_id>.png` of every purged job; the drain deletes the objects, then the outbox
rows. A Storage error leaves the rows for the next run; a requeued-then-failed job's old image is deleted too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from worker import maintenance
from worker.db import open_pool
from worker.queue import Completion, QueueClient
from worker.storage.base import RESULTS_BUCKET
from worker.storage.local import LocalStorage


@pytest.fixture
async def queue(database: str) -> AsyncIterator[QueueClient]:
    pool = await open_pool(database, min_size=1, max_size=2)
    yield QueueClient(pool, "purge:1:aaaaaa", lease_seconds=30)
    await pool.close()


async def _succeed(queue: QueueClient, storage: LocalStorage) -> str:
    (job,) = await queue.claim_jobs(1)
    await storage.upload_result(job.result_key, b"png")
    assert await queue.complete_jobs([Completion(job.id, job.claim, job.result_key, 3, "placeholder")]) == {job.id}
    return job.result_key


def _outbox(admin: psycopg.Connection) -> list[tuple[str, str]]:
    return admin.execute("select bucket, object_key from queue.storage_deletions order by object_key").fetchall()


def _age_everything(admin: psycopg.Connection) -> None:
    admin.execute("update generation_jobs set finished_at = now() - interval '31 days' where finished_at is not null")


async def test_a_requeued_then_failed_jobs_old_image_is_deleted(admin, make_job, queue, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    job_id = make_job("succeeds, then is requeued and fails")
    key = await _succeed(queue, storage)
    assert (await queue.requeue_job(job_id)).changed
    (job,) = await queue.claim_jobs(1)
    assert await queue.fail_job(job.id, job.claim, error_code="oom", error_message="x", retryable=False) == "failed"
    assert admin.execute("select result_path from generation_jobs where id = %s", (job_id,)).fetchone() == (None,)
    _age_everything(admin)
    assert await maintenance.purge_finished_jobs(queue, storage, retention_days=30) == 1
    assert not storage.path_of(RESULTS_BUCKET, key).exists(), "the first run's image outlived its job"
    assert _outbox(admin) == [], "the drain removes the outbox rows it deleted"


async def test_a_storage_error_leaves_the_deletions_for_the_next_run(admin, make_job, queue, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    make_job("one")
    first = await _succeed(queue, storage)
    make_job("two")
    second = await _succeed(queue, storage)
    _age_everything(admin)
    # the first object cannot be deleted: a directory stands where the file was (unlink fails even as root)
    blocked = storage.path_of(RESULTS_BUCKET, first)
    blocked.unlink()
    (blocked / "child").mkdir(parents=True)
    assert await maintenance.purge_finished_jobs(queue, storage, retention_days=30) == 2
    assert admin.execute("select count(*) from generation_jobs").fetchone() == (0,), "the rows are purged"
    assert [k for _, k in _outbox(admin)] == sorted([first, second]), "the failed chunk stays in the outbox"
    assert {b for b, _ in _outbox(admin)} == {RESULTS_BUCKET}
    # Storage works again: the next run (nothing left to purge) drains what is left
    (blocked / "child").rmdir()
    blocked.rmdir()
    blocked.write_bytes(b"png")
    assert await maintenance.purge_finished_jobs(queue, storage, retention_days=30) == 0
    assert not storage.path_of(RESULTS_BUCKET, first).exists()
    assert not storage.path_of(RESULTS_BUCKET, second).exists()
    assert _outbox(admin) == []
