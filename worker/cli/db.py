"""`tenkaigen db …`: the database schema commands."""

from __future__ import annotations

from typing import Annotated

import typer

from worker.cli.app import DatabaseUrl, console, db_app


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
