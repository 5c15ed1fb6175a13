"""QueueClient: the worker's side of the database contract, one async method per `queue.*` SQL function.

Each method runs one named query from worker/queries.sql on a pooled autocommit connection (one round trip, one
transaction; claims go through the claim loop's own connection when one is given) and returns plain Python
values. psycopg errors are translated at this boundary, once (worker/queue_errors.py): a lost or refused connection becomes `DatabaseUnavailable` (a
`Transient`), which callers retry. Fencing is the SQL's job: a write for a lease this worker no longer holds
returns False / None / a missing id, never an exception.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from worker.client_requests import ENQUEUE_FIELDS, RateLimited, enqueue_as_client, ensure_user
from worker.config import LEASE_SECONDS_DEFAULT
from worker.db import DedicatedConnection
from worker.exceptions import BadRequest
from worker.jobs import Job, JobRecord, JobStats, JobStatus
from worker.queries import QUERIES, load_queries
from worker.queue_errors import DatabaseUnavailable, JobNotFound, translate_errors

__all__ = ["ENQUEUE_FIELDS", "QUERIES", "AdminAction", "Completion", "CostAlertDue", "DatabaseUnavailable",
           "JobNotFound", "QueueClient", "RateLimited", "enqueue_as_client", "ensure_user", "load_queries",
           "translate_errors"]
"""The queue's names live in four modules of one idea each (queries, errors, client requests, this client);
`from worker.queue import …` keeps reaching all of them."""


@dataclass(frozen=True, slots=True)
class AdminAction:
    """What an admin `cancel` or `requeue` did: the job's status before the call (read by the same statement, in its
    snapshot) and what the queue function returned. The SQL function decides; `changed` only reads its answer,
    because the function's return value alone is ambiguous (requeue of a queued job and a successful requeue both
    return queued; cancel of a queued job and of an already canceled one both return canceled)."""

    action: str
    """cancel | requeue"""
    job_id: UUID
    before: JobStatus
    outcome: str
    """cancel: canceled | cancel_requested | the final status it had; requeue: queued | the live status it had."""

    @classmethod
    def from_row(cls, action: str, job_id: UUID, row: dict[str, Any]) -> AdminAction:
        # `before` is null only if the job was inserted after the statement's snapshot: it was queued then
        before = JobStatus.QUEUED if row["before"] is None else JobStatus(row["before"])
        return cls(action=action, job_id=job_id, before=before, outcome=str(row["outcome"]))

    @property
    def changed(self) -> bool:
        """Whether the call did something: a live job canceled (or its cancel requested), a finished job requeued."""
        final = self.before in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
        if self.action == "cancel":
            return not final and self.outcome in ("canceled", "cancel_requested")
        return final and self.outcome == JobStatus.QUEUED


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished job for `complete_jobs`; result_path must be `<user_id>/<job_id>.png` (a CHECK enforces it).
    `claim` is the claim number the run holds (`Job.claim`): the SQL fence."""

    job_id: UUID
    claim: int
    result_path: str
    result_bytes: int
    backend: str
    backend_call_id: str | None = None
    gpu_seconds: float | None = None
    cost_usd: float | None = None
    job_id_text: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id_text or str(self.job_id), "claim": self.claim, "result_path": self.result_path,
                "result_bytes": self.result_bytes, "backend": self.backend, "backend_call_id": self.backend_call_id,
                "gpu_seconds": self.gpu_seconds, "cost_usd": self.cost_usd}


@dataclass(frozen=True, slots=True)
class CostAlertDue:
    """A cost alert this worker must send now (queue.record_cost_alert): today's UTC day, what was spent, which try."""

    day: date
    cost_usd: float
    gpu_seconds: float
    attempt: int


