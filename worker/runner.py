"""The job runner: claim, generate, upload, complete, and never lose a job.

Shape (procrastinate's worker loop, adapted):
- `run()` starts named side tasks (listener, lease renewer, completer) and the claim loop, and stops the worker if
  any of them dies. `stop()` only sets an event and may be called from a signal handler; a second call skips the
  rest of the grace period.
- The claim loop claims up to the free capacity in one `queue.claim_jobs` call, then waits for whichever comes
  first: a NOTIFY on `generation_jobs_queued`, a freed slot (when the last claim suggested more work), the poll
  interval, or the stop event. While draining a backlog it claims in batches (at least a quarter of the capacity).
- Each job runs in its own task: download the init image (edit jobs) → backend.generate (progress throttled to
  one write per `progress_interval`, at most one in flight) → storage upload (`<user_id>/<job_id>.png`, upsert)
  → completion. Completions go through one batching writer: whatever finished while the previous
  `complete_jobs` call was in flight goes in the next one, and each job awaits its own fenced result.
- Deadlines: a watchdog task stops a backend call still running after `generation_timeout`, and an upload still
  running when the lease it surely holds could run out (moved on by each renewal that confirms the lease during
  the upload, `upload_timeout` at most); the attempt fails as Transient (retried after backoff).
- The lease renewer extends every held lease each `lease_seconds / 3`, and once more whenever the LISTEN
  connection comes back (a cancel NOTIFY sent while it was away is lost; the renewal answer carries the flag); a
  job missing from the answer lost its lease (its task is stopped, nothing is written); `cancel_requested` stops
  it like a cancel NOTIFY does, and the worker then acknowledges the cancel (running -> canceled).
- What the backend returns is checked before upload (`worker.results.check_png`: a PNG of the requested size,
  complete, at most `max_result_bytes`); a failed check is `InvalidBackendResult`, a Transient.
- Errors: BadRequest → fail_job(retryable=false); Transient and anything unexpected → fail_job(retryable=true)
  (the SQL decides between a retry after backoff and `failed`); a lost lease → drop; a WorkerFault (the worker's
  own fault, e.g. Storage refuses its key) or a ConfigurationError from the backend (Modal refuses its token, the
  app is not deployed) → release_jobs (no attempt used), claims paused 5 s doubling up to 5 min, /readyz
  unhealthy until a job succeeds again.
- A cancel NOTIFY can arrive before the claim's answer: it is remembered, with the time it arrived, and stops the
  job if it arrived after the claim that returned the job was sent (an older one was for an earlier run of a job
  that has been requeued since). A cancel the worker cannot acknowledge (no cancel is requested any more) hands
  the job back with release_jobs instead of leaving it running until it is reaped.
- Final writes (complete, fail, acknowledge_cancel, release) run under `asyncio.shield` and are retried while the
  database is unreachable, so a job that finishes during a database restart is still recorded once it is back.
- Shutdown: stop claiming (`health.draining`: /readyz turns 503; a claim answered after the stop is released at
  once), give in-flight jobs `grace_period` to finish while renewals, cancels and completions go on, stop the rest
  and release them (`queue.release_jobs`: queued again at once, the attempt not counted), then close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from worker.backends.base import Backend, CallTracker, GenerationResult, generate_with_calls
from worker.config import (
    CONCURRENCY_DEFAULT,
    GENERATION_TIMEOUT_DEFAULT,
    GRACE_PERIOD_DEFAULT,
    MAX_RESULT_BYTES_DEFAULT,
    POLL_INTERVAL_DEFAULT,
    PROGRESS_INTERVAL_DEFAULT,
)
from worker.db import CANCEL_CHANNEL, QUEUED_CHANNEL, Listener
from worker.exceptions import (
    BackendRestarted,
    BadRequest,
    ConfigurationError,
    LeaseLost,
    Transient,
    WorkerFault,
)
from worker.jobs import Job
from worker.logging import logger
from worker.metrics import Metrics
from worker.probes import Health
from worker.queue import Completion, DatabaseUnavailable, QueueClient
from worker.results import check_png
from worker.storage.base import Storage

COMPLETION_BATCH_SIZE_DEFAULT = 200
FINAL_WRITE_DEADLINE_DEFAULT = 600.0
"""How long a final write is retried while the database is unreachable (then the lease has long expired)."""
RELEASE_DEADLINE_DEFAULT = 10.0
FINISHING_WAIT_DEFAULT = 60.0
RETRY_DELAY_MIN = 0.05
RETRY_DELAY_MAX = 2.0
RECENT_CANCEL_MEMORY_SECONDS = 120.0
FAULT_PAUSE_MIN_DEFAULT = 5.0
"""After a WorkerFault the worker stops claiming this long, doubling up to FAULT_PAUSE_MAX while faults repeat."""
FAULT_PAUSE_MAX = 300.0
UPLOAD_LEASE_CHECKS = 3
UPLOAD_TIMEOUT_DEFAULT = 60.0
"""The longest an upload may run while renewals keep confirming the lease (Supabase Storage's own request timeout)."""
UPLOAD_LEASE_MARGIN_FRACTION = 0.1   # of the lease, kept in hand when deciding an upload surely fits inside it

log = logger("runner")
T = TypeVar("T")


def make_worker_id() -> str:
    """`<hostname>:<pid>:<short random>`: unique per process start, readable in `locked_by`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(eq=False)
class ActiveJob:
    """A job this worker holds, and why (if at all) its task was stopped."""

    job: Job
    claimed_at: float
    task: asyncio.Task[None] | None = None
    started: bool = False                   # the task has run its first step (its handlers are in place)
    stop_reason: str | None = None          # cancel | lease_lost | deadline | shutdown
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
        return self.job.id, self.job.attempt

    def log_extra(self, action: str, **more: Any) -> dict[str, Any]:
        return {"action": action, "job_id": self.job.id_text, "attempt": self.job.attempt, **more}


class Completer:
    """Batches `complete_jobs` calls: everything submitted while one call is in flight goes in the next."""

    def __init__(self, runner: Runner, batch_size: int) -> None:
        self._runner = runner
        self._batch_size = batch_size
        self._pending: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.calls = 0

    async def submit(self, completion: Completion) -> bool:
        """True when this attempt's result was recorded; False when the lease was lost (drop the result)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((completion, future))
        self._idle.clear()
        self._wake.set()
        return await future          # the write runs in the completer task: cancelling the waiter cannot stop it

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._batch_size]
                del self._pending[: self._batch_size]
                await self._flush(batch)
            self._idle.set()

    async def _flush(self, batch: list[tuple[Completion, asyncio.Future[bool]]]) -> None:
        completions = [c for c, _ in batch]
        self.calls += 1
        try:
            done = await self._runner.write("complete_jobs", lambda: self._runner.queue.complete_jobs(completions))
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, DatabaseUnavailable):
                for item in batch:              # isolate the one the database refuses
                    await self._flush([item])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for completion, future in batch:
            if not future.done():
                future.set_result(completion.job_id in done)

    async def wait_idle(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)


