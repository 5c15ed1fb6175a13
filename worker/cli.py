"""The `tenkaigen` command line. Each command is a thin wrapper over one library function."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from worker.exceptions import TenkaigenError

app = typer.Typer(help="TenkaiGen generation backend.", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(stderr=True)

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


def main() -> None:
    try:
        app()
    except TenkaigenError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
