"""`tenkaigen worker` and `tenkaigen dev`: the commands that run a worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from psycopg.conninfo import conninfo_to_dict

from worker.cli.app import BackendOption, ConcurrencyOption, StorageOption, app, overrides
from worker.config import Settings, load_settings
from worker.logging import configure_logging


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

    settings = load_settings(**overrides(backend=backend, storage=storage, concurrency=concurrency))
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
