"""Hostile clients, run as PostgREST runs them (role authenticated/anon with JWT claims). Each case asserts the
precise outcome: an error with its SQLSTATE, or zero rows."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.support import as_client, create_user, postgrest_insert

INJECTIONS = [
    "'; drop table generation_jobs; --",
    '" or 1=1 --',
    "$$; select pg_sleep(10); $$",
    "'); update generation_jobs set status='succeeded' where ('1'='1",
    '{"status": "succeeded"}',
    "\\x00\\u0000 null byte as text",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "{prompt}{prompt}{prompt}",
    "x' || (select string_agg(email, ',') from auth.users) || '",
]


@pytest.fixture
def alice(admin: psycopg.Connection) -> uuid.UUID:
    return create_user(admin, "alice@example.test")


@pytest.fixture
def bob_job(admin: psycopg.Connection) -> uuid.UUID:
    bob = create_user(admin, "bob@example.test")
    return admin.execute(
        "insert into generation_jobs (user_id, prompt) values (%s, 'bob''s secret design') returning id",
        (bob,),
    ).fetchone()[0]


def test_reading_another_users_job_returns_zero_rows(admin, alice, bob_job) -> None:
    with as_client(admin, alice) as conn:
        assert conn.execute("select * from generation_jobs where id = %s", (bob_job,)).fetchall() == []
        assert conn.execute("select count(*) from generation_jobs").fetchone()[0] == 0


@pytest.mark.parametrize(
    "statement",
    [
        "update generation_jobs set prompt = 'mine now' where id = %s",
        "update generation_jobs set status = 'canceled' where id = %s",
        "delete from generation_jobs where id = %s",
    ],
)
def test_updating_or_deleting_another_users_job_is_denied(admin, alice, bob_job, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_client(admin, alice) as conn:
        conn.execute(statement, (bob_job,))
    assert admin.execute(
        "select status, prompt from generation_jobs where id = %s", (bob_job,)
    ).fetchone() == (
        "queued",
        "bob's secret design",
    )


def test_cancelling_another_users_job_is_not_found_and_changes_nothing(admin, alice, bob_job) -> None:
    with pytest.raises(psycopg.errors.NoDataFound), as_client(admin, alice) as conn:
        conn.execute("select cancel_generation_job(%s)", (bob_job,))
    assert admin.execute("select status from generation_jobs where id = %s", (bob_job,)).fetchone() == (
        "queued",
    )


def test_a_malformed_job_id_in_the_cancel_rpc_is_a_type_error(admin, alice) -> None:
    with pytest.raises(psycopg.errors.InvalidTextRepresentation), as_client(admin, alice) as conn:
        conn.execute("select cancel_generation_job(%s::uuid)", ("' or 1=1 --",))


@pytest.mark.parametrize(
    "forged",
    [
        {"user_id": "00000000-0000-4000-8000-000000000001"},
        {"status": "succeeded"},
        {"result_path": "x/y.png"},
        {"locked_by": "me"},
        {"lease_expires_at": "2999-01-01T00:00:00Z"},
        {"priority": 32767},
        {"attempts": 0, "max_attempts": 25},
        {"cost_usd": 0},
        {"lora": "evil/repo/backdoor.safetensors", "lora_scale": 2},
        {"id": "00000000-0000-4000-8000-000000000002"},
    ],
)
def test_inserting_with_a_forged_privileged_column_is_denied(admin, alice, forged: dict[str, object]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_client(admin, alice) as conn:
        postgrest_insert(conn, {"prompt": "forged", **forged})
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 0


def test_reading_another_users_broadcast_topic_returns_zero_rows(admin, alice, bob_job) -> None:
    bob = admin.execute("select user_id from generation_jobs where id = %s", (bob_job,)).fetchone()[0]
    assert admin.execute("select count(*) from realtime.messages").fetchone()[0] == 1
    with as_client(admin, alice) as conn:
        conn.execute("select set_config('realtime.topic', %s, true)", (f"generation_jobs:{bob}",))
        assert conn.execute("select count(*) from realtime.messages").fetchone()[0] == 0


def test_sending_a_fake_update_to_another_users_topic_stores_nothing(admin, alice, bob_job) -> None:
    bob = admin.execute("select user_id from generation_jobs where id = %s", (bob_job,)).fetchone()[0]
    with as_client(admin, alice) as conn:
        # realtime.send swallows the RLS error as a WARNING: the point is that no message exists afterwards
        conn.execute(
            "select realtime.send('{\"status\":\"succeeded\"}', 'job_update', %s, true)",
            (f"generation_jobs:{bob}",),
        )
    assert (
        admin.execute(
            "select count(*) from realtime.messages where payload ->> 'status' = 'succeeded'"
        ).fetchone()[0]
        == 0
    )


@pytest.mark.parametrize(
    "path",
    [
        "{other}/in.png",
        "{me}/../{other}/in.png",
        "/{me}/in.png",
        "{me}/%2e%2e/in.png",
        "{me}/sub/in.png",
        "{me}/..",
        "../{me}/in.png",
        "{me}\\..\\{other}\\in.png",
        "{me}/in.png\n",
    ],
)
def test_init_image_paths_outside_the_callers_folder_are_rejected(admin, alice, path: str) -> None:
    other = create_user(admin)
    admin.execute(
        "insert into storage.objects (bucket_id, name) values ('generation-inputs', %s), ('generation-inputs', %s)",
        (f"{other}/in.png", f"{alice}/in.png"),
    )
    with pytest.raises(psycopg.Error) as caught, as_client(admin, alice) as conn:
        postgrest_insert(conn, {"prompt": "edit it", "init_image_path": path.format(me=alice, other=other)})
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary.startswith("init_image_path: ")
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 0


def test_an_init_image_that_was_never_uploaded_is_rejected(admin, alice) -> None:
    with pytest.raises(psycopg.Error) as caught, as_client(admin, alice) as conn:
        postgrest_insert(conn, {"prompt": "edit it", "init_image_path": f"{alice}/missing.png"})
    assert caught.value.sqlstate == "22023"
    assert (
        caught.value.diag.message_primary
        == f"init_image_path: no object {alice}/missing.png in bucket generation-inputs"
    )


def test_an_init_image_in_the_callers_own_folder_is_accepted_as_an_edit(admin, alice) -> None:
    admin.execute(
        "insert into storage.objects (bucket_id, name) values ('generation-inputs', %s)", (f"{alice}/in.png",)
    )
    with as_client(admin, alice) as conn:
        postgrest_insert(conn, {"prompt": "make it blue", "init_image_path": f"{alice}/in.png"})
    assert admin.execute("select variant from generation_jobs").fetchone() == ("edit",)


@pytest.mark.parametrize(
    "call",
    [
        "select * from queue.claim_jobs('me', 10, 60)",
        "select queue.complete_jobs('me', '[]')",
        "select queue.fail_job('me', gen_random_uuid(), 1, 'x', 'y', false)",
        "select queue.reap_expired_leases()",
        "select queue.requeue_job(gen_random_uuid())",
        "select queue.cancel_job(gen_random_uuid())",
        "select * from queue.purge_finished_jobs()",
        "select * from queue.job_stats",
        "select * from queue.quota_limits",
        "update queue.quota_limits set max_active_jobs = 1000",
    ],
)
@pytest.mark.parametrize("as_anon", [False, True])
def test_the_private_queue_schema_is_out_of_reach_for_clients(admin, alice, call: str, as_anon: bool) -> None:
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege) as caught,
        as_client(admin, None if as_anon else alice) as conn,
    ):
        conn.execute(call)
    assert "permission denied for schema queue" in str(caught.value)


def test_anon_cannot_call_the_client_rpcs(admin, bob_job) -> None:
    for call in ("select cancel_generation_job(%s)", "select generation_job_queue_position(%s)"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_client(admin, None) as conn:
            conn.execute(call, (bob_job,))


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_in_every_text_field_are_stored_verbatim_as_data(admin, alice, text: str) -> None:
    admin.execute("update queue.quota_limits set max_active_jobs = 1000, max_jobs_per_hour = 1000")
    payload = {
        "prompt": text,
        "expanded_prompt": text,
        "negative_prompt": text,
        "metadata": {"note": text, text[:40]: [text], "nested": {"k": text}},
    }
    with as_client(admin, alice) as conn:
        (job_id,) = postgrest_insert(conn, payload)[0]
    row = admin.execute(
        "select prompt, expanded_prompt, negative_prompt, metadata, status, resolved_prompt from generation_jobs where id = %s",
        (job_id,),
    ).fetchone()
    assert row[:4] == (text, text, text, payload["metadata"])
    assert row[4] == "queued"
    assert row[5] == text.strip()  # style 'none' template is '{prompt}': the expanded prompt, verbatim
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 1
    assert admin.execute("select count(*) from auth.users").fetchone()[0] == 1


@pytest.mark.parametrize("field", ["style", "variant", "client_request_id", "init_image_path"])
@pytest.mark.parametrize("text", INJECTIONS[:4])
def test_injection_strings_in_constrained_text_fields_are_rejected_naming_the_field(
    admin, alice, field: str, text: str
) -> None:
    with pytest.raises(psycopg.Error) as caught, as_client(admin, alice) as conn:
        postgrest_insert(conn, {"prompt": "x", field: text})
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary.startswith(f"{field}: ")
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 0
