"""Helpers for tests that talk to a real PostgreSQL: the server, users, and requests made the PostgREST way."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from worker.migrate import migrate
from worker.pgcluster import LocalCluster


@dataclass
class DatabaseServer:
    """A server on which test databases are created: given by URL, or a throwaway local cluster."""

    admin_dsn: str
    cluster: LocalCluster | None = None
    template: str | None = None

    @classmethod
    def start(cls, url: str | None) -> DatabaseServer:
        if url:
            return cls(admin_dsn=url)
        cluster = LocalCluster.temporary(prefix="tenkaigen-pytest-")
        cluster.start()
        return cls(admin_dsn=cluster.dsn, cluster=cluster)

    def dsn_for(self, dbname: str) -> str:
        params = conninfo_to_dict(self.admin_dsn)
        params["dbname"] = dbname
        return make_conninfo(**params)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_dsn, autocommit=True)

    def create_template(self) -> None:
        self.template = f"tpl_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.template)))
        migrate(self.dsn_for(self.template), standin=True)

    def clone(self, name: str) -> str:
        assert self.template, "create_template() first"
        with self._admin() as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        return self.dsn_for(name)

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    def close(self) -> None:
        try:
            if self.template and not self.cluster:
                self.drop(self.template)
        finally:
            if self.cluster:
                self.cluster.destroy()


def create_user(conn: psycopg.Connection, email: str | None = None) -> uuid.UUID:
    """A signed-up user in auth.users (what GoTrue creates at sign-up)."""
    user_id = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, email, aud, role, raw_app_meta_data, raw_user_meta_data) "
        "values (%s, %s, 'authenticated', 'authenticated', '{}', '{}')",
        (user_id, email or f"{user_id.hex[:8]}@example.test"),
    )
    return user_id


@contextlib.contextmanager
def as_client(conn: psycopg.Connection, user_id: uuid.UUID | None) -> Iterator[psycopg.Connection]:
    """One request made the way PostgREST makes it: a transaction with `set local role` and JWT claims.

    user_id None means an anonymous request (role anon). The transaction commits when the block succeeds and
    rolls back on an exception, like PostgREST.
    """
    role = "authenticated" if user_id else "anon"
    claims = {"role": role, **({"sub": str(user_id), "aud": "authenticated"} if user_id else {})}
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn


def postgrest_insert(conn: psycopg.Connection, payload: dict[str, object]) -> list[tuple[object, ...]]:
    """Insert one JSON object the way PostgREST does: columns from the payload keys, values read with
    json_populate_record against the table's row type (so type errors arise exactly as they do there)."""
    columns = sql.SQL(", ").join(sql.Identifier(k) for k in payload)
    return conn.execute(
        sql.SQL(
            "insert into public.generation_jobs ({cols}) select {cols} "
            "from json_populate_record(null::public.generation_jobs, %s::json) returning id"
        ).format(cols=columns),
        (json.dumps(payload),),
    ).fetchall()
