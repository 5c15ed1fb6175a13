"""Generated: one backend call for one job, under the generation deadline, and its result checked.

- Progress is throttled to one `queue.report_progress` write per `progress_interval` (the first one interval in), at
  most one in flight; 100 % is written by the completion itself. A write answered "not held" stops the job as a
  lost lease.
- A call-tracking backend (Modal) reports its call id as soon as the call exists; it is recorded on the job row
  (`queue.record_backend_call`) so that the job's next owner re-attaches to the call instead of paying twice. A job
  stopped by shutdown or a lost lease leaves its call running for that next owner.
- What the backend returns is checked before anything is uploaded (`worker.results.check_png`: a PNG of the
  requested size, complete, at most `max_result_bytes`); a failed check is `InvalidBackendResult`, a Transient.
"""

from __future__ import annotations

import asyncio
import time

from worker.backends.base import Backend, CallTracker, GenerationResult, generate_with_calls
from worker.config import GENERATION_TIMEOUT_DEFAULT, MAX_RESULT_BYTES_DEFAULT, PROGRESS_INTERVAL_DEFAULT
from worker.logging import logger
from worker.metrics import Metrics
from worker.queue import DatabaseUnavailable, QueueClient
from worker.results import check_png
from worker.runner.active import ActiveJob
from worker.runner.deadlines import Watchdog

log = logger("runner")


class Generator:
    """Runs `backend.generate` for a job, with progress writes and call tracking, and checks the PNG it returns."""

    def __init__(self, *, backend: Backend, queue: QueueClient, watchdog: Watchdog, metrics: Metrics,
                 generation_timeout: float = GENERATION_TIMEOUT_DEFAULT,
                 progress_interval: float = PROGRESS_INTERVAL_DEFAULT,
                 max_result_bytes: int = MAX_RESULT_BYTES_DEFAULT) -> None:
        self.backend = backend
        self._queue = queue
        self._watchdog = watchdog
        self._metrics = metrics
        self.generation_timeout = generation_timeout
        self.progress_interval = progress_interval
        self.max_result_bytes = max_result_bytes

    async def generate(self, active: ActiveJob, init_image: bytes | None) -> GenerationResult:
        """The checked result. Raises what the backend raises, or InvalidBackendResult."""
        job = active.job
        started = time.monotonic()
        self._watchdog.set(active, self.generation_timeout,
                           f"generation timed out after {self.generation_timeout:g} s")
        result = await generate_with_calls(
            self.backend, job.to_request(init_image),
            lambda step, total: self._on_progress(active, step, total), self._call_tracker(active))
        self._watchdog.clear(active)
        self._metrics.generation_seconds.observe(time.monotonic() - started)
        check_png(result.png, width=job.request.width, height=job.request.height, max_bytes=self.max_result_bytes,
                  backend=result.backend or self.backend.name)    # InvalidBackendResult: nothing uploaded
        return result

    @staticmethod
    def cancel_progress(active: ActiveJob) -> None:
        """Stop a progress write still in flight (the job finished or stopped)."""
        if active.progress_task is not None and not active.progress_task.done():
            active.progress_task.cancel()

    # ## Progress
    async def _on_progress(self, active: ActiveJob, step: int, total: int) -> None:
        if total <= 0 or step >= total or active.finishing:
            return                                 # 100 % is written by the completion itself
        if active.progress_task is not None and not active.progress_task.done():
            return
        now = time.monotonic()
        if now - active.last_progress_write < self.progress_interval:
            return                                 # at most one write per interval, the first one interval in
        active.last_progress_write = now
        active.progress_writes += 1
        active.progress_task = asyncio.create_task(self._write_progress(active, step / total))

    async def _write_progress(self, active: ActiveJob, value: float) -> None:
        try:
            still_held = await self._queue.report_progress(active.job.id, active.job.claim, value)
        except DatabaseUnavailable:
            self._metrics.db_errors.labels("report_progress").inc()
            return
        self._metrics.progress_writes.inc()
        if not still_held:
            active.stop("lease_lost")

    # ## Backend calls (call-tracking backends: Modal)
    def _call_tracker(self, active: ActiveJob) -> CallTracker:
        """The previous attempt's call to re-attach to, how to record a new one, and when to leave it running: a job
        stopped by shutdown or a lost lease goes to another worker, which re-attaches to the call."""
        return CallTracker(previous_call_id=active.job.previous_call_id,
                           record=lambda call_id: self._record_call(active, call_id),
                           keep_running=lambda: active.stop_reason in ("shutdown", "lease_lost"),
                           on_version_mismatch=lambda app: self._metrics.backend_version_mismatch.labels(app).inc())

    async def _record_call(self, active: ActiveJob, call_id: str) -> bool:
        """Record the call id on the job row; False = the lease is lost. An unreachable database is no reason to stop a
        generation that is already paid for: the call then simply cannot be re-attached after a crash."""
        try:
            return await self._queue.record_backend_call(active.job.id, active.job.claim, call_id)
        except DatabaseUnavailable:
            self._metrics.db_errors.labels("record_backend_call").inc()
            log.warning("could not record backend call %s: database unavailable", call_id,
                        extra=active.log_extra("record_backend_call"))
            return True
