"""The `tenkaigen` command line. Each command is a thin wrapper over one library function."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.markup import escape

from worker.config import Settings, load_settings
from worker.exceptions import TenkaigenError
from worker.jobs import JobStatus
from worker.logging import configure_logging

if TYPE_CHECKING:
    from worker.queue import AdminAction

app = typer.Typer(help="TenkaiGen generation backend.", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        from worker import installed_version

        typer.echo(f"tenkaigen {installed_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."),
    ] = False,
) -> None:
    """TenkaiGen generation backend."""

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
def _job_ref(text: str) -> UUID | str:
    from worker.commands import parse_job_ref

    try:
        return parse_job_ref(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'JOB_ID'") from None


JobId = Annotated[
    str,
    typer.Argument(help="The job's id (uuid), or its first 8 or more hex digits (the short id `jobs` shows) when "
                        "no other job's id starts with them.", show_default=False),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (full ids, ISO 8601 timestamps).")
]
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
    (DATABASE_URL, SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY, TENKAIGEN_*): `tenkaigen config` lists every setting
    with its default and meaning (also in docs/configuration.md); an unknown TENKAIGEN_* variable stops it."""
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
        typer.Option("--data-dir", help="Where the local cluster and storage live (default: <project>/.pgdata in a checkout, ./.pgdata when installed).",
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
    as_json: JsonOption = False,
) -> None:
    """Enqueue a job as a user (the same insert a signed-in browser makes)."""
    from worker import commands

    row = asyncio.run(commands.enqueue(database_url, user_id=user_id, dev_user=dev_user, prompt=prompt,
                                       **_overrides(style=style, variant=variant, width=width, height=height,
                                                    steps=steps, seed=seed)))
    if as_json:
        from worker.cli_render import to_json

        typer.echo(to_json(row))
        return
    out.print(f"{row['id']}  {row['status']}  variant={row['variant']} steps={row['steps']} seed={row['seed']}")


@app.command("jobs")
def jobs_command(
    database_url: DatabaseUrl,
    status: Annotated[
        JobStatus | None,
        typer.Option("--status", help="Only jobs in this status.", case_sensitive=False, show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="How many (newest first).")] = 20,
    wide: Annotated[
        bool, typer.Option("--wide", help="Full ids, user, size and creation time; cut nothing (rows may be wider "
                                          "than the terminal).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List recent jobs, newest first: short id, status, age, progress, attempts, prompt, result or error, each
    row on one line of the terminal."""
    from worker import commands
    from worker.cli_render import jobs_table, to_json

    records = asyncio.run(commands.jobs(database_url, status=status, limit=limit))
    if as_json:
        typer.echo(to_json(records))
        return
    if not records:
        console.print(f"no {status.value} jobs" if status else "no jobs")
        return
    rendered = jobs_table(records, width=out.width, wide=wide)
    (Console(width=rendered.width) if rendered.width > out.width else out).print(rendered.table)


def _report(action: AdminAction, as_json: bool) -> None:
    """Print what a cancel or requeue did; exit 1 when it did nothing."""
    from worker.cli_render import action_message, to_json

    if as_json:
        typer.echo(to_json({**dataclasses.asdict(action), "changed": action.changed}))
    elif action.changed:
        out.print(escape(action_message(action)), soft_wrap=True)
    else:
        console.print(escape(action_message(action)), soft_wrap=True)
    if not action.changed:
        raise typer.Exit(1)


@app.command("cancel")
def cancel_command(database_url: DatabaseUrl, job_id: JobId, as_json: JsonOption = False) -> None:
    """Cancel a job: a queued one at once, a running one by its worker. A finished job has nothing to cancel:
    exit 1."""
    from worker import commands

    _report(asyncio.run(commands.cancel(database_url, _job_ref(job_id))), as_json)


@app.command("requeue")
def requeue_command(
    database_url: DatabaseUrl,
    job_id: JobId,
    keep_attempts: Annotated[
        bool, typer.Option("--keep-attempts", help="Keep the attempt count instead of resetting it.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Put a failed, canceled or succeeded job back in the queue. A queued or running job is left as it is:
    exit 1."""
    from worker import commands

    _report(asyncio.run(commands.requeue(database_url, _job_ref(job_id), reset_attempts=not keep_attempts)),
            as_json)


@app.command("stats")
def stats_command(database_url: DatabaseUrl, as_json: JsonOption = False) -> None:
    """Queue depth by status, oldest claimable job, last hour's throughput and last 24 h's cost."""
    from worker import commands
    from worker.cli_render import stats_table, to_json

    stats = asyncio.run(commands.stats(database_url))
    if as_json:
        typer.echo(to_json(stats))
        return
    out.print(stats_table(stats))


@app.command("config")
def config_command(
    output: Annotated[
        str, typer.Option("--format", help="text (terminal), json, or markdown (docs/configuration.md).")
    ] = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Same as --format markdown.")] = False,
) -> None:
    """List every setting: environment variable, default, type or allowed values, meaning. Generated from the
    settings model; `tenkaigen config --markdown > docs/configuration.md` regenerates the docs."""
    import sys

    from worker.config_reference import as_json as reference_json
    from worker.config_reference import as_markdown as reference_markdown
    from worker.config_reference import settings_reference

    output = "json" if as_json else "markdown" if as_markdown else output
    if output == "json":
        sys.stdout.write(reference_json())
    elif output == "markdown":
        sys.stdout.write(reference_markdown())
    elif output == "text":
        # one block per setting (name, type, default; meaning indented): readable at 80 columns, no name cut
        from rich.padding import Padding

        for row in settings_reference():
            also = "".join(f" (or {alias})" for alias in row.aliases)
            out.print(f"[bold]{escape(row.variable)}[/]{escape(also)}  "
                      f"[dim]{escape(row.type)}; default: {escape(row.default_text)}[/]")
            out.print(Padding(escape(row.description), (0, 0, 0, 4)))
        import os

        from worker.config import OTHER_VARIABLES, check_environment

        out.print(f"[dim]Also read by the project's tools, not the worker: {escape(', '.join(OTHER_VARIABLES))}[/]")
        for problem in check_environment(os.environ):     # what would stop `tenkaigen worker` in this shell
            out.print(f"[bold red]in your environment:[/] {escape(problem)}")
    else:
        raise typer.BadParameter(f"must be text, json or markdown (got {output!r})", param_hint="--format")


def main() -> None:
    try:
        app()
    except TenkaigenError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
