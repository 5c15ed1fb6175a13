"""Properties that need two real sessions, which a single pgTAP session cannot show."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from tests.support import as_client, create_user


def _queue_jobs(admin: psycopg.Connection, user: uuid.UUID, count: int) -> None:
    admin.execute(
        "insert into generation_jobs (user_id, prompt, width, height) "
        "select %s, 'job ' || g, 256, 256 from generate_series(1, %s) g",
        (user, count),
    )


def test_a_job_locked_by_one_claim_is_skipped_by_another(database: str, admin: psycopg.Connection) -> None:
    user = create_user(admin)
    _queue_jobs(admin, user, 2)
    with psycopg.connect(database) as first, psycopg.connect(database) as second:
        first_claim = first.execute("select id from queue.claim_jobs('worker-1', 1, 60)").fetchall()
        # worker-1's transaction is still open: its row stays locked, and SKIP LOCKED must pass over it
        second_claim = second.execute("select id from queue.claim_jobs('worker-2', 5, 60)").fetchall()
        first.commit()
        second.commit()
    assert len(first_claim) == 1
    assert len(second_claim) == 1
    assert first_claim != second_claim
    owners = admin.execute("select locked_by, count(*) from generation_jobs group by 1 order by 1").fetchall()
    assert owners == [("worker-1", 1), ("worker-2", 1)]


def test_racing_claimers_never_claim_the_same_job(database: str, admin: psycopg.Connection) -> None:
    user = create_user(admin)
    _queue_jobs(admin, user, 300)
    claimed: dict[str, list[uuid.UUID]] = {}
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        got: list[uuid.UUID] = []
        with psycopg.connect(database, autocommit=True) as conn:
            barrier.wait()
            while rows := conn.execute("select id from queue.claim_jobs(%s, 7, 60)", (name,)).fetchall():
                got += [r[0] for r in rows]
        claimed[name] = got

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [job for jobs in claimed.values() for job in jobs]
    assert len(every) == 300
    assert len(set(every)) == 300, "a job was claimed twice"
    assert (
        admin.execute(
            "select count(*) from generation_jobs where status = 'running' and attempts = 1"
        ).fetchone()[0]
        == 300
    )


def test_concurrent_inserts_by_one_user_cannot_exceed_the_active_quota(
    database: str, admin: psycopg.Connection
) -> None:
    user = create_user(admin)
    admin.execute(
        "update queue.quota_limits set max_active_jobs = 3, max_jobs_per_hour = 100 where user_id is null"
    )
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def insert_one(i: int) -> None:
        with psycopg.connect(database) as conn:
            barrier.wait()
            try:
                with as_client(conn, user):
                    conn.execute("insert into generation_jobs (prompt) values (%s)", (f"race {i}",))
                result = "inserted"
            except psycopg.Error as exc:
                result = exc.sqlstate or "?"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=insert_one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["PT429"] * 5 + ["inserted"] * 3
    assert admin.execute("select count(*) from generation_jobs").fetchone()[0] == 3


def test_a_rate_limited_error_reads_as_postgrest_would_return_it(admin: psycopg.Connection) -> None:
    user = create_user(admin)
    admin.execute("update queue.quota_limits set max_active_jobs = 0 where user_id is null")
    with pytest.raises(psycopg.Error) as caught, as_client(admin, user) as conn:
        conn.execute("insert into generation_jobs (prompt) values ('too many')")
    diag = caught.value.diag
    assert caught.value.sqlstate == "PT429"
    assert diag.message_primary == "rate_limited: at most 0 active jobs per user (you have 0)"
    assert diag.message_hint == "Wait for a job to finish or cancel one, then try again."


def test_a_validation_error_names_its_column(admin: psycopg.Connection) -> None:
    user = create_user(admin)
    with pytest.raises(psycopg.Error) as caught, as_client(admin, user) as conn:
        conn.execute("insert into generation_jobs (prompt, width) values ('x', 1000)")
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.column_name == "width"
    assert caught.value.diag.message_primary.startswith("width: ")
