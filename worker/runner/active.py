"""The jobs this worker holds: one `ActiveJob` per claimed job, the registry of them, and how a job is stopped.

Every part of the runner reads and updates the same `ActiveJob`: the executor runs it, the lease renewer moves its
`lease_held_until` on, the watchdog reads its `deadline`, a cancel or a lost lease sets its `stop_reason`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from worker.jobs import Job
from worker.logging import logger

log = logger("runner")

StopReason = Literal["cancel", "lease_lost", "deadline", "shutdown"]
Outcome = Literal["succeeded", "retried", "failed", "canceled", "lease_lost", "released"]
"""How an attempt ended on this worker: the label of `tenkaigen_jobs_finished_total` and `tenkaigen_job_duration_seconds`."""
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "retried", "failed", "canceled", "lease_lost", "released")


@dataclass(eq=False)
class ActiveJob:
    """A job this worker holds, and why (if at all) its task was stopped."""

    job: Job
    claimed_at: float
    task: asyncio.Task[None] | None = None
    started: bool = False                   # the task has run its first step (its handlers are in place)
    stop_reason: StopReason | None = None
    finishing: bool = False                 # generation and upload done; the completion write is under way
    last_progress_write: float = 0.0
    progress_task: asyncio.Task[None] | None = None
    progress_writes: int = 0
    lease_held_until: float = 0.0           # monotonic; conservative: measured from before the claim/renew was sent
    deadline: float = math.inf              # monotonic; the deadline watchdog stops the task after it
    deadline_error: str = ""                # the Transient error's message when it does
    upload_started: float | None = None     # monotonic; set while the result is being uploaded

    @property
    def held(self) -> tuple[UUID, int]:
        """(job id, claim number): what every write for this run is fenced with."""
        return self.job.id, self.job.claim

    def log_extra(self, action: str, **more: Any) -> dict[str, Any]:
        return {"action": action, "job_id": self.job.id_text, "attempt": self.job.attempt, **more}

    def stop(self, reason: StopReason) -> None:
        """Stop the job's task (cancel, lost lease, deadline, shutdown). A job already writing its result is left be;
        the first reason wins."""
        if self.finishing or self.stop_reason is not None or self.task is None or self.task.done():
            return
        self.stop_reason = reason
        log.info("stopping job: %s", reason, extra=self.log_extra("stop_job"))
        if self.started:
            self.task.cancel()
        # else: a task cancelled before its first step would skip every handler of Executor.run (no cancel written,
        # the slot never freed); it sees stop_reason first thing instead


class ActiveJobs:
    """The registry: at most one attempt per job id (a job re-claimed by this worker replaces its stale attempt)."""

    def __init__(self) -> None:
        self.by_id: dict[UUID, ActiveJob] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[ActiveJob]:
        """A snapshot: stopping or finishing jobs while iterating is safe."""
        return iter(list(self.by_id.values()))

    def get(self, job_id: UUID) -> ActiveJob | None:
        return self.by_id.get(job_id)

    def add(self, active: ActiveJob) -> None:
        earlier = self.by_id.get(active.job.id)
        if earlier is not None:                # an attempt of ours whose lease ran out, re-claimed by us: it lost
            earlier.stop("lease_lost")
        self.by_id[active.job.id] = active

    def remove(self, active: ActiveJob) -> None:
        if self.by_id.get(active.job.id) is active:   # not a later attempt of the same job, claimed meanwhile
            del self.by_id[active.job.id]

    def held(self) -> list[tuple[UUID, int]]:
        """(job id, claim number) of every job held: what a renewal or a release is fenced with."""
        return [a.held for a in self.by_id.values()]
