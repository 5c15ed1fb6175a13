"""Maintenance jobs, called directly (the scheduler only wires them)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import wait_for
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
    await queue.complete_jobs([Completion(job.id, job.claim, job.result_key, 3, "placeholder",
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
    assert stats is not None, "a lone worker leads the queue metrics"
    assert (stats.queued, stats.running, stats.succeeded_last_24h) == (2, 0, 1)
    body = metrics.render().decode()
    assert 'tenkaigen_queue_jobs{status="queued"} 2.0' in body
    assert 'tenkaigen_queue_jobs{status="running"} 0.0' in body
    assert 'tenkaigen_queue_jobs{status="succeeded"}' not in body, "finished jobs are not counted over all time"
    assert "tenkaigen_queue_claimable_jobs 2.0" in body and "tenkaigen_queue_metrics_leader 1.0" in body
    assert "last_24h" not in body, "windowed sums are left to PromQL over the per-worker counters"


def webhook_stub(posted: list[dict], statuses: list[int]) -> httpx.AsyncClient:
    """The webhook at the HTTP boundary: records each POST and answers the next status (200 once they run out)."""

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(statuses.pop(0) if statuses else 200)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def cost_alert_row(admin) -> tuple:
    return admin.execute(
        "select attempts, delivered_at is not null, last_error from queue.cost_alerts").fetchone()


async def test_two_replicas_send_one_cost_alert_a_day(admin, make_job, queue) -> None:
    other = QueueClient(queue.pool, "maint:2:bbbbbb", lease_seconds=30)     # a second replica, same database
    posted: list[dict] = []
    client = webhook_stub(posted, [])
    replicas = [(maintenance.CostAlert(threshold_usd=1.0, webhook_url="https://hooks.example.test/T0/B0/secret",
                                       http_client=client), q) for q in (queue, other)]
    make_job("cheap")
    await finish(queue, cost=0.5)
    assert [await alert.check(q) for alert, q in replicas] == [False, False], "below the threshold"
    make_job("pricey")
    await finish(queue, cost=0.75)
    sent = await asyncio.gather(*(alert.check(q) for alert, q in replicas))
    assert sorted(sent) == [False, True], "both replicas checked at once: exactly one sends"
    assert len(posted) == 1 and posted[0]["cost_usd_last_24h"] == 1.25 and "$1.25" in posted[0]["text"]
    assert cost_alert_row(admin) == (1, True, None)
    admin.execute("update queue.cost_alerts set last_attempt_at = now() - interval '1 hour'")
    assert [await alert.check(q) for alert, q in replicas] == [False, False], "delivered: never sent again"
    assert len(posted) == 1


async def test_a_failed_cost_alert_webhook_is_retried_at_a_later_check_until_delivered(
    admin, make_job, queue
) -> None:
    other = QueueClient(queue.pool, "maint:2:bbbbbb", lease_seconds=30)
    posted: list[dict] = []
    client = webhook_stub(posted, [503])
    first, second = (maintenance.CostAlert(threshold_usd=1.0, webhook_url="https://hooks.example.test/hook",
                                           http_client=client) for _ in range(2))
    make_job("pricey")
    await finish(queue, cost=2.0)
    assert await first.check(queue) is True
    assert cost_alert_row(admin) == (1, False, "HTTP 503 from the webhook")
    assert await second.check(other) is False, "no retry until the retry delay has passed"
    admin.execute("update queue.cost_alerts set last_attempt_at = now() - interval '2 minutes'")
    assert await second.check(other) is True, "the next check of any replica retries"
    assert cost_alert_row(admin) == (2, True, "HTTP 503 from the webhook")
    admin.execute("update queue.cost_alerts set last_attempt_at = now() - interval '2 minutes'")
    assert (await first.check(queue), await second.check(other)) == (False, False)
    assert len(posted) == 2 and posted[0] == posted[1]


async def test_a_cost_alert_webhook_that_keeps_failing_is_given_up_after_max_attempts(
    admin, make_job, queue
) -> None:
    posted: list[dict] = []
    alert = maintenance.CostAlert(threshold_usd=1.0, webhook_url="https://hooks.example.test/hook",
                                  http_client=webhook_stub(posted, [500] * 10), max_attempts=2)
    make_job("pricey")
    await finish(queue, cost=2.0)
    for _ in range(3):
        await alert.check(queue)
        admin.execute("update queue.cost_alerts set last_attempt_at = now() - interval '2 minutes'")
    assert len(posted) == 2 and cost_alert_row(admin) == (2, False, "HTTP 500 from the webhook")


async def test_the_scheduler_registers_each_maintenance_job(database, queue, tmp_path) -> None:
    settings = load_settings(database_url=database, backend="placeholder", storage="local",
                             local_storage_dir=tmp_path, cost_alert_usd=10)
    scheduler = build_scheduler(settings, queue, LocalStorage(tmp_path), Metrics())
    assert {job.id for job in scheduler.get_jobs()} == {
        "reap_expired_leases", "collect_queue_metrics", "purge_finished_jobs", "cost_alert"}
    settings = settings.model_copy(update={"retention_days": 0, "cost_alert_usd": None})
    scheduler = build_scheduler(settings, queue, LocalStorage(tmp_path), Metrics())
    assert {job.id for job in scheduler.get_jobs()} == {"reap_expired_leases", "collect_queue_metrics"}


async def test_the_reaper_and_the_retention_purge_run_at_start_not_one_interval_later(
    admin, make_job, queue, database, tmp_path
) -> None:
    storage = LocalStorage(tmp_path)
    make_job("old")
    await finish(queue, storage)
    admin.execute("update generation_jobs set finished_at = now() - interval '31 days'")
    abandoned = make_job("abandoned", status="running", lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    settings = load_settings(database_url=database, backend="placeholder", storage="local",
                             local_storage_dir=tmp_path, reap_interval=3600, retention_days=30)
    scheduler = build_scheduler(settings, queue, storage, Metrics())
    scheduler.start()
    try:
        await wait_for(lambda: admin.execute("select count(*) from generation_jobs where status <> 'queued'"
                                             ).fetchone()[0] == 0, within=10, message="reap and purge at start")
    finally:
        scheduler.shutdown(wait=False)
    row = admin.execute("select status, error_code from generation_jobs where id = %s", (abandoned,)).fetchone()
    assert row == ("queued", "lease_expired"), "reaped at start, not an hour later"
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 1, "purged at start"


async def test_the_reaper_runs_every_reap_interval_with_a_bounded_jitter(database, queue, tmp_path) -> None:
    for interval, jitter in ((2.0, 0.5), (1.0, 0.25), (15.0, 0.5)):
        settings = load_settings(database_url=database, backend="placeholder", storage="local",
                                 local_storage_dir=tmp_path, reap_interval=interval)
        trigger = build_scheduler(settings, queue, LocalStorage(tmp_path), Metrics()).get_job(
            "reap_expired_leases").trigger
        assert (trigger.interval.total_seconds(), trigger.jitter) == (interval, jitter)


async def test_without_a_webhook_one_replica_logs_the_cost_alert_and_it_counts_as_delivered(
    admin, make_job, queue, caplog
) -> None:
    other = QueueClient(queue.pool, "maint:2:bbbbbb", lease_seconds=30)
    make_job("pricey")
    await finish(queue, cost=2.0)
    alerts = [maintenance.CostAlert(threshold_usd=1.0) for _ in range(2)]
    with caplog.at_level("ERROR", logger="tenkaigen.maintenance"):
        sent = [await alerts[0].check(queue), await alerts[1].check(other)]
    assert sent == [True, False]
    assert [r.getMessage() for r in caplog.records if "above the alert threshold" in r.getMessage()] == [
        "TenkaiGen generation cost in the last 24 h is $2.00, above the alert threshold of $1.00 (1 GPU seconds)."]
    assert cost_alert_row(admin) == (1, True, None)
