"""The admin commands: `enqueue`, `jobs`, `cancel`, `requeue`, `stats`."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.markup import escape

from worker.cli.app import DatabaseUrl, JobId, JsonOption, app, console, job_ref, out, overrides
from worker.jobs import JobStatus

if TYPE_CHECKING:
    from worker.queue import AdminAction


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
                                       **overrides(style=style, variant=variant, width=width, height=height,
                                                    steps=steps, seed=seed)))
    if as_json:
        from worker.cli.render import to_json

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
    from worker.cli.render import jobs_table, to_json

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
    from worker.cli.render import action_message, to_json

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

    _report(asyncio.run(commands.cancel(database_url, job_ref(job_id))), as_json)


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

    _report(asyncio.run(commands.requeue(database_url, job_ref(job_id), reset_attempts=not keep_attempts)),
            as_json)


@app.command("stats")
def stats_command(database_url: DatabaseUrl, as_json: JsonOption = False) -> None:
    """Queue depth by status, oldest claimable job, last hour's throughput and last 24 h's cost."""
    from worker import commands
    from worker.cli.render import stats_table, to_json

    stats = asyncio.run(commands.stats(database_url))
    if as_json:
        typer.echo(to_json(stats))
        return
    out.print(stats_table(stats))
