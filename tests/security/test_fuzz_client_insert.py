"""Fuzzing the client insert path (hypothesis): any JSON payload PostgREST could pass either is rejected with an
error that says what is wrong, or becomes a valid queued row whose resolved request the worker can run.
Never an internal error, never a row that breaks an invariant, never a row after an error."""

from __future__ import annotations

import math
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support import create_user, postgrest_insert

# Type errors are raised by PostgreSQL's input functions while PostgREST reads the JSON, before any trigger:
# their message names the type and the bad value (HTTP 400), not the column.
TYPE_ERRORS = {"22P02", "22003", "22P05", "42804"}

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
long_text = st.one_of(text, st.builds(lambda c, n: c * n, st.sampled_from("ab€🐉"), st.integers(1990, 4100)))
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    text,
    st.floats(allow_nan=False, allow_infinity=False),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=30,
)
sizes = st.one_of(st.sampled_from([256, 512, 768, 1024, 1536, 2048]), st.integers(-10, 5000))

FIELD_VALUES: dict[str, st.SearchStrategy[object]] = {
    "prompt": st.one_of(long_text, st.just("  "), json_scalar),
    "expanded_prompt": st.one_of(st.none(), long_text),
    "negative_prompt": st.one_of(st.none(), long_text),
    "style": st.one_of(
        st.sampled_from(["none", "anime", "realistic", "pixel-art", "cubism", ""]), text, json_value
    ),
    "variant": st.one_of(
        st.none(), st.sampled_from(["lightning-4", "lightning-8", "base", "edit", "tiny", "x"]), text
    ),
    "width": st.one_of(sizes, json_scalar),
    "height": st.one_of(sizes, json_scalar),
    "steps": st.one_of(st.none(), st.integers(-5, 200), json_scalar),
    "true_cfg_scale": st.one_of(
        st.none(), st.floats(-5, 30, allow_nan=False), st.integers(0, 25), json_scalar
    ),
    "seed": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), json_scalar),
    "init_image_path": st.one_of(st.none(), text, st.just("{me}/in.png"), st.just("{me}/../x.png")),
    "franchise": st.one_of(st.none(), text, st.sampled_from(["Pokémon", "sailor senshi", "x" * 65])),
    "client_request_id": st.one_of(st.none(), text, st.from_regex(r"[A-Za-z0-9._:-]{1,130}", fullmatch=True)),
    "metadata": st.one_of(json_value, st.dictionaries(text, json_value, max_size=6)),
}
payloads = st.fixed_dictionaries(
    {"prompt": FIELD_VALUES["prompt"]}, optional={k: v for k, v in FIELD_VALUES.items() if k != "prompt"}
)


@pytest.fixture
def fuzz_user(admin: psycopg.Connection) -> uuid.UUID:
    admin.execute("update queue.quota_limits set max_active_jobs = 1000000, max_jobs_per_hour = 1000000")
    user = create_user(admin)
    admin.execute(
        "insert into queue.franchise_loras (franchise, lora, scale) values ('pokémon', 'o/r/p.safetensors', 0.9)"
    )
    admin.execute(
        "insert into storage.objects (bucket_id, name) values ('generation-inputs', %s)", (f"{user}/in.png",)
    )
    return user


def _assert_runnable(row: dict[str, object], user: uuid.UUID) -> None:
    assert row["user_id"] == user
    assert row["status"] == "queued" and row["progress"] == 0 and row["attempts"] == 0
    assert row["locked_by"] is None and row["result_path"] is None and row["finished_at"] is None
    assert 256 <= row["width"] <= 2048 and row["width"] % 16 == 0
    assert 256 <= row["height"] <= 2048 and row["height"] % 16 == 0
    assert 1 <= row["steps"] <= 100
    assert 1 <= row["true_cfg_scale"] <= 20 and not math.isnan(row["true_cfg_scale"])
    assert row["variant"] == "base" or row["true_cfg_scale"] == 1  # Lightning runs without true CFG
    assert 0 <= row["seed"] <= 4294967295
    assert isinstance(row["resolved_prompt"], str) and row["resolved_prompt"].strip(" \t\r\n")
    assert isinstance(row["negative_prompt"], str)
    assert row["variant"] in {"lightning-4", "lightning-8", "base", "edit", "bf16"}
    assert (row["variant"] == "bf16") == (row["lora"] is not None)
    assert row["variant"] != "edit" or row["init_image_path"] == f"{user}/in.png"
    assert isinstance(row["metadata"], dict)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads)
@example(payload={"prompt": "0", "expanded_prompt": ""})  # found by this test: blank expansion → empty prompt
@example(payload={"prompt": "\t\n", "expanded_prompt": " "})
@example(payload={"prompt": "x", "width": "1024", "seed": 1.5, "metadata": []})
def test_any_payload_is_rejected_clearly_or_becomes_a_runnable_queued_job(
    database: str, fuzz_user: uuid.UUID, payload: dict[str, object]
) -> None:
    if isinstance(payload.get("init_image_path"), str):
        payload["init_image_path"] = payload["init_image_path"].replace("{me}", str(fuzz_user))
    with psycopg.connect(database, row_factory=psycopg.rows.dict_row) as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("set local role authenticated")
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true)",
                    (f'{{"sub":"{fuzz_user}","role":"authenticated"}}',),
                )
                before = conn.execute("select count(*) as n from generation_jobs").fetchone()["n"]
                try:
                    with conn.transaction():
                        [(job_id,)] = [tuple(r.values()) for r in postgrest_insert(conn, payload)]
                except psycopg.Error as exc:
                    state = exc.sqlstate
                    message = exc.diag.message_primary or ""
                    if state == "22023":
                        field = message.split(":", 1)[0]
                        assert field in FIELD_VALUES, message  # one of the client's own columns
                        assert exc.diag.column_name == field
                    else:
                        assert state in TYPE_ERRORS | {"23505", "23502"}, f"{state}: {message}"
                    after = conn.execute("select count(*) as n from generation_jobs").fetchone()["n"]
                    assert after == before, "a rejected insert left a row"
                    return
                row = conn.execute("select * from generation_jobs where id = %s", (job_id,)).fetchone()
                _assert_runnable(row, fuzz_user)
        except psycopg.errors.InternalError as exc:  # never expected: fail loudly with the payload
            pytest.fail(f"internal error for {payload!r}: {exc}")


def test_the_fuzzer_covers_every_client_insertable_column(admin: psycopg.Connection) -> None:
    insertable = {
        r[0]
        for r in admin.execute(
            "select column_name from information_schema.column_privileges where table_schema = 'public' "
            "and table_name = 'generation_jobs' and grantee = 'authenticated' and privilege_type = 'INSERT'"
        )
    }
    assert set(FIELD_VALUES) == insertable
