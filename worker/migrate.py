"""Apply supabase/migrations to a database that the Supabase CLI does not manage (`tenkaigen db migrate`).

Each migration file runs in its own transaction and is recorded in `supabase_migrations.schema_migrations`,
the table the Supabase CLI itself uses, so a database migrated here stays compatible with `supabase db push`.
A second run applies nothing. On a plain PostgreSQL the local Supabase stand-in
(supabase/standin/supabase_platform.sql) can be loaded first; it is skipped when `auth.users` already exists
(a real Supabase project, or a database that already has it).

Where the SQL comes from: the repository's supabase/ folder is the one source. pyproject.toml maps it into the
package as `worker._supabase` (migrations and stand-in only), so an installed wheel carries it as package data,
read here through importlib.resources; a checkout (editable install, or `python -m worker` in the repository)
reads supabase/ itself. Finding no migrations is an error that names where it looked, never "up to date".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg

from worker.exceptions import ConfigurationError, TenkaigenError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGED_SCHEMA = "_supabase"        # worker/_supabase in a wheel: pyproject.toml maps supabase/ onto it
SOURCE_SCHEMA_DIR = PROJECT_ROOT / "supabase"


def schema_dirs() -> list[Path]:
    """Where the supabase/ SQL may be, in the order it is looked for: the installed package's data, then, when
    this module runs from a checkout (pyproject.toml beside worker/), the checkout's supabase/."""
    dirs = [Path(str(resources.files("worker").joinpath(PACKAGED_SCHEMA)))]
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        dirs.append(SOURCE_SCHEMA_DIR)
    return dirs


def schema_dir() -> Path:
    """The first of `schema_dirs()` that holds migrations, else the last one, so that the error raised by
    `discover` names the place this install should have them."""
    candidates = schema_dirs()
    return next((c for c in candidates if (c / "migrations").is_dir()), candidates[-1])


SCHEMA_DIR = schema_dir()
MIGRATIONS_DIR = SCHEMA_DIR / "migrations"
STANDIN_FILE = SCHEMA_DIR / "standin" / "supabase_platform.sql"
MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")

TRACKING_TABLE_SQL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  statements text[],
  name text
);
"""


class MigrationError(TenkaigenError):
    """A migration file failed; nothing from that file was applied."""

    error_code = "migration_failed"


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def _looked_in(path: Path) -> str:
    """`path`, plus the other places searched when it is the default location."""
    if path not in (MIGRATIONS_DIR, STANDIN_FILE):
        return str(path)
    relative = path.relative_to(SCHEMA_DIR)
    return " or ".join(str(root / relative) for root in schema_dirs())


def discover(migrations_dir: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files in version order. A badly named .sql file is an error, not silently skipped, and so is a
    missing or empty directory: applying nothing and reporting "up to date" would hide a broken install."""
    if not migrations_dir.is_dir():
        raise MigrationError(
            f"no migrations directory at {_looked_in(migrations_dir)}. Reinstall the tenkaigen package (its wheel "
            "ships supabase/migrations as package data), or run from a checkout of the repository."
        )
    found: list[Migration] = []
    for path in sorted(migrations_dir.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path}: migration files must be named <YYYYMMDDHHMMSS>_<snake_case_name>.sql"
            )
        found.append(Migration(match["version"], match["name"], path))
    if not found:
        raise MigrationError(
            f"no migration files (<YYYYMMDDHHMMSS>_<name>.sql) in {migrations_dir}. Reinstall the tenkaigen "
            "package, or restore supabase/migrations in the checkout."
        )
    return found


def _line_of(sql: str, position: int | None) -> int | None:
    if not position:
        return None
    return sql.count("\n", 0, position - 1) + 1


def _describe(exc: psycopg.Error, path: Path, sql: str) -> str:
    diag = exc.diag
    where = str(path)
    line = _line_of(sql, int(diag.statement_position) if diag.statement_position else None)
    if line:
        where += f", line {line}"
    text = f"{where}: {diag.message_primary or exc}"
    if diag.sqlstate:
        text += f" (SQLSTATE {diag.sqlstate})"
    if diag.context:
        text += f"\n  context: {diag.context.strip()}"
    if diag.message_hint:
        text += f"\n  hint: {diag.message_hint}"
    return text


def connect(dsn: str) -> psycopg.Connection:
    """Connect for administration, with an error that says what to check."""
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ConfigurationError(
            f"cannot connect to the database ({exc.args[0].strip() if exc.args else exc}). "
            "Check DATABASE_URL (host, port, user, password) and that the server is running."
        ) from exc


def has_supabase_platform(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regclass('auth.users') is not null").fetchone()[0]


def load_standin(conn: psycopg.Connection, standin: Path = STANDIN_FILE) -> bool:
    """Load the Supabase stand-in unless the platform schemas exist. Returns whether it was loaded."""
    if has_supabase_platform(conn):
        return False
    try:
        sql = standin.read_text(encoding="utf-8")
    except OSError as exc:
        raise MigrationError(
            f"cannot read the Supabase stand-in at {_looked_in(standin)} ({exc.strerror or exc}). Reinstall the "
            "tenkaigen package (its wheel ships supabase/standin as package data), or run from a checkout."
        ) from None
    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.Error as exc:
        raise MigrationError(_describe(exc, standin, sql)) from exc
    return True


def applied_versions(conn: psycopg.Connection) -> set[str]:
    conn.execute(TRACKING_TABLE_SQL)
    return {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}


def _refuse_another_lineage(done: set[str], migrations: list[Migration]) -> None:
    """A database that records migrations, none of them among these files, was built from another set of them
    (the migrations were squashed into a new initial set before the first deploy): applying these on top would
    fail half-way on objects that already exist, so say what happened instead."""
    known = {m.version for m in migrations}
    if done and not done & known:
        raise MigrationError(
            f"this database records {len(done)} migration(s) ({min(done)} … {max(done)}) and none of the "
            f"{len(known)} in {migrations[0].path.parent}: it was built from another set of migrations (they were "
            "squashed into a new initial set before the first deploy). Recreate the database (for `tenkaigen "
            "dev`: delete .pgdata/), then run `tenkaigen db migrate` again."
        )


def migrate(
    dsn: str,
    *,
    standin: bool = False,
    migrations_dir: Path = MIGRATIONS_DIR,
) -> list[Migration]:
    """Apply pending migrations in order; returns those applied (empty on a second run)."""
    migrations = discover(migrations_dir)
    with connect(dsn) as conn:
        if standin:
            load_standin(conn)
        elif not has_supabase_platform(conn):
            raise ConfigurationError(
                "this database has no Supabase platform schemas (auth.users is missing). Point DATABASE_URL at "
                "a Supabase project, or pass --standin to load the local stand-in on a plain PostgreSQL."
            )
        done = applied_versions(conn)
        _refuse_another_lineage(done, migrations)
        applied: list[Migration] = []
        for migration in migrations:
            if migration.version in done:
                continue
            sql = migration.sql
            try:
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, name, statements) "
                        "values (%s, %s, array[%s])",
                        (migration.version, migration.name, sql),
                    )
            except psycopg.Error as exc:
                raise MigrationError(_describe(exc, migration.path, sql)) from exc
            applied.append(migration)
        return applied
