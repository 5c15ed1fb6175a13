"""Wires the maintenance jobs into APScheduler (3.x, AsyncIOScheduler); the jobs themselves live in
worker/maintenance.py. Every job runs at most one instance at a time and coalesces missed runs; a failing run
is logged and retried at the next tick. The reaper, the queue gauges, the retention purge and the cost alert all
run one second after start, then on their intervals: a worker started after a crash reaps at once.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from worker import maintenance
from worker.config import Settings
from worker.logging import logger
from worker.metrics import Metrics
from worker.queue import QueueClient
from worker.storage.base import Storage

QUEUE_METRICS_INTERVAL_DEFAULT = 15.0
PURGE_INTERVAL_DEFAULT = 3600.0
COST_ALERT_INTERVAL_DEFAULT = 300.0
"""How often each worker asks queue.record_cost_alert; it fires once a day for all of them, and retries a failed
webhook at these checks (maintenance.COST_ALERT_RETRY_AFTER apart at least)."""
REAP_JITTER_MAX = 0.5

log = logger("scheduler")


def _guarded(name: str, call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    @functools.wraps(call)
    async def run() -> None:
        try:
            await call()
        except Exception as exc:
            log.warning("%s failed: %s", name, exc, extra={"action": name})
    return run


def reap_jitter(reap_interval: float) -> float:
    """Up to a quarter of the interval (at most REAP_JITTER_MAX s) of random delay per reaper run, so replicas
    started together do not all reap at the same instant; it adds at most that much to a crashed job's rescue."""
    return min(REAP_JITTER_MAX, reap_interval / 4)


def build_scheduler(settings: Settings, queue: QueueClient, storage: Storage, metrics: Metrics) -> AsyncIOScheduler:
    """A scheduler with the reaper, retention purge, queue gauges and (if configured) the cost alert.
    Call `.start()` inside the running event loop and `.shutdown(wait=False)` when stopping."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    common: dict[str, Any] = {"trigger": "interval", "max_instances": 1, "coalesce": True,
                              "misfire_grace_time": 60}
    scheduler.add_job(
        _guarded("reap_expired_leases", lambda: maintenance.reap_expired_leases(queue, metrics)),
        seconds=settings.reap_interval, jitter=reap_jitter(settings.reap_interval), id="reap_expired_leases",
        next_run_time=soon, **common)
    scheduler.add_job(
        _guarded("collect_queue_metrics", lambda: maintenance.collect_queue_metrics(queue, metrics)),
        seconds=QUEUE_METRICS_INTERVAL_DEFAULT, id="collect_queue_metrics", next_run_time=soon, **common)
    if settings.retention_days > 0:
        scheduler.add_job(
            _guarded("purge_finished_jobs", lambda: maintenance.purge_finished_jobs(
                queue, storage, settings.retention_days, metrics)),
            seconds=PURGE_INTERVAL_DEFAULT, id="purge_finished_jobs", next_run_time=soon, **common)
    if settings.cost_alert_usd is not None:
        alert = maintenance.CostAlert(
            threshold_usd=settings.cost_alert_usd,
            webhook_url=settings.cost_alert_webhook.get_secret_value() if settings.cost_alert_webhook else None)
        scheduler.add_job(_guarded("cost_alert", lambda: alert.check(queue)),
                          seconds=COST_ALERT_INTERVAL_DEFAULT, id="cost_alert", next_run_time=soon, **common)
    return scheduler
