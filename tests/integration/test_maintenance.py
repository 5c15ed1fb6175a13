"""Maintenance jobs, called directly (the scheduler only wires them)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from worker import maintenance
from worker.config import load_settings
from worker.db import open_pool
from worker.metrics import Metrics
from worker.queue import Completion, QueueClient
from worker.scheduler import build_scheduler
from worker.storage.local import LocalStorage


@pytest.fixture
async def queue(database: str) -> AsyncIterator[QueueClient]:
    pool = await open_pool(database, min_size=1, max_size=2)
    yield QueueClient(pool, "maint:1:aaaaaa", lease_seconds=30)
    await pool.close()


async def finish(queue: QueueClient, storage: LocalStorage | None = None, cost: float | None = None) -> str:
    (job,) = await queue.claim_jobs(1)
    if storage is not None:
        await storage.upload_result(job.result_key, b"png")
    await queue.complete_jobs([Completion(job.id, job.attempt, job.result_key, 3, "placeholder",
                                          gpu_seconds=1.0 if cost else None, cost_usd=cost)])
    return job.result_key


async def test_reaping_requeues_expired_leases_and_counts_them(admin, make_job, queue) -> None:
    make_job("a")
    make_job("b")
    await queue.claim_jobs(2)
    metrics = Metrics()
    assert await maintenance.reap_expired_leases(queue, metrics) == 0
    admin.execute("update generation_jobs set lease_expires_at = now() - interval '1 second'")
    assert await maintenance.reap_expired_leases(queue, metrics) == 2
    assert metrics.leases_reaped._value.get() == 2


async def test_retention_purges_old_rows_and_their_images(admin, make_job, queue, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    make_job("old")
    old_key = await finish(queue, storage)
    make_job("recent")
    recent_key = await finish(queue, storage)
    admin.execute("update generation_jobs set finished_at = now() - interval '31 days' where prompt = 'old'")
    assert await maintenance.purge_finished_jobs(queue, storage, retention_days=30) == 1
    assert not (tmp_path / "generated-designs" / old_key).exists()
    assert (tmp_path / "generated-designs" / recent_key).exists()
    assert await maintenance.purge_finished_jobs(queue, storage, retention_days=0) == 0, "0 keeps everything"
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 1


async def test_queue_gauges_come_from_job_stats(make_job, queue) -> None:
    make_job("a")
    make_job("b")
    make_job("c")
    await finish(queue, cost=0.25)
    metrics = Metrics()
    stats = await maintenance.collect_queue_metrics(queue, metrics)
    assert (stats.queued, stats.running, stats.succeeded_last_24h) == (2, 0, 1)
    body = metrics.render().decode()
    assert 'tenkaigen_queue_jobs{status="queued"} 2.0' in body
    assert 'tenkaigen_queue_jobs{status="succeeded"}' not in body, "finished jobs are not counted over all time"
    assert 'tenkaigen_queue_finished_jobs_last_24h{status="succeeded"} 1.0' in body
    assert "tenkaigen_queue_cost_usd_last_24h 0.25" in body


async def test_the_cost_alert_fires_once_a_day_above_the_threshold(make_job, queue) -> None:
    posted: list[dict] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200)

    alert = maintenance.CostAlert(threshold_usd=1.0, webhook_url="https://hooks.example.test/T0/B0/secret",
                                  http_client=httpx.AsyncClient(transport=httpx.MockTransport(webhook)))
    make_job("cheap")
    await finish(queue, cost=0.5)
    assert await alert.check(queue) is False
    make_job("pricey")
    await finish(queue, cost=0.75)
    assert await alert.check(queue) is True
    assert await alert.check(queue) is False, "at most once a day"
    assert len(posted) == 1 and posted[0]["cost_usd_last_24h"] == 1.25 and "$1.25" in posted[0]["text"]


async def test_the_scheduler_registers_each_maintenance_job(database, queue, tmp_path) -> None:
    settings = load_settings(database_url=database, backend="placeholder", storage="local",
                             local_storage_dir=tmp_path, cost_alert_usd=10)
    scheduler = build_scheduler(settings, queue, LocalStorage(tmp_path), Metrics())
    assert {job.id for job in scheduler.get_jobs()} == {
        "reap_expired_leases", "collect_queue_metrics", "purge_finished_jobs", "cost_alert"}
    settings = settings.model_copy(update={"retention_days": 0, "cost_alert_usd": None})
    scheduler = build_scheduler(settings, queue, LocalStorage(tmp_path), Metrics())
    assert {job.id for job in scheduler.get_jobs()} == {"reap_expired_leases", "collect_queue_metrics"}
