"""What a stopped or failed attempt writes, and the outcome it is counted as (`tenkaigen_jobs_finished_total`).

Errors: BadRequest → fail_job(retryable=false); Transient and anything unexpected → fail_job(retryable=true) (the SQL
decides between a retry after backoff and `failed`); a lost lease → drop (nothing written); a WorkerFault or a
ConfigurationError from the backend → release_jobs (no attempt used) and claims paused (`faults.py`); a redeploy
that ended the backend call (BackendRestarted) → release_jobs, no pause.
Stops: a deadline fails the attempt as Transient; a cancel is acknowledged (`cancels.py`); a lost lease writes
nothing; a shutdown is released in one batch by `shutdown.py`.
"""

from __future__ import annotations

from worker.exceptions import (
    BackendRestarted,
    BadRequest,
    ConfigurationError,
    LeaseLost,
    Transient,
    WorkerFault,
)
from worker.logging import logger
from worker.metrics import Metrics
from worker.queue import QueueClient
from worker.runner.active import ActiveJob, Outcome
from worker.runner.cancels import Cancels
from worker.runner.faults import FaultPause
from worker.runner.writes import Writes

log = logger("runner")


class Outcomes:
    """Writes the end of an attempt that did not succeed: fail_job, release_jobs or acknowledge_cancel."""

    def __init__(self, *, queue: QueueClient, writes: Writes, metrics: Metrics, faults: FaultPause,
                 cancels: Cancels) -> None:
        self._queue = queue
        self._writes = writes
        self._metrics = metrics
        self._faults = faults
        self._cancels = cancels

    async def after_stop(self, active: ActiveJob) -> Outcome:
        """The job's task was stopped (`ActiveJob.stop_reason`)."""
        reason = active.stop_reason
        if reason == "deadline":                  # a failed attempt like any other Transient error
            active.finishing = True
            return await self.after_error(active, Transient(active.deadline_error))
        if reason == "cancel":
            return await self._cancels.acknowledge(active)
        if reason == "lease_lost":
            log.warning("lease lost; job stopped, nothing written", extra=active.log_extra("renew_leases"))
            return "lease_lost"
        return "released"                         # shutdown: released in one batch by shutdown.drain_and_release

    async def after_error(self, active: ActiveJob, exc: Exception) -> Outcome:
        """The attempt raised `exc`: classify it and write the attempt's end."""
        if isinstance(exc, WorkerFault | ConfigurationError):   # e.g. Modal refuses the token, app not deployed
            return await self.hand_back(active, exc)
        if isinstance(exc, BackendRestarted):                   # a redeploy ended the call: no attempt used, no pause
            self._metrics.backend_errors.labels(exc.error_code).inc()
            log.warning("job handed back: %s", exc, extra=active.log_extra("release_jobs", error_code=exc.error_code))
            return await self._release(active)
        if isinstance(exc, LeaseLost):
            log.warning("lease lost: %s", exc, extra=active.log_extra("fail_job"))
            return "lease_lost"
        if isinstance(exc, BadRequest):
            retryable, code, message = False, exc.error_code, str(exc)
        elif isinstance(exc, Transient):
            retryable, code, message = True, exc.error_code, str(exc)
        else:
            retryable, code = True, "internal_error"
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.error("unexpected error in job", exc_info=exc, extra=active.log_extra("fail_job"))
        self._metrics.backend_errors.labels(code).inc()
        status = await self._writes.final("fail_job", lambda: self._queue.fail_job(
            active.job.id, active.job.claim, error_code=code, error_message=message, retryable=retryable))
        if status is None:
            log.warning("failure not recorded: lease lost", extra=active.log_extra("fail_job", error_code=code))
            return "lease_lost"
        if status == "queued":
            log.warning("attempt failed, will retry: %s", message,
                        extra=active.log_extra("fail_job", error_code=code, status=status))
            return "retried"
        log.error("failed: %s", message, extra=active.log_extra("fail_job", error_code=code, status=status))
        return "failed"

    async def hand_back(self, active: ActiveJob, exc: WorkerFault | ConfigurationError) -> Outcome:
        """Release the job without using its attempt, and stop claiming for a while (see `faults.py`)."""
        pause = self._faults.begin(exc)
        self._metrics.backend_errors.labels(exc.error_code).inc()
        log.error("worker fault, job handed back and claims paused for %.0f s: %s", pause, exc,
                  extra=active.log_extra("release_jobs", error_code=exc.error_code))
        return await self._release(active)

    async def _release(self, active: ActiveJob) -> Outcome:
        released = await self._writes.final("release_jobs", lambda: self._queue.release_jobs([active.held]))
        return "released" if released else "lease_lost"
