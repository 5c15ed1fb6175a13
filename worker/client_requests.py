"""Client-side requests the PostgREST way (role authenticated + JWT claims, under RLS), for `enqueue` and
`dev --prompt`; and the dev-only user a request needs."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from worker.exceptions import BadRequest
from worker.queries import QUERIES
from worker.queue_errors import translate_errors

ENQUEUE_FIELDS = ("prompt", "expanded_prompt", "negative_prompt", "style", "variant", "width", "height", "steps",
                  "true_cfg_scale", "seed", "init_image_path", "franchise", "client_request_id", "metadata")


class RateLimited(BadRequest):
    """The user's quota refused the job (SQLSTATE PT429, `rate_limited: …`)."""

    error_code = "rate_limited"


async def ensure_user(conn: psycopg.AsyncConnection[Any], user_id: UUID, email: str) -> None:
    """Dev only: make sure a user exists in auth.users."""
    with translate_errors():
        await conn.execute(QUERIES["ensure_user"], {"user_id": user_id, "email": email})


async def enqueue_as_client(conn: psycopg.AsyncConnection[Any], user_id: UUID, **request: Any) -> dict[str, Any]:
    """Insert a job as `user_id` would through PostgREST: role authenticated + JWT claims, under RLS, validated and
    rate-limited by the database. Returns id, status, seed, steps, variant. Raises BadRequest (22023, message
    names the field) or RateLimited."""
    unknown = set(request) - set(ENQUEUE_FIELDS)
    if unknown:
        raise BadRequest(f"{sorted(unknown)[0]}: not a request field (use {', '.join(ENQUEUE_FIELDS)})")
    given = {k: v for k, v in request.items() if v is not None}
    if "metadata" in given:
        given["metadata"] = Jsonb(given["metadata"])
    query = sql.SQL(QUERIES["enqueue_job"]).format(
        columns=sql.SQL(", ").join(sql.Identifier(k) for k in given),
        values=sql.SQL(", ").join(sql.Placeholder(k) for k in given),
    )
    claims = json.dumps({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"})
    try:
        with translate_errors():
            async with conn.transaction():
                await conn.execute(QUERIES["client_set_role"])
                await conn.execute(QUERIES["client_set_claims"], {"claims": claims})
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(query, given)
                row = await cur.fetchone()
    except psycopg.Error as exc:
        if exc.sqlstate == "PT429":
            raise RateLimited(exc.diag.message_primary or str(exc)) from exc
        raise
    assert row is not None
    return row
