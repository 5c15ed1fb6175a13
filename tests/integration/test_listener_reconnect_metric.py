"""tenkaigen_listener_reconnects_total counts each reconnect of the LISTEN connection once, not the first connect."""

from __future__ import annotations

import psycopg

from tests.integration.conftest import wait_for


def reconnects(worker) -> float:
    return worker.runner.metrics.listener_reconnects._value.get()


def terminate_listener(admin: psycopg.Connection) -> None:
    dbname = admin.execute("select current_database()").fetchone()[0]
    (pid,) = admin.execute(
        "select pid from pg_stat_activity where application_name = 'tenkaigen-listener' and datname = %s", (dbname,)
    ).fetchone()
    assert admin.execute("select pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]


async def test_each_reconnect_is_counted_once(admin: psycopg.Connection, start_worker) -> None:
    worker = await start_worker()
    listener = await wait_for(lambda: getattr(worker.runner, "listener", None), message="the runner to start")
    await wait_for(listener.connected.is_set, message="the listener to connect")
    assert reconnects(worker) == 0, "the first connect is not a reconnect"
    for expected in (1, 2):
        terminate_listener(admin)
        await wait_for(lambda: not listener.connected.is_set(), message="the listener to notice")
        await wait_for(listener.connected.is_set, message="the listener to reconnect")
        await wait_for(lambda e=expected: reconnects(worker) == e, within=5, message=f"{expected} reconnect(s)")
    text = worker.runner.metrics.render().decode()
    assert "tenkaigen_listener_reconnects_total 2.0" in text
