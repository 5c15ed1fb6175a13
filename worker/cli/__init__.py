"""The `tenkaigen` command line. Each command is a thin wrapper over one library function.

`app` (worker/cli/app.py) holds the options the commands share; the commands are grouped by what they touch:
`run` (worker, dev), `admin` (enqueue, jobs, cancel, requeue, stats), `db` (db migrate), `settings` (config);
`render` draws the admin commands' tables and JSON. Importing this package registers every command.
"""

from __future__ import annotations

from rich.markup import escape

from worker.cli import admin, db, run, settings
from worker.cli.app import app, console
from worker.exceptions import TenkaigenError

__all__ = ["admin", "app", "db", "main", "run", "settings"]


def main() -> None:
    try:
        app()
    except TenkaigenError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(1) from exc
