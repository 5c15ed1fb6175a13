"""The runner when the database and the worker's own view of a job disagree for a moment: a cancel NOTIFY that
arrives before the claim's answer, a cancel remembered from an earlier run of a requeued job, a job re-claimed by
the worker that still runs its previous attempt, and a backend that says the worker itself is misconfigured."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import pytest

from tenkaigen_tools.testing import FaultInjectingBackend
from tests.integration.conftest import RunningWorker, completions, job_row, wait_for, wait_status
from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback
from worker.db import CANCEL_CHANNEL
from worker.exceptions import ConfigurationError
from worker.jobs import Job


async def listening(worker: RunningWorker) -> None:
    """Wait until the worker's listener has run LISTEN (a NOTIFY sent before that is not delivered to it)."""
    def connected() -> bool:
        listener = getattr(worker.runner, "listener", None)     # set once the runner's task has started
        return listener is not None and listener.connected.is_set()

    await wait_for(connected, within=5, message="the worker's listener")


def after_each_claim(worker: RunningWorker, hook: Callable[[list[Job]], Awaitable[None]]) -> None:
    """Run `hook` on the claimed jobs after the claim has committed, before the runner sees its answer."""
    claim = worker.queue.claim_jobs

    async def claim_then_hook(max_jobs: int) -> list[Job]:
        jobs = await claim(max_jobs)
        if jobs:
            await hook(jobs)
        return jobs

    worker.queue.claim_jobs = claim_then_hook  # type: ignore[method-assign]


