"""The migrations and the stand-in are package data from one source, and finding none is an error, not "up to date"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import psycopg
import pytest
from setuptools import find_packages

import worker.migrate as migrate_module
from tests.packaging.build import ROOT
from worker.migrate import (
    MIGRATIONS_DIR,
    STANDIN_FILE,
    MigrationError,
    discover,
    load_standin,
    schema_dirs,
)


def test_a_checkout_reads_supabase_itself() -> None:
    assert MIGRATIONS_DIR == ROOT / "supabase" / "migrations"
    assert STANDIN_FILE == ROOT / "supabase" / "standin" / "supabase_platform.sql"
    assert schema_dirs()[-1] == ROOT / "supabase"


def test_pyproject_maps_supabase_into_the_package_and_lists_every_python_package() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["package-dir"] == {"worker._supabase": "supabase"}
    listed = set(tool["packages"])
    found = set(find_packages(str(ROOT), include=["worker", "worker.*", "modal_app", "modal_app.*"]))
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert {"worker._supabase.migrations", "worker._supabase.standin"} <= listed
    assert tool["package-data"]["worker._supabase.migrations"] == ["*.sql"]
    assert tool["package-data"]["worker._supabase.standin"] == ["*.sql"]


def test_a_missing_migrations_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(MigrationError, match=f"no migrations directory at {missing}"):
        discover(missing)


def test_the_default_location_missing_names_the_package_and_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate_module, "SCHEMA_DIR", tmp_path / "supabase")
    monkeypatch.setattr(migrate_module, "MIGRATIONS_DIR", tmp_path / "supabase" / "migrations")
    packaged, checkout = schema_dirs()
    with pytest.raises(MigrationError) as caught:
        discover(migrate_module.MIGRATIONS_DIR)
    assert f"{packaged / 'migrations'} or {checkout / 'migrations'}" in str(caught.value)


def test_an_empty_migrations_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no sql here")
    with pytest.raises(MigrationError, match=f"no migration files .* in {tmp_path}"):
        discover(tmp_path)


def test_a_missing_stand_in_is_an_error_naming_it(empty_database: str, tmp_path: Path) -> None:
    missing = tmp_path / "supabase_platform.sql"
    with psycopg.connect(empty_database, autocommit=True) as conn, pytest.raises(
        MigrationError, match=f"cannot read the Supabase stand-in at {missing}"
    ):
        load_standin(conn, missing)


def _cli_without_sql(database_url: str, *, what: str) -> subprocess.CompletedProcess[str]:
    """`tenkaigen db migrate --standin` as an install without the SQL would run it: the default paths point nowhere."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import worker.migrate as m
        if {what!r} == "migrations":
            m.migrate.__kwdefaults__["migrations_dir"] = Path("/nonexistent/supabase/migrations")
        else:
            m.load_standin.__defaults__ = (Path("/nonexistent/supabase/standin/supabase_platform.sql"),)
        from worker.cli import main
        sys.argv = ["tenkaigen", "db", "migrate", "--standin"]
        main()
    """)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": database_url})


@pytest.mark.parametrize(("what", "message"), [
    ("migrations", "error: no migrations directory at /nonexistent/supabase/migrations"),
    ("standin", "error: cannot read the Supabase stand-in at /nonexistent/supabase/standin/supabase_platform.sql"),
])
def test_db_migrate_without_its_sql_says_where_it_looked_and_exits_1(
    empty_database: str, what: str, message: str
) -> None:
    result = _cli_without_sql(empty_database, what=what)
    assert result.returncode == 1, result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert "up to date" not in result.stderr