class Runner:
    """Runs jobs from the queue until stopped. See the module docstring for the loop's shape."""

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
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.grace_period = grace_period
        self.progress_interval = progress_interval
        self.lease_seconds = queue.lease_seconds
        self.final_write_deadline = final_write_deadline
        self.generation_timeout = generation_timeout
        # how often the deadline watchdog looks; a deadline is enforced at most this late
        self.deadline_tick = max(0.01, min(1.0, generation_timeout / 10, self.lease_seconds / 10))
        self.max_result_bytes = max_result_bytes
        self.upload_timeout = upload_timeout
        self.upload_lease_margin = max(1.0, self.lease_seconds * UPLOAD_LEASE_MARGIN_FRACTION)
        self.gpu_prices = gpu_prices or {}
        self.metrics = metrics or Metrics()
        self.health = health or Health(stale_after=max(60.0, 3 * poll_interval))
        self.claim_threshold = max(1, concurrency // 4)
        self.fault_pause_min = fault_pause
        self._fault_pause = 0.0                  # the current pause after a WorkerFault; doubles while they repeat
        self._claims_paused_until = 0.0          # monotonic
        self._dsn = dsn
        self._active: dict[UUID, ActiveJob] = {}
        self._recent_cancels: dict[UUID, float] = {}
        self._completer = Completer(self, completion_batch_size)
        outcomes = ("succeeded", "retried", "failed", "canceled", "lease_lost", "released")
        self._outcomes = {name: self.metrics.jobs_finished.labels(name) for name in outcomes}
        self._job_seconds = {name: self.metrics.job_seconds.labels(name) for name in outcomes}
        self.metrics.jobs_in_flight.set_function(lambda: len(self._active))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._force: asyncio.Event | None = None
        self._signal: asyncio.Event | None = None
        self._catch_up: asyncio.Task[None] | None = None
        self._listener_was_connected = False
        self._notified = False
        self._stopping = False
        self._stop_requests = 0
        self.claims = 0
        self.claimed = 0

    # ## Public API
    @property
    def active_jobs(self) -> dict[UUID, ActiveJob]:
        return self._active

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
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._signal = asyncio.Event()
        side: dict[str, asyncio.Task[Any]] = {
            "completer": asyncio.create_task(self._completer.run(), name="completer"),
            "lease_renewer": asyncio.create_task(self._renew_loop(), name="lease_renewer"),
            "deadlines": asyncio.create_task(self._deadline_loop(), name="deadlines"),
        }
        if self._dsn is not None:
            listener = Listener(self._dsn, [QUEUED_CHANNEL, CANCEL_CHANNEL], self._on_notify,
                                on_connect=self._on_listener_connect)
            side["listener"] = asyncio.create_task(listener.run(), name="listener")
            self._listener = listener
        claim_loop = asyncio.create_task(self._claim_loop(), name="claim_loop")
        self.health.running = True
        log.info("worker started: backend=%s storage=%s concurrency=%s lease=%ss", self.backend.name,
                 self.storage.name, self.concurrency, self.lease_seconds, extra={"action": "start"})
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
            await self._shutdown()
            if self._catch_up is not None:
                side["catch_up_renewal"] = self._catch_up
            for task in side.values():
                task.cancel()
            await asyncio.gather(*side.values(), return_exceptions=True)
            log.info("worker stopped", extra={"action": "stop"})
        if failure is not None:
            raise failure

    # ## Wake-ups
    def _request_stop(self, *, by_user: bool = True) -> None:
        assert self._stop is not None and self._force is not None and self._signal is not None
        self.health.draining = True              # /readyz turns 503: take no new traffic while draining
        if by_user:
            self._stop_requests += 1
            if self._stop_requests > 1:
                self._force.set()
        self._stop.set()
        self._signal.set()

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == QUEUED_CHANNEL:
            self._notified = True
            if self._signal is not None:
                self._signal.set()
        elif channel == CANCEL_CHANNEL:
            try:
                job_id = UUID(payload)
            except ValueError:
                return
            active = self._active.get(job_id)
            if active is not None:
                self._stop_job(active, "cancel")
            else:
                now = time.monotonic()
                self._recent_cancels[job_id] = now
                if len(self._recent_cancels) > 1000:
                    self._recent_cancels = {k: v for k, v in self._recent_cancels.items()
                                            if now - v < RECENT_CANCEL_MEMORY_SECONDS}

    def _on_listener_connect(self) -> None:
        listener = getattr(self, "_listener", None)
        if listener is not None:
            if self._listener_was_connected:     # count each reconnect once, not the first connect
                self.metrics.listener_reconnects.inc()
            self._listener_was_connected = True
        self._on_notify(QUEUED_CHANNEL, "")       # anything sent while disconnected was lost: poll now
        # a cancel NOTIFY sent while disconnected was lost too: renew now, since each answer carries the flag
        if self._active and (self._catch_up is None or self._catch_up.done()):
            self._catch_up = asyncio.create_task(self._catch_up_renewal(), name="catch_up_renewal")

    async def _catch_up_renewal(self) -> None:
        try:
            await self.renew_leases()
        except Exception as exc:                 # the renew loop's next round tries again
            log.warning("renew_leases after the listener reconnected failed: %r", exc,
                        extra={"action": "renew_leases"})

    # ## Claiming
    async def _claim_loop(self) -> None:
        assert self._stop is not None and self._signal is not None
        maybe_more = True
        failures = 0
        while not self._stop.is_set():
            paused = self._claims_paused_until - time.monotonic()
            if paused > 0:
                await self._wait(paused)           # a worker fault: claim nothing until the pause is over
                continue
            free = self.concurrency - len(self._active)
            wanted = free > 0 and (self._notified or (maybe_more and (
                free >= self.claim_threshold or not self._active)))
            if wanted:
                self._notified = False
                sent = time.monotonic()
                try:
                    jobs = await self.queue.claim_jobs(free)
                except DatabaseUnavailable as exc:
                    failures += 1
                    self.metrics.db_errors.labels("claim_jobs").inc()
                    delay = min(self.poll_interval, RETRY_DELAY_MIN * 2 ** min(failures, 10))
                    if failures == 1 or failures % 20 == 0:
                        log.warning("claim_jobs failed (%s); retrying", exc, extra={"action": "claim_jobs",
                                                                                  "count": failures})
                    maybe_more = True
                    await self._wait(delay)
                    continue
                except Exception as exc:
                    log.error("claim_jobs failed: %s: %s; stopping the worker (is the schema up to date?)",
                              type(exc).__name__, exc, extra={"action": "claim_jobs"})
                    raise
                if failures:
                    log.info("database reachable again", extra={"action": "claim_jobs", "count": failures})
                failures = 0
                self.health.db_ok()
                self.claims += 1
                self.claimed += len(jobs)
                if jobs and self._stop.is_set():
                    await self._release_unstarted(jobs)   # the claim answered after the stop: start nothing
                    break
                for job in jobs:
                    self._start(job, claim_sent=sent)
                maybe_more = len(jobs) == free
                if jobs:
                    self.metrics.jobs_claimed.inc(len(jobs))
                    continue
            if not await self._wait(self.poll_interval):
                maybe_more = True                   # poll: NOTIFY is only a hint

    async def _release_unstarted(self, jobs: list[Job]) -> None:
        """Hand back jobs whose claim answered after the stop signal, before any work (attempt not counted)."""
        held = [(job.id, job.attempt) for job in jobs]
        try:
            released = await asyncio.shield(self.write(
                "release_jobs", lambda: self.queue.release_jobs(held), deadline=RELEASE_DEADLINE_DEFAULT))
        except DatabaseUnavailable:
            log.error("could not release %s job(s) claimed as the worker stopped; they return to the queue when "
                      "their leases expire", len(held), extra={"action": "release_jobs", "count": len(held)})
            return
        self._outcomes["released"].inc(released)
        log.info("released %s job(s) claimed as the worker stopped", released,
                 extra={"action": "release_jobs", "count": released})

    async def _wait(self, seconds: float) -> bool:
        """Wait for a wake-up signal, at most `seconds`; True if signalled."""
        assert self._signal is not None
        if self._signal.is_set():
            self._signal.clear()
            return True
        try:
            async with asyncio.timeout(seconds):
                await self._signal.wait()
        except TimeoutError:
            return False
        self._signal.clear()
        return True

    def _start(self, job: Job, claim_sent: float) -> None:
        now = time.monotonic()
        earlier = self._active.get(job.id)
        if earlier is not None:                # an attempt of ours whose lease ran out, re-claimed by us: it lost
            self._stop_job(earlier, "lease_lost")
        active = ActiveJob(job=job, claimed_at=now, last_progress_write=now,
                           lease_held_until=claim_sent + self.lease_seconds)
        self._active[job.id] = active
        active.task = asyncio.create_task(self._run_job(active))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("claimed", extra=active.log_extra("claim_jobs"))
        cancel_seen = self._recent_cancels.pop(job.id, None)
        if cancel_seen is not None and cancel_seen >= claim_sent:
            # the cancel NOTIFY beat the claim's answer. One that arrived before the claim was even sent was for an
            # earlier run of the job (it was requeued since): a job is only claimed while no cancel is pending.
            self._stop_job(active, "cancel")

    def _stop_job(self, active: ActiveJob, reason: str) -> None:
        """Stop a job's task (cancel NOTIFY, lost lease, shutdown). A job already writing its result is left be."""
        if active.finishing or active.stop_reason is not None or active.task is None or active.task.done():
            return
        active.stop_reason = reason
        log.info("stopping job: %s", reason, extra=active.log_extra("stop_job"))
        if active.started:
            active.task.cancel()
        # else: a task cancelled before its first step would skip every handler of _run_job (no cancel written, the
        # slot never freed); it sees stop_reason first thing instead

    # ## One job
    async def _run_job(self, active: ActiveJob) -> None:
        job = active.job
        outcome = "failed"
        active.started = True
        try:
            try:
                if active.stop_reason is not None:
                    raise asyncio.CancelledError           # stopped before this task first ran
                init_image = await self.storage.download_input(job.init_image_path) if job.init_image_path else None
                started = time.monotonic()
                self._set_deadline(active, self.generation_timeout,
                                   f"generation timed out after {self.generation_timeout:g} s")
                result = await generate_with_calls(
                    self.backend, job.to_request(init_image),
                    lambda step, total: self._on_progress(active, step, total), self._call_tracker(active))
                active.deadline = math.inf
                self.metrics.generation_seconds.observe(time.monotonic() - started)
                check_png(result.png, width=job.request.width, height=job.request.height,
                          max_bytes=self.max_result_bytes,
                          backend=result.backend or self.backend.name)    # InvalidBackendResult: nothing uploaded
                await self._lease_window_for_upload(active)
                uploaded = active.upload_started = time.monotonic()
                self._extend_upload_deadline(active)
                stored = await self.storage.upload_result(job.result_key, result.png)
                self.metrics.upload_seconds.observe(time.monotonic() - uploaded)
                active.deadline = math.inf
                active.upload_started = None
                active.finishing = True
                self._cancel_progress(active)
                completed = await self._completer.submit(self._completion(job, result, stored.size))
                outcome = "succeeded" if completed else "lease_lost"
                if completed:
                    self._fault_cleared()
                    self._count_cost(result)
                    if log.isEnabledFor(logging.INFO):
                        log.info("succeeded", extra=active.log_extra(
                            "complete_jobs", backend=result.backend,
                            duration_s=round(time.monotonic() - active.claimed_at, 3)))
                else:
                    log.warning("lease lost before completion; result dropped", extra=active.log_extra("complete_jobs"))
            except asyncio.CancelledError:
                if active.stop_reason is None:
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                outcome = await self._after_stop(active)
            except Exception as exc:
                active.finishing = True                # the failure write must not be interrupted either
                outcome = await self._after_error(active, exc)
        finally:
            self._cancel_progress(active)
            if self._active.get(job.id) is active:    # not a later attempt of the same job, claimed meanwhile
                del self._active[job.id]
            self._outcomes[outcome].inc()
            self._job_seconds[outcome].observe(time.monotonic() - active.claimed_at)
            if self._signal is not None:
                self._signal.set()

    # ## Deadlines
    def _set_deadline(self, active: ActiveJob, seconds: float, error: str) -> None:
        """Stop the job's task `seconds` from now (plus at most one tick) and fail the attempt with `error`.

        One watchdog scanning the jobs each tick instead of an `asyncio.timeout` per call: two timer-heap entries
        per job were a fifth of the worker's CPU time on the queue path."""
        active.deadline = time.monotonic() + seconds
        active.deadline_error = error

    async def _deadline_loop(self) -> None:
        while True:
            await asyncio.sleep(self.deadline_tick)
            now = time.monotonic()
            for active in [a for a in self._active.values() if a.deadline <= now]:
                active.deadline = math.inf
                self._stop_job(active, "deadline")

    def _extend_upload_deadline(self, active: ActiveJob) -> None:
        """Stop the upload before the lease could have run out (less a margin and one watchdog tick), and after
        `upload_timeout` in any case. Set when the upload starts and moved on by every renewal that confirms the
        lease meanwhile, so an upload may outlast one lease while the worker is healthy, never the lease itself."""
        started = active.upload_started
        if started is None or active.finishing or active.stop_reason is not None:
            return
        surely_held = active.lease_held_until - self.upload_lease_margin - self.deadline_tick
        cap = started + self.upload_timeout
        deadline = max(started, min(surely_held, cap))
        if active.deadline != math.inf and deadline <= active.deadline:
            return
        active.deadline = deadline
        why = "the upload timeout" if cap <= surely_held else "the time surely left on the lease"
        active.deadline_error = f"upload did not finish within {deadline - started:.1f} s ({why})"

    async def _lease_window_for_upload(self, active: ActiveJob) -> float:
        """Seconds the upload may take while this worker surely still holds the job's lease.

        The object key is fixed (`<user_id>/<job_id>.png`), so a worker that stalled past its lease (GC pause,
        blocked loop, frozen VM, partition) must not upload over the result of the job's next owner. Nobody can
        take the job before its lease expires, so the upload is safe while the lease surely lasts: when less than
        half a lease is left, a fenced renewal confirms and extends it first (a lost lease drops the result
        without uploading), checked again if a stall ate the confirmed time. The window excludes a safety margin
        for clock rate and scheduling. What remains is a stall between this check and the storage request
        itself, which only a conditional write in the object store could close.
        """
        margin = self.upload_lease_margin
        for _ in range(UPLOAD_LEASE_CHECKS):
            window = active.lease_held_until - time.monotonic() - margin
            if window >= self.lease_seconds / 2 - margin:
                return window                      # enough of the lease left: no round trip needed
            sent = time.monotonic()
            alive = await self.write("renew_leases", lambda: self.queue.renew_leases([active.held]))
            if active.job.id not in alive:
                raise LeaseLost("lease lost before upload; the result is dropped and nothing is uploaded")
            active.lease_held_until = max(active.lease_held_until, sent + self.lease_seconds)
            if alive[active.job.id]:
                active.stop_reason = "cancel"
                raise asyncio.CancelledError
            # loop: a stall after the answer arrived would have eaten the lease it confirmed; check again
        raise Transient("could not confirm the lease before uploading: the worker keeps stalling; retrying later")

    def _completion(self, job: Job, result: GenerationResult, size: int) -> Completion:
        gpu_seconds = result.gpu_seconds
        cost = result.cost_usd
        if cost is None and gpu_seconds is not None and result.gpu_type in self.gpu_prices:
            cost = round(gpu_seconds * self.gpu_prices[result.gpu_type], 6)
        return Completion(job_id=job.id, attempt=job.attempt, result_path=job.result_key, result_bytes=size,
                          backend=result.backend, backend_call_id=result.backend_call_id,
                          gpu_seconds=gpu_seconds, cost_usd=cost, job_id_text=job.id_text)

    def _count_cost(self, result: GenerationResult) -> None:
        if result.gpu_seconds:
            self.metrics.gpu_seconds.inc(result.gpu_seconds)
        cost = result.cost_usd
        if cost is None and result.gpu_seconds and result.gpu_type in self.gpu_prices:
            cost = result.gpu_seconds * self.gpu_prices[result.gpu_type]
        if cost:
            self.metrics.cost_usd.inc(cost)

    async def _after_stop(self, active: ActiveJob) -> str:
        reason = active.stop_reason
        if reason == "deadline":                  # a failed attempt like any other Transient error
            active.finishing = True
            return await self._after_error(active, Transient(active.deadline_error))
        if reason == "cancel":
            acknowledged = await self._shielded_write(
                "acknowledge_cancel", lambda: self.queue.acknowledge_cancel(*active.held))
            if acknowledged:
                log.info("canceled", extra=active.log_extra("acknowledge_cancel"))
                return "canceled"
            # no cancel is requested on the row any more (an admin requeued the job) or the lease is lost: hand
            # the job back (fenced: a lost lease changes nothing) rather than leave it running until it is reaped
            if await self._shielded_write("release_jobs", lambda: self.queue.release_jobs([active.held])):
                log.warning("cancel no longer requested; job handed back", extra=active.log_extra("release_jobs"))
                return "released"
            log.warning("cancel not acknowledged: lease lost", extra=active.log_extra("acknowledge_cancel"))
            return "lease_lost"
        if reason == "lease_lost":
            log.warning("lease lost; job stopped, nothing written", extra=active.log_extra("renew_leases"))
            return "lease_lost"
        return "released"                         # shutdown: released in one batch by _shutdown

    async def _after_error(self, active: ActiveJob, exc: Exception) -> str:
        if isinstance(exc, WorkerFault | ConfigurationError):   # e.g. Modal refuses the token, app not deployed
            return await self._hand_back(active, exc)
        if isinstance(exc, BackendRestarted):                   # a redeploy ended the call: no attempt used, no pause
            self.metrics.backend_errors.labels(exc.error_code).inc()
            log.warning("job handed back: %s", exc, extra=active.log_extra("release_jobs", error_code=exc.error_code))
            released = await self._shielded_write("release_jobs", lambda: self.queue.release_jobs([active.held]))
            return "released" if released else "lease_lost"
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
        self.metrics.backend_errors.labels(code).inc()
        status = await self._shielded_write("fail_job", lambda: self.queue.fail_job(
            active.job.id, active.job.attempt, error_code=code, error_message=message, retryable=retryable))
        if status is None:
            log.warning("failure not recorded: lease lost", extra=active.log_extra("fail_job", error_code=code))
            return "lease_lost"
        if status == "queued":
            log.warning("attempt failed, will retry: %s", message,
                        extra=active.log_extra("fail_job", error_code=code, status=status))
            return "retried"
        log.error("failed: %s", message, extra=active.log_extra("fail_job", error_code=code, status=status))
        return "failed"

    # ## Worker faults: the job is not to blame
    async def _hand_back(self, active: ActiveJob, exc: WorkerFault | ConfigurationError) -> str:
        """Release the job without using its attempt, and stop claiming for a while (see WorkerFault).

        A ConfigurationError raised while running a job (the backend's credentials refused, its app not deployed)
        is the operator's to fix, like a WorkerFault: failing the job for it would burn every queued job's
        attempts in minutes."""
        self._fault_pause = min(FAULT_PAUSE_MAX, max(self.fault_pause_min, self._fault_pause * 2))
        self._claims_paused_until = max(self._claims_paused_until, time.monotonic() + self._fault_pause)
        self.health.fault = str(exc)
        self.metrics.backend_errors.labels(exc.error_code).inc()
        log.error("worker fault, job handed back and claims paused for %.0f s: %s", self._fault_pause, exc,
                  extra=active.log_extra("release_jobs", error_code=exc.error_code))
        released = await self._shielded_write("release_jobs", lambda: self.queue.release_jobs([active.held]))
        return "released" if released else "lease_lost"

    def _fault_cleared(self) -> None:
        if self.health.fault is not None:
            log.info("worker fault cleared: a job succeeded again", extra={"action": "complete_jobs"})
        self._fault_pause = 0.0
        self.health.fault = None

    # ## Backend calls (call-tracking backends: Modal)
    def _call_tracker(self, active: ActiveJob) -> CallTracker:
        """The previous attempt's call to re-attach to, how to record a new one, and when to leave it running: a job
        stopped by shutdown or a lost lease goes to another worker, which re-attaches to the call."""
        return CallTracker(previous_call_id=active.job.previous_call_id,
                           record=lambda call_id: self._record_call(active, call_id),
                           keep_running=lambda: active.stop_reason in ("shutdown", "lease_lost"),
                           on_version_mismatch=lambda app: self.metrics.backend_version_mismatch.labels(app).inc())

    async def _record_call(self, active: ActiveJob, call_id: str) -> bool:
        """Record the call id on the job row; False = the lease is lost. An unreachable database is no reason to stop a
        generation that is already paid for: the call then simply cannot be re-attached after a crash."""
        try:
            return await self.queue.record_backend_call(active.job.id, active.job.attempt, call_id)
        except DatabaseUnavailable:
            self.metrics.db_errors.labels("record_backend_call").inc()
            log.warning("could not record backend call %s: database unavailable", call_id,
                        extra=active.log_extra("record_backend_call"))
            return True

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
            still_held = await self.queue.report_progress(active.job.id, active.job.attempt, value)
        except DatabaseUnavailable:
            self.metrics.db_errors.labels("report_progress").inc()
            return
        self.metrics.progress_writes.inc()
        if not still_held:
            self._stop_job(active, "lease_lost")

    @staticmethod
    def _cancel_progress(active: ActiveJob) -> None:
        if active.progress_task is not None and not active.progress_task.done():
            active.progress_task.cancel()

    # ## Leases
    async def _renew_loop(self) -> None:
        interval = max(0.5, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            await self.renew_leases()

    async def renew_leases(self) -> None:
        held = [a.held for a in self._active.values()]
        if not held:
            return
        sent = time.monotonic()
        try:
            alive = await self.queue.renew_leases(held)
        except DatabaseUnavailable as exc:
            self.metrics.db_errors.labels("renew_leases").inc()
            log.warning("renew_leases failed (%s); retrying next round", exc, extra={"action": "renew_leases"})
            return
        self.health.db_ok()
        for job_id, attempt in held:
            active = self._active.get(job_id)
            if active is None or active.job.attempt != attempt:
                continue
            if job_id not in alive:
                self._stop_job(active, "lease_lost")
                continue
            active.lease_held_until = max(active.lease_held_until, sent + self.lease_seconds)
            self._extend_upload_deadline(active)
            if alive[job_id]:
                self._stop_job(active, "cancel")

    # ## Writes that must not be lost
    async def write(self, action: str, call: Callable[[], Awaitable[T]], *, deadline: float | None = None) -> T:
        """Run a queue call, retrying while the database is unreachable (up to `deadline` seconds)."""
        limit = self.final_write_deadline if deadline is None else deadline
        started = time.monotonic()
        delay = RETRY_DELAY_MIN
        attempt = 0
        while True:
            try:
                result = await call()
            except DatabaseUnavailable as exc:
                attempt += 1
                self.metrics.db_errors.labels(action).inc()
                if time.monotonic() - started + delay > limit:
                    log.error("%s gave up after %.0f s: %s", action, time.monotonic() - started, exc,
                              extra={"action": action})
                    raise
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("%s failed (%s); retrying", action, exc, extra={"action": action, "count": attempt})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_DELAY_MAX)
                continue
            self.health.db_ok()
            return result

    async def _shielded_write(self, action: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """A final write that a cancellation cannot interrupt; None if the database stayed unreachable."""
        try:
            return await asyncio.shield(self.write(action, call))
        except DatabaseUnavailable:
            return None

    # ## Shutdown
    async def _shutdown(self) -> None:
        assert self._force is not None
        self._stopping = True
        in_flight = [a.task for a in self._active.values() if a.task is not None]
        if in_flight and self.grace_period > 0:
            log.info("draining %s job(s), up to %.0f s", len(in_flight), self.grace_period,
                     extra={"action": "shutdown", "count": len(in_flight)})
            force = asyncio.create_task(self._force.wait())
            await self._wait_jobs_or_force(in_flight, force)
            force.cancel()
        to_release = [a for a in self._active.values() if not a.finishing]
        for active in to_release:
            self._stop_job(active, "shutdown")
        remaining = [a.task for a in self._active.values() if a.task is not None]
        if remaining:
            await asyncio.wait(remaining, timeout=FINISHING_WAIT_DEFAULT)
        held = [a.held for a in to_release if a.stop_reason == "shutdown"]
        if held:
            try:
                released = await asyncio.shield(self.write(
                    "release_jobs", lambda: self.queue.release_jobs(held), deadline=RELEASE_DEADLINE_DEFAULT))
                log.info("released %s unfinished job(s)", released, extra={"action": "release_jobs",
                                                                           "count": released})
            except DatabaseUnavailable:
                log.error("could not release %s job(s); they return to the queue when their leases expire",
                          len(held), extra={"action": "release_jobs", "count": len(held)})
        await self._completer.wait_idle(FINISHING_WAIT_DEFAULT)

    async def _wait_jobs_or_force(self, tasks: list[asyncio.Task[None]], force: asyncio.Task[Any]) -> None:
        deadline = time.monotonic() + self.grace_period
        pending = set(tasks)
        while pending and not force.done():
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            done, _ = await asyncio.wait([*pending, force], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
