"""Shared pytest fixtures: a real PostgreSQL with the Supabase stand-in and all migrations, cloned per test.

The stand-in and migrations are applied once per session to a template database; each test that asks for
`database` gets its own `CREATE DATABASE … TEMPLATE` clone (tens of milliseconds), dropped afterwards.
With DATABASE_URL set (scripts/test sets it to its ephemeral cluster) the databases are created on that server
(its user needs CREATEDB); otherwise the session starts its own throwaway cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.support import DatabaseServer

_SERVER_URL = os.environ.pop("DATABASE_URL", None)
for _name in [n for n in os.environ if n.startswith("TENKAIGEN_") or n.startswith("SUPABASE_")]:
    del os.environ[_name]  # tests build their settings explicitly; nothing leaks from the shell
for _name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
    os.environ.pop(_name, None)  # a Modal token without network hangs ~60 s


@pytest.fixture(scope="session")
def db_server() -> Iterator[DatabaseServer]:
    """The PostgreSQL server the tests use, with a migrated template database."""
    server = DatabaseServer.start(_SERVER_URL)
    try:
        server.create_template()
        yield server
    finally:
        server.close()


@pytest.fixture
def database(db_server: DatabaseServer) -> Iterator[str]:
    """DSN of a fresh database with the stand-in and every migration applied, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = db_server.clone(name)
    try:
        yield dsn
    finally:
        db_server.drop(name)


@pytest.fixture
def admin(database: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection as the database owner (an admin in the SQL editor)."""
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn


@pytest.fixture
def empty_database(db_server: DatabaseServer) -> Iterator[str]:
    """DSN of a plain database: no Supabase stand-in, no migrations (not cloned from the template)."""
    name = f"e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield db_server.dsn_for(name)
    finally:
        db_server.drop(name)
