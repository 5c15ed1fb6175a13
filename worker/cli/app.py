"""The `tenkaigen` application object, its `--version` flag, the consoles, and the options commands share."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console

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


# ## Shared options
def job_ref(text: str) -> UUID | str:
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


def overrides(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}
