"""Fixtures for the packaging tests: one wheel + venv per session, and an empty database on the test server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.packaging.build import InstalledWorker, build_and_install
from tests.support import DatabaseServer


@pytest.fixture(scope="session")
def installed_worker(tmp_path_factory: pytest.TempPathFactory) -> InstalledWorker:
    """The wheel built and installed with deploy/docker/install-worker into a venv in a temp dir (not the repo)."""
    return build_and_install(tmp_path_factory.mktemp("installed-worker"))


@pytest.fixture
def empty_database(db_server: DatabaseServer) -> Iterator[str]:
    """A plain database: no Supabase stand-in, no migrations (not cloned from the template)."""
    name = f"p_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield db_server.dsn_for(name)
    finally:
        db_server.drop(name)
