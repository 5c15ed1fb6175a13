"""QueueClient against the real queue functions: one method per SQL function, every write fenced."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import psycopg.sql
import pytest

from tests.integration.conftest import job_row
from worker.db import DedicatedConnection, open_pool
from worker.exceptions import BadRequest
from worker.jobs import JobStatus
from worker.queue import (
    Completion,
    DatabaseUnavailable,
    QueueClient,
    RateLimited,
    enqueue_as_client,
    ensure_user,
)


@pytest.fixture
async def pool(database: str) -> AsyncIterator:
    pool = await open_pool(database, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
def client(pool) -> QueueClient:  # type: ignore[no-untyped-def]
    return QueueClient(pool, "worker-a:1:aaaaaa", lease_seconds=30)


def completion(job, **overrides: object) -> Completion:  # type: ignore[no-untyped-def]
    values = {"job_id": job.id, "claim": job.claim, "result_path": job.result_key, "result_bytes": 10,
              "backend": "placeholder"}
    values.update(overrides)
    return Completion(**values)  # type: ignore[arg-type]


def test_job_status_mirrors_the_databases_allowed_values(admin: psycopg.Connection) -> None:
    definition = admin.execute(
        "select pg_get_constraintdef(oid) from pg_constraint where conname = 'status_is_valid'").fetchone()[0]
    import re

    allowed = set(re.findall(r"'([a-z]+)'::text", definition))
    assert allowed == {s.value for s in JobStatus}


async def test_claim_returns_the_resolved_request_with_the_attempt(admin, make_job, client) -> None:
    job_id = make_job("a fox", style="anime", seed=42)
    (job,) = await client.claim_jobs(5)
    request = job.request
    assert job.id == job_id and job.attempt == 1 and request.seed == 42 and request.variant == "lightning-8"
    assert request.prompt.startswith("anime style illustration of a fox")
    assert request.negative_prompt and request.steps == 4
    row = job_row(admin, job_id)
    assert row["status"] == "running" and row["locked_by"] == client.worker_id
    assert await client.claim_jobs(5) == []


async def test_claims_never_exceed_max_jobs(make_job, client) -> None:
    for i in range(5):
        make_job(f"job {i}")
    assert len(await client.claim_jobs(3)) == 3
    assert len(await client.claim_jobs(3)) == 2


async def test_every_write_is_fenced_by_worker_and_attempt(admin, make_job, pool, client) -> None:
    job_id = make_job("contested")
    (job,) = await client.claim_jobs(1)
    other = QueueClient(pool, "worker-b:2:bbbbbb", lease_seconds=30)
    assert await other.report_progress(job.id, job.claim, 0.5) is False
    assert await other.complete_jobs([completion(job)]) == set()
    assert await other.fail_job(job.id, job.claim, error_code="x", error_message="x", retryable=True) is None
    assert await other.acknowledge_cancel(job.id, job.claim) is False
    assert await other.release_jobs([(job.id, job.claim)]) == 0
    assert await other.renew_leases([(job.id, job.claim)]) == {}
    assert await client.report_progress(job.id, job.claim + 1, 0.5) is False, "wrong attempt"
    assert await client.report_progress(job.id, job.claim, 0.5) is True
    assert await client.renew_leases([(job.id, job.claim)]) == {job.id: False}
    assert await client.complete_jobs([completion(job)]) == {job.id}
    assert await client.complete_jobs([completion(job)]) == set(), "a duplicate completion is a no-op"
    assert job_row(admin, job_id)["status"] == "succeeded"


async def test_complete_jobs_takes_a_batch_and_reports_only_what_it_completed(make_job, client, pool) -> None:
    for i in range(4):
        make_job(f"job {i}")
    jobs = await client.claim_jobs(4)
    stolen = jobs[0]
    done = await client.complete_jobs([completion(j) for j in jobs[1:]]
                                      + [completion(stolen, claim=stolen.claim + 1)])
    assert done == {j.id for j in jobs[1:]}


async def test_a_renewal_reports_a_requested_cancel_and_acknowledge_cancels(admin, make_job, client) -> None:
    job_id = make_job("stop me")
    (job,) = await client.claim_jobs(1)
    assert (await client.cancel_job(job_id)).outcome == "cancel_requested"
    assert await client.renew_leases([(job.id, job.claim)]) == {job.id: True}
    assert await client.acknowledge_cancel(job.id, job.claim) is True
    assert job_row(admin, job_id)["status"] == "canceled"


async def test_fail_job_retries_then_fails_and_release_does_not_count_the_attempt(admin, make_job, client) -> None:
    job_id = make_job("flaky", max_attempts=2)
    (job,) = await client.claim_jobs(1)
    assert await client.fail_job(job.id, job.claim, error_code="transient", error_message="busy",
                                 retryable=True) == "queued"
    admin.execute("update generation_jobs set run_after = now() where id = %s", (job_id,))
    (job,) = await client.claim_jobs(1)
    assert job.attempt == 2
    assert await client.release_jobs([(job.id, job.claim)]) == 1
    (job,) = await client.claim_jobs(1)
    assert job.attempt == 2, "a released attempt is not counted"
    assert await client.fail_job(job.id, job.claim, error_code="transient", error_message="busy again",
                                 retryable=True) == "failed", "attempts exhausted"
    assert job_row(admin, job_id)["error_message"] == "busy again"


async def test_reap_requeue_stats_and_listing(admin, make_job, client) -> None:
    job_id = make_job("abandoned")
    await client.claim_jobs(1)
    admin.execute("update generation_jobs set lease_expires_at = now() - interval '1 second'")
    assert await client.reap_expired_leases() == 1
    stats = await client.job_stats()
    assert (stats.queued, stats.running) == (1, 0)
    canceled = await client.cancel_job(job_id)
    assert (canceled.before, canceled.outcome, canceled.changed) == (JobStatus.QUEUED, "canceled", True)
    requeued = await client.requeue_job(job_id)
    assert (requeued.before, requeued.outcome, requeued.changed) == (JobStatus.CANCELED, "queued", True)
    again = await client.requeue_job(job_id)
    assert (again.before, again.outcome, again.changed) == (JobStatus.QUEUED, "queued", False)
    (record,) = await client.list_jobs(status="queued")
    assert record.id == job_id and record.status is JobStatus.QUEUED and record.attempts == 0
    assert (await client.get_job(job_id)).prompt == "abandoned"
    assert await client.get_job(uuid.uuid4()) is None


async def test_purge_returns_the_result_paths_of_old_finished_jobs(admin, make_job, client) -> None:
    make_job("old")
    (job,) = await client.claim_jobs(1)
    await client.complete_jobs([completion(job)])
    admin.execute("update generation_jobs set finished_at = now() - interval '40 days'")
    assert await client.purge_finished_jobs(timedelta(days=30)) == [(job.id, job.result_key)]
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 0


async def test_a_client_enqueue_goes_through_rls_validation_and_quotas(admin, database) -> None:
    user = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await ensure_user(conn, user, "someone@example.test")
        await ensure_user(conn, user, "someone@example.test")            # idempotent
        row = await enqueue_as_client(conn, user, prompt="A majestic dragon", style="anime", width=768)
        assert row["status"] == "queued" and row["variant"] == "lightning-8" and row["seed"] is not None
        with pytest.raises(BadRequest, match=r"^width: must be a multiple of 16"):
            await enqueue_as_client(conn, user, prompt="x", width=1000)
        with pytest.raises(BadRequest, match="not a request field"):
            await enqueue_as_client(conn, user, prompt="x", status="succeeded")
        await enqueue_as_client(conn, user, prompt="two")
        await enqueue_as_client(conn, user, prompt="three")
        with pytest.raises(RateLimited, match=r"^rate_limited: at most 3 active jobs"):
            await enqueue_as_client(conn, user, prompt="four")
    assert admin.execute("select user_id from generation_jobs where id = %s", (row["id"],)).fetchone()[0] == user


async def test_a_database_that_went_away_raises_database_unavailable(database, db_server) -> None:
    pool = await open_pool(database, min_size=1, max_size=1)
    client = QueueClient(pool, "w:1:x")
    try:
        with psycopg.connect(db_server.admin_dsn, autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                          (psycopg.conninfo.conninfo_to_dict(database)["dbname"],))
        with pytest.raises(DatabaseUnavailable):
            await client.claim_jobs(1)
        assert await client.claim_jobs(1) == [], "the pool replaced the broken connection"
    finally:
        await pool.close()


async def test_a_read_only_database_is_unavailable_until_it_is_writable_again(
    database, db_server, admin, make_job
) -> None:
    """Supabase turns a project whose disk is full read-only (default_transaction_read_only at database level):
    retried like an outage, and the sessions opened meanwhile, which stay read-only, are replaced afterwards."""
    dbname = psycopg.conninfo.conninfo_to_dict(database)["dbname"]
    setting = "alter database {} set default_transaction_read_only = on"
    with psycopg.connect(db_server.admin_dsn, autocommit=True) as server:
        server.execute(psycopg.sql.SQL(setting).format(psycopg.sql.Identifier(dbname)))
        pool = await open_pool(database, min_size=1, max_size=1)
        claims = DedicatedConnection(database, application_name="tenkaigen-claims-test")
        client = QueueClient(pool, "w:1:x", claim_connection=claims)
        try:
            with pytest.raises(DatabaseUnavailable, match="read-only"):
                await client.claim_jobs(1)
            with pytest.raises(DatabaseUnavailable, match="read-only"):
                await client.reap_expired_leases()
            server.execute(psycopg.sql.SQL("alter database {} reset default_transaction_read_only").format(
                psycopg.sql.Identifier(dbname)))
            job_id = make_job("after the disk was freed")
            assert [job.id for job in await client.claim_jobs(1)] == [job_id], "the claim connection was replaced"
            assert await client.reap_expired_leases() == 0, "the pooled connection was replaced"
            assert job_row(admin, job_id)["status"] == "running"
        finally:
            server.execute(psycopg.sql.SQL("alter database {} reset default_transaction_read_only").format(
                psycopg.sql.Identifier(dbname)))
            await claims.close()
            await pool.close()


async def test_the_claim_connection_is_reopened_after_the_database_dropped_it(database, db_server, make_job) -> None:
    pool = await open_pool(database, min_size=1, max_size=1)
    claims = DedicatedConnection(database, application_name="tenkaigen-claims-test")
    client = QueueClient(pool, "w:1:x", claim_connection=claims)
    try:
        assert await client.claim_jobs(1) == []
        with psycopg.connect(db_server.admin_dsn, autocommit=True) as admin:
            (terminated,) = admin.execute(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = 'tenkaigen-claims-test') t").fetchone()
        assert terminated == 1, "the claim went through its own connection, not the pool"
        with pytest.raises(DatabaseUnavailable):
            await client.claim_jobs(1)
        job_id = make_job("after the restart")
        assert [job.id for job in await client.claim_jobs(1)] == [job_id], "the next claim reconnected"
    finally:
        await claims.close()
        await pool.close()


def test_the_claim_uses_the_partial_claimable_index(admin, user) -> None:
    admin.execute("insert into generation_jobs (user_id, prompt, width, height) "
                  "select %s, 'p' || g, 256, 256 from generate_series(1, 3000) g", (user,))
    admin.execute("update generation_jobs set status = 'running', attempts = 1, locked_by = 'x', "
                  "lease_expires_at = now() + interval '1 minute', started_at = now() "
                  "where prompt not like 'p1%'")
    admin.execute("analyze generation_jobs")
    with admin.transaction():
        # plan it under claim_jobs' own settings (hash and merge joins off), as the function runs it
        (config,) = admin.execute("select proconfig from pg_proc "
                                  "where oid = 'queue.claim_jobs(text, integer, integer)'::regprocedure").fetchone()
        for name, value in (setting.split("=", 1) for setting in config):
            if name != "search_path":
                admin.execute("select set_config(%s, %s, true)", (name, value))
        plan = "\n".join(r[0] for r in admin.execute(
            "explain select j.id from public.generation_jobs j where j.status = 'queued' and j.run_after <= now() "
            "order by j.priority desc, j.run_after, j.created_at, j.id limit 50 for update skip locked"))
    assert "generation_jobs_claimable_idx" in plan, plan
    assert "Sort" not in plan and "Seq Scan" not in plan, "the index gives the total claim order: " + plan
