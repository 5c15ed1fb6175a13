"""Drain on stop (SIGTERM): no new claims, in-flight jobs finish within the grace period with their leases renewed
and their cancels honoured, a second stop skips the grace. Real PostgreSQL, a slowed-down backend double."""

from __future__ import annotations

import asyncio
import time

import psycopg

from tenkaigen_tools.testing import FaultInjectingBackend
from tests.integration.conftest import job_row, wait_for, wait_status
from tests.support import as_client
from worker.config import GRACE_PERIOD_DEFAULT


async def test_nothing_is_claimed_after_the_first_stop_while_in_flight_jobs_finish(
    admin, make_job, start_worker
) -> None:
    running = make_job("in flight [sleep=2]")
    worker = await start_worker(backend=FaultInjectingBackend(), grace_period=30)
    await wait_for(wait_status(admin, running, "running"), message="the first job to start")
    worker.runner.stop()
    assert worker.runner.health.draining, "/readyz reports the drain at once"
    late = make_job("arrives during the drain")           # its NOTIFY reaches a worker that is still draining
    assert not worker.task.done()
    await asyncio.wait_for(asyncio.shield(worker.task), 30)
    assert job_row(admin, running)["status"] == "succeeded", "the in-flight job finished within the grace"
    row = job_row(admin, late)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None, "never claimed"
    assert worker.runner.claimed == 1


async def test_lease_renewal_keeps_running_during_the_drain(admin, make_job, start_worker) -> None:
    job_id = make_job("outlasts its lease [sleep=4]")
    worker = await start_worker(backend=FaultInjectingBackend(), lease_seconds=2, grace_period=30)
    await wait_for(wait_status(admin, job_id, "running"), message="the job to start")

    async def reap() -> None:            # another worker reaping all the while must find nothing to reap
        while True:
            await worker.queue.reap_expired_leases()
            await asyncio.sleep(0.2)

    reaper = asyncio.create_task(reap())
    try:
        worker.runner.stop()
        await asyncio.wait_for(asyncio.shield(worker.task), 30)
    finally:
        reaper.cancel()
    row = job_row(admin, job_id)
    assert row["status"] == "succeeded" and row["attempts"] == 1 and row["error_code"] is None, row


async def test_a_cancel_during_the_drain_stops_the_job_at_once(admin, user, make_job, start_worker) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("long [sleep=60]")
    worker = await start_worker(backend=backend, grace_period=60)
    await wait_for(wait_status(admin, job_id, "running"), message="the job to start")
    await asyncio.wait_for(backend.started_event(str(job_id)).wait(), 5)
    worker.runner.stop()
    started = time.monotonic()
    with as_client(admin, user) as conn:
        assert conn.execute("select public.cancel_generation_job(%s)", (job_id,)).fetchone()[0] == "cancel_requested"
    await wait_for(wait_status(admin, job_id, "canceled"), within=5, message="the cancel NOTIFY during the drain")
    await asyncio.wait_for(asyncio.shield(worker.task), 10)
    assert time.monotonic() - started < 10, "the worker stopped once its last job was canceled, not at the grace"
    assert backend.cancelled == [str(job_id)]


async def test_a_second_stop_skips_the_grace_period_and_hands_the_job_back(
    admin, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("long [sleep=60]")
    worker = await start_worker(backend=backend, grace_period=60)
    await wait_for(wait_status(admin, job_id, "running"), message="the job to start")
    worker.runner.stop()
    assert not worker.task.done()
    started = time.monotonic()
    worker.runner.stop()
    await asyncio.wait_for(asyncio.shield(worker.task), 10)
    assert time.monotonic() - started < 10, "the second stop did not wait for the 60 s grace"
    row = job_row(admin, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None, "released, not counted"
    assert backend.cancelled == [str(job_id)]


def test_the_default_grace_covers_a_cold_generation_of_the_default_variant() -> None:
    # docs/costs.md: lightning-8 takes 4-20 s warm on L40S/A10/L4, plus a 40-90 s cold start
    assert GRACE_PERIOD_DEFAULT >= 90 + 20


async def test_a_claim_that_answers_after_the_stop_hands_its_jobs_back_before_any_work(
    admin, database, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("claimed as the worker stops")
    with psycopg.connect(database) as blocker:
        # the table lock holds the worker's next claim (FOR UPDATE needs ROW SHARE) until the stop has come
        blocker.execute("lock table public.generation_jobs in exclusive mode")
        worker = await start_worker(backend=backend, listen=False)
        await wait_for(lambda: admin.execute(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like '%claim_jobs%'"
        ).fetchone()[0], message="the claim to wait on the lock")
        worker.runner.stop()
        blocker.commit()                                   # the claim now takes the job, after the stop
    await asyncio.wait_for(asyncio.shield(worker.task), 15)
    row = job_row(admin, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None, "handed back at once"
    assert worker.runner.claimed == 1 and not backend.calls, "claimed, but never started"
    assert worker.runner.metrics.jobs_finished.labels("released")._value.get() == 1
