"""The fence is the claim number, not the attempt: a task left over from an earlier claim of the same job by the same
worker (its lease lost; the job failed, was requeued with its attempts reset and claimed again, attempt 1 again)
changes nothing through any worker write, while the current claim's writes go through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from tests.integration.conftest import job_row
from worker.db import open_pool
from worker.queue import Completion, QueueClient


@pytest.fixture
async def client(database: str) -> AsyncIterator[QueueClient]:
    pool = await open_pool(database, min_size=1, max_size=2)
    yield QueueClient(pool, "worker-a:1:aaaaaa", lease_seconds=30)
    await pool.close()


async def test_a_stale_claim_of_a_repeated_attempt_changes_nothing(admin: psycopg.Connection, make_job,
                                                                   client: QueueClient) -> None:
    job_id = make_job("requeued under a stale task", max_attempts=1)
    (stale,) = await client.claim_jobs(1)
    admin.execute("update generation_jobs set lease_expires_at = now() - interval '1 second' where id = %s", (job_id,))
    assert await client.reap_expired_leases() == 1            # no attempt left: failed
    assert (await client.requeue_job(job_id, reset_attempts=True)).changed
    (current,) = await client.claim_jobs(1)
    assert (current.id, current.attempt) == (stale.id, stale.attempt) == (job_id, 1), "the attempt repeats"
    assert current.claim == stale.claim + 1
    before = job_row(admin, job_id)

    assert await client.report_progress(job_id, stale.claim, 0.9) is False
    assert await client.record_backend_call(job_id, stale.claim, "fc-stale") is False
    assert await client.renew_leases([(job_id, stale.claim)]) == {}
    assert await client.complete_jobs([Completion(job_id, stale.claim, stale.result_key, 1, "stale")]) == set()
    assert await client.fail_job(job_id, stale.claim, error_code="x", error_message="stale",
                                 retryable=False) is None
    assert await client.acknowledge_cancel(job_id, stale.claim) is False
    assert await client.release_jobs([(job_id, stale.claim)]) == 0
    assert job_row(admin, job_id) == before, "the stale claim changed the new run"

    assert await client.complete_jobs([Completion(job_id, current.claim, current.result_key, 1, "placeholder")]) \
        == {job_id}
    assert job_row(admin, job_id)["status"] == "succeeded"
