"""`tenkaigen db migrate`: naming, ordering, idempotence, and errors that say where and what."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from worker.exceptions import ConfigurationError
from worker.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate

ROOT = Path(__file__).resolve().parents[2]


def test_migration_files_follow_the_supabase_cli_naming_in_strict_order() -> None:
    migrations = discover()
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions)), "versions must be unique and increasing"
    assert len(migrations) == len(list(MIGRATIONS_DIR.glob("*.sql")))


def test_migrations_never_create_the_platform_schemas_of_the_stand_in() -> None:
    for migration in discover():
        text = migration.sql.lower()
        for schema in ("auth", "storage", "realtime"):
            assert f"create schema {schema}" not in text, migration.path
            assert f"create schema if not exists {schema}" not in text, migration.path


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_db_migrate_applies_everything_once_then_nothing(empty_database: str) -> None:
    first = _cli("db", "migrate", "--standin", env={"DATABASE_URL": empty_database})
    assert first.returncode == 0, first.stderr
    assert f"{len(discover())} migration(s) applied" in first.stderr
    second = _cli("db", "migrate", "--standin", env={"DATABASE_URL": empty_database})
    assert second.returncode == 0, second.stderr
    assert "0 migration(s) applied" in second.stderr
    with psycopg.connect(empty_database) as conn:
        recorded = conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone()[0]
    assert recorded == len(discover())


def test_db_migrate_refuses_a_plain_database_without_the_stand_in(empty_database: str) -> None:
    with pytest.raises(ConfigurationError, match="pass --standin"):
        migrate(empty_database)


def test_db_migrate_reports_an_unreachable_database_clearly() -> None:
    result = _cli("db", "migrate", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"})
    assert result.returncode == 1
    assert "cannot connect to the database" in result.stderr
    assert "Check DATABASE_URL" in result.stderr


def test_a_failing_migration_names_its_file_and_line_and_applies_nothing_of_it(
    empty_database: str, tmp_path: Path
) -> None:
    (tmp_path / "20990101000000_good.sql").write_text("create table public.good_one (id int);\n")
    (tmp_path / "20990101000100_bad.sql").write_text(
        "create table public.half_done (id int);\n\nselect 1;\nselect no_such_column from public.half_done;\n"
    )
    with pytest.raises(MigrationError) as caught:
        migrate(empty_database, standin=True, migrations_dir=tmp_path)
    message = str(caught.value)
    assert "20990101000100_bad.sql, line 4" in message
    assert 'column "no_such_column" does not exist' in message
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("select to_regclass('public.good_one') is not null").fetchone()[0]
        assert conn.execute("select to_regclass('public.half_done') is null").fetchone()[0]
        versions = [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")]
    assert versions == ["20990101000000"]


def test_a_badly_named_migration_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "add_things.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="must be named"):
        discover(tmp_path)


def test_a_database_built_from_another_set_of_migrations_is_refused_with_what_to_do(
    empty_database: str, tmp_path: Path
) -> None:
    (tmp_path / "20990101000000_old_initial.sql").write_text("create table public.old_one (id int);\n")
    migrate(empty_database, standin=True, migrations_dir=tmp_path)
    with pytest.raises(MigrationError) as caught:
        migrate(empty_database, standin=True)
    message = str(caught.value)
    assert "records 1 migration(s) (20990101000000 … 20990101000000) and none of the" in message
    assert "Recreate the database" in message
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("select to_regnamespace('queue')").fetchone()[0] is None  # nothing applied
