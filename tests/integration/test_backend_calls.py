"""The runner and a call-tracking backend (Modal's shape) on a real PostgreSQL: the call id is on the job row while
the call runs, a worker that takes a job over gets the previous attempt's call id to re-attach to, a cancel cancels
the call, a shutdown or a lost lease leaves it running for the next owner, and a redeploy hands the job back
without using an attempt."""

from __future__ import annotations

import asyncio
import uuid

from tests.integration.conftest import job_row, wait_for, wait_status
from worker.backends.base import CallTracker, GenerationRequest, GenerationResult, ProgressCallback
from worker.exceptions import BackendRestarted
from worker.results import blank_png


class CallTrackingBackend:
    """Starts a "remote call" per generation (or re-attaches to the previous one) and waits until released."""

    name = "call-tracking-test-double"
    tracks_calls = True

    def __init__(self, *, restart_first: bool = False) -> None:
        self.trackers: list[CallTracker] = []
        self.call_ids: list[str] = []
        self.kept_running: list[bool] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.restart_first = restart_first

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback, *,
                       calls: CallTracker) -> GenerationResult:
        self.trackers.append(calls)
        if self.restart_first and len(self.trackers) == 1:
            raise BackendRestarted("the app was redeployed during the call")
        call_id = calls.previous_call_id or f"fc-{uuid.uuid4().hex[:8]}"
        if calls.previous_call_id is None:
            assert await calls.record(call_id)
        self.call_ids.append(call_id)
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.kept_running.append(calls.keep_running())
            raise
        return GenerationResult(png=blank_png(request.width, request.height), width=request.width,
                                height=request.height, seed=request.seed, steps=request.steps,
                                variant=request.variant, backend=self.name, backend_call_id=call_id)

    async def aclose(self) -> None:
        return None


async def test_the_call_id_is_on_the_running_job_as_soon_as_the_call_exists(admin, make_job, start_worker) -> None:
    backend = CallTrackingBackend()
    job_id = make_job("a dragon")
    await start_worker(backend=backend)
    row = await wait_for(lambda: (r := job_row(admin, job_id))["backend_call_id"] and r, message="call id recorded")
    assert row["status"] == "running" and row["backend_call_id"] == backend.call_ids[0]
    assert backend.trackers[0].previous_call_id is None
    backend.release.set()
    row = await wait_for(wait_status(admin, job_id, "succeeded"), message="success")
    assert row["backend_call_id"] == backend.call_ids[0]


async def test_a_worker_that_takes_over_after_a_crash_reattaches_to_the_previous_call(
    admin, make_job, start_worker
) -> None:
    first = CallTrackingBackend()
    job_id = make_job("a dragon")
    stalled = await start_worker(backend=first, lease_seconds=30, concurrency=1)
    await wait_for(lambda: job_row(admin, job_id)["backend_call_id"], message="first call recorded")
    original = first.call_ids[0]
    # the first worker stops renewing (crash, partition): its lease expires and the reaper requeues the job
    admin.execute("update generation_jobs set lease_expires_at = now() - interval '1 second' where id = %s",
                  (job_id,))
    assert admin.execute("select queue.reap_expired_leases()").fetchone()[0] == 1
    assert job_row(admin, job_id)["backend_call_id"] == original      # the reaper kept it
    second = CallTrackingBackend()
    await start_worker(backend=second)
    await asyncio.wait_for(second.started.wait(), 15)
    assert second.trackers[0].previous_call_id == original and second.call_ids == [original]
    second.release.set()
    row = await wait_for(wait_status(admin, job_id, "succeeded"), message="success")
    assert row["attempts"] == 2 and row["backend_call_id"] == original
    # the stalled worker learns it lost the lease: it stops without cancelling the call the new owner uses
    await wait_for(lambda: first.kept_running, within=20, message="stalled worker to stop")
    assert first.kept_running == [True]
    await stalled.stop()


async def test_a_cancel_cancels_the_call_but_a_shutdown_leaves_it_to_the_next_worker(
    admin, make_job, start_worker
) -> None:
    backend = CallTrackingBackend()
    canceled, released = make_job("cancel me"), make_job("release me")
    worker = await start_worker(backend=backend)
    await wait_for(lambda: len(backend.call_ids) == 2, message="both calls")
    admin.execute("select queue.cancel_job(%s)", (canceled,))
    await wait_for(wait_status(admin, canceled, "canceled"), message="cancel")
    assert backend.kept_running == [False]
    await worker.stop()
    row = job_row(admin, released)
    assert row["status"] == "queued" and row["attempts"] == 0 and backend.kept_running == [False, True]
    assert row["backend_call_id"] in backend.call_ids                  # kept for the next claim to re-attach


async def test_a_redeploy_during_a_call_hands_the_job_back_without_using_an_attempt(
    admin, make_job, start_worker
) -> None:
    backend = CallTrackingBackend(restart_first=True)
    job_id = make_job("a dragon")
    worker = await start_worker(backend=backend)
    await asyncio.wait_for(backend.started.wait(), 15)                 # the second claim's call
    row = job_row(admin, job_id)
    assert row["status"] == "running" and row["attempts"] == 1        # the first claim was given back
    assert worker.runner.health.fault is None                          # not a fault: claims were not paused
    backend.release.set()
    await wait_for(wait_status(admin, job_id, "succeeded"), message="success")
    assert worker.runner.metrics.jobs_finished.labels("released")._value.get() == 1
