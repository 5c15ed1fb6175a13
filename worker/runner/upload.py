"""Uploaded: the checked PNG goes to Storage at `<user_id>/<job_id>.png` (upsert), only while the lease surely holds.

The object key is fixed, so a worker that stalled past its lease (GC pause, blocked loop, frozen VM, partition) must
not upload over the result of the job's next owner. Nobody can take the job before its lease expires, so the upload
is safe while the lease surely lasts:
- before uploading, when less than half a lease is left, a fenced renewal confirms and extends it (a lost lease
  drops the result without uploading), checked again if a stall ate the confirmed time;
- during the upload, the watchdog stops it before the lease could have run out (less a margin for clock rate and
  scheduling, and one watchdog tick), and after `upload_timeout` in any case. Every renewal that confirms the lease
  meanwhile moves that deadline on (`extend_deadline`, called by `leases.py`), so an upload may outlast one lease
  while the worker is healthy, never the lease itself.
What remains is a stall between the last check and the storage request itself, which only a conditional write in
the object store could close.
"""

from __future__ import annotations

import asyncio
import math
import time

from worker.exceptions import LeaseLost, Transient
from worker.metrics import Metrics
from worker.queue import QueueClient
from worker.runner.active import ActiveJob
from worker.runner.deadlines import Watchdog
from worker.runner.writes import Writes
from worker.storage.base import Storage

UPLOAD_LEASE_CHECKS = 3
UPLOAD_TIMEOUT_DEFAULT = 60.0
"""The longest an upload may run while renewals keep confirming the lease (Supabase Storage's own request timeout)."""
UPLOAD_LEASE_MARGIN_FRACTION = 0.1   # of the lease, kept in hand when deciding an upload surely fits inside it


class Uploader:
    """Uploads a job's result inside the lease window and keeps the upload's deadline."""

    def __init__(self, *, storage: Storage, queue: QueueClient, writes: Writes, watchdog: Watchdog,
                 metrics: Metrics, lease_seconds: float, upload_timeout: float = UPLOAD_TIMEOUT_DEFAULT) -> None:
        self._storage = storage
        self._queue = queue
        self._writes = writes
        self._watchdog = watchdog
        self._metrics = metrics
        self.lease_seconds = lease_seconds
        self.upload_timeout = upload_timeout
        self.margin = max(1.0, lease_seconds * UPLOAD_LEASE_MARGIN_FRACTION)

    async def upload(self, active: ActiveJob, png: bytes) -> int:
        """Upload the result; returns its size in bytes. Raises LeaseLost (nothing uploaded) or Transient."""
        await self._lease_window(active)
        uploaded = active.upload_started = time.monotonic()
        self.extend_deadline(active)
        stored = await self._storage.upload_result(active.job.result_key, png)
        self._metrics.upload_seconds.observe(time.monotonic() - uploaded)
        self._watchdog.clear(active)
        active.upload_started = None
        return stored.size

    def extend_deadline(self, active: ActiveJob) -> None:
        """Stop the upload before the lease could have run out (less the margin and one watchdog tick), and after
        `upload_timeout` in any case. Set when the upload starts and moved on by every renewal that confirms the
        lease meanwhile. Does nothing for a job that is not uploading."""
        started = active.upload_started
        if started is None or active.finishing or active.stop_reason is not None:
            return
        surely_held = active.lease_held_until - self.margin - self._watchdog.tick
        cap = started + self.upload_timeout
        deadline = max(started, min(surely_held, cap))
        if active.deadline != math.inf and deadline <= active.deadline:
            return
        active.deadline = deadline
        why = "the upload timeout" if cap <= surely_held else "the time surely left on the lease"
        active.deadline_error = f"upload did not finish within {deadline - started:.1f} s ({why})"

    async def _lease_window(self, active: ActiveJob) -> float:
        """Seconds the upload may take while this worker surely still holds the job's lease (see the module
        docstring); renews the lease first when less than half of it is left."""
        margin = self.margin
        for _ in range(UPLOAD_LEASE_CHECKS):
            window = active.lease_held_until - time.monotonic() - margin
            if window >= self.lease_seconds / 2 - margin:
                return window                      # enough of the lease left: no round trip needed
            sent = time.monotonic()
            alive = await self._writes.write("renew_leases", lambda: self._queue.renew_leases([active.held]))
            if active.job.id not in alive:
                raise LeaseLost("lease lost before upload; the result is dropped and nothing is uploaded")
            active.lease_held_until = max(active.lease_held_until, sent + self.lease_seconds)
            if alive[active.job.id]:
                active.stop_reason = "cancel"
                raise asyncio.CancelledError
            # loop: a stall after the answer arrived would have eaten the lease it confirmed; check again
        raise Transient("could not confirm the lease before uploading: the worker keeps stalling; retrying later")
