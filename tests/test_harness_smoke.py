"""The fixtures hand out a migrated database, and client requests are subject to RLS."""

import psycopg
import pytest

from tests.support import as_client, create_user


def test_each_test_database_has_every_migration(admin: psycopg.Connection) -> None:
    versions = [
        r[0]
        for r in admin.execute("select version from supabase_migrations.schema_migrations order by version")
    ]
    assert len(versions) >= 8
    assert admin.execute("select to_regclass('public.generation_jobs') is not null").fetchone()[0]


def test_a_client_request_runs_as_authenticated_with_its_uid(admin: psycopg.Connection) -> None:
    user = create_user(admin)
    with as_client(admin, user) as conn:
        row = conn.execute("select current_user, auth.uid(), auth.role()").fetchone()
    assert row == ("authenticated", user, "authenticated")


def test_a_client_cannot_write_status_even_on_insert(admin: psycopg.Connection) -> None:
    user = create_user(admin)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_client(admin, user) as conn:
        conn.execute("insert into generation_jobs (prompt, status) values ('x', 'succeeded')")
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 0
