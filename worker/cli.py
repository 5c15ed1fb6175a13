"""The `tenkaigen` command line. Each command is a thin wrapper over one library function."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.markup import escape

from worker.config import Settings, load_settings
from worker.exceptions import TenkaigenError
from worker.logging import configure_logging

app = typer.Typer(help="TenkaiGen generation backend.", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(stderr=True)
out = Console()

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="PostgreSQL connection string (env DATABASE_URL).",
        show_default=False,
    ),
]


@db_app.command("migrate")
def db_migrate(
    database_url: DatabaseUrl,
    standin: Annotated[
        bool,
        typer.Option(
            "--standin",
            help="Load the local Supabase stand-in first (plain PostgreSQL only; skipped "
            "when auth.users exists).",
        ),
    ] = False,
) -> None:
    """Apply supabase/migrations in order, each in a transaction, recorded in supabase_migrations."""
    from worker.migrate import migrate

    applied = migrate(database_url, standin=standin)
    if applied:
        for migration in applied:
            console.print(f"applied {migration.version}_{migration.name}")
    console.print(f"{len(applied)} migration(s) applied; the database is up to date.")



# ## Shared options
JobId = Annotated[UUID, typer.Argument(help="The job's id (uuid).", show_default=False)]
BackendOption = Annotated[
    str | None,
    typer.Option("--backend", help="Override TENKAIGEN_BACKEND: placeholder, tiny, local, modal or noop.",
                 show_default=False),
]
StorageOption = Annotated[
    str | None,
    typer.Option("--storage", help="Override TENKAIGEN_STORAGE: supabase, local or memory.", show_default=False),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option("--concurrency", help="Override TENKAIGEN_CONCURRENCY (jobs in flight).", show_default=False),
]


def _overrides(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


def _configure_logging(settings: Settings, worker_id: str | None = None) -> None:
    password = conninfo_to_dict(settings.dsn).get("password")
    configure_logging(
        level=settings.log_level, fmt=settings.log_format, worker_id=worker_id,
        secrets=[str(password) if password else None,
                 settings.supabase_service_role_key.get_secret_value() if settings.supabase_service_role_key else None,
                 settings.cost_alert_webhook.get_secret_value() if settings.cost_alert_webhook else None])


@app.command("worker")
def worker_command(
    backend: BackendOption = None,
    storage: StorageOption = None,
    concurrency: ConcurrencyOption = None,
) -> None:
    """Run a worker: claim jobs, generate, upload, complete; SIGTERM drains. Configured by environment
    (DATABASE_URL, SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY, TENKAIGEN_*)."""
    from worker import commands
    from worker.runner import make_worker_id

    settings = load_settings(**_overrides(backend=backend, storage=storage, concurrency=concurrency))
    worker_id = settings.worker_id or make_worker_id()
    settings = settings.model_copy(update={"worker_id": worker_id})
    _configure_logging(settings, worker_id)
    asyncio.run(commands.worker(settings))


@app.command("dev")
def dev_command(
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="Enqueue this prompt as the dev user, show its progress, print the PNG path, "
                                      "then stop. Without it the worker runs until Ctrl-C.", show_default=False),
    ] = None,
    style: Annotated[str, typer.Option("--style", help="Style preset id (public.generation_styles).")] = "none",
    width: Annotated[int, typer.Option("--width", help="Image width (multiple of 16, 256..2048).")] = 1024,
    height: Annotated[int, typer.Option("--height", help="Image height (multiple of 16, 256..2048).")] = 1024,
    backend: Annotated[
        str, typer.Option("--backend", help="placeholder (no ML) or tiny (CPU, needs the ml extras).")
    ] = "placeholder",
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the local cluster and storage live (default: <project>/.pgdata).",
                     show_default=False),
    ] = None,
) -> None:
    """The embedded default: a local PostgreSQL under .pgdata/, the Supabase stand-in and migrations, and a worker
    with the placeholder backend and local storage. Ctrl-C stops everything."""
    from worker import dev

    code = asyncio.run(dev.dev(prompt=prompt, style=style, width=width, height=height, backend=backend,
                               data_dir=data_dir))
    raise typer.Exit(code)


@app.command("enqueue")
def enqueue_command(
    database_url: DatabaseUrl,
    prompt: Annotated[str, typer.Argument(help="What to draw.", show_default=False)],
    user_id: Annotated[
        UUID | None,
        typer.Option("--user-id", help="Insert as this auth.users id (as PostgREST would, under RLS and quotas).",
                     show_default=False),
    ] = None,
    dev_user: Annotated[
        bool, typer.Option("--dev-user", help="Use (and create if needed) the local dev user. Local only.")
    ] = False,
    style: Annotated[str | None, typer.Option("--style", help="Style preset id.", show_default=False)] = None,
    variant: Annotated[str | None, typer.Option("--variant", help="Model variant id.", show_default=False)] = None,
    width: Annotated[int | None, typer.Option("--width", help="Width in pixels.", show_default=False)] = None,
    height: Annotated[int | None, typer.Option("--height", help="Height in pixels.", show_default=False)] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps.", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (random if omitted).", show_default=False)] = None,
) -> None:
    """Enqueue a job as a user (the same insert a signed-in browser makes)."""
    from worker import commands

    row = asyncio.run(commands.enqueue(database_url, user_id=user_id, dev_user=dev_user, prompt=prompt,
                                       **_overrides(style=style, variant=variant, width=width, height=height,
                                                    steps=steps, seed=seed)))
    out.print(f"{row['id']}  {row['status']}  variant={row['variant']} steps={row['steps']} seed={row['seed']}")


@app.command("jobs")
def jobs_command(
    database_url: DatabaseUrl,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only jobs in this status (queued, running, succeeded, failed, canceled).",
                     show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many (newest first).")] = 20,
) -> None:
    """List recent jobs."""
    from rich.table import Table

    from worker import commands

    records = asyncio.run(commands.jobs(database_url, status=status, limit=limit))
    table = Table()
    table.add_column("id", no_wrap=True, min_width=36)
    for column in ("status", "progress", "attempts", "size", "created"):
        table.add_column(column, no_wrap=True)
    table.add_column("result / error", overflow="fold")
    for r in records:
        detail = r.result_path or (f"{r.error_code}: {r.error_message}" if r.error_code else "")
        table.add_row(str(r.id), r.status.value, f"{r.progress:.0%}", f"{r.attempts}/{r.max_attempts}",
                      f"{r.width}x{r.height}", r.created_at.strftime("%Y-%m-%d %H:%M:%S"), detail[:80])
    out.print(table)


@app.command("cancel")
def cancel_command(database_url: DatabaseUrl, job_id: JobId) -> None:
    """Cancel a job (queued: at once; running: its worker stops it)."""
    from worker import commands

    out.print(asyncio.run(commands.cancel(database_url, job_id)))


@app.command("requeue")
def requeue_command(
    database_url: DatabaseUrl,
    job_id: JobId,
    keep_attempts: Annotated[
        bool, typer.Option("--keep-attempts", help="Keep the attempt count instead of resetting it.")
    ] = False,
) -> None:
    """Put a failed, canceled or succeeded job back in the queue."""
    from worker import commands

    out.print(asyncio.run(commands.requeue(database_url, job_id, reset_attempts=not keep_attempts)))


@app.command("stats")
def stats_command(database_url: DatabaseUrl) -> None:
    """Queue depth by status, oldest claimable job, last hour's throughput and last 24 h's cost."""
    from rich.table import Table

    from worker import commands

    stats = asyncio.run(commands.stats(database_url))
    table = Table("metric", "value")
    for field in dataclasses.fields(stats):
        name, value = field.name, getattr(stats, field.name)
        table.add_row(name, "" if value is None else str(round(value, 3) if isinstance(value, float) else value))
    out.print(table)


def main() -> None:
    try:
        app()
    except TenkaigenError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