class QueueClient:
    """The queue functions as methods, bound to one worker id. `round_trips` counts statements sent."""

    def __init__(self, pool: AsyncConnectionPool, worker_id: str, *, lease_seconds: int = LEASE_SECONDS_DEFAULT,
                 claim_connection: DedicatedConnection | None = None) -> None:
        self.pool = pool
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.claim_connection = claim_connection
        self.round_trips = 0

    @contextlib.asynccontextmanager
    async def _connection(self, dedicated: DedicatedConnection | None = None,
                          ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, or `dedicated` when given (the claim loop's own)."""
        with translate_errors():
            async with (self.pool.connection() if dedicated is None else dedicated.connection()) as conn:
                try:
                    yield conn
                except psycopg.errors.ReadOnlySqlTransaction:
                    # the session keeps default_transaction_read_only from when it connected: a fresh connection
                    # is needed once the database is writable again (a closed one is replaced, not reused)
                    await conn.close()
                    raise

    async def _fetchall(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.round_trips += 1
        async with self._connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(QUERIES[name], params)
            return await cur.fetchall()

    async def _fetchval(self, name: str, params: dict[str, Any]) -> Any:
        self.round_trips += 1
        async with self._connection() as conn:
            cur = await conn.execute(QUERIES[name], params)
            row = await cur.fetchone()
            return None if row is None else row[0]

    # ## Worker API (fenced in SQL by worker id + the claim number `Job.claim`, never by the attempt)
    async def claim_jobs(self, max_jobs: int) -> list[Job]:
        self.round_trips += 1
        async with self._connection(self.claim_connection) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(QUERIES["claim_jobs"], {
                "worker_id": self.worker_id, "max_jobs": max_jobs, "lease_seconds": self.lease_seconds})
            return [Job.from_row(row) for row in await cur.fetchall()]

    async def renew_leases(self, held: Sequence[tuple[UUID, int]]) -> dict[UUID, bool]:
        """held: (job id, claim number) pairs. {job_id: cancel_requested} for the leases still held; a job
        missing from it was lost."""
        if not held:
            return {}
        rows = await self._fetchall("renew_leases", {
            "worker_id": self.worker_id, "job_ids": [h[0] for h in held], "claims": [h[1] for h in held],
            "lease_seconds": self.lease_seconds})
        return {row["job_id"]: bool(row["cancel_requested"]) for row in rows}

    async def report_progress(self, job_id: UUID, claim: int, progress: float) -> bool:
        return bool(await self._fetchval("report_progress", {
            "worker_id": self.worker_id, "job_id": job_id, "claim": claim, "progress": progress}))

    async def record_backend_call(self, job_id: UUID, claim: int, call_id: str) -> bool:
        """Record the run's backend call id (a Modal FunctionCall id) as soon as it exists; False = lease lost."""
        return bool(await self._fetchval("record_backend_call", {
            "worker_id": self.worker_id, "job_id": job_id, "claim": claim, "call_id": call_id}))

    async def complete_jobs(self, completions: Iterable[Completion]) -> set[UUID]:
        """The ids completed; a job missing from the set lost its lease (its result must be dropped)."""
        results = [c.to_json() for c in completions]
        if not results:
            return set()
        rows = await self._fetchall("complete_jobs", {"worker_id": self.worker_id, "results": json.dumps(results)})
        return {row["job_id"] for row in rows}

    async def fail_job(self, job_id: UUID, claim: int, *, error_code: str, error_message: str,
                       retryable: bool) -> str | None:
        """The new status (queued: retried after backoff; failed), or None when the lease was lost."""
        return await self._fetchval("fail_job", {
            "worker_id": self.worker_id, "job_id": job_id, "claim": claim, "error_code": error_code,
            "error_message": error_message, "retryable": retryable})

    async def acknowledge_cancel(self, job_id: UUID, claim: int) -> bool:
        return bool(await self._fetchval("acknowledge_cancel", {
            "worker_id": self.worker_id, "job_id": job_id, "claim": claim}))

    async def release_jobs(self, held: Sequence[tuple[UUID, int]]) -> int:
        if not held:
            return 0
        return int(await self._fetchval("release_jobs", {
            "worker_id": self.worker_id, "job_ids": [h[0] for h in held], "claims": [h[1] for h in held]}) or 0)

    # ## Maintenance and admin
    async def reap_expired_leases(self, max_jobs: int = 1000) -> int:
        return int(await self._fetchval("reap_expired_leases", {"max_jobs": max_jobs}) or 0)

    async def try_lead(self, lease_seconds: int) -> bool:
        """Take or renew the queue-metrics leader lease; True while this worker leads (queue.try_lead)."""
        params = {"worker_id": self.worker_id, "lease_seconds": lease_seconds}
        return bool(await self._fetchval("try_lead", params))

    async def resign_lead(self) -> bool:
        """End this worker's queue-metrics leader lease now; True if it held it (queue.resign_lead)."""
        return bool(await self._fetchval("resign_lead", {"worker_id": self.worker_id}))

    async def purge_finished_jobs(self, older_than: timedelta, max_jobs: int = 10000) -> list[tuple[UUID, str]]:
        """(job id, object key queued for deletion in queue.storage_deletions) of each job purged."""
        rows = await self._fetchall("purge_finished_jobs", {"older_than": older_than, "max_jobs": max_jobs})
        return [(row["job_id"], row["object_key"]) for row in rows]

    async def claim_storage_deletions(self, bucket: str, max_rows: int,
                                      lease_seconds: int = 300) -> list[tuple[int, str]]:
        """(outbox id, object key) of up to max_rows deletions queued for `bucket`, held for lease_seconds."""
        rows = await self._fetchall("claim_storage_deletions", {
            "bucket": bucket, "max_rows": max_rows, "lease_seconds": lease_seconds})
        return [(int(row["id"]), str(row["object_key"])) for row in rows]

    async def finish_storage_deletions(self, ids: Sequence[int], error: str | None = None) -> int:
        """error None: the objects are gone, drop the rows; else release them for the next drain."""
        return int(await self._fetchval("finish_storage_deletions", {"ids": list(ids), "error": error}) or 0)

    async def record_cost_alert(self, threshold_usd: float, *, max_attempts: int,
                                retry_after: timedelta) -> CostAlertDue | None:
        """The alert to send now, or None (below the threshold, delivered, given up, or another worker sends it)."""
        rows = await self._fetchall("record_cost_alert", {
            "threshold_usd": threshold_usd, "max_attempts": max_attempts, "retry_after": retry_after})
        if not rows:
            return None
        row = rows[0]
        return CostAlertDue(day=row["day"], cost_usd=float(row["cost_usd"]), gpu_seconds=float(row["gpu_seconds"]),
                            attempt=int(row["attempt"]))

    async def finish_cost_alert(self, day: date, attempt: int, error: str | None = None) -> bool:
        return bool(await self._fetchval("finish_cost_alert", {"day": day, "attempt": attempt, "error": error}))

    async def requeue_job(self, job_id: UUID, *, reset_attempts: bool = True) -> AdminAction:
        """queue.requeue_job, with the status the job had before (queued or running: nothing was done)."""
        (row,) = await self._fetchall("requeue_job", {"job_id": job_id, "reset_attempts": reset_attempts})
        return AdminAction.from_row("requeue", job_id, row)

    async def cancel_job(self, job_id: UUID) -> AdminAction:
        """queue.cancel_job, with the status the job had before (succeeded, failed, canceled: nothing was done)."""
        (row,) = await self._fetchall("cancel_job", {"job_id": job_id})
        return AdminAction.from_row("cancel", job_id, row)

    async def resolve_job_prefix(self, prefix: str) -> list[UUID]:
        """The ids of at most two jobs whose id starts with `prefix` (8..32 lowercase hex digits, no hyphens): one
        index range scan on the primary key, between the prefix padded with 0s and with fs."""
        if not 8 <= len(prefix) <= 32 or prefix.strip("0123456789abcdef"):
            raise BadRequest(f"job_id: {prefix!r} is not a prefix of 8 to 32 hex digits")
        low, high = UUID(prefix.ljust(32, "0")), UUID(prefix.ljust(32, "f"))
        rows = await self._fetchall("resolve_job_prefix", {"low": low, "high": high})
        return [row["id"] for row in rows]

    async def job_stats(self) -> JobStats:
        rows = await self._fetchall("job_stats", {})
        return JobStats.from_row(rows[0])

    async def get_job(self, job_id: UUID) -> JobRecord | None:
        rows = await self._fetchall("get_job", {"job_id": job_id})
        return JobRecord.from_row(rows[0]) if rows else None

    async def list_jobs(self, *, status: str | None = None, limit: int = 20) -> list[JobRecord]:
        rows = await self._fetchall("list_jobs", {"status": status, "limit": limit})
        return [JobRecord.from_row(row) for row in rows]
