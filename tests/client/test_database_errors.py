"""The stub supabase-js client's errors are the database's: each case of client/fixtures/database_errors.json is
provoked through a real PostgREST-style request on the migrated schema and must give the same SQLSTATE, message
and details (client/database_errors.test.ts holds the stub to the same file)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import as_client, create_user, postgrest_insert

FIXTURE = Path(__file__).resolve().parents[2] / "client" / "fixtures" / "database_errors.json"
CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["cases"]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _provoke(admin: psycopg.Connection, case: dict[str, Any], user: uuid.UUID, names: dict[str, str]) -> None:
    setup = case.get("setup")
    if setup:
        admin.execute(
            "insert into queue.quota_limits (user_id, max_active_jobs, max_jobs_per_hour) values (%s, %s, %s)",
            (user, setup["max_active_jobs"], setup["max_jobs_per_hour"]),
        )
    with psycopg.connect(admin.info.dsn) as conn:
        for i in range(setup.get("existing_jobs", 0) if setup else 0):
            request_id = setup.get("existing_client_request_id") if i == 0 else None
            with as_client(conn, user):
                postgrest_insert(conn, {"prompt": f"existing {i}", "client_request_id": request_id})
        with as_client(conn, user):
            if "rpc" in case:
                conn.execute("select public.cancel_generation_job(%s)", (case["rpc"]["job_id"],))
            else:
                postgrest_insert(conn, _fill(case["request"], names))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_database_raises_exactly_the_error_the_stub_returns(admin: psycopg.Connection, case: dict[str, Any]) -> None:
    user, other = create_user(admin), create_user(admin)
    names = {"user_id": str(user), "other_user_id": str(other)}
    with pytest.raises(psycopg.Error) as raised:
        _provoke(admin, case, user, names)
    diag = raised.value.diag
    assert (raised.value.sqlstate, diag.message_primary) == (case["code"], _fill(case["message"], names))
    if "details" in case:  # null: PostgreSQL sends none (row-level security hides a duplicate key's values)
        assert diag.message_detail == _fill(case["details"], names)
    if "field" in case:
        assert diag.column_name == case["field"], "the error names the field in its COLUMN too"


def test_the_fixture_covers_every_error_class_the_client_maps() -> None:
    assert {c["code"] for c in CASES} >= {"22023", "42501", "PT429", "23505", "P0002"}
