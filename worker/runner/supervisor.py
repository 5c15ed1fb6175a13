"""`Runner`: builds the parts of the job loop, runs them, and stops them (procrastinate's worker, River's client).

- `run()` starts named side tasks (completer, lease_renewer, deadlines, listener) and the claim loop, and stops the
  worker if any of them dies (it then raises that task's error). It returns after a graceful shutdown
  (`shutdown.py`).
- `stop()` only sets an event, and may be called from a signal handler or another thread; a second call skips the
  rest of the grace period.
- NOTIFYs arrive here from the LISTEN connection: `generation_jobs_queued` wakes the claim loop,
  `generation_jobs_cancel` goes to `cancels.py`. When the LISTEN connection comes back, whatever was sent meanwhile
  is lost: the claim loop polls and the leases are renewed at once (each answer carries the cancel flag).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from typing import Any
from uuid import UUID

from worker.backends.base import Backend
from worker.config import (
    CONCURRENCY_DEFAULT,
    GENERATION_TIMEOUT_DEFAULT,
    GRACE_PERIOD_DEFAULT,
    MAX_RESULT_BYTES_DEFAULT,
    POLL_INTERVAL_DEFAULT,
    PROGRESS_INTERVAL_DEFAULT,
)
from worker.db import CANCEL_CHANNEL, QUEUED_CHANNEL, Listener
from worker.logging import logger
from worker.metrics import Metrics
from worker.probes import Health
from worker.queue import QueueClient
from worker.runner.active import ActiveJob, ActiveJobs
from worker.runner.cancels import Cancels
from worker.runner.claiming import ClaimLoop
from worker.runner.completer import COMPLETION_BATCH_SIZE_DEFAULT, Completer
from worker.runner.deadlines import Watchdog
from worker.runner.executor import Executor
from worker.runner.faults import FAULT_PAUSE_MIN_DEFAULT, FaultPause
from worker.runner.generation import Generator
from worker.runner.leases import LeaseKeeper
from worker.runner.outcomes import Outcomes
from worker.runner.shutdown import drain_and_release
from worker.runner.upload import UPLOAD_TIMEOUT_DEFAULT, Uploader
from worker.runner.writes import FINAL_WRITE_DEADLINE_DEFAULT, Writes
from worker.storage.base import Storage

log = logger("runner")


def make_worker_id() -> str:
    """`<hostname>:<pid>:<short random>`: unique per process start, readable in `locked_by`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Runner:
    """Runs jobs from the queue until stopped. The parts are attributes, one per module of `worker.runner`."""

    def __init__(
        self,
        *,
        queue: QueueClient,
        backend: Backend,
        storage: Storage,
        dsn: str | None = None,
        concurrency: int = CONCURRENCY_DEFAULT,
        poll_interval: float = POLL_INTERVAL_DEFAULT,
        grace_period: float = GRACE_PERIOD_DEFAULT,
        progress_interval: float = PROGRESS_INTERVAL_DEFAULT,
        completion_batch_size: int = COMPLETION_BATCH_SIZE_DEFAULT,
        final_write_deadline: float = FINAL_WRITE_DEADLINE_DEFAULT,
        generation_timeout: float = GENERATION_TIMEOUT_DEFAULT,
        max_result_bytes: int = MAX_RESULT_BYTES_DEFAULT,
        upload_timeout: float = UPLOAD_TIMEOUT_DEFAULT,
        fault_pause: float = FAULT_PAUSE_MIN_DEFAULT,
        gpu_prices: dict[str, float] | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
    ) -> None:
        self.queue = queue
        self.backend = backend
        self.storage = storage
        self.worker_id = queue.worker_id
        self.grace_period = grace_period
        self.metrics = metrics or Metrics()
        self.health = health or Health(stale_after=max(60.0, 3 * poll_interval))
        self._dsn = dsn
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._stop_requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener_was_connected = False
        self.listener: Listener | None = None

        self.jobs = ActiveJobs()
        self.writes = Writes(metrics=self.metrics, health=self.health, final_write_deadline=final_write_deadline)
        self.faults = FaultPause(health=self.health, minimum=fault_pause)
        self.completer = Completer(queue=queue, writes=self.writes, batch_size=completion_batch_size)
        self.cancels = Cancels(jobs=self.jobs, queue=queue, writes=self.writes)
        self.watchdog = Watchdog(self.jobs, generation_timeout=generation_timeout, lease_seconds=queue.lease_seconds)
        self.generator = Generator(backend=backend, queue=queue, watchdog=self.watchdog, metrics=self.metrics,
                                   generation_timeout=generation_timeout, progress_interval=progress_interval,
                                   max_result_bytes=max_result_bytes)
        self.uploader = Uploader(storage=storage, queue=queue, writes=self.writes, watchdog=self.watchdog,
                                 metrics=self.metrics, lease_seconds=queue.lease_seconds, upload_timeout=upload_timeout)
        self.leases = LeaseKeeper(jobs=self.jobs, queue=queue, uploader=self.uploader, metrics=self.metrics,
                                  health=self.health)
        outcomes = Outcomes(queue=queue, writes=self.writes, metrics=self.metrics, faults=self.faults,
                            cancels=self.cancels)
        executor = Executor(jobs=self.jobs, storage=storage, generator=self.generator, uploader=self.uploader,
                            completer=self.completer, outcomes=outcomes, faults=self.faults, metrics=self.metrics,
                            gpu_prices=gpu_prices or {}, on_finished=lambda: self.claim_loop.wake())
        self.claim_loop = ClaimLoop(queue=queue, jobs=self.jobs, executor=executor, cancels=self.cancels,
                                    faults=self.faults, writes=self.writes, metrics=self.metrics, health=self.health,
                                    stop=self._stop, concurrency=concurrency, poll_interval=poll_interval)
        self.metrics.jobs_in_flight.set_function(lambda: len(self.jobs))

    # ## Public API
    @property
    def active_jobs(self) -> dict[UUID, ActiveJob]:
        return self.jobs.by_id

    @property
    def claims(self) -> int:
        """`claim_jobs` calls answered so far."""
        return self.claim_loop.claims

    @property
    def claimed(self) -> int:
        """Jobs claimed so far."""
        return self.claim_loop.claimed

    def stop(self) -> None:
        """Ask the worker to stop (safe from signal handlers and other threads). A second call skips the grace."""
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._request_stop()
        else:
            self._loop.call_soon_threadsafe(self._request_stop)

    async def run(self) -> None:
        """Run until `stop()`; returns after a graceful shutdown. Raises if a side task died."""
        self._loop = asyncio.get_running_loop()
        side: dict[str, asyncio.Task[Any]] = {
            "completer": asyncio.create_task(self.completer.run(), name="completer"),
            "lease_renewer": asyncio.create_task(self.leases.run(), name="lease_renewer"),
            "deadlines": asyncio.create_task(self.watchdog.run(), name="deadlines"),
        }
        if self._dsn is not None:
            self.listener = Listener(self._dsn, [QUEUED_CHANNEL, CANCEL_CHANNEL], self._on_notify,
                                     on_connect=self._on_listener_connect)
            side["listener"] = asyncio.create_task(self.listener.run(), name="listener")
        claim_loop = asyncio.create_task(self.claim_loop.run(), name="claim_loop")
        self.health.running = True
        log.info("worker started: backend=%s storage=%s concurrency=%s lease=%ss", self.backend.name,
                 self.storage.name, self.claim_loop.concurrency, self.queue.lease_seconds, extra={"action": "start"})
        failure: BaseException | None = None
        try:
            done, _ = await asyncio.wait([claim_loop, *side.values()], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not claim_loop and not task.cancelled() and task.exception() is not None:
                    failure = task.exception()
                    log.error("side task %s died: %r; stopping", task.get_name(), failure,
                              extra={"action": "monitor"})
            self._request_stop(by_user=False)
            with contextlib.suppress(asyncio.CancelledError):
                await claim_loop
            if claim_loop.done() and not claim_loop.cancelled() and claim_loop.exception() is not None:
                failure = failure or claim_loop.exception()
        except asyncio.CancelledError:
            self._request_stop(by_user=False)
            claim_loop.cancel()
        finally:
            self.health.running = False
            await drain_and_release(jobs=self.jobs, grace_period=self.grace_period, force=self._force,
                                    writes=self.writes, queue=self.queue, completer=self.completer)
            if self.leases.catch_up_task is not None:
                side["catch_up_renewal"] = self.leases.catch_up_task
            for task in side.values():
                task.cancel()
            await asyncio.gather(*side.values(), return_exceptions=True)
            log.info("worker stopped", extra={"action": "stop"})
        if failure is not None:
            raise failure

    # ## Stop requests and NOTIFYs
    def _request_stop(self, *, by_user: bool = True) -> None:
        self.health.draining = True              # /readyz turns 503: take no new traffic while draining
        if by_user:
            self._stop_requests += 1
            if self._stop_requests > 1:
                self._force.set()
        self._stop.set()
        self.claim_loop.wake()

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == QUEUED_CHANNEL:
            self.claim_loop.notify_queued()
        elif channel == CANCEL_CHANNEL:
            self.cancels.on_notify(payload)

    def _on_listener_connect(self) -> None:
        if self._listener_was_connected:         # count each reconnect once, not the first connect
            self.metrics.listener_reconnects.inc()
        self._listener_was_connected = True
        self.claim_loop.notify_queued()          # anything sent while disconnected was lost: poll now
        self.leases.catch_up()                   # a cancel NOTIFY sent while disconnected was lost too: renew now
