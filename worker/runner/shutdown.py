"""Shutdown: drain, then release what is left (procrastinate's `_shutdown`).

The claim loop has stopped claiming (`health.draining`: /readyz turns 503). In-flight jobs get `grace_period` to
finish while renewals, cancels and completions go on; a second stop request ends the grace at once. The jobs still
running are stopped and released in one `queue.release_jobs` call (queued again at once, the attempt not counted),
jobs already writing their result are waited for, and the completer is given time to finish its last batch.
A claim answered after the stop is released the same way before any work starts (`release_unstarted`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

from worker.jobs import Job
from worker.logging import logger
from worker.metrics import Metrics
from worker.queue import DatabaseUnavailable, QueueClient
from worker.runner.active import ActiveJobs
from worker.runner.completer import Completer
from worker.runner.writes import Writes

RELEASE_DEADLINE_DEFAULT = 10.0
"""How long a shutdown's release is retried while the database is unreachable (then the leases expire anyway)."""
FINISHING_WAIT_DEFAULT = 60.0

log = logger("runner")


async def release(writes: Writes, queue: QueueClient, held: list[tuple[UUID, int]]) -> int:
    """Release held jobs in one shielded call; raises DatabaseUnavailable after RELEASE_DEADLINE_DEFAULT."""
    return await asyncio.shield(writes.write(
        "release_jobs", lambda: queue.release_jobs(held), deadline=RELEASE_DEADLINE_DEFAULT))


async def release_unstarted(jobs: list[Job], *, writes: Writes, queue: QueueClient, metrics: Metrics) -> None:
    """Hand back jobs whose claim answered after the stop signal, before any work (attempt not counted)."""
    held = [(job.id, job.claim) for job in jobs]
    try:
        released = await release(writes, queue, held)
    except DatabaseUnavailable:
        log.error("could not release %s job(s) claimed as the worker stopped; they return to the queue when "
                  "their leases expire", len(held), extra={"action": "release_jobs", "count": len(held)})
        return
    metrics.jobs_finished.labels("released").inc(released)
    log.info("released %s job(s) claimed as the worker stopped", released,
             extra={"action": "release_jobs", "count": released})


async def drain_and_release(*, jobs: ActiveJobs, grace_period: float, force: asyncio.Event, writes: Writes,
                            queue: QueueClient, completer: Completer) -> None:
    """Give in-flight jobs the grace period, stop and release the rest, wait for the last completions."""
    in_flight = [a.task for a in jobs if a.task is not None]
    if in_flight and grace_period > 0:
        log.info("draining %s job(s), up to %.0f s", len(in_flight), grace_period,
                 extra={"action": "shutdown", "count": len(in_flight)})
        forced = asyncio.create_task(force.wait())
        await _wait_jobs_or_force(in_flight, forced, grace_period)
        forced.cancel()
    to_release = [a for a in jobs if not a.finishing]
    for active in to_release:
        active.stop("shutdown")
    remaining = [a.task for a in jobs if a.task is not None]
    if remaining:
        await asyncio.wait(remaining, timeout=FINISHING_WAIT_DEFAULT)
    held = [a.held for a in to_release if a.stop_reason == "shutdown"]
    if held:
        try:
            released = await release(writes, queue, held)
            log.info("released %s unfinished job(s)", released, extra={"action": "release_jobs", "count": released})
        except DatabaseUnavailable:
            log.error("could not release %s job(s); they return to the queue when their leases expire",
                      len(held), extra={"action": "release_jobs", "count": len(held)})
    await completer.wait_idle(FINISHING_WAIT_DEFAULT)


async def _wait_jobs_or_force(tasks: list[asyncio.Task[None]], force: asyncio.Task[Any], grace_period: float) -> None:
    deadline = time.monotonic() + grace_period
    pending = set(tasks)
    while pending and not force.done():
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            break
        done, _ = await asyncio.wait([*pending, force], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        pending -= done
