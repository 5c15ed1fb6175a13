"""supabase/seed.sql creates a developer who can sign in to the local stack, with the CLI's dev-user id."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from tests.support import as_client, postgrest_insert
from worker.commands import DEV_USER_EMAIL, DEV_USER_ID

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "supabase" / "seed.sql"
FRONTEND_DOC = ROOT / "docs" / "frontend.md"


def _seed_password() -> str:
    match = re.search(r"password (\S+)", SEED.read_text())
    assert match, "seed.sql states the dev user's password in its header"
    return match[1]


def _load_seed(admin: psycopg.Connection) -> None:
    admin.execute(SEED.read_text())


def test_the_seed_user_can_sign_in_with_email_and_password(admin: psycopg.Connection) -> None:
    _load_seed(admin)
    row = admin.execute(
        "select email, aud, role, instance_id::text, email_confirmed_at is not null, "
        "encrypted_password = extensions.crypt(%s, encrypted_password), encrypted_password like '$2%%', "
        "confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data "
        "from auth.users where id = %s",
        (_seed_password(), DEV_USER_ID),
    ).fetchone()
    assert row is not None, f"seed.sql creates auth.users {DEV_USER_ID}"
    email, aud, role, instance_id, confirmed, password_ok, bcrypt, *tokens, app_meta = row
    assert (email, aud, role) == (DEV_USER_EMAIL, "authenticated", "authenticated")
    assert instance_id == "00000000-0000-0000-0000-000000000000"
    assert confirmed, "the email is confirmed, so sign-in needs no confirmation mail"
    assert password_ok and bcrypt, "encrypted_password is a bcrypt hash of the documented password"
    assert tokens == ["", "", "", ""], "GoTrue scans these as strings: '' not NULL"
    assert app_meta == {"provider": "email", "providers": ["email"]}


def test_the_seed_user_has_the_email_identity_supabase_auth_needs(admin: psycopg.Connection) -> None:
    _load_seed(admin)
    identities = admin.execute(
        "select provider, provider_id, identity_data, email from auth.identities where user_id = %s", (DEV_USER_ID,)
    ).fetchall()
    assert identities == [
        (
            "email",
            str(DEV_USER_ID),
            {"sub": str(DEV_USER_ID), "email": DEV_USER_EMAIL, "email_verified": True},
            DEV_USER_EMAIL,
        )
    ]


def test_the_seed_loads_twice_and_the_seed_user_submits_a_job(admin: psycopg.Connection) -> None:
    _load_seed(admin)
    _load_seed(admin)  # `supabase db reset` on a database that already has the user (e.g. `tenkaigen dev`'s)
    assert admin.execute("select count(*) from auth.users").fetchone() == (1,)
    with psycopg.connect(admin.info.dsn) as conn, as_client(conn, DEV_USER_ID):
        (job_id,) = postgrest_insert(conn, {"prompt": "a red fox"})[0]
    assert admin.execute("select user_id from generation_jobs where id = %s", (job_id,)).fetchone() == (DEV_USER_ID,)


def test_docs_frontend_gives_the_seed_users_email_and_password() -> None:
    doc = FRONTEND_DOC.read_text()
    assert DEV_USER_EMAIL in doc and _seed_password() in doc
