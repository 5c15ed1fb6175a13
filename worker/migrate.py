"""Apply supabase/migrations to a database that the Supabase CLI does not manage (`tenkaigen db migrate`).

Each migration file runs in its own transaction and is recorded in `supabase_migrations.schema_migrations`,
the table the Supabase CLI itself uses, so a database migrated here stays compatible with `supabase db push`.
A second run applies nothing. On a plain PostgreSQL the local Supabase stand-in
(supabase/standin/supabase_platform.sql) can be loaded first; it is skipped when `auth.users` already exists
(a real Supabase project, or a database that already has it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from worker.exceptions import ConfigurationError, TenkaigenError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PROJECT_ROOT / "supabase" / "migrations"
STANDIN_FILE = PROJECT_ROOT / "supabase" / "standin" / "supabase_platform.sql"
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


def discover(migrations_dir: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files in version order; a badly named .sql file is an error, not silently skipped."""
    found: list[Migration] = []
    for path in sorted(migrations_dir.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path}: migration files must be named <YYYYMMDDHHMMSS>_<snake_case_name>.sql"
            )
        found.append(Migration(match["version"], match["name"], path))
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
    sql = standin.read_text(encoding="utf-8")
    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.Error as exc:
        raise MigrationError(_describe(exc, standin, sql)) from exc
    return True


def applied_versions(conn: psycopg.Connection) -> set[str]:
    conn.execute(TRACKING_TABLE_SQL)
    return {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}


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
