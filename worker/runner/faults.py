"""Worker faults: the job is not to blame, so its attempt is not used.

A `WorkerFault` (the worker's own fault, e.g. Storage refuses its key) or a `ConfigurationError` raised while running
a job (the backend's credentials refused, its app not deployed) is the operator's to fix: failing the job for it
would burn every queued job's attempts in minutes. The job is handed back with `release_jobs` (see
`outcomes.Outcomes.hand_back`), claims pause 5 s, doubling up to 5 min while faults repeat, and /readyz reports the
fault until a job succeeds again.
"""

from __future__ import annotations

import time

from worker.exceptions import ConfigurationError, WorkerFault
from worker.logging import logger
from worker.probes import Health

FAULT_PAUSE_MIN_DEFAULT = 5.0
"""After a WorkerFault the worker stops claiming this long, doubling up to FAULT_PAUSE_MAX while faults repeat."""
FAULT_PAUSE_MAX = 300.0

log = logger("runner")


class FaultPause:
    """When claiming may resume after a worker fault, and the fault /readyz reports meanwhile."""

    def __init__(self, *, health: Health, minimum: float = FAULT_PAUSE_MIN_DEFAULT) -> None:
        self.health = health
        self.minimum = minimum
        self.current = 0.0                   # the current pause; doubles while faults repeat
        self.until = 0.0                     # monotonic

    def remaining(self) -> float:
        """Seconds claiming stays paused (0 or less: claim)."""
        return self.until - time.monotonic()

    def begin(self, exc: WorkerFault | ConfigurationError) -> float:
        """Pause claiming (twice as long as last time, within the bounds) and report the fault; returns the pause."""
        self.current = min(FAULT_PAUSE_MAX, max(self.minimum, self.current * 2))
        self.until = max(self.until, time.monotonic() + self.current)
        self.health.fault = str(exc)
        return self.current

    def cleared(self) -> None:
        """A job succeeded: the next fault starts from the shortest pause again."""
        if self.health.fault is not None:
            log.info("worker fault cleared: a job succeeded again", extra={"action": "complete_jobs"})
        self.current = 0.0
        self.health.fault = None
