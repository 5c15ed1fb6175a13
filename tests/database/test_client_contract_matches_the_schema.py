"""The TypeScript client contract and the Edge Function agree with the database they describe."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
CLIENT_TYPES = ROOT / "client" / "generation_jobs.ts"
DATABASE_TYPES = ROOT / "client" / "database.types.ts"
UPLOADS_TS = ROOT / "client" / "uploads.ts"
STYLES_TS = ROOT / "supabase" / "functions" / "_shared" / "styles.ts"


def _interface_fields(source: str, name: str) -> list[str]:
    body = re.search(rf"export interface {name} \{{(.*?)\n\}}", source, re.S)
    assert body, f"interface {name} not found"
    return re.findall(r"^\s+(\w+)\??:", body[1], re.M)


def _generated_fields(table: str, part: str) -> list[str]:
    """The keys of Database["public"]["Tables"][table][part] in client/database.types.ts."""
    source = DATABASE_TYPES.read_text()
    body = re.search(rf"\n      {table}: \{{\n(?:[^\n]*\n)*?        {part}: \{{\n((?:[^\n]*\n)*?)        \}}", source)
    assert body, f"{table}.{part} not found in {DATABASE_TYPES.name}"
    return re.findall(r"^\s+(\w+)\??:", body[1], re.M)


def _columns(admin: psycopg.Connection, table: str) -> list[str]:
    return [
        r[0]
        for r in admin.execute(
            "select column_name from information_schema.columns where table_schema = 'public' and table_name = %s "
            "order by ordinal_position",
            (table,),
        )
    ]


def test_the_generated_row_types_have_exactly_the_table_columns(admin: psycopg.Connection) -> None:
    for table in ("generation_jobs", "generation_styles", "generation_variants"):
        assert sorted(_generated_fields(table, "Row")) == sorted(_columns(admin, table)), table


def test_the_generated_insert_type_has_exactly_the_client_insertable_columns(admin: psycopg.Connection) -> None:
    fields = _generated_fields("generation_jobs", "Insert")
    insertable = [
        r[0]
        for r in admin.execute(
            "select column_name from information_schema.column_privileges where table_schema = 'public' "
            "and table_name = 'generation_jobs' and grantee = 'authenticated' and privilege_type = 'INSERT'"
        )
    ]
    assert sorted(fields) == sorted(insertable)


def test_the_broadcast_payload_type_matches_the_projection(admin: psycopg.Connection) -> None:
    fields = _interface_fields(CLIENT_TYPES.read_text(), "JobUpdate")
    user = admin.execute(
        "insert into auth.users (id, email) values (gen_random_uuid(), 'p@example.test') returning id"
    ).fetchone()[0]
    admin.execute("insert into generation_jobs (user_id, prompt) values (%s, 'x')", (user,))
    keys = admin.execute("select payload from realtime.messages").fetchone()[0].keys()
    assert sorted(fields) == sorted(
        k for k in keys if k != "id"
    )  # `id` is the message id added by realtime.send


def test_the_edge_function_knows_exactly_the_database_styles(admin: psycopg.Connection) -> None:
    block = re.search(r"export const STYLE_IDS = \[(.*?)\]", STYLES_TS.read_text(), re.S)
    assert block, "STYLE_IDS not found"
    ts_ids = re.findall(r'"([a-z0-9-]+)"', block[1])
    db_ids = [r[0] for r in admin.execute("select id from generation_styles where enabled order by id")]
    assert sorted(ts_ids) == db_ids


def test_the_client_checks_uploads_against_the_bucket_limits(admin: psycopg.Connection) -> None:
    source = UPLOADS_TS.read_text()
    max_bytes = re.search(r"INIT_IMAGE_MAX_BYTES = ([\d_]+);", source)
    types = re.search(r"INIT_IMAGE_TYPES: .*? = \{(.*?)\};", source, re.S)
    assert max_bytes and types, "INIT_IMAGE_MAX_BYTES / INIT_IMAGE_TYPES not found in client/uploads.ts"
    row = admin.execute(
        "select file_size_limit, allowed_mime_types from storage.buckets where id = 'generation-inputs'"
    ).fetchone()
    assert row is not None
    assert int(max_bytes[1].replace("_", "")) == row[0]
    assert sorted(re.findall(r'"(image/[a-z]+)"', types[1])) == sorted(row[1])
