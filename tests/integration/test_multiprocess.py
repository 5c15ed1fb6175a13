"""Several real worker processes (`python -m worker worker`) on one queue: no job lost, none done twice, even
when a worker is killed mid-job or PostgreSQL restarts under them."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.integration.processes import WorkerProcess, spawn_worker, wait_until
from tests.support import create_user
from worker.migrate import migrate
from worker.pgcluster import LocalCluster

pytestmark = pytest.mark.slow


def insert_jobs(conn: psycopg.Connection, user: uuid.UUID, n: int, *, steps: int = 1, prompt: str = "job") -> None:
    conn.execute("insert into generation_jobs (user_id, prompt, width, height, style, steps) "
                 "select %s, %s || ' ' || g, 256, 256, 'none', %s from generate_series(1, %s) g",
                 (user, prompt, steps, n))


def counts(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("select status, count(*) from generation_jobs group by status").fetchall())


def assert_each_completed_once(conn: psycopg.Connection, n: int) -> dict[str, int]:
    per_job = conn.execute("select job_id, count(*) from queue.job_completions group by job_id").fetchall()
    assert len(per_job) == n and {c for _, c in per_job} == {1}, "every job completed exactly once"
    workers = dict(conn.execute("select worker_id, count(*) from queue.job_completions group by worker_id"))
    return workers


def stop_all(workers: list[WorkerProcess]) -> None:
    for w in workers:
        code = w.terminate()
        assert code == 0, f"worker exited {code}:\n{w.log()[-3000:]}"


def test_200_jobs_across_3_worker_processes_each_succeed_exactly_once(admin, tmp_path: Path) -> None:
    user = create_user(admin)
    dsn = admin.info.dsn
    workers = [spawn_worker(dsn, tmp_path, f"w{i}", concurrency=4) for i in range(3)]
    try:
        wait_until(lambda: all("worker started" in w.log() for w in workers), 30, "workers to start")
        insert_jobs(admin, user, 200)
        wait_until(lambda: counts(admin).get("succeeded", 0) == 200, 90, "200 jobs to succeed")
    finally:
        stop_all(workers)
    assert counts(admin) == {"succeeded": 200}
    by_worker = assert_each_completed_once(admin, 200)
    assert len(by_worker) >= 2, f"the work was shared: {by_worker}"
    assert admin.execute("select max(attempts) from generation_jobs").fetchone()[0] == 1
    files = list((tmp_path / "storage" / "generated-designs" / str(user)).glob("*.png"))
    assert len(files) == 200


def test_a_job_whose_worker_is_killed_is_completed_once_by_another_after_lease_expiry(admin, tmp_path) -> None:
    user = create_user(admin)
    dsn = admin.info.dsn
    settings = {"concurrency": 1, "lease_seconds": 2, "progress_interval": 0.5, "placeholder_step_seconds": 0.4}
    first = spawn_worker(dsn, tmp_path, "victim", **settings)
    wait_until(lambda: "worker started" in first.log(), 30, "first worker")
    insert_jobs(admin, user, 1, steps=10, prompt="survivor")          # ~4 s of work
    job_id, locked_by = wait_until(lambda: admin.execute(
        "select id, locked_by from generation_jobs where status = 'running'").fetchone(), 15, "job to start")
    assert locked_by.split(":")[1] == str(first.pid)
    wait_until(lambda: admin.execute("select progress from generation_jobs").fetchone()[0] > 0, 10, "progress")
    first.kill9()
    second = spawn_worker(dsn, tmp_path, "rescuer", **settings)
    try:
        row = wait_until(lambda: admin.execute(
            "select status, attempts, locked_by from generation_jobs where id = %s and status = 'succeeded'",
            (job_id,)).fetchone(), 30, "the job to be rescued")
    finally:
        stop_all([second])
    assert row[1] == 2
    completed = admin.execute("select attempt, worker_id from queue.job_completions where job_id = %s",
                              (job_id,)).fetchall()
    assert len(completed) == 1 and completed[0][0] == 2 and completed[0][1].split(":")[1] == str(second.pid)
    assert "reaped 1 expired lease" in second.log()


def test_workers_reconnect_and_finish_everything_when_postgresql_restarts(tmp_path: Path) -> None:
    cluster = LocalCluster.temporary(prefix="tenkaigen-restart-")     # pytest tmp dirs are private to root
    cluster.start()
    try:
        migrate(cluster.dsn, standin=True)
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            user = create_user(conn)
            settings = {"concurrency": 4, "lease_seconds": 4, "placeholder_step_seconds": 0.05}
            workers = [spawn_worker(cluster.dsn, tmp_path, f"w{i}", **settings) for i in range(2)]
            try:
                wait_until(lambda: all("worker started" in w.log() for w in workers), 30, "workers to start")
                insert_jobs(conn, user, 80, steps=4)                      # ~0.2 s each, 8 at a time
                wait_until(lambda: counts(conn).get("succeeded", 0) >= 15, 30, "some progress")
                conn.close()
                cluster.restart(mode="immediate")                         # a crash: every connection drops
                with psycopg.connect(cluster.dsn, autocommit=True) as after:
                    assert counts(after).get("succeeded", 0) < 80, "the restart happened mid-run"
                    wait_until(lambda: counts(after).get("succeeded", 0) == 80, 60, "all jobs after the restart")
                    assert counts(after) == {"succeeded": 80}
                    assert_each_completed_once(after, 80)
            finally:
                stop_all(workers)
            logs = "".join(w.log() for w in workers)
            assert "listener reconnected" in logs
    finally:
        cluster.destroy()