async def test_a_cancel_that_beats_the_claims_answer_cancels_the_job_and_frees_its_slot(
    admin, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    worker = await start_worker(backend=backend, lease_seconds=3, concurrency=1)
    await listening(worker)
    runner = worker.runner

    async def cancel_before_the_answer(jobs: list[Job]) -> None:
        job_id = jobs[0].id
        assert admin.execute("select queue.cancel_job(%s)", (job_id,)).fetchone()[0] == "cancel_requested"
        await wait_for(lambda: job_id in runner.cancels.recent, within=5, message="the cancel NOTIFY")

    after_each_claim(worker, cancel_before_the_answer)
    job_id = make_job("cancel me [sleep=30]")
    row = await wait_for(wait_status(admin, job_id, "canceled"), within=5, message="the job to be canceled")
    assert row["attempts"] == 1 and row["locked_by"] is None
    await wait_for(lambda: not runner.active_jobs, within=5, message="the slot to be freed")
    assert backend.calls[str(job_id)] == 0, "stopped before the backend was called"
    del worker.queue.claim_jobs                       # claims as usual again
    second = make_job("the next one")
    await wait_for(wait_status(admin, second, "succeeded"), within=10, message="the freed slot to be used")


async def test_a_cancel_remembered_from_before_a_requeue_does_not_stop_the_next_run(
    admin, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("runs elsewhere first", status="running", max_attempts=2)     # held by someone-else:1:abc
    worker = await start_worker(backend=backend, lease_seconds=3)
    await listening(worker)
    assert admin.execute("select queue.cancel_job(%s)", (job_id,)).fetchone()[0] == "cancel_requested"
    await wait_for(lambda: job_id in worker.runner.cancels.recent, within=5, message="the cancel NOTIFY")
    assert admin.execute("select queue.acknowledge_cancel('someone-else:1:abc', %s, 1)", (job_id,)).fetchone()[0]
    assert admin.execute("select queue.requeue_job(%s, false)", (job_id,)).fetchone()[0] == "queued"
    row = await wait_for(wait_status(admin, job_id, "succeeded", "failed", "canceled"), within=10,
                         message="the requeued job to finish")
    assert row["status"] == "succeeded" and row["attempts"] == 2
    assert backend.calls[str(job_id)] == 1 and backend.cancelled == []
    assert completions(admin, job_id) == [(2, worker.worker_id)]


async def test_a_cancel_that_can_no_longer_be_acknowledged_hands_the_job_back(
    admin, make_job, start_worker, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FaultInjectingBackend()
    worker = await start_worker(backend=backend, lease_seconds=3, concurrency=1)
    await listening(worker)
    runner = worker.runner
    withdrawn: list[uuid.UUID] = []

    async def notify_a_withdrawn_cancel(jobs: list[Job]) -> None:
        """A cancel NOTIFY whose request is gone by the time the worker acts on it (an admin requeued the job)."""
        job_id = jobs[0].id
        if job_id in withdrawn:
            return
        withdrawn.append(job_id)
        admin.execute("select pg_notify(%s, %s)", (CANCEL_CHANNEL, str(job_id)))
        await wait_for(lambda: job_id in runner.cancels.recent, within=5, message="the cancel NOTIFY")

    after_each_claim(worker, notify_a_withdrawn_cancel)
    caplog.set_level(logging.WARNING, logger="tenkaigen.runner")
    job_id = make_job("keep me", max_attempts=1)
    row = await wait_for(wait_status(admin, job_id, "succeeded", "failed"), within=10, message="the job to finish")
    # stopped once and handed back (attempt not counted), then run to success on its only attempt
    assert row["status"] == "succeeded" and row["attempts"] == 1
    assert "cancel no longer requested; job handed back" in caplog.text
    assert completions(admin, job_id) == [(1, worker.worker_id)]


async def test_a_job_reclaimed_by_the_worker_still_running_its_previous_attempt_keeps_the_new_attempt(
    admin, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("slow [sleep=4]", max_attempts=5)
    worker = await start_worker(backend=backend, lease_seconds=2)
    runner = worker.runner
    renewals_down = True
    renew = runner.leases.renew

    async def renew_unless_down() -> None:           # a database outage that only the renewals notice
        if not renewals_down:
            await renew()

    runner.leases.renew = renew_unless_down  # type: ignore[method-assign]

    async def reap() -> None:                          # the other workers' reapers
        while True:
            await worker.queue.reap_expired_leases()
            await asyncio.sleep(0.3)

    reaper = asyncio.create_task(reap())
    try:
        await wait_for(lambda: job_row(admin, job_id)["attempts"] == 2 and job_id in runner.active_jobs
                       and runner.active_jobs[job_id].job.attempt == 2,
                       within=10, message="attempt 2 claimed by the same worker")
        renewals_down = False
        row = await wait_for(wait_status(admin, job_id, "succeeded", "failed"), within=20, message="the job")
    finally:
        reaper.cancel()
    assert row["status"] == "succeeded" and row["attempts"] == 2, "attempt 2 kept its lease and finished"
    assert completions(admin, job_id) == [(2, worker.worker_id)]
    assert backend.cancelled == [str(job_id)], "attempt 1 was stopped when its job was claimed again"


class MisconfiguredOnce(FaultInjectingBackend):
    """A backend whose first call finds the worker misconfigured (Modal refuses the token), then works."""

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        if not self.calls:
            self.calls[request.job_id] += 1
            raise ConfigurationError("Modal rejected this worker's credentials; set MODAL_TOKEN_ID and "
                                     "MODAL_TOKEN_SECRET")
        return await super().generate(request, on_progress)


async def test_a_backend_configuration_error_hands_the_job_back_and_pauses_claims(
    admin, make_job, start_worker
) -> None:
    job_id = make_job("no attempt lost to an operator's mistake", max_attempts=1)
    worker = await start_worker(backend=MisconfiguredOnce(), fault_pause=0.5)
    await wait_for(lambda: worker.runner.health.fault is not None, message="the fault reported")
    healthy, body = worker.runner.health.status()
    assert not healthy and "MODAL_TOKEN_ID" in str(body["fault"])
    row = await wait_for(wait_status(admin, job_id, "succeeded", "failed"), within=10, message="the job")
    assert row["status"] == "succeeded" and row["attempts"] == 1, "handed back, not failed"
    await wait_for(lambda: worker.runner.health.fault is None, within=5, message="a success to clear the fault")
