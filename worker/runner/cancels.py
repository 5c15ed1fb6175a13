"""Cancels: what stops a job the user canceled, and what the worker writes then.

- A NOTIFY on `generation_jobs_cancel` stops the job if this worker runs it. A lease renewal whose answer carries
  `cancel_requested` does the same (`leases.py`), for a NOTIFY lost while the LISTEN connection was away.
- A cancel NOTIFY can arrive before the claim's answer: it is remembered, with the time it arrived, and stops the
  job if it arrived after the claim that returned the job was sent (an older one was for an earlier run of a job that
  has been requeued since: a job is only claimed while no cancel is pending).
- The stopped job's cancel is acknowledged (running -> canceled). A cancel the worker cannot acknowledge (no cancel is
  requested any more: an admin requeued the job) hands the job back with `release_jobs` instead of leaving it
  running until it is reaped.
"""

from __future__ import annotations

import time
from uuid import UUID

from worker.logging import logger
from worker.queue import QueueClient
from worker.runner.active import ActiveJob, ActiveJobs, Outcome
from worker.runner.writes import Writes

RECENT_CANCEL_MEMORY_SECONDS = 120.0
RECENT_CANCEL_MEMORY_SIZE = 1000        # past this many remembered cancels, the ones older than the memory go

log = logger("runner")


class Cancels:
    """Stops canceled jobs, remembers cancels that beat the claim's answer, and acknowledges them."""

    def __init__(self, *, jobs: ActiveJobs, queue: QueueClient, writes: Writes) -> None:
        self._jobs = jobs
        self._queue = queue
        self._writes = writes
        self.recent: dict[UUID, float] = {}  # job id -> when its cancel NOTIFY arrived (monotonic)

    def on_notify(self, payload: str) -> None:
        """A cancel NOTIFY (payload: the job id): stop the job, or remember the cancel for a claim still in flight."""
        try:
            job_id = UUID(payload)
        except ValueError:
            return
        active = self._jobs.get(job_id)
        if active is not None:
            active.stop("cancel")
            return
        now = time.monotonic()
        self.recent[job_id] = now
        if len(self.recent) > RECENT_CANCEL_MEMORY_SIZE:
            self.recent = {k: v for k, v in self.recent.items() if now - v < RECENT_CANCEL_MEMORY_SECONDS}

    def stop_if_canceled_during_claim(self, active: ActiveJob, claim_sent: float) -> None:
        """Stop a job just claimed whose cancel NOTIFY arrived after the claim was sent."""
        cancel_seen = self.recent.pop(active.job.id, None)
        if cancel_seen is not None and cancel_seen >= claim_sent:
            # the cancel NOTIFY beat the claim's answer. One that arrived before the claim was even sent was for an
            # earlier run of the job (it was requeued since): a job is only claimed while no cancel is pending.
            active.stop("cancel")

    async def acknowledge(self, active: ActiveJob) -> Outcome:
        """Record the cancel of a stopped job; returns the outcome (canceled, released or lease_lost)."""
        acknowledged = await self._writes.final(
            "acknowledge_cancel", lambda: self._queue.acknowledge_cancel(*active.held))
        if acknowledged:
            log.info("canceled", extra=active.log_extra("acknowledge_cancel"))
            return "canceled"
        # no cancel is requested on the row any more (an admin requeued the job) or the lease is lost: hand the job
        # back (fenced: a lost lease changes nothing) rather than leave it running until it is reaped
        if await self._writes.final("release_jobs", lambda: self._queue.release_jobs([active.held])):
            log.warning("cancel no longer requested; job handed back", extra=active.log_extra("release_jobs"))
            return "released"
        log.warning("cancel not acknowledged: lease lost", extra=active.log_extra("acknowledge_cancel"))
        return "lease_lost"
