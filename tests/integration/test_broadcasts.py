"""The batched broadcast triggers (migration *_wakeups_and_realtime.sql) send exactly what the row-level ones did."""

from __future__ import annotations

import psycopg

from tests.support import as_client


def latest_payload(admin: psycopg.Connection, job_id: object) -> dict:
    return admin.execute(
        "select payload from realtime.messages where payload->>'job_id' = %s order by inserted_at desc, "
        "payload->>'updated_at' desc limit 1", (str(job_id),)).fetchone()[0]


def projection(admin: psycopg.Connection, job_id: object) -> dict:
    return admin.execute("select public.generation_job_update(j) from generation_jobs j where j.id = %s",
                         (job_id,)).fetchone()[0]


def test_each_message_is_the_documented_projection_plus_its_own_id(admin, user) -> None:
    with as_client(admin, user) as conn:
        job_id = conn.execute("insert into generation_jobs (prompt, width, height) values ('a', 256, 256) "
                              "returning id").fetchone()[0]
    inserted = latest_payload(admin, job_id)
    message_id = inserted.pop("id")
    assert inserted == projection(admin, job_id)
    assert admin.execute("select id::text from realtime.messages").fetchone()[0] == message_id
    topic, event, private, extension = admin.execute(
        "select topic, event, private, extension from realtime.messages").fetchone()
    assert (topic, event, private, extension) == (f"generation_jobs:{user}", "job_update", True, "broadcast")

    admin.execute("select * from queue.claim_jobs('w', 1, 60)")
    claimed = latest_payload(admin, job_id)
    claimed.pop("id")
    assert claimed == projection(admin, job_id) and claimed["status"] == "running"

    admin.execute("select queue.renew_leases('w', array[%s]::uuid[], array[1], 60)", (job_id,))
    assert admin.execute("select count(*) from realtime.messages").fetchone()[0] == 2, "renewals are silent"


def test_a_batch_statement_sends_one_message_per_changed_row_each_with_its_own_id(admin, make_job) -> None:
    make_job("first")
    admin.execute("select * from queue.claim_jobs('w', 1, 60)")      # a 1-row statement first (plan caching)
    for i in range(300):
        make_job(f"job {i}")
    before = admin.execute("select count(*) from realtime.messages").fetchone()[0]
    assert len(admin.execute("select * from queue.claim_jobs('w', 300, 60)").fetchall()) == 300
    after = admin.execute("select count(*), count(distinct id) from realtime.messages").fetchone()
    assert after[0] - before == 300 and after[0] == after[1]


def test_a_failed_broadcast_never_fails_the_job_write(admin, make_job) -> None:
    job_id = make_job("still works")
    admin.execute("alter table realtime.messages add constraint no_messages check (false) not valid")
    try:
        rows = admin.execute("select id from queue.claim_jobs('w', 1, 60)").fetchall()
    finally:
        admin.execute("alter table realtime.messages drop constraint no_messages")
    assert rows == [(job_id,)]
    assert admin.execute("select status from generation_jobs where id = %s", (job_id,)).fetchone()[0] == "running"
