"""The admin commands as a subprocess against a real database: `jobs` at 80 and 120 columns, `--json` on every
listing, `--status` validated before any query, and `cancel` / `requeue` saying (and exiting non-zero) when they
do nothing, by full id or short id prefix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from rich.cells import cell_len

from tests.support import create_user
from worker.migrate import PROJECT_ROOT

pytestmark = pytest.mark.slow

STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
WORKER_ID = "acceptance:1:admin"
LONG_PROMPT = ("A majestic dragon coiled around a lighthouse on a storm-beaten cliff, waves crashing, lightning in "
               "the clouds, cinematic, highly detailed")
LONG_ERROR = ("the Storage API answered HTTP 413 Payload Too Large for a 41 MB image; raise the bucket's file size "
              "limit or lower TENKAIGEN_MAX_RESULT_BYTES")


def tenkaigen(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TENKAIGEN_", "SUPABASE_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "-m", "worker", *args], cwd=PROJECT_ROOT,
                          env={**base, "COLUMNS": str(columns)}, capture_output=True, text=True, timeout=120)


def job_in(admin: psycopg.Connection, user: uuid.UUID, status: str, prompt: str = "a red fox",
           job_id: uuid.UUID | None = None) -> uuid.UUID:
    """A job brought to `status` the way the worker does it: inserted, then claimed, completed or failed through the
    queue functions (the only place job state is decided)."""
    row = admin.execute("insert into generation_jobs (id, user_id, prompt, width, height, style, steps) "
                        "values (coalesce(%s, gen_random_uuid()), %s, %s, 256, 256, 'none', 4) returning id",
                        (job_id, user, prompt)).fetchone()
    assert row is not None
    created: uuid.UUID = row[0]
    if status == "canceled":
        assert admin.execute("select queue.cancel_job(%s)", (created,)).fetchone() == ("canceled",)
    if status in ("running", "succeeded", "failed"):
        claimed = admin.execute("select id, claims from queue.claim_jobs(%s, 1000, 60)", (WORKER_ID,)).fetchall()
        assert (created, 1) in claimed, "the job was claimed"
        others = [(job, claim) for (job, claim) in claimed if job != created]
        if others:                                        # hand back what this helper did not mean to claim
            admin.execute("select queue.release_jobs(%s, %s::uuid[], %s::integer[])",
                          (WORKER_ID, [job for job, _ in others], [claim for _, claim in others]))
    if status == "succeeded":
        result = [{"job_id": str(created), "claim": 1, "result_path": f"{user}/{created}.png",
                   "result_bytes": 1234, "backend": "placeholder", "backend_call_id": None, "gpu_seconds": None,
                   "cost_usd": None}]
        assert admin.execute("select queue.complete_jobs(%s, %s)", (WORKER_ID, Jsonb(result))).fetchone() \
            == (created,)
    if status == "failed":
        assert admin.execute("select queue.fail_job(%s, %s, 1, 'upload_failed', %s, false)",
                             (WORKER_ID, created, LONG_ERROR)).fetchone() == ("failed",)
    assert admin.execute("select status from generation_jobs where id = %s", (created,)).fetchone() == (status,)
    return created


@pytest.fixture
def user(admin: psycopg.Connection) -> uuid.UUID:
    return create_user(admin)


@pytest.mark.parametrize("columns", [80, 120])
def test_jobs_fits_every_row_on_one_line_with_short_ids_ages_and_whole_status_words(admin, database, user,
                                                                                   columns: int) -> None:
    jobs = {status: job_in(admin, user, status, f"{status}: {LONG_PROMPT}") for status in STATUSES}
    listed = tenkaigen("jobs", "--database-url", database, columns=columns)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 1 + len(jobs), listed.stdout
    assert all(cell_len(line) <= columns for line in lines), [cell_len(line) for line in lines]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    for status, job_id in jobs.items():
        _, shown_status, age = rows[job_id.hex[:8]][:3]
        assert shown_status == status and re.fullmatch(r"[0-9]+[smhd]", age), age
    succeeded = next(line for line in lines if " succeeded " in line)
    assert succeeded.rstrip().endswith(".png")
    failed = next(line for line in lines if " failed " in line)
    assert "upload_failed: the S" in failed and failed.rstrip().endswith("…")

    wide = tenkaigen("jobs", "--database-url", database, "--wide", columns=columns)
    assert wide.returncode == 0, wide.stderr
    for status, job_id in jobs.items():
        (line,) = [line for line in wide.stdout.splitlines() if line.startswith(str(job_id))]
        assert f" {status} " in line and LONG_PROMPT in line
    assert LONG_ERROR in wide.stdout and f"{user}/{jobs['succeeded']}.png" in wide.stdout


def test_every_listing_prints_one_json_document_with_full_ids_and_iso_timestamps(admin, database, user) -> None:
    enqueued = tenkaigen("enqueue", "--database-url", database, "--dev-user", "a json fox", "--json")
    assert enqueued.returncode == 0, enqueued.stderr
    row = json.loads(enqueued.stdout)
    assert row["status"] == "queued" and uuid.UUID(row["id"])
    failed = job_in(admin, user, "failed")

    listed = tenkaigen("jobs", "--database-url", database, "--json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert [job["id"] for job in document] == [str(failed), row["id"]], "newest first, full ids"
    assert document[0]["status"] == "failed" and document[0]["error_message"] == LONG_ERROR
    assert datetime.fromisoformat(document[0]["created_at"]).tzinfo is not None
    assert document[1]["prompt"] == "a json fox" and document[1]["finished_at"] is None

    only_failed = json.loads(tenkaigen("jobs", "--database-url", database, "--json", "--status", "failed").stdout)
    assert [job["id"] for job in only_failed] == [str(failed)]

    stats = tenkaigen("stats", "--database-url", database, "--json")
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert (counts["queued"], counts["running"], counts["failed_last_24h"]) == (1, 0, 1)
    assert counts["oldest_claimable_age_seconds"] >= 0

    none = tenkaigen("jobs", "--database-url", database, "--json", "--status", "running")
    assert none.returncode == 0 and json.loads(none.stdout) == []
    empty = tenkaigen("jobs", "--database-url", database, "--status", "running")
    assert empty.returncode == 0 and empty.stdout == "" and "no running jobs" in empty.stderr


def test_a_bogus_status_exits_2_listing_the_valid_values_and_queries_nothing() -> None:
    nowhere = "postgresql://postgres:pw@127.0.0.1:1/nowhere"        # a query would fail with exit 1
    result = tenkaigen("jobs", "--database-url", nowhere, "--status", "bogus")
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "'bogus' is not one of" in message
    for status in STATUSES:
        assert f"'{status}'" in message
    assert result.stdout == "" and "cannot connect" not in message
    bad_id = tenkaigen("cancel", "--database-url", nowhere, "not-a-job")
    assert bad_id.returncode == 2 and "first 8 or more hex digits" in " ".join(bad_id.stderr.split())


def test_cancel_and_requeue_say_what_they_did_and_exit_1_when_they_do_nothing(admin, database, user) -> None:
    def run(command: str, job: uuid.UUID | str) -> subprocess.CompletedProcess[str]:
        return tenkaigen(command, "--database-url", database, str(job), columns=200)

    queued = job_in(admin, user, "queued")
    canceled = run("cancel", queued)
    assert (canceled.returncode, canceled.stdout.strip()) == (0, f"job {queued} canceled")
    again = run("cancel", queued)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip() == f"job {queued} already canceled: nothing to cancel"
    requeued = run("requeue", queued)
    assert (requeued.returncode, requeued.stdout.strip()) == (0, f"job {queued} requeued (it was canceled)")
    live = run("requeue", queued)
    assert live.returncode == 1 and live.stderr.strip() == (
        f"job {queued} is queued: requeue does nothing (only failed, canceled or succeeded jobs can be requeued)")

    running = job_in(admin, user, "running")
    not_requeued = run("requeue", running)
    assert not_requeued.returncode == 1 and f"job {running} is running: requeue does nothing" in not_requeued.stderr
    assert admin.execute("select status from generation_jobs where id = %s", (running,)).fetchone() == ("running",)
    requested = run("cancel", running)
    assert requested.returncode == 0
    assert requested.stdout.strip() == f"job {running} is running: cancel requested, its worker stops it"

    succeeded = job_in(admin, user, "succeeded")
    finished = run("cancel", succeeded)
    assert finished.returncode == 1
    assert finished.stderr.strip() == f"job {succeeded} already succeeded: nothing to cancel"
    failed = job_in(admin, user, "failed")
    assert run("requeue", failed).stdout.strip() == f"job {failed} requeued (it was failed)"

    as_json = json.loads(tenkaigen("cancel", "--database-url", database, str(succeeded), "--json").stdout)
    assert as_json == {"action": "cancel", "job_id": str(succeeded), "before": "succeeded", "outcome": "succeeded",
                       "changed": False}

    unknown = uuid.uuid4()
    for command in ("cancel", "requeue"):
        missing = run(command, unknown)
        assert missing.returncode == 1 and f"error: job_id: no job {unknown}" in missing.stderr
        assert "Traceback" not in missing.stderr


def test_cancel_and_requeue_accept_an_unambiguous_short_id(admin, database, user) -> None:
    target = job_in(admin, user, "queued")
    short = target.hex[:8]
    canceled = tenkaigen("cancel", "--database-url", database, short)
    assert canceled.returncode == 0 and canceled.stdout.strip() == f"job {target} canceled"
    assert tenkaigen("requeue", "--database-url", database, short.upper()).returncode == 0

    twin = job_in(admin, user, "queued", job_id=uuid.UUID(short + "0" * 24))
    ambiguous = tenkaigen("cancel", "--database-url", database, short)
    assert ambiguous.returncode == 1
    assert f"job_id: {short} is the start of more than one job's id" in " ".join(ambiguous.stderr.split())
    assert admin.execute("select count(*) from generation_jobs where status = 'queued'").fetchone() == (2,)
    longer = tenkaigen("cancel", "--database-url", database, str(twin)[:18])    # with its hyphens
    assert longer.returncode == 0 and str(twin) in longer.stdout

    absent = "ffffffff" if not short.startswith("f") else "00000000"
    missing = tenkaigen("cancel", "--database-url", database, absent)
    assert missing.returncode == 1 and f"job_id: no job whose id starts with {absent}" in missing.stderr


def test_cancel_or_requeue_as_the_worker_role_says_which_role_to_use(admin, database, user) -> None:
    job_id = job_in(admin, user, "failed")
    name = f"worker_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("create role {} login password 'pw' in role tenkaigen_worker").format(sql.Identifier(name)))
    try:
        as_worker = make_conninfo(database, user=name, password="pw")
        listed = tenkaigen("jobs", "--database-url", as_worker)
        assert listed.returncode == 0 and job_id.hex[:8] in listed.stdout, "the worker role reads every job"
        for command in ("requeue", "cancel"):
            refused = tenkaigen(command, "--database-url", as_worker, str(job_id))
            assert refused.returncode == 1 and "Traceback" not in refused.stderr
            assert f"error: DATABASE_URL: role {name} may not run this admin command (permission denied for " \
                   f"function {command}_job); connect as the database owner (postgres)" in refused.stderr
    finally:
        admin.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))
    assert admin.execute("select status from generation_jobs where id = %s", (job_id,)).fetchone() == ("failed",)
