"""A login role without the queue grants is refused at start with one line that says which role to use.

Before, `to_regprocedure('queue.claim_jobs(…)')` raised InsufficientPrivilege for a role without USAGE on schema
`queue`, and the worker died with a 50-line traceback instead of the message check_schema already had.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.integration.processes import worker_env
from worker import commands
from worker.config import Settings
from worker.exceptions import ConfigurationError
from worker.migrate import PROJECT_ROOT


@pytest.fixture
def role_without_grants(admin: psycopg.Connection, database: str) -> Iterator[str]:
    """DSN of a fresh login role that may connect but has no grant on schema queue (dropped afterwards)."""
    name = f"nogrants_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("create role {} login password {}").format(sql.Identifier(name),
                                                                    sql.Literal(f"x-pw-{name}")))
    try:
        params = conninfo_to_dict(database)
        yield make_conninfo(database, user=name, password=f"x-pw-{name}", host=params.get("host"))
    finally:
        admin.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))   # grants a test gave it here
        admin.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def _role_of(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["user"])


def test_the_role_has_no_usage_on_queue(admin: psycopg.Connection, role_without_grants: str) -> None:
    role = _role_of(role_without_grants)
    row = admin.execute("select has_schema_privilege(%s, 'queue', 'usage')", (role,)).fetchone()
    assert row == (False,)


async def test_commands_worker_raises_the_one_line_configuration_error(
        role_without_grants: str, settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(database_url=role_without_grants)
    with pytest.raises(ConfigurationError) as raised:
        await commands.worker(settings, install_signal_handlers=False)
    message = str(raised.value)
    assert message == (f"DATABASE_URL: role {_role_of(role_without_grants)} may not execute the queue functions; "
                       "connect as tenkaigen_worker (alter role tenkaigen_worker login password '…') or postgres")


async def test_usage_on_queue_without_execute_gets_the_same_message(
        admin: psycopg.Connection, role_without_grants: str, settings_for: Callable[..., Settings]) -> None:
    role = _role_of(role_without_grants)
    admin.execute(sql.SQL("grant usage on schema queue to {}").format(sql.Identifier(role)))
    with pytest.raises(ConfigurationError, match=f"role {role} may not execute the queue functions"):
        await commands.worker(settings_for(database_url=role_without_grants), install_signal_handlers=False)


def test_the_cli_prints_one_error_line_and_exits_1(role_without_grants: str, tmp_path: Path) -> None:
    env = worker_env(role_without_grants, tmp_path / "storage")
    result = subprocess.run([sys.executable, "-m", "worker", "worker"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "InsufficientPrivilege" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: DATABASE_URL: role {_role_of(role_without_grants)} may not execute the queue "
                      "functions; connect as tenkaigen_worker (alter role tenkaigen_worker login password '…') "
                      "or postgres"], result.stderr
    assert "x-pw-" not in result.stderr


def test_the_worker_role_itself_passes_the_check(admin: psycopg.Connection, database: str) -> None:
    # the same query, as tenkaigen_worker (set role, as the pooler user would be): the queue exists and may run
    from worker.queue import QUERIES

    with admin.transaction():
        admin.execute("set local role tenkaigen_worker")
        row = admin.execute(QUERIES["check_schema"]).fetchone()
    assert row == (True, True, "tenkaigen_worker")
