"""Maintenance jobs: plain async functions, each calling one SQL function and returning a count.

They log at info only when there was something to do. `worker/scheduler.py` runs them periodically in every
worker (the SQL is safe to run from all of them at once: SKIP LOCKED); tests call them directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import httpx

from worker.jobs import JobStats, JobStatus
from worker.logging import logger
from worker.metrics import Metrics
from worker.queue import QueueClient
from worker.storage.base import Storage

REAP_BATCH_DEFAULT = 1000
PURGE_BATCH_DEFAULT = 10000
STORAGE_DELETE_CHUNK = 500
COST_ALERT_EVERY_SECONDS = 24 * 3600.0
WEBHOOK_TIMEOUT_SECONDS = 10.0

log = logger("maintenance")


async def reap_expired_leases(queue: QueueClient, metrics: Metrics | None = None,
                              max_jobs: int = REAP_BATCH_DEFAULT) -> int:
    """Requeue running jobs whose worker stopped renewing (crashed, killed, partitioned)."""
    reaped = await queue.reap_expired_leases(max_jobs)
    if reaped:
        log.info("reaped %s expired lease(s)", reaped, extra={"action": "reap_expired_leases", "count": reaped})
        if metrics is not None:
            metrics.leases_reaped.inc(reaped)
    return reaped


async def purge_finished_jobs(queue: QueueClient, storage: Storage, retention_days: int,
                              metrics: Metrics | None = None, max_jobs: int = PURGE_BATCH_DEFAULT) -> int:
    """Delete finished jobs older than the retention, then their images in Storage."""
    if retention_days <= 0:
        return 0
    purged = await queue.purge_finished_jobs(timedelta(days=retention_days), max_jobs)
    keys = [path for _, path in purged if path]
    for start in range(0, len(keys), STORAGE_DELETE_CHUNK):
        chunk = keys[start:start + STORAGE_DELETE_CHUNK]
        try:
            await storage.delete_results(chunk)
        except Exception as exc:
            log.error("purged %s job rows but could not delete their images: %s", len(chunk), exc,
                      extra={"action": "purge_finished_jobs", "count": len(chunk)})
    if purged:
        log.info("purged %s finished job(s) older than %s days", len(purged), retention_days,
                 extra={"action": "purge_finished_jobs", "count": len(purged)})
        if metrics is not None:
            metrics.jobs_purged.inc(len(purged))
    return len(purged)


async def collect_queue_metrics(queue: QueueClient, metrics: Metrics) -> JobStats:
    """Refresh the queue-wide gauges from queue.job_stats."""
    stats = await queue.job_stats()
    metrics.queue_jobs.labels(JobStatus.QUEUED.value).set(stats.queued)
    metrics.queue_jobs.labels(JobStatus.RUNNING.value).set(stats.running)
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED):
        metrics.queue_finished_24h.labels(status.value).set(getattr(stats, f"{status.value}_last_24h"))
    metrics.queue_claimable.set(stats.claimable)
    metrics.queue_oldest_age.set(stats.oldest_claimable_age_seconds or 0.0)
    metrics.queue_cost_24h.set(stats.cost_usd_last_24h)
    metrics.queue_gpu_seconds_24h.set(stats.gpu_seconds_last_24h)
    return stats


@dataclass
class CostAlert:
    """Alerts (error log + optional webhook POST) when the last 24 h of cost exceed a threshold, at most once a
    day per worker process."""

    threshold_usd: float
    webhook_url: str | None = None
    last_alert_at: float | None = None
    http_client: httpx.AsyncClient | None = None

    async def check(self, queue: QueueClient) -> bool:
        """True when an alert was sent now."""
        stats = await queue.job_stats()
        cost = stats.cost_usd_last_24h
        if cost <= self.threshold_usd:
            return False
        now = time.monotonic()
        if self.last_alert_at is not None and now - self.last_alert_at < COST_ALERT_EVERY_SECONDS:
            return False
        self.last_alert_at = now
        text = (f"TenkaiGen generation cost in the last 24 h is ${cost:.2f}, above the alert threshold of "
                f"${self.threshold_usd:.2f} ({stats.gpu_seconds_last_24h:.0f} GPU seconds).")
        log.error(text, extra={"action": "cost_alert"})
        if self.webhook_url:
            payload = {"text": text, "cost_usd_last_24h": cost, "threshold_usd": self.threshold_usd,
                       "gpu_seconds_last_24h": stats.gpu_seconds_last_24h}
            try:
                if self.http_client is not None:
                    response = await self.http_client.post(self.webhook_url, json=payload)
                else:
                    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
                        response = await client.post(self.webhook_url, json=payload)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.error("cost alert webhook failed: %s", type(exc).__name__, extra={"action": "cost_alert"})
        return True
