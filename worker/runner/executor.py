"""One job, start to end (River's executor): download → generate → upload → complete, in the job's own task.

1. the edit job's init image is downloaded from Storage;
2. `generation.py` calls the backend under the generation deadline, with progress and call tracking, and checks
   the PNG it returns;
3. `upload.py` uploads it to `<user_id>/<job_id>.png` inside the lease window;
4. the completion (result path, size, backend, call id, GPU seconds and cost) goes to the batching `completer.py`,
   and the job awaits its own fenced answer.
A stop (cancel, lost lease, deadline, shutdown: `ActiveJob.stop`) or an error ends the attempt through
`outcomes.py`. Whatever happens, the job leaves the registry, its outcome is counted, and the claim loop is woken
for the freed slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from worker.backends.base import GenerationResult
from worker.jobs import Job
from worker.logging import logger
from worker.metrics import Metrics
from worker.queue import Completion
from worker.runner.active import OUTCOMES, ActiveJob, ActiveJobs, Outcome
from worker.runner.completer import Completer
from worker.runner.faults import FaultPause
from worker.runner.generation import Generator
from worker.runner.outcomes import Outcomes
from worker.runner.upload import Uploader
from worker.storage.base import Storage

log = logger("runner")


class Executor:
    """Runs one claimed job to its end; `run` is the body of the job's task."""

    def __init__(self, *, jobs: ActiveJobs, storage: Storage, generator: Generator, uploader: Uploader,
                 completer: Completer, outcomes: Outcomes, faults: FaultPause, metrics: Metrics,
                 gpu_prices: dict[str, float], on_finished: Callable[[], None]) -> None:
        self._jobs = jobs
        self._storage = storage
        self._generator = generator
        self._uploader = uploader
        self._completer = completer
        self._outcomes = outcomes
        self._faults = faults
        self._metrics = metrics
        self._gpu_prices = gpu_prices
        self._on_finished = on_finished
        self._finished = {name: metrics.jobs_finished.labels(name) for name in OUTCOMES}
        self._job_seconds = {name: metrics.job_seconds.labels(name) for name in OUTCOMES}

    async def run(self, active: ActiveJob) -> None:
        job = active.job
        outcome: Outcome = "failed"
        active.started = True
        try:
            try:
                if active.stop_reason is not None:
                    raise asyncio.CancelledError           # stopped before this task first ran
                init_image = await self._storage.download_input(job.init_image_path) if job.init_image_path else None
                result = await self._generator.generate(active, init_image)
                size = await self._uploader.upload(active, result.png)
                active.finishing = True
                self._generator.cancel_progress(active)
                completed = await self._completer.submit(self._completion(job, result, size))
                outcome = "succeeded" if completed else "lease_lost"
                if completed:
                    self._succeeded(active, result)
                else:
                    log.warning("lease lost before completion; result dropped", extra=active.log_extra("complete_jobs"))
            except asyncio.CancelledError:
                if active.stop_reason is None:
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                outcome = await self._outcomes.after_stop(active)
            except Exception as exc:
                active.finishing = True                # the failure write must not be interrupted either
                outcome = await self._outcomes.after_error(active, exc)
        finally:
            self._generator.cancel_progress(active)
            self._jobs.remove(active)
            self._finished[outcome].inc()
            self._job_seconds[outcome].observe(time.monotonic() - active.claimed_at)
            self._on_finished()

    def _succeeded(self, active: ActiveJob, result: GenerationResult) -> None:
        self._faults.cleared()
        if result.gpu_seconds:
            self._metrics.gpu_seconds.inc(result.gpu_seconds)
        cost = self._cost(result)
        if cost:
            self._metrics.cost_usd.inc(cost)
        if log.isEnabledFor(logging.INFO):
            log.info("succeeded", extra=active.log_extra(
                "complete_jobs", backend=result.backend, duration_s=round(time.monotonic() - active.claimed_at, 3)))

    def _completion(self, job: Job, result: GenerationResult, size: int) -> Completion:
        cost = self._cost(result)
        if result.cost_usd is None and cost is not None:
            cost = round(cost, 6)                  # a price estimate: to the micro-dollar
        return Completion(job_id=job.id, claim=job.claim, result_path=job.result_key, result_bytes=size,
                          backend=result.backend, backend_call_id=result.backend_call_id,
                          gpu_seconds=result.gpu_seconds, cost_usd=cost, job_id_text=job.id_text)

    def _cost(self, result: GenerationResult) -> float | None:
        """What the backend reported, else its GPU seconds at the GPU's price (None when neither is known)."""
        if result.cost_usd is not None:
            return result.cost_usd
        if result.gpu_seconds is not None and result.gpu_type in self._gpu_prices:
            return result.gpu_seconds * self._gpu_prices[result.gpu_type]
        return None
