"""The library functions behind the CLI: one async function per `tenkaigen` command.

`worker` wires settings → backend, storage, pool, queue client, metrics server, scheduler and runner, installs
SIGTERM/SIGINT handlers and runs until stopped. The admin commands (`enqueue`, `jobs`, `cancel`, `requeue`,
`stats`) need only a database URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict

from worker import maintenance
from worker.backends.registry import create_backend
from worker.config import Settings
from worker.db import DedicatedConnection, connection_kwargs, describe_connect_error, open_pool
from worker.exceptions import BadRequest, ConfigurationError
from worker.jobs import JobRecord, JobStats, JobStatus
from worker.logging import logger
from worker.metrics import Metrics
from worker.probes import Health, MetricsServer
from worker.queue import QUERIES, AdminAction, JobNotFound, QueueClient, enqueue_as_client, ensure_user
from worker.runner import Runner, make_worker_id
from worker.scheduler import build_scheduler
from worker.storage import create_storage

DEV_USER_ID = UUID("d0000000-0000-4000-8000-000000000001")
DEV_USER_EMAIL = "dev@tenkaigen.local"
HEX_DIGITS = "0123456789abcdef"

log = logger("commands")


async def check_schema(queue: QueueClient) -> None:
    """Refuse to start against a database without the queue functions, or as a role that cannot run them."""
    async with queue.pool.connection() as conn:
        row = await (await conn.execute(QUERIES["check_schema"])).fetchone()
    assert row is not None
    has_queue, can_execute, role = row
    if not has_queue:
        raise ConfigurationError(
            "DATABASE_URL: this database has no queue.claim_jobs; apply the migrations first "
            "(supabase db push, or tenkaigen db migrate)")
    if not can_execute:
        raise ConfigurationError(
            f"DATABASE_URL: role {role} may not execute the queue functions; connect as tenkaigen_worker "
            "(alter role tenkaigen_worker login password '…') or postgres")


TEST_DOUBLE_BACKENDS = frozenset({"noop", "chaos"})
TEST_DOUBLE_STORAGES = frozenset({"memory"})


async def worker(settings: Settings, *, stop_event: asyncio.Event | None = None,
                 install_signal_handlers: bool = True) -> None:
    """Run a worker until SIGTERM/SIGINT (or `stop_event`): claim, generate, upload, complete."""
    worker_id = settings.worker_id or make_worker_id()
    for setting, value, doubles in (("TENKAIGEN_BACKEND", settings.backend, TEST_DOUBLE_BACKENDS),
                                    ("TENKAIGEN_STORAGE", settings.storage, TEST_DOUBLE_STORAGES)):
        if value in doubles:
            log.warning("%s=%s is a benchmark/test double: jobs succeed without a real image being kept; never "
                        "point it at a database that serves users", setting, value, extra={"action": "start"})
    backend = create_backend(settings)
    storage = create_storage(settings)
    pool = None
    claim_connection = DedicatedConnection(settings.dsn, application_name="tenkaigen-claims")
    server: MetricsServer | None = None
    scheduler = None
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    try:
        pool = await open_pool(settings.dsn, min_size=min(2, settings.pool_size), max_size=settings.pool_size)
        queue = QueueClient(pool, worker_id, lease_seconds=settings.lease_seconds,
                            claim_connection=claim_connection)
        await check_schema(queue)
        await storage.check()            # a refused Storage key or a missing bucket: refuse to start, claim nothing
        metrics = Metrics(backend=settings.backend)
        health = Health(stale_after=max(60.0, 3 * settings.poll_interval), detail={"worker_id": worker_id})
        if settings.metrics_port:
            server = MetricsServer(metrics, health, host=settings.metrics_host, port=settings.metrics_port)
            try:
                await server.start()
            except OSError as exc:
                raise ConfigurationError(
                    f"TENKAIGEN_METRICS_PORT: cannot listen on {settings.metrics_host}:{settings.metrics_port} "
                    f"({exc.strerror or exc}); choose a free port or 0 to turn the endpoint off") from None
        runner = Runner(
            queue=queue, backend=backend, storage=storage, dsn=settings.dsn, concurrency=settings.concurrency,
            poll_interval=settings.poll_interval, grace_period=settings.grace_period,
            progress_interval=settings.progress_interval, completion_batch_size=settings.completion_batch_size,
            generation_timeout=settings.generation_timeout_seconds, max_result_bytes=settings.max_result_bytes,
            gpu_prices=settings.gpu_prices, metrics=metrics, health=health)
        if settings.scheduler_enabled:
            scheduler = build_scheduler(settings, queue, storage, metrics)
            scheduler.start()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, _on_signal, runner, sig)
                handled.append(sig)
        watcher = asyncio.create_task(_stop_when(stop_event, runner)) if stop_event is not None else None
        gc.freeze()      # the modules and objects built at start-up are permanent: keep them out of GC pauses
        log.info("worker %s ready", worker_id, extra={"action": "start", "worker_id": worker_id})
        try:
            await runner.run()
        finally:
            if watcher is not None:
                watcher.cancel()
            with contextlib.suppress(Exception):      # hand the queue gauges to another replica at once
                await maintenance.resign_queue_metrics(queue, metrics)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if server is not None:
            await server.close()
        with contextlib.suppress(Exception):
            await backend.aclose()
        with contextlib.suppress(Exception):
            await storage.aclose()
        await claim_connection.close()
        if pool is not None:
            await pool.close()


def _on_signal(runner: Runner, sig: signal.Signals) -> None:
    log.info("%s received: stopping (again to skip the grace period)", sig.name, extra={"action": "stop"})
    runner.stop()


async def _stop_when(event: asyncio.Event, runner: Runner) -> None:
    await event.wait()
    runner.stop()


# ## Admin commands
@contextlib.asynccontextmanager
async def admin_queue(dsn: str) -> AsyncIterator[QueueClient]:
    """A queue client for one admin command. A role that may not do what the command does (tenkaigen_worker reads
    no table and may not cancel or requeue) gets one line that says which role to use, not a traceback."""
    pool = await open_pool(dsn, min_size=1, max_size=1, application_name="tenkaigen-cli")
    try:
        yield QueueClient(pool, worker_id=f"cli:{make_worker_id()}")
    except psycopg.errors.InsufficientPrivilege as exc:
        role = conninfo_to_dict(dsn).get("user") or "this role"
        raise ConfigurationError(
            f"DATABASE_URL: role {role} may not run this admin command ({exc.diag.message_primary or exc}); "
            "connect as the database owner (postgres), as in Supabase's SQL editor") from None
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def connect(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, **connection_kwargs(dsn, application_name="tenkaigen-cli"))
    except psycopg.OperationalError as exc:
        raise ConfigurationError(f"cannot connect to the database ({describe_connect_error(exc)}); "
                                 "check DATABASE_URL") from None
    try:
        yield conn
    finally:
        await conn.close()


async def enqueue(dsn: str, *, user_id: UUID | None = None, dev_user: bool = False, **request: Any) -> dict[str, Any]:
    """Insert a job as a signed-in user would (PostgREST way: role authenticated, JWT claims, RLS, quotas).
    With `dev_user` the local dev user is created if needed and used."""
    if user_id is None and not dev_user:
        raise ConfigurationError("--user-id: give the id of an auth.users row, or --dev-user on a local database")
    async with connect(dsn) as conn:
        if dev_user:
            user_id = user_id or DEV_USER_ID
            await ensure_user(conn, user_id, DEV_USER_EMAIL)
        assert user_id is not None
        return await enqueue_as_client(conn, user_id, **request)


async def jobs(dsn: str, *, status: JobStatus | None = None, limit: int = 20) -> list[JobRecord]:
    """Recent jobs, newest first."""
    async with admin_queue(dsn) as queue:
        return await queue.list_jobs(status=status, limit=limit)


async def job(dsn: str, job_id: UUID) -> JobRecord | None:
    async with admin_queue(dsn) as queue:
        return await queue.get_job(job_id)


def parse_job_ref(text: str) -> UUID | str:
    """A job id as an admin types it: a full uuid, or a short id prefix (8 to 31 hex digits, hyphens ignored, as
    `tenkaigen jobs` shows its first 8). Raises ValueError saying what is accepted."""
    with contextlib.suppress(ValueError):
        return UUID(text)
    prefix = text.strip().lower().replace("-", "")
    if 8 <= len(prefix) < 32 and not prefix.strip(HEX_DIGITS):
        return prefix
    raise ValueError(f"{text!r} is neither a job id (uuid) nor its first 8 or more hex digits (the short id "
                     "`tenkaigen jobs` shows)")


async def resolve_job(queue: QueueClient, job: UUID | str) -> UUID:
    """The job a full id or a short id prefix names; a prefix must name exactly one job."""
    if isinstance(job, UUID):
        return job
    ids = await queue.resolve_job_prefix(job)
    if not ids:
        raise JobNotFound(f"job_id: no job whose id starts with {job}")
    if len(ids) > 1:
        raise BadRequest(f"job_id: {job} is the start of more than one job's id ({ids[0]}, {ids[1]}, …); give "
                         "more digits or the full id (tenkaigen jobs --wide shows it)")
    return ids[0]


async def cancel(dsn: str, job: UUID | str) -> AdminAction:
    """Cancel a job (queued: canceled at once; running: cancel requested, its worker stops it; finished: nothing
    happens, and `changed` is False)."""
    async with admin_queue(dsn) as queue:
        return await queue.cancel_job(await resolve_job(queue, job))


async def requeue(dsn: str, job: UUID | str, *, reset_attempts: bool = True) -> AdminAction:
    """Put a failed, canceled or succeeded job back in the queue (queued or running: nothing happens, and
    `changed` is False)."""
    async with admin_queue(dsn) as queue:
        return await queue.requeue_job(await resolve_job(queue, job), reset_attempts=reset_attempts)


async def stats(dsn: str) -> JobStats:
    """Queue depth by status, oldest claimable job, throughput and cost."""
    async with admin_queue(dsn) as queue:
        return await queue.job_stats()
