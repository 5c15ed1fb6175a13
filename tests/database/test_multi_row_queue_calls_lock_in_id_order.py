"""Multi-row worker calls lock their rows in id order, so two sessions given overlapping sets in opposite orders wait
for each other instead of deadlocking (SQLSTATE 40P01). Deterministic: session B's call is made to hold the larger
id and wait for the smaller one; with the fixed order it waits for the smaller one holding nothing."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.support import create_user


def _two_running_jobs(admin: psycopg.Connection) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Two jobs leased to worker-1 at attempt 1, the larger id stored first (so a sequential scan meets it first)."""
    user = create_user(admin)
    small, large = sorted((uuid.uuid4(), uuid.uuid4()))
    for job_id in (large, small):
        admin.execute("insert into generation_jobs (id, user_id, prompt, width, height) values (%s, %s, 'x', 256, 256)",
                      (job_id, user))
    claimed = admin.execute("select count(*) from queue.claim_jobs('worker-1', 2, 60)").fetchone()
    assert claimed == (2,)
    return user, small, large


def _renew(conn: psycopg.Connection, user: uuid.UUID, ids: list[uuid.UUID]) -> None:
    conn.execute("select * from queue.renew_leases('worker-1', %s::uuid[], %s::integer[], 60)", (ids, [1] * len(ids)))


def _complete(conn: psycopg.Connection, user: uuid.UUID, ids: list[uuid.UUID]) -> None:
    results = [{"job_id": str(i), "claim": 1, "result_path": f"{user}/{i}.png", "result_bytes": 1, "backend": "t"}
               for i in ids]
    conn.execute("select * from queue.complete_jobs('worker-1', %s::jsonb)", (json.dumps(results),))


def _release(conn: psycopg.Connection, user: uuid.UUID, ids: list[uuid.UUID]) -> None:
    conn.execute("select queue.release_jobs('worker-1', %s::uuid[], %s::integer[])", (ids, [1] * len(ids)))


def _waiting_on_a_lock(admin: psycopg.Connection, pid: int) -> bool:
    row = admin.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.parametrize("call", [_renew, _complete, _release], ids=["renew_leases", "complete_jobs", "release_jobs"])
def test_opposite_orders_never_deadlock(database: str, admin: psycopg.Connection,
                                        call: Callable[[psycopg.Connection, uuid.UUID, list[uuid.UUID]], Any]) -> None:
    user, small, large = _two_running_jobs(admin)
    errors: list[BaseException] = []
    with psycopg.connect(database) as first, psycopg.connect(database) as second:
        for conn in (first, second):
            conn.execute("set deadlock_timeout = '50ms'")
            conn.commit()
        call(first, user, [small])                        # session A holds the smaller id, transaction open
        second_pid = second.info.backend_pid

        def session_b() -> None:
            try:
                call(second, user, [large, small])        # the opposite order: larger first
                second.commit()
            except psycopg.Error as exc:
                errors.append(exc)
                second.rollback()

        thread = threading.Thread(target=session_b)
        thread.start()
        for _ in range(400):                              # bounded: B must come to wait on A's lock
            if _waiting_on_a_lock(admin, second_pid):
                break
            thread.join(0.025)
        assert _waiting_on_a_lock(admin, second_pid), "session B never waited for session A's row lock"
        try:
            call(first, user, [large])                    # A now needs the larger id: B must not be holding it
            first.commit()
        except psycopg.Error as exc:
            errors.append(exc)
            first.rollback()
        thread.join(10)
        assert not thread.is_alive()
    assert not [e for e in errors if isinstance(e, psycopg.errors.DeadlockDetected)], errors
    assert errors == []
