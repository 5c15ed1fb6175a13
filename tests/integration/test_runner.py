"""The runner against a real PostgreSQL: the whole job path, errors, retries, cancels, leases and shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tenkaigen_tools.testing import FaultInjectingBackend, FaultInjectingStorage
from tests.integration.conftest import completions, job_row, wait_for, wait_status
from tests.support import as_client
from worker.exceptions import WorkerFault
from worker.storage.base import RESULTS_BUCKET


def enqueue_as(admin: psycopg.Connection, user: uuid.UUID, prompt: str, **fields: object) -> uuid.UUID:
    """A client insert, the PostgREST way."""
    values = {"prompt": prompt, "width": 256, "height": 256, "steps": 4, **fields}
    columns = ", ".join(values)
    params = ", ".join(f"%({k})s" for k in values)
    with as_client(admin, user) as conn:
        return conn.execute(
            f"insert into generation_jobs ({columns}) values ({params}) returning id", values
        ).fetchone()[0]


def broadcasts(admin: psycopg.Connection, job_id: uuid.UUID) -> list[dict]:
    return [
        r[0]
        for r in admin.execute(
            "select payload from realtime.messages where payload->>'job_id' = %s order by inserted_at, id",
            (str(job_id),),
        )
    ]


async def test_a_client_job_goes_end_to_end_through_the_placeholder_backend(
    admin, user, start_worker, tmp_path: Path
) -> None:
    job_id = enqueue_as(admin, user, "A majestic dragon", width=512, height=384, style="anime")
    worker = await start_worker()
    row = await wait_for(wait_status(admin, job_id, "succeeded", "failed"), message="job to finish")
    assert row["status"] == "succeeded", row["error_message"]
    assert row["result_path"] == f"{user}/{job_id}.png"
    assert row["backend"] == "placeholder"
    assert row["attempts"] == 1 and row["progress"] == 1.0 and row["locked_by"] is None
    path = tmp_path / "storage" / RESULTS_BUCKET / row["result_path"]
    with Image.open(path) as image:
        assert image.size == (512, 384) and image.format == "PNG"
    assert row["result_bytes"] == path.stat().st_size
    assert completions(admin, job_id) == [(1, worker.worker_id)]
    statuses = [b["status"] for b in broadcasts(admin, job_id)]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses


async def test_a_notify_wakes_an_idle_worker_long_before_its_poll_interval(
    admin, make_job, start_worker
) -> None:
    await start_worker(poll_interval=30.0)
    await asyncio.sleep(0.5)  # the worker is idle, waiting on LISTEN
    job_id = make_job("wake up")
    row = await wait_for(wait_status(admin, job_id, "succeeded"), within=5, message="NOTIFY wake-up")
    assert row["attempts"] == 1


async def test_a_worker_without_notify_still_finds_jobs_by_polling(admin, make_job, start_worker) -> None:
    await start_worker(listen=False, poll_interval=0.2)
    job_id = make_job("poll me")
    await wait_for(wait_status(admin, job_id, "succeeded"), within=10, message="poll")


async def test_a_transient_error_is_retried_with_backoff_then_succeeds(admin, make_job, start_worker) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("flaky [transient=1]")
    await start_worker(backend=backend)
    row = await wait_for(
        lambda: (r := job_row(admin, job_id))["attempts"] == 1 and r["status"] == "queued" and r,
        message="first attempt to fail",
    )
    assert row["error_code"] == "transient" and "test backend busy" in row["error_message"]
    backoff = admin.execute(
        "select extract(epoch from run_after - now()) from generation_jobs where id = %s", (job_id,)
    ).fetchone()[0]
    assert 2.0 < float(backoff) <= 6.5, "retry_delay(1) is 5 s ± 25 %"
    await asyncio.sleep(0.5)
    assert job_row(admin, job_id)["status"] == "queued", "the backoff is respected"
    admin.execute("update generation_jobs set run_after = now() where id = %s", (job_id,))  # skip the wait
    row = await wait_for(wait_status(admin, job_id, "succeeded"), message="retry to succeed")
    assert row["attempts"] == 2 and backend.calls[str(job_id)] == 2
    assert row["error_code"] is None


async def test_a_permanent_error_fails_the_job_at_once_with_its_message(
    admin, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("nope [bad_request]")
    await start_worker(backend=backend)
    row = await wait_for(wait_status(admin, job_id, "failed"), message="job to fail")
    assert row["error_code"] == "bad_request"
    assert row["error_message"] == "prompt: the test backend refuses this request"
    assert row["attempts"] == 1 and backend.calls[str(job_id)] == 1
    assert row["finished_at"] is not None and row["result_path"] is None


async def test_an_unexpected_error_is_retried_until_max_attempts_then_fails(
    admin, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("boom [crash=5]", max_attempts=2)
    await start_worker(backend=backend)
    await wait_for(lambda: job_row(admin, job_id)["error_code"] == "internal_error", message="first crash")
    admin.execute(
        "update generation_jobs set run_after = now() where id = %s and status = 'queued'", (job_id,)
    )
    row = await wait_for(wait_status(admin, job_id, "failed"), message="attempts exhausted")
    assert row["attempts"] == 2 and row["error_code"] == "internal_error"
    assert row["error_message"] == "RuntimeError: test backend crashed (call 2)"


async def test_a_transient_storage_failure_is_retried(admin, make_job, start_worker) -> None:
    storage = FaultInjectingStorage(fail_uploads=1)
    job_id = make_job("upload hiccup")
    await start_worker(storage=storage)
    await wait_for(
        lambda: job_row(admin, job_id)["attempts"] == 1 and job_row(admin, job_id)["status"] == "queued",
        message="upload failure",
    )
    admin.execute("update generation_jobs set run_after = now() where id = %s", (job_id,))
    row = await wait_for(wait_status(admin, job_id, "succeeded"), message="retry")
    assert storage.objects.keys() == {row["result_path"]}


async def test_a_missing_init_image_fails_the_job_as_a_bad_request(
    admin, make_job, start_worker, user
) -> None:
    path = f"{user}/input.png"
    admin.execute("insert into storage.objects (bucket_id, name) values ('generation-inputs', %s)", (path,))
    job_id = make_job("edit me", init_image_path=path, variant="edit")
    await start_worker(storage=FaultInjectingStorage())  # the object row exists, the bytes do not
    row = await wait_for(wait_status(admin, job_id, "failed"), message="bad request")
    assert row["error_code"] == "bad_request" and "init_image_path" in row["error_message"]


async def test_an_edit_job_gets_its_init_image_from_storage(admin, make_job, start_worker, user) -> None:
    path = f"{user}/input.png"
    admin.execute("insert into storage.objects (bucket_id, name) values ('generation-inputs', %s)", (path,))
    storage = FaultInjectingStorage(inputs={path: b"init-bytes"})
    seen: list[bytes | None] = []

    class Recording(FaultInjectingBackend):
        async def generate(self, request, on_progress):  # type: ignore[no-untyped-def]
            seen.append(request.init_image)
            return await super().generate(request, on_progress)

    job_id = make_job("edit me", init_image_path=path, variant="edit")
    await start_worker(backend=Recording(), storage=storage)
    await wait_for(wait_status(admin, job_id, "succeeded"), message="edit job")
    assert seen == [b"init-bytes"]


async def test_canceling_a_queued_job_means_it_never_runs(admin, user, start_worker) -> None:
    backend = FaultInjectingBackend()
    job_id = enqueue_as(admin, user, "never mind")
    with as_client(admin, user) as conn:
        assert conn.execute("select public.cancel_generation_job(%s)", (job_id,)).fetchone()[0] == "canceled"
    await start_worker(backend=backend)
    await asyncio.sleep(1.0)
    assert job_row(admin, job_id)["status"] == "canceled" and backend.calls[str(job_id)] == 0


async def test_canceling_a_running_job_stops_the_backend_through_notify(admin, user, start_worker) -> None:
    backend = FaultInjectingBackend()
    job_id = enqueue_as(admin, user, "long one [sleep=30]")
    worker = await start_worker(backend=backend)
    await wait_for(wait_status(admin, job_id, "running"), message="job to start")
    await asyncio.wait_for(backend.started_event(str(job_id)).wait(), 5)
    with as_client(admin, user) as conn:
        assert (
            conn.execute("select public.cancel_generation_job(%s)", (job_id,)).fetchone()[0]
            == "cancel_requested"
        )
    row = await wait_for(wait_status(admin, job_id, "canceled"), within=3, message="cancel via NOTIFY")
    assert backend.cancelled == [str(job_id)] and row["result_path"] is None
    # the row reads canceled when the worker's write commits, a moment before the job leaves its active set
    await wait_for(lambda: not worker.runner.active_jobs, within=5, message="the job to leave the worker")


async def test_a_cancel_missed_by_notify_is_caught_by_lease_renewal(admin, make_job, start_worker) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("long one [sleep=30]")
    await start_worker(backend=backend, listen=False, lease_seconds=3)  # renewals every second, no LISTEN
    await wait_for(wait_status(admin, job_id, "running"), message="job to start")
    assert admin.execute("select queue.cancel_job(%s)", (job_id,)).fetchone()[0] == "cancel_requested"
    await wait_for(wait_status(admin, job_id, "canceled"), within=5, message="cancel via renew_leases")
    assert backend.cancelled == [str(job_id)]


async def test_a_cancel_sent_while_the_listener_reconnects_is_caught_up_at_reconnect(
    admin, database, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("long one [sleep=60]")
    started = time.monotonic()
    worker = await start_worker(backend=backend, lease_seconds=120)   # the renew loop's first round: 40 s in
    await wait_for(wait_status(admin, job_id, "running"), message="job to start")
    listener = worker.runner.listener
    dbname = admin.execute("select current_database()").fetchone()[0]
    (pid,) = admin.execute(
        "select pid from pg_stat_activity where application_name = 'tenkaigen-listener' and datname = %s", (dbname,)
    ).fetchone()
    # the listener is cut off and cannot reconnect (new connections refused, the worker's others stay up)
    server = psycopg.connect(make_conninfo(database, dbname="postgres"), autocommit=True)
    server.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(dbname)))
    try:
        assert admin.execute("select pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
        await wait_for(lambda: not listener.connected.is_set(), message="the listener to notice")
        # the cancel's NOTIFY goes out while nobody of this worker listens: it is lost
        assert admin.execute("select queue.cancel_job(%s)", (job_id,)).fetchone()[0] == "cancel_requested"
        assert job_row(admin, job_id)["status"] == "running"
    finally:
        server.execute(sql.SQL("alter database {} allow_connections true").format(sql.Identifier(dbname)))
        server.close()
    await wait_for(wait_status(admin, job_id, "canceled"), within=15, message="the cancel caught up at reconnect")
    assert time.monotonic() - started < 40, "caught up by the reconnect, not by the renew loop's first round"
    assert backend.cancelled == [str(job_id)]


async def test_progress_writes_per_job_stay_bounded(admin, make_job, start_worker) -> None:
    job_id = make_job("many steps [sleep=2]", steps=100)
    worker = await start_worker(backend=FaultInjectingBackend(), progress_interval=0.5)
    await wait_for(wait_status(admin, job_id, "succeeded"), message="job")
    writes = worker.runner.metrics.progress_writes._value.get()
    assert 1 <= writes <= 2 / 0.5 + 1, writes
    progress_broadcasts = [
        b for b in broadcasts(admin, job_id) if b["status"] == "running" and b["progress"] > 0
    ]
    assert len(progress_broadcasts) == writes


async def test_lease_renewal_keeps_a_job_longer_than_its_lease(admin, make_job, start_worker) -> None:
    job_id = make_job("slow [sleep=4]")
    worker = await start_worker(backend=FaultInjectingBackend(), lease_seconds=2)

    # another worker reaping all the while must find nothing to reap
    async def reap() -> None:
        while True:
            await worker.queue.reap_expired_leases()
            await asyncio.sleep(0.3)

    reaper = asyncio.create_task(reap())
    try:
        row = await wait_for(
            lambda: (
                (r := job_row(admin, job_id))["status"] == "succeeded" or r["error_code"] == "lease_expired"
            ),
            within=15,
            message="job",
        )
        row = job_row(admin, job_id)
    finally:
        reaper.cancel()
    assert row["status"] == "succeeded" and row["attempts"] == 1


async def test_a_stale_worker_never_overwrites_the_new_owners_result(admin, make_job, start_worker) -> None:
    slow = FaultInjectingBackend()
    job_id = make_job("contested [sleep=3]")
    stale = await start_worker(backend=slow, lease_seconds=30, concurrency=1)
    await wait_for(wait_status(admin, job_id, "running"), message="first claim")
    # the first worker stalls (GC pause, partition…): its lease expires and the job is reaped
    admin.execute(
        "update generation_jobs set lease_expires_at = now() - interval '1 second' where id = %s", (job_id,)
    )
    assert admin.execute("select queue.reap_expired_leases()").fetchone()[0] == 1
    fresh = await start_worker(backend=FaultInjectingBackend())
    row = await wait_for(
        lambda: (r := job_row(admin, job_id))["status"] == "succeeded" and r, message="new owner"
    )
    assert row["attempts"] == 2
    # the stale worker finishes later: its completion is fenced off and dropped
    await wait_for(lambda: not stale.runner.active_jobs, within=10, message="stale worker to give up")
    assert completions(admin, job_id) == [(2, fresh.worker_id)]
    row = job_row(admin, job_id)
    assert row["status"] == "succeeded" and row["backend"] == "fault-injecting-test-double"
    assert row["backend_call_id"] == f"call-{job_id}-1"  # the fresh backend's first call, not the stale one's
    assert stale.runner.metrics.jobs_finished.labels("lease_lost")._value.get() == 1


class LoopBlockingBackend(FaultInjectingBackend):
    """A backend that blocks the event loop (CPU-bound code, a GC pause): no lease renewal can run meanwhile."""

    def __init__(self, block_seconds: float) -> None:
        super().__init__(name="loop-blocking-test-double")
        self.block_seconds = block_seconds

    async def generate(self, request, on_progress):  # type: ignore[no-untyped-def]
        if not self.calls:  # only the first call stalls
            time.sleep(self.block_seconds)  # noqa: ASYNC251 (deliberate: the stall under test)
        return await super().generate(request, on_progress)


async def test_a_worker_that_stalled_past_its_lease_drops_its_result_without_uploading(
    admin, database, make_job, start_worker
) -> None:
    job_id = make_job("contested")
    reaped = threading.Event()

    def reaper() -> None:  # runs while the test's event loop is blocked by the stale worker
        with psycopg.connect(database, autocommit=True) as conn:
            deadline = time.monotonic() + 20
            while not reaped.is_set() and time.monotonic() < deadline:
                if conn.execute("select queue.reap_expired_leases()").fetchone()[0]:
                    reaped.set()
                time.sleep(0.05)

    thread = threading.Thread(target=reaper, daemon=True)
    thread.start()
    stale_storage = FaultInjectingStorage()
    stale = await start_worker(
        backend=LoopBlockingBackend(block_seconds=3.5), storage=stale_storage, lease_seconds=2, concurrency=1
    )
    await wait_for(lambda: reaped.is_set(), within=20, message="the stale worker's lease to be reaped")
    # the reaped job is claimed again (here by the same worker, now healthy) and completed as attempt 2
    row = await wait_for(
        lambda: (r := job_row(admin, job_id))["status"] == "succeeded" and r, message="attempt 2"
    )
    thread.join(1)
    assert completions(admin, job_id) == [(2, stale.worker_id)]
    assert row["attempts"] == 2
    assert stale_storage.uploads == 1, "attempt 1 uploaded after its lease was lost"
    assert stale.runner.metrics.jobs_finished.labels("lease_lost")._value.get() == 1


async def test_stopping_releases_unfinished_jobs_without_counting_the_attempt(
    admin, make_job, start_worker
) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("too long [sleep=30]")
    worker = await start_worker(backend=backend, grace_period=0.5)
    await wait_for(wait_status(admin, job_id, "running"), message="start")
    await worker.stop()
    row = job_row(admin, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None
    assert backend.cancelled == [str(job_id)]


async def test_stopping_lets_in_flight_jobs_finish_within_the_grace_period(
    admin, make_job, start_worker
) -> None:
    job_id = make_job("short [sleep=1]")
    worker = await start_worker(backend=FaultInjectingBackend(), grace_period=10)
    await wait_for(wait_status(admin, job_id, "running"), message="start")
    await worker.stop()
    assert job_row(admin, job_id)["status"] == "succeeded"


async def test_a_batch_of_jobs_completes_each_exactly_once(admin, make_job, start_worker) -> None:
    ids = [make_job(f"job {i}") for i in range(60)]
    worker = await start_worker(backend=FaultInjectingBackend(), concurrency=16)
    await wait_for(
        lambda: (
            admin.execute("select count(*) from generation_jobs where status = 'succeeded'").fetchone()[0]
            == 60
        ),
        message="all jobs",
    )
    counts = dict(
        admin.execute("select job_id, count(*) from queue.job_completions group by job_id").fetchall()
    )
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    assert worker.runner.completer.calls < 60, "completions are batched"
    succeeded_messages = admin.execute(
        "select count(distinct id) from realtime.messages where payload->>'status' = 'succeeded'"
    ).fetchone()[0]
    assert succeeded_messages == 60, "a batched completion still broadcasts each job, each message its own id"


async def test_cost_is_computed_from_the_gpu_price_table(admin, make_job, start_worker) -> None:
    backend = FaultInjectingBackend(gpu_type="L40S", gpu_seconds=10.0)
    job_id = make_job("priced")
    await start_worker(backend=backend, gpu_prices={"L40S": 0.0005})
    row = await wait_for(wait_status(admin, job_id, "succeeded"), message="job")
    assert float(row["gpu_seconds"]) == 10.0 and float(row["cost_usd"]) == 0.005


async def test_a_franchise_job_reaches_the_backend_with_its_lora(admin, user, start_worker) -> None:
    admin.execute(
        "insert into queue.franchise_loras (franchise, lora, scale) "
        "values ('naruto', 'org/naruto-lora:naruto.safetensors', 0.8)"
    )
    seen: list[tuple[str, str | None, float]] = []

    class Recording(FaultInjectingBackend):
        async def generate(self, request, on_progress):  # type: ignore[no-untyped-def]
            seen.append((request.variant, request.lora, request.lora_scale))
            return await super().generate(request, on_progress)

    job_id = enqueue_as(admin, user, "a ninja", franchise="Naruto")
    await start_worker(backend=Recording())
    await wait_for(wait_status(admin, job_id, "succeeded"), message="franchise job")
    assert seen == [("bf16", "org/naruto-lora:naruto.safetensors", pytest.approx(0.8))]


async def test_a_backend_call_past_its_deadline_is_stopped_and_retried(admin, make_job, start_worker) -> None:
    backend = FaultInjectingBackend()
    job_id = make_job("never returns [sleep=60]")
    await start_worker(backend=backend, generation_timeout=0.5)
    row = await wait_for(
        lambda: (r := job_row(admin, job_id))["error_code"] == "transient" and r, message="the timeout"
    )
    assert row["status"] == "queued" and row["error_message"] == "generation timed out after 0.5 s"
    assert backend.cancelled == [str(job_id)], "the backend call itself was cancelled"


async def test_a_hanging_upload_is_stopped_at_the_upload_timeout_and_retried(admin, make_job, start_worker) -> None:
    class HangingStorage(FaultInjectingStorage):
        """A storage test double whose first upload never returns (a stalled connection)."""

        async def upload_result(self, key: str, png: bytes):  # type: ignore[no-untyped-def]
            if self.uploads == 0:
                self.uploads += 1
                self.upload_times.append(time.monotonic())
                await asyncio.sleep(3600)
            return await super().upload_result(key, png)

    storage = HangingStorage()
    job_id = make_job("a slow bucket")
    await start_worker(storage=storage, lease_seconds=3, upload_timeout=1.5)
    row = await wait_for(
        lambda: (r := job_row(admin, job_id))["error_code"] == "transient" and r, message="the upload deadline"
    )
    # renewals keep confirming the lease, so the upload timeout (1.5 s) ends the stall, not the 3 s lease
    assert time.monotonic() - storage.upload_times[0] < 3.0
    assert row["status"] in ("queued", "running")
    assert row["error_message"] == "upload did not finish within 1.5 s (the upload timeout)"
    row = await wait_for(wait_status(admin, job_id, "succeeded"), within=20, message="the retry")
    assert row["attempts"] == 2 and list(storage.objects) == [row["result_path"]]


async def test_an_upload_longer_than_the_lease_succeeds_while_renewals_confirm_the_lease(
    admin, make_job, start_worker
) -> None:
    class SlowStorage(FaultInjectingStorage):
        """A storage test double whose uploads take 3 s (a big PNG on a slow link)."""

        async def upload_result(self, key: str, png: bytes):  # type: ignore[no-untyped-def]
            await asyncio.sleep(3.0)
            return await super().upload_result(key, png)

    storage = SlowStorage()
    job_id = make_job("a big design")
    await start_worker(storage=storage, lease_seconds=2)         # renewed every 0.67 s; 1 s kept as a margin
    row = await wait_for(
        lambda: ((r := job_row(admin, job_id))["status"] in ("succeeded", "failed") or r["error_code"]) and r,
        within=15, message="the slow upload",
    )
    assert row["status"] == "succeeded" and row["attempts"] == 1 and storage.uploads == 1, row["error_message"]


async def test_a_refused_storage_key_hands_the_job_back_without_using_an_attempt(
    admin, make_job, start_worker
) -> None:
    class RefusingStorage(FaultInjectingStorage):
        """A storage test double that refuses the worker's key for its first two uploads (a rotated key)."""

        async def upload_result(self, key: str, png: bytes):  # type: ignore[no-untyped-def]
            if self.uploads < 2:
                self.uploads += 1
                self.upload_times.append(time.monotonic())
                raise WorkerFault("upload refused (HTTP 403): check SUPABASE_SERVICE_ROLE_KEY")
            return await super().upload_result(key, png)

    storage = RefusingStorage()
    job_id = make_job("a design nobody should lose", max_attempts=1)
    worker = await start_worker(storage=storage, fault_pause=0.5)
    await wait_for(lambda: storage.uploads >= 1, message="the refused upload")
    await wait_for(lambda: worker.runner.health.fault is not None, message="the fault reported")
    healthy, body = worker.runner.health.status()
    assert not healthy and "SUPABASE_SERVICE_ROLE_KEY" in str(body["fault"])
    row = await wait_for(wait_status(admin, job_id, "succeeded", "failed"), within=20, message="the job to finish")
    # two refusals, each handed back (attempt not counted), then success on the job's only attempt
    assert row["status"] == "succeeded" and row["attempts"] == 1 and storage.uploads == 3
    # the row reads succeeded as soon as the completion commits; the runner clears the fault when that call returns
    await wait_for(lambda: worker.runner.health.fault is None, within=5, message="a success to clear the fault")
    gaps = [b - a for a, b in zip(storage.upload_times, storage.upload_times[1:], strict=False)]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95, f"claims paused 0.5 s, then 1 s: {gaps}"
