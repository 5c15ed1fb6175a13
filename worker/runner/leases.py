"""Lease keeping: every held lease is renewed in one `queue.renew_leases` call each `lease_seconds / 3`.

A job missing from the answer lost its lease: its task is stopped and nothing is written for it. The answer also
carries each job's `cancel_requested` flag, which stops the job like a cancel NOTIFY does (`cancels.py`); so a
renewal runs once more whenever the LISTEN connection comes back (`catch_up`), since a cancel NOTIFY sent while it
was away is lost. Each renewal that confirms a lease during an upload moves the upload's deadline on (`upload.py`).
"""

from __future__ import annotations

import asyncio
import time

from worker.logging import logger
from worker.metrics import Metrics
from worker.probes import Health
from worker.queue import DatabaseUnavailable, QueueClient
from worker.runner.active import ActiveJobs
from worker.runner.upload import Uploader

log = logger("runner")


class LeaseKeeper:
    """Renews the leases of the jobs this worker holds, and stops the jobs whose lease is lost or cancel requested."""

    def __init__(self, *, jobs: ActiveJobs, queue: QueueClient, uploader: Uploader, metrics: Metrics,
                 health: Health) -> None:
        self._jobs = jobs
        self._queue = queue
        self._uploader = uploader
        self._metrics = metrics
        self._health = health
        self.lease_seconds = queue.lease_seconds
        self.catch_up_task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        interval = max(0.5, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            await self.renew()

    async def renew(self) -> None:
        """One renewal round for every job held (a database error is counted and left to the next round)."""
        held = self._jobs.held()
        if not held:
            return
        sent = time.monotonic()
        try:
            alive = await self._queue.renew_leases(held)
        except DatabaseUnavailable as exc:
            self._metrics.db_errors.labels("renew_leases").inc()
            log.warning("renew_leases failed (%s); retrying next round", exc, extra={"action": "renew_leases"})
            return
        self._health.db_ok()
        for job_id, claim in held:
            active = self._jobs.get(job_id)
            if active is None or active.job.claim != claim:
                continue
            if job_id not in alive:
                active.stop("lease_lost")
                continue
            active.lease_held_until = max(active.lease_held_until, sent + self.lease_seconds)
            self._uploader.extend_deadline(active)
            if alive[job_id]:
                active.stop("cancel")

    def catch_up(self) -> None:
        """Renew now, out of turn (the LISTEN connection came back: a cancel NOTIFY may have been lost)."""
        if len(self._jobs) and (self.catch_up_task is None or self.catch_up_task.done()):
            self.catch_up_task = asyncio.create_task(self._catch_up(), name="catch_up_renewal")

    async def _catch_up(self) -> None:
        try:
            await self.renew()
        except Exception as exc:                 # the renew loop's next round tries again
            log.warning("renew_leases after the listener reconnected failed: %r", exc,
                        extra={"action": "renew_leases"})
