"""Claimed: the claim loop (River's producer) and its wake-ups.

The loop claims up to the free capacity in one `queue.claim_jobs` call, starts one task per claimed job
(`executor.py`), then waits for whichever comes first: a NOTIFY on `generation_jobs_queued` (`notify_queued`), a
freed slot (`wake`, when the last claim suggested more work), the poll interval, or the stop. NOTIFY is only a hint:
the loop polls too. While draining a backlog it claims in batches (at least a quarter of the capacity). After a
worker fault it claims nothing until the pause is over (`faults.py`); an unreachable database is retried with
backoff; any other claim error stops the worker (most likely a schema older than the worker).
"""

from __future__ import annotations

import asyncio
import logging
import time

from worker.jobs import Job
from worker.logging import logger
from worker.metrics import Metrics
from worker.probes import Health
from worker.queue import DatabaseUnavailable, QueueClient
from worker.runner.active import ActiveJob, ActiveJobs
from worker.runner.cancels import Cancels
from worker.runner.executor import Executor
from worker.runner.faults import FaultPause
from worker.runner.shutdown import release_unstarted
from worker.runner.writes import RETRY_DELAY_MIN, Writes

log = logger("runner")


class ClaimLoop:
    """Claims jobs while there is free capacity and starts each one; `run` returns once the stop is set."""

    def __init__(self, *, queue: QueueClient, jobs: ActiveJobs, executor: Executor, cancels: Cancels,
                 faults: FaultPause, writes: Writes, metrics: Metrics, health: Health, stop: asyncio.Event,
                 concurrency: int, poll_interval: float) -> None:
        self._queue = queue
        self._jobs = jobs
        self._executor = executor
        self._cancels = cancels
        self._faults = faults
        self._writes = writes
        self._metrics = metrics
        self._health = health
        self._stop = stop
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.claim_threshold = max(1, concurrency // 4)
        self.lease_seconds = queue.lease_seconds
        self._signal = asyncio.Event()
        self._notified = False
        self.claims = 0                          # claim_jobs calls answered
        self.claimed = 0                         # jobs they returned

    def wake(self) -> None:
        """Look again now (a slot was freed, or the worker is stopping)."""
        self._signal.set()

    def notify_queued(self) -> None:
        """A job was queued (NOTIFY, or the listener reconnected and may have missed one): claim now."""
        self._notified = True
        self._signal.set()

    async def run(self) -> None:
        maybe_more = True
        failures = 0
        while not self._stop.is_set():
            paused = self._faults.remaining()
            if paused > 0:
                await self._wait(paused)           # a worker fault: claim nothing until the pause is over
                continue
            free = self.concurrency - len(self._jobs)
            wanted = free > 0 and (self._notified or (maybe_more and (
                free >= self.claim_threshold or not self._jobs)))
            if wanted:
                self._notified = False
                sent = time.monotonic()
                try:
                    jobs = await self._queue.claim_jobs(free)
                except DatabaseUnavailable as exc:
                    failures += 1
                    self._metrics.db_errors.labels("claim_jobs").inc()
                    delay = min(self.poll_interval, RETRY_DELAY_MIN * 2 ** min(failures, 10))
                    if failures == 1 or failures % 20 == 0:
                        log.warning("claim_jobs failed (%s); retrying", exc, extra={"action": "claim_jobs",
                                                                                  "count": failures})
                    maybe_more = True
                    await self._wait(delay)
                    continue
                except Exception as exc:
                    log.error("claim_jobs failed: %s: %s; stopping the worker (is the schema up to date?)",
                              type(exc).__name__, exc, extra={"action": "claim_jobs"})
                    raise
                if failures:
                    log.info("database reachable again", extra={"action": "claim_jobs", "count": failures})
                failures = 0
                self._health.db_ok()
                self.claims += 1
                self.claimed += len(jobs)
                if jobs and self._stop.is_set():    # the claim answered after the stop: start nothing
                    await release_unstarted(jobs, writes=self._writes, queue=self._queue, metrics=self._metrics)
                    break
                for job in jobs:
                    self._start(job, claim_sent=sent)
                maybe_more = len(jobs) == free
                if jobs:
                    self._metrics.jobs_claimed.inc(len(jobs))
                    continue
            if not await self._wait(self.poll_interval):
                maybe_more = True                   # poll: NOTIFY is only a hint

    def _start(self, job: Job, claim_sent: float) -> None:
        now = time.monotonic()
        active = ActiveJob(job=job, claimed_at=now, last_progress_write=now,
                           lease_held_until=claim_sent + self.lease_seconds)
        self._jobs.add(active)
        active.task = asyncio.create_task(self._executor.run(active))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("claimed", extra=active.log_extra("claim_jobs"))
        self._cancels.stop_if_canceled_during_claim(active, claim_sent)

    async def _wait(self, seconds: float) -> bool:
        """Wait for a wake-up signal, at most `seconds`; True if signalled."""
        if self._signal.is_set():
            self._signal.clear()
            return True
        try:
            async with asyncio.timeout(seconds):
                await self._signal.wait()
        except TimeoutError:
            return False
        self._signal.clear()
        return True
