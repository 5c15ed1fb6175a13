"""The migrations on a project with Supabase's older default privileges (before 2026-05-30, or
`auto_expose_new_tables` on): `alter default privileges in schema public grant all on tables|functions|sequences
to anon, authenticated, service_role`, in force before the first migration runs. The API roles must still get
exactly the intended privileges (the privileges discipline of the migrations), the same as on a project without automatic grants."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.support import DatabaseServer, as_client, create_user, postgrest_insert
from worker.migrate import load_standin, migrate

OLD_DEFAULT_PRIVILEGES = [
    "alter default privileges in schema public grant all on tables to anon, authenticated, service_role",
    "alter default privileges in schema public grant all on functions to anon, authenticated, service_role",
    "alter default privileges in schema public grant all on sequences to anon, authenticated, service_role",
]

REQUEST_COLUMNS = {
    "prompt",
    "expanded_prompt",
    "negative_prompt",
    "style",
    "variant",
    "width",
    "height",
    "steps",
    "true_cfg_scale",
    "seed",
    "init_image_path",
    "franchise",
    "client_request_id",
    "metadata",
}

# Every privilege an API role (or PUBLIC, grantee 0) holds on an object in schema public, from the ACLs themselves
# (table, column and function ACLs, the owner's implicit defaults included), by object identity.
ACL_SNAPSHOT = """
select 'table ' || c.oid::regclass::text, coalesce(r.rolname, 'PUBLIC'), a.privilege_type
from pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
left join pg_roles r on r.oid = a.grantee
where c.relnamespace = 'public'::regnamespace and c.relkind <> 'i'
  and (a.grantee = 0 or r.rolname in ('anon', 'authenticated', 'service_role'))
union all
select 'column ' || c.oid::regclass::text || '.' || at.attname, coalesce(r.rolname, 'PUBLIC'), a.privilege_type
from pg_class c
join pg_attribute at on at.attrelid = c.oid and at.attnum > 0 and not at.attisdropped and at.attacl is not null
cross join aclexplode(at.attacl) a
left join pg_roles r on r.oid = a.grantee
where c.relnamespace = 'public'::regnamespace
  and (a.grantee = 0 or r.rolname in ('anon', 'authenticated', 'service_role'))
union all
select 'function ' || p.oid::regprocedure::text, coalesce(r.rolname, 'PUBLIC'), a.privilege_type
from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
left join pg_roles r on r.oid = a.grantee
where p.pronamespace = 'public'::regnamespace
  and (a.grantee = 0 or r.rolname in ('anon', 'authenticated', 'service_role'))
