"""queue.job_stats: exact counts of the active jobs, the finished ones over the last 24 h, and a cost that follows the
active jobs, not the history kept for retention (queue.job_stats in migration *_queue_functions.sql)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from worker.db import open_pool
from worker.queue import QueueClient

HISTORY_ROWS = 30_000       # 30 days of finished jobs, one every 86 s: about 1000 in the last 24 h
ACTIVE_ROWS = 110           # 100 queued, 10 running


@pytest.fixture
async def queue(database: str) -> AsyncIterator[QueueClient]:
    pool = await open_pool(database, min_size=1, max_size=2)
    yield QueueClient(pool, "stats:1:aaaaaa", lease_seconds=30)
    await pool.close()


def _finished(admin: psycopg.Connection, user: Any, status: str, ago: timedelta) -> None:
    admin.execute(
        "insert into generation_jobs (user_id, prompt, width, height, status, attempts, error_code, "
        "cancel_requested_at, finished_at) "
        "values (%(user)s, %(status)s, 256, 256, %(status)s, 1, "
        "case when %(status)s = 'failed' then 'test_error' end, "
        "case when %(status)s = 'canceled' then now() - %(ago)s end, now() - %(ago)s)",
        {"user": user, "status": status, "ago": ago})


async def test_active_jobs_are_counted_exactly_and_finished_ones_over_the_last_24_hours(
        admin, make_job, user, queue) -> None:
    make_job("due")
    make_job("queued for ten days", created_at=datetime.now(UTC) - timedelta(days=10),
             run_after=datetime.now(UTC) - timedelta(days=10))
    make_job("backing off", run_after=datetime.now(UTC) + timedelta(minutes=5))
    make_job("running", status="running")
    for status, ago in [("failed", timedelta(minutes=30)), ("failed", timedelta(hours=23)),
                        ("failed", timedelta(hours=25)), ("canceled", timedelta(hours=2)),
                        ("canceled", timedelta(days=10))]:
        _finished(admin, user, status, ago)
    stats = await queue.job_stats()
    assert (stats.queued, stats.claimable, stats.running) == (3, 2, 1), "exact, whatever their age"
    assert stats.oldest_claimable_age_seconds is not None and stats.oldest_claimable_age_seconds > 9 * 86400
    assert (stats.succeeded_last_24h, stats.failed_last_24h, stats.canceled_last_24h) == (0, 2, 1), \
        "finished 30 min and 23 h ago count; 25 h and 10 days ago do not"
    assert stats.finished_last_hour == 1


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_job_stats_does_not_scan_the_finished_history(admin, user) -> None:
    admin.execute(
        "insert into generation_jobs (user_id, prompt, width, height, status, attempts, error_code, created_at, "
        "run_after, finished_at) "
        "select %s, 'old ' || g, 256, 256, 'failed', 1, 'test_error', t, t, t "
        "from generate_series(1, %s) g, lateral (select now() - g * interval '86 seconds' as t) x",
        (user, HISTORY_ROWS))
    admin.execute("insert into generation_jobs (user_id, prompt, width, height) "
                  "select %s, 'active ' || g, 256, 256 from generate_series(1, %s) g", (user, ACTIVE_ROWS))
    admin.execute("update generation_jobs set status = 'running', attempts = 1, locked_by = 'x', "
                  "lease_expires_at = now() + interval '1 minute', started_at = now() "
                  "where prompt in (select 'active ' || g from generate_series(1, 10) g)")
    admin.execute("analyze generation_jobs")
    # as the admin, and as the worker role (the gauges' reader: the view is security_invoker, so under RLS)
    for role in (None, "tenkaigen_worker"):
        with admin.transaction():
            if role is not None:
                admin.execute(f"set local role {role}")
            ((explained,),) = admin.execute("explain (analyze, format json) select * from queue.job_stats").fetchall()
            (stats,) = admin.execute("select queued, running, failed_last_24h from queue.job_stats").fetchall()
        nodes = list(_nodes(explained[0]["Plan"]))
        scans = [n for n in nodes if n.get("Relation Name") == "generation_jobs"]
        shape = [(n["Node Type"], n.get("Index Name")) for n in nodes]
        assert scans and not [n for n in scans if n["Node Type"] == "Seq Scan"], (role, shape)
        assert any(n.get("Index Name") == "generation_jobs_finished_at_idx" for n in nodes), (role, shape)
        rows_read = sum((n["Actual Rows"] + n.get("Rows Removed by Filter", 0)
                         + n.get("Rows Removed by Index Recheck", 0)) * n["Actual Loops"] for n in scans)
        assert rows_read < 2_000, f"{role}: read {rows_read} rows for {ACTIVE_ROWS} active jobs: {shape}"
        assert stats[:2] == (100, 10), (role, stats)
        assert 990 <= stats[2] <= 1010, (role, stats)
