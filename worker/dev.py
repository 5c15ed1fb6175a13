"""`tenkaigen dev`: the embedded default, everything on this machine.

A PostgreSQL cluster kept under `<project>/.pgdata/` (created on first run, started and stopped each time), the
Supabase stand-in and every migration (`db migrate --standin`, idempotent), and a worker with the placeholder
backend and local storage under `.pgdata/storage/`. With `--prompt` it enqueues one job as the dev user (the
same insert a signed-in browser makes), shows it go queued → running → succeeded with rich, prints the PNG path
and stops. Without `--prompt` the worker runs until Ctrl-C. Ctrl-C always stops the worker (releasing its jobs)
and the cluster cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image
from psycopg import sql
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from worker import commands
from worker.config import load_settings
from worker.exceptions import TenkaigenError
from worker.jobs import JobRecord, JobStatus
from worker.logging import configure_logging
from worker.migrate import PROJECT_ROOT, discover, migrate
from worker.pgcluster import LocalCluster
from worker.queue import QUERIES
from worker.storage.base import RESULTS_BUCKET

DEV_DATABASE = "tenkaigen"
PLACEHOLDER_STEP_SECONDS = 0.15
DISPLAY_POLL_SECONDS = 0.1
JOB_TIMEOUT_SECONDS = 600.0

console = Console(stderr=True, soft_wrap=True)


def default_data_dir() -> Path:
    """`<project>/.pgdata` in a source checkout; `./.pgdata` (the working directory) for an installed package,
    whose files live inside the virtual environment."""
    root = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else Path.cwd()
    return root / ".pgdata"


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir. As root the cluster runs as the `postgres` user, which must be able to reach it:
    every parent directory needs the search (x) bit for others."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    for parent in [data_dir, *data_dir.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise TenkaigenError(
                f"{parent} is not searchable by other users, so PostgreSQL (running as the postgres user) cannot "
                f"reach {data_dir}. Run `chmod o+x {parent}` or pass --data-dir somewhere reachable.")


def start_cluster(data_dir: Path) -> tuple[LocalCluster, str]:
    """Start (or create) the dev cluster and bring its `tenkaigen` database up to date; returns it and the DSN."""
    cluster = LocalCluster(data_dir=data_dir / "cluster")
    fresh = not cluster.is_initialized()
    console.print(f"[dim]{'creating' if fresh else 'starting'} PostgreSQL in {cluster.data_dir}…[/]")
    cluster.start()
    try:
        dsn = cluster.dsn_for(DEV_DATABASE)
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            exists = admin.execute(QUERIES["dev_database_exists"], {"name": DEV_DATABASE}).fetchone()[0]
            reason = why_recreate(dsn) if exists else None
            if reason:
                console.print(f"[yellow]{reason}: recreating it (dev data is disposable)[/]")
                admin.execute(sql.SQL(QUERIES["dev_drop_database"]).format(database=sql.Identifier(DEV_DATABASE)))
            if not exists or reason:
                admin.execute(sql.SQL(QUERIES["dev_create_database"]).format(database=sql.Identifier(DEV_DATABASE)))
        applied = migrate(dsn, standin=True)
    except BaseException:
        cluster.stop("fast")               # never leave PostgreSQL running behind a failed start
        raise
    if applied:
        console.print(f"[dim]applied {len(applied)} migration(s)[/]")
    return cluster, dsn


def why_recreate(dsn: str) -> str | None:
    """Why the existing dev database cannot simply be migrated further, or None when it can."""
    on_disk = {m.version: m.sql for m in discover()}
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            applied = conn.execute(QUERIES["dev_applied_migrations"]).fetchall()
        except psycopg.errors.UndefinedTable:
            return "the dev database has no record of its migrations (an earlier run was interrupted)"
    stale = [version for version, applied_sql in applied if version in on_disk and on_disk[version] != applied_sql]
    return f"migration {stale[0]} changed since the dev database was created" if stale else None


async def dev(
    *,
    prompt: str | None,
    style: str = "none",
    width: int = 1024,
    height: int = 1024,
    backend: str = "placeholder",
    data_dir: Path | None = None,
) -> int:
    """Run the embedded default; returns the process exit code."""
    data_dir = (data_dir or default_data_dir()).resolve()
    prepare_data_dir(data_dir)
    starting = asyncio.ensure_future(asyncio.to_thread(start_cluster, data_dir))
    try:
        cluster, dsn = await asyncio.shield(starting)
    except asyncio.CancelledError:           # Ctrl-C while starting: let the start finish, then stop what it started
        with contextlib.suppress(Exception):
            started, _ = await starting
            await asyncio.to_thread(started.stop, "fast")
        raise
    storage_dir = data_dir / "storage"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        if stop.is_set():
            return
        interrupted = True
        console.print("\n[yellow]stopping…[/]")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    worker_task: asyncio.Task[None] | None = None
    try:
        settings = load_settings(
            database_url=dsn, backend=backend, storage="local", local_storage_dir=storage_dir,
            placeholder_step_seconds=PLACEHOLDER_STEP_SECONDS if backend == "placeholder" else 0.0,
            concurrency=2, lease_seconds=30, poll_interval=1.0, grace_period=10.0, progress_interval=0.2,
            metrics_port=0, log_format="text", log_level="WARNING" if prompt else "INFO",
            scheduler_enabled=True, retention_days=0)
        configure_logging(level=settings.log_level, fmt="text")
        worker_task = asyncio.create_task(
            commands.worker(settings, stop_event=stop, install_signal_handlers=False), name="dev-worker")
        if prompt is None:
            console.print(f"[green]worker running[/] (placeholder backend, storage in {storage_dir}).\n"
                          f"DATABASE_URL={dsn}\n"
                          f"enqueue: tenkaigen enqueue --dev-user --database-url {dsn} \"A majestic dragon\""
                          "\nCtrl-C to stop.")
            await _wait_either(stop, worker_task)
            return 130 if interrupted else 0
        job = await commands.enqueue(dsn, dev_user=True, prompt=prompt, style=style, width=width,
                                     height=height)
        console.print(f"enqueued job [bold]{job['id']}[/] (variant {job['variant']}, {job['steps']} steps, "
                      f"seed {job['seed']})")
        try:
            record = await _follow(dsn, job["id"], stop, worker_task)
        except Exception as exc:
            console.print(f"[red]the worker failed:[/] {escape(type(exc).__name__ + ': ' + str(exc))}", soft_wrap=True)
            return 1
        if record is None:
            return 130
        if record.status is not JobStatus.SUCCEEDED:
            console.print(f"[red]job {record.status.value}[/]: {record.error_code}: {record.error_message}")
            return 1
        assert record.result_path is not None
        path = storage_dir / RESULTS_BUCKET / record.result_path
        with Image.open(path) as image:
            size = image.size
        console.print(f"[green]succeeded[/] in {_seconds(record)}: {size[0]}x{size[1]} PNG")
        print(path)
        return 0
    finally:
        stop.set()
        if worker_task is not None:
            await asyncio.wait({worker_task}, timeout=30)     # never raises: the worker's own error is shown below
            if not worker_task.done():
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker_task
            if worker_task.done() and not worker_task.cancelled() and worker_task.exception() is not None:
                exc = worker_task.exception()
                if isinstance(exc, TenkaigenError):
                    console.print(f"[red]worker error:[/] {exc}")
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await asyncio.to_thread(cluster.stop, "fast")
        console.print(f"[dim]stopped PostgreSQL (data kept in {cluster.data_dir})[/]")


async def _wait_either(stop: asyncio.Event, worker_task: asyncio.Task[Any]) -> None:
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([waiter, worker_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if worker_task.done() and worker_task.exception() is not None:
        raise worker_task.exception()  # type: ignore[misc]


async def _follow(dsn: str, job_id: Any, stop: asyncio.Event, worker_task: asyncio.Task[Any]) -> JobRecord | None:
    """Show the job's status and progress until it is final (the dev display reads the row; the product UI
    follows the job on its Realtime Broadcast topic)."""
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    async with commands.admin_queue(dsn) as queue:
        with Progress(TextColumn("[bold]{task.fields[status]:>9}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            task = progress.add_task("job", total=1.0, status="queued")
            while not stop.is_set() and time.monotonic() < deadline:
                if worker_task.done():
                    exc = worker_task.exception()
                    raise exc if exc is not None else TenkaigenError("the worker stopped unexpectedly")
                record = await queue.get_job(job_id)
                if record is None:
                    raise TenkaigenError(f"job {job_id} disappeared")
                progress.update(task, completed=record.progress, status=record.status.value)
                if record.is_final:
                    return record
                await asyncio.sleep(DISPLAY_POLL_SECONDS)
    if stop.is_set():
        return None
    raise TenkaigenError(f"job {job_id} did not finish within {JOB_TIMEOUT_SECONDS:.0f} s")


def _seconds(record: JobRecord) -> str:
    if record.finished_at and record.created_at:
        return f"{(record.finished_at - record.created_at).total_seconds():.1f} s"
    return "?"
