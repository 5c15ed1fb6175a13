"""Deadlines: one watchdog task stops a job whose backend call or upload runs past its deadline.

The generation deadline is `generation_timeout` (set by `generation.py`); the upload deadline is kept inside the
lease the worker surely holds (set and moved on by `upload.py`). The stopped attempt fails as Transient with the
deadline's message (retried after backoff; see `outcomes.py`).

One watchdog scanning the jobs each tick instead of an `asyncio.timeout` per call: two timer-heap entries per job
were a fifth of the worker's CPU time on the queue path. A deadline is enforced at most one tick late.
"""

from __future__ import annotations

import asyncio
import math
import time

from worker.runner.active import ActiveJob, ActiveJobs


class Watchdog:
    """Stops the jobs whose `ActiveJob.deadline` has passed, looking every `tick` seconds."""

    def __init__(self, jobs: ActiveJobs, *, generation_timeout: float, lease_seconds: float) -> None:
        self._jobs = jobs
        # how often the watchdog looks; a deadline is enforced at most this late
        self.tick = max(0.01, min(1.0, generation_timeout / 10, lease_seconds / 10))

    @staticmethod
    def set(active: ActiveJob, seconds: float, error: str) -> None:
        """Stop the job's task `seconds` from now (plus at most one tick) and fail the attempt with `error`."""
        active.deadline = time.monotonic() + seconds
        active.deadline_error = error

    @staticmethod
    def clear(active: ActiveJob) -> None:
        active.deadline = math.inf

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            for active in self._jobs:
                if active.deadline <= now:
                    active.deadline = math.inf
                    active.stop("deadline")
