"""`tenkaigen config`: every setting, as text, JSON or the markdown of docs/configuration.md."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from worker.cli.app import app, out


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

        from worker.config import OTHER_VARIABLES
        from worker.config_checks import check_environment

        out.print(f"[dim]Also read by the project's tools, not the worker: {escape(', '.join(OTHER_VARIABLES))}[/]")
        for problem in check_environment(os.environ):     # what would stop `tenkaigen worker` in this shell
            out.print(f"[bold red]in your environment:[/] {escape(problem)}")
    else:
        raise typer.BadParameter(f"must be text, json or markdown (got {output!r})", param_hint="--format")
