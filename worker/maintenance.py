"""Maintenance jobs: plain async functions, each calling one SQL function and returning a count.

They log at info only when there was something to do. `worker/scheduler.py` runs them periodically in every
worker (the SQL is safe to run from all of them at once: SKIP LOCKED); tests call them directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import httpx

from worker.jobs import JobStats
from worker.logging import logger
from worker.metrics import Metrics
from worker.queue import CostAlertDue, QueueClient
from worker.storage.base import RESULTS_BUCKET, Storage

REAP_BATCH_DEFAULT = 1000
PURGE_BATCH_DEFAULT = 10000
STORAGE_DELETE_CHUNK = 500
COST_ALERT_MAX_ATTEMPTS = 5
COST_ALERT_RETRY_AFTER = timedelta(minutes=1)
"""No retry sooner than this after the last try: longer than the webhook timeout, so one worker sends at a time."""
WEBHOOK_TIMEOUT_SECONDS = 10.0
QUEUE_METRICS_LEASE_SECONDS_DEFAULT = 45
"""How long the queue-metrics leader keeps its lease without renewing (3 gauge runs: worker/scheduler.py)."""

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
    """Delete finished jobs older than the retention (their images are queued in the same transaction), then
    drain the Storage deletion outbox. Returns how many jobs were purged."""
    purged: list[tuple[UUID, str]] = []
    if retention_days > 0:
        purged = await queue.purge_finished_jobs(timedelta(days=retention_days), max_jobs)
    if purged:
        log.info("purged %s finished job(s) older than %s days", len(purged), retention_days,
                 extra={"action": "purge_finished_jobs", "count": len(purged)})
        if metrics is not None:
            metrics.jobs_purged.inc(len(purged))
    await drain_storage_deletions(queue, storage)
    return len(purged)


async def drain_storage_deletions(queue: QueueClient, storage: Storage,
                                  chunk: int = STORAGE_DELETE_CHUNK) -> int:
    """Delete the objects queued in queue.storage_deletions, a chunk at a time: delete in Storage first, then the
    outbox rows. A Storage error releases the chunk for the next run and stops this one. Returns objects deleted."""
    deleted = 0
    while True:
        claimed = await queue.claim_storage_deletions(RESULTS_BUCKET, chunk)
        if not claimed:
            return deleted
        ids = [row_id for row_id, _ in claimed]
        try:
            await storage.delete_results([key for _, key in claimed])
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            await queue.finish_storage_deletions(ids, error)
            log.error("could not delete %s purged image(s) from Storage (%s); they stay queued in "
                      "queue.storage_deletions and the next purge run retries them", len(ids), error,
                      extra={"action": "drain_storage_deletions", "count": len(ids)})
            return deleted
        await queue.finish_storage_deletions(ids)
        deleted += len(ids)
        if len(claimed) < chunk:
            return deleted


async def collect_queue_metrics(queue: QueueClient, metrics: Metrics,
                                lease_seconds: int = QUEUE_METRICS_LEASE_SECONDS_DEFAULT) -> JobStats | None:
    """Refresh the queue-wide gauges from queue.job_stats, on the one replica that holds the leader lease.

    `queue.try_lead` takes or renews the lease (`lease_seconds`); the leader reads job_stats and exports the
    gauges until its lease would end, the others export none (and read nothing). None when not the leader."""
    sent = time.monotonic()
    if not await queue.try_lead(lease_seconds):
        if metrics.queue.leader_until:
            log.info("another worker exports the queue metrics now", extra={"action": "collect_queue_metrics"})
        metrics.queue.resign()
        return None
    if not metrics.queue.leader_until:
        log.info("this worker exports the queue metrics now (queue-metrics leader)",
                 extra={"action": "collect_queue_metrics"})
    stats = await queue.job_stats()
    metrics.queue.lead(stats, until=sent + lease_seconds)
    return stats


async def resign_queue_metrics(queue: QueueClient, metrics: Metrics) -> bool:
    """A stopping worker hands the queue-metrics lease over at once (another replica takes it at its next run)."""
    if not metrics.queue.leader_until:
        return False
    metrics.queue.resign()
    return await queue.resign_lead()


@dataclass
class CostAlert:
    """Alerts (error log + optional webhook POST) when the last 24 h of cost exceed a threshold: once per UTC day
    for the whole deployment, however many workers check.

    `queue.record_cost_alert` decides in the database who sends: the first worker to see the crossing that day, or
    one worker per retry while the webhook has not taken it (at most `max_attempts`, `retry_after` apart); every
    other check gets nothing. The outcome goes back through `queue.finish_cost_alert`: delivered (never sent again),
    or the error, retried at a later check. Without a webhook the log line is the alert (delivered when logged)."""

    threshold_usd: float
    webhook_url: str | None = None
    http_client: httpx.AsyncClient | None = None
    max_attempts: int = COST_ALERT_MAX_ATTEMPTS
    retry_after: timedelta = COST_ALERT_RETRY_AFTER

    async def check(self, queue: QueueClient) -> bool:
        """True when this worker sent the alert now (delivered or not)."""
        due = await queue.record_cost_alert(self.threshold_usd, max_attempts=self.max_attempts,
                                            retry_after=self.retry_after)
        if due is None:
            return False
        text = (f"TenkaiGen generation cost in the last 24 h is ${due.cost_usd:.2f}, above the alert threshold of "
                f"${self.threshold_usd:.2f} ({due.gpu_seconds:.0f} GPU seconds).")
        extra = {"action": "cost_alert", "attempt": due.attempt}
        if due.attempt == 1:
            log.error(text, extra=extra)
        error = await self._post(text, due) if self.webhook_url else None
        await queue.finish_cost_alert(due.day, due.attempt, error)
        if error is None:
            if due.attempt > 1:
                log.info("cost alert of %s delivered at attempt %s", due.day, due.attempt, extra=extra)
        elif due.attempt >= self.max_attempts:
            log.error("cost alert webhook failed (%s); giving up after %s attempts: the alert of %s is only in "
                      "this log and in queue.cost_alerts. Check TENKAIGEN_COST_ALERT_WEBHOOK", error, due.attempt,
                      due.day, extra=extra)
        else:
            log.error("cost alert webhook failed (%s); a worker retries it at a later check (attempt %s of %s)",
                      error, due.attempt, self.max_attempts, extra=extra)
        return True

    async def _post(self, text: str, due: CostAlertDue) -> str | None:
        """POST the alert; None when the webhook took it, else what went wrong (never the URL: it is a secret)."""
        assert self.webhook_url is not None
        payload = {"text": text, "cost_usd_last_24h": due.cost_usd, "threshold_usd": self.threshold_usd,
                   "gpu_seconds_last_24h": due.gpu_seconds, "day": due.day.isoformat()}
        try:
            if self.http_client is not None:
                response = await self.http_client.post(self.webhook_url, json=payload)
            else:
                async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
                    response = await client.post(self.webhook_url, json=payload)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if response.is_success:
            return None
        return f"HTTP {response.status_code} from the webhook"