"""


@pytest.fixture(scope="module")
def old_defaults_dsn(db_server: DatabaseServer) -> Iterator[str]:
    """A database migrated by a role whose default privileges in public grant everything to the API roles."""
    name = f"od_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = db_server.dsn_for(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert load_standin(conn)
            for statement in OLD_DEFAULT_PRIVILEGES:  # as the role that then runs the migrations
                conn.execute(statement)
        migrate(dsn, standin=True)
        yield dsn
    finally:
        db_server.drop(name)


@pytest.fixture
def old_admin(old_defaults_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(old_defaults_dsn, autocommit=True) as conn:
        yield conn


def test_the_old_default_privileges_are_in_force(old_admin: psycopg.Connection) -> None:
    """Guard for the fixture: a table created now in public is granted everything, so the test proves something."""
    with old_admin.transaction():
        old_admin.execute("create table public.probe_default_privileges (id int)")
        assert old_admin.execute(
            "select has_table_privilege('authenticated', 'public.probe_default_privileges', 'truncate')"
        ).fetchone()[0]
        old_admin.execute("drop table public.probe_default_privileges")


def test_privileges_are_the_same_as_on_a_project_without_automatic_grants(
    old_admin: psycopg.Connection, admin: psycopg.Connection
) -> None:
    old = sorted(old_admin.execute(ACL_SNAPSHOT).fetchall())
    new = sorted(admin.execute(ACL_SNAPSHOT).fetchall())
    assert old == new
    assert ("table generation_jobs", "authenticated", "SELECT") in old
    assert not [row for row in old if row[0] == "table generation_jobs" and row[2] != "SELECT"]


def _protected_columns(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select attname from pg_attribute where attrelid = 'public.generation_jobs'::regclass "
        "and attnum > 0 and not attisdropped order by attnum"
    ).fetchall()
    return [name for (name,) in rows if name not in REQUEST_COLUMNS]


def test_a_client_cannot_insert_any_protected_column(old_admin: psycopg.Connection) -> None:
    alice = create_user(old_admin)
    protected = _protected_columns(old_admin)
    expected = {"status", "priority", "max_attempts", "created_at", "attempts", "lora", "user_id"}
    assert expected <= set(protected)
    for column in protected:
        statement = sql.SQL("insert into public.generation_jobs (prompt, {}) values ('x', default)").format(
            sql.Identifier(column)
        )
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege) as caught,
            as_client(old_admin, alice) as conn,
        ):
            conn.execute(statement)
        assert caught.value.sqlstate == "42501", column
        assert "permission denied for table generation_jobs" in str(caught.value), column
    count = "select count(*) from public.generation_jobs where user_id = %s"
    assert old_admin.execute(count, (alice,)).fetchone()[0] == 0


def test_a_client_cannot_backdate_or_prioritise_a_job_as_postgrest_would_send_it(
    old_admin: psycopg.Connection,
) -> None:
    alice = create_user(old_admin)
    payload = {
        "prompt": "p",
        "priority": 32767,
        "created_at": "2020-01-01T00:00:00Z",
        "max_attempts": 25,
        "status": "failed",
        "finished_at": "2020-01-01T00:00:00Z",
        "error_code": "x",
    }
    with (
        pytest.raises(
            psycopg.errors.InsufficientPrivilege, match="permission denied for table generation_jobs"
        ),
        as_client(old_admin, alice) as conn,
    ):
        postgrest_insert(conn, payload)


@pytest.mark.parametrize(
    "statement",
    [
        "update public.generation_jobs set priority = 100 where user_id = (select auth.uid())",
        "update public.generation_jobs set prompt = 'edited' where user_id = (select auth.uid())",
        "delete from public.generation_jobs where user_id = (select auth.uid())",
        "truncate public.generation_jobs",
        "truncate public.generation_styles cascade",
        "update public.generation_styles set enabled = false where id = 'anime'",
        "insert into public.generation_variants (id, label, default_steps, default_true_cfg_scale) "
        "values ('mine', 'x', 1, 1)",
        "delete from public.generation_variants where id = 'tiny'",
    ],
)
@pytest.mark.parametrize("signed_in", [True, False], ids=["authenticated", "anon"])
def test_clients_cannot_update_delete_or_truncate(
    old_admin: psycopg.Connection, statement: str, signed_in: bool
) -> None:
    alice = create_user(old_admin)
    job = old_admin.execute(
        "insert into public.generation_jobs (user_id, prompt) values (%s, 'mine') returning id", (alice,)
    ).fetchone()[0]
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege) as caught,
        as_client(old_admin, alice if signed_in else None) as conn,
    ):
        conn.execute(statement)
    assert caught.value.sqlstate == "42501"
    assert "permission denied for table" in str(caught.value)
    assert old_admin.execute(
        "select prompt, priority from public.generation_jobs where id = %s", (job,)
    ).fetchone() == ("mine", 0)
    assert old_admin.execute("select count(*) from public.generation_styles where enabled").fetchone()[0] == 7


def test_the_intended_client_privileges_still_work(old_admin: psycopg.Connection) -> None:
    alice = create_user(old_admin)
    bob = create_user(old_admin)
    old_admin.execute("insert into public.generation_jobs (user_id, prompt) values (%s, 'bob''s')", (bob,))
    with as_client(old_admin, alice) as conn:
        [(first,)] = postgrest_insert(
            conn, {"prompt": "a fox", "style": "anime", "width": 512, "height": 512}
        )
        second = conn.execute(
            "insert into public.generation_jobs (prompt, client_request_id, metadata) "
            "values ('a cat', 'r-1', '{\"sku\": 1}') returning id, status, user_id"
        ).fetchone()
        assert second[1:] == ("queued", alice)
        assert conn.execute("select count(*) from public.generation_jobs").fetchone()[0] == 2  # not bob's
        position = conn.execute("select public.generation_job_queue_position(%s)", (second[0],)).fetchone()[0]
        assert position >= 1
        assert conn.execute("select public.cancel_generation_job(%s)", (first,)).fetchone()[0] == "canceled"
        assert conn.execute("select count(*) from public.generation_styles").fetchone()[0] == 7
    with as_client(old_admin, None) as conn:
        assert conn.execute("select count(*) from public.generation_styles").fetchone()[0] == 7
    status = old_admin.execute("select status from public.generation_jobs where id = %s", (first,)).fetchone()
    assert status == ("canceled",)


@pytest.mark.parametrize(
    "statement",
    [
        "select public.cancel_generation_job(gen_random_uuid())",
        "select public.generation_job_queue_position(gen_random_uuid())",
        "select count(*) from public.generation_jobs",
        "insert into public.generation_jobs (prompt) values ('x')",
    ],
)
def test_anon_gets_nothing_on_jobs(old_admin: psycopg.Connection, statement: str) -> None:
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for"),
        as_client(old_admin, None) as conn,
    ):
        conn.execute(statement)
