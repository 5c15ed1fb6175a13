"""The `tenkaigen` CLI as a subprocess: the worker (health, metrics, JSON logs, SIGTERM drain and release), the
admin commands, start-up errors, and `dev --prompt`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
import pytest
from PIL import Image

from tests.integration.processes import spawn_worker, wait_until, worker_env
from worker.migrate import PROJECT_ROOT
from worker.pgcluster import LocalCluster

pytestmark = pytest.mark.slow


def tenkaigen(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TENKAIGEN_", "SUPABASE_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "-m", "worker", *args], cwd=PROJECT_ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(admin: psycopg.Connection, job_id: str) -> tuple[str, int]:
    return admin.execute("select status, attempts from generation_jobs where id = %s", (job_id,)).fetchone()


def enqueue(dsn: str, prompt: str, *options: str) -> str:
    result = tenkaigen("enqueue", "--database-url", dsn, "--dev-user", prompt, *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[0]


def test_the_worker_runs_jobs_serves_health_and_metrics_logs_json_and_drains_on_sigterm(admin, database,
                                                                                        tmp_path) -> None:
    port = free_port()
    worker = spawn_worker(database, tmp_path, "cli", metrics_port=port, placeholder_step_seconds=0.3,
                          grace_period=20)
    try:
        wait_until(lambda: "worker started" in worker.log(), 30, "the worker to start")
        job_id = enqueue(database, "A majestic dragon", "--width", "512", "--height", "256", "--steps", "1")
        wait_until(lambda: status_of(admin, job_id)[0] == "succeeded", 30, "the job")
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        # the row reads succeeded when the completion commits; the worker counts the outcome when the call returns
        finished = 'tenkaigen_jobs_finished_total{outcome="succeeded"} 1.0'
        wait_until(lambda: finished in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, 10,
                   "the outcome to be counted")
        assert "tenkaigen_jobs_claimed_total 1.0" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

        slow = enqueue(database, "a slow one", "--steps", "8")                 # 8 steps x 0.3 s
        wait_until(lambda: status_of(admin, slow)[0] == "running", 30, "the slow job to start")
        assert worker.terminate(within=30) == 0
        assert status_of(admin, slow) == ("succeeded", 1), "SIGTERM let the in-flight job finish"
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
    entries = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    done = [e for e in entries if e.get("action") == "complete_jobs" and e.get("job_id") == job_id]
    assert done and done[0]["attempt"] == 1 and done[0]["worker_id"].count(":") == 2
    assert any("SIGTERM received" in e["message"] for e in entries)


def test_a_worker_on_test_doubles_warns_that_it_keeps_no_images(database, tmp_path) -> None:
    worker = spawn_worker(database, tmp_path, "doubles", backend="noop", storage="memory")
    try:
        wait_until(lambda: "worker started" in worker.log(), 30, "the worker to start")
    finally:
        assert worker.terminate(within=20) == 0
    warnings = [e["message"] for e in map(json.loads, filter(lambda line: line.startswith("{"),
                                                              worker.log().splitlines()))
                if e.get("level") == "warning"]
    assert any(m.startswith("TENKAIGEN_BACKEND=noop is a benchmark/test double") for m in warnings), warnings
    assert any(m.startswith("TENKAIGEN_STORAGE=memory is a benchmark/test double") for m in warnings), warnings


def test_sigterm_releases_a_job_that_outlasts_the_grace_period(admin, database, tmp_path) -> None:
    worker = spawn_worker(database, tmp_path, "short-grace", placeholder_step_seconds=0.5, grace_period=0.5)
    wait_until(lambda: "worker started" in worker.log(), 30, "the worker to start")
    job_id = enqueue(database, "too long", "--steps", "40")                   # 20 s of work
    wait_until(lambda: status_of(admin, job_id)[0] == "running", 30, "the job to start")
    assert worker.terminate(within=20) == 0
    assert status_of(admin, job_id) == ("queued", 0), "released: queued again, the attempt not counted"
    assert "released 1 unfinished job" in worker.log()


def test_admin_commands_list_cancel_requeue_and_count(admin, database) -> None:
    first = enqueue(database, "first")
    second = enqueue(database, "second")
    listed = tenkaigen("jobs", "--database-url", database)
    assert listed.returncode == 0 and first[:8] in listed.stdout and second[:8] in listed.stdout, listed.stdout
    assert tenkaigen("cancel", "--database-url", database, first).stdout.strip() == f"job {first} canceled"
    assert tenkaigen("requeue", "--database-url", database, first).stdout.strip() \
        == f"job {first} requeued (it was canceled)"
    stats = tenkaigen("stats", "--database-url", database)
    assert stats.returncode == 0 and "queued" in stats.stdout and " 2 " in stats.stdout
    unknown = str(uuid.uuid4())
    for command in ("cancel", "requeue"):
        missing = tenkaigen(command, "--database-url", database, unknown)
        assert missing.returncode == 1 and f"job_id: no job {unknown}" in missing.stderr, missing.stderr
        assert "Traceback" not in missing.stderr
    bad = tenkaigen("enqueue", "--database-url", database, "--dev-user", "x", "--width", "1000")
    assert bad.returncode == 1 and "width: must be a multiple of 16" in bad.stderr


def test_a_misconfigured_worker_refuses_to_start_and_names_every_problem() -> None:
    result = tenkaigen("worker", env={"TENKAIGEN_CONCURRENCY": "0", "TENKAIGEN_BACKEND": "gpu"})
    assert result.returncode == 1
    for expected in ("DATABASE_URL: missing", "TENKAIGEN_CONCURRENCY", "TENKAIGEN_BACKEND: must be one of"):
        assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr

    pooler = tenkaigen("worker", env={
        "DATABASE_URL": "postgresql://postgres.abcd:hunter2@aws-0-eu-west-1.pooler.supabase.com:6543/postgres",
        "TENKAIGEN_BACKEND": "placeholder", "TENKAIGEN_STORAGE": "local"})
    assert pooler.returncode == 1 and "transaction pooler" in pooler.stderr and "hunter2" not in pooler.stderr

    supabase = tenkaigen("worker", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres",
                                        "TENKAIGEN_BACKEND": "placeholder"})
    assert supabase.returncode == 1 and "SUPABASE_URL: missing" in supabase.stderr
    assert "SUPABASE_SERVICE_ROLE_KEY: missing" in supabase.stderr

    unreachable = tenkaigen("worker", env={"DATABASE_URL": f"postgresql://postgres:pw@127.0.0.1:{free_port()}/x",
                                           "TENKAIGEN_BACKEND": "placeholder", "TENKAIGEN_STORAGE": "local",
                                           "TENKAIGEN_METRICS_PORT": "0"})
    assert unreachable.returncode == 1 and "cannot connect to the database" in unreachable.stderr


def test_a_worker_against_an_unmigrated_database_says_to_migrate(db_server) -> None:
    env = worker_env(db_server.admin_dsn, Path(tempfile.gettempdir()) / "unused")
    env.pop("TENKAIGEN_LOG_FORMAT")
    result = subprocess.run([sys.executable, "-m", "worker", "worker"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "apply the migrations first" in result.stderr


class StorageStub(BaseHTTPRequestHandler):
    """A Storage API on 127.0.0.1 that answers every request with `server.answer` and records the paths."""

    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        status, body = self.server.answer  # type: ignore[attr-defined]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return None


def test_a_worker_whose_storage_refuses_the_key_or_lacks_the_bucket_refuses_to_start(database, tmp_path) -> None:
    key = "sb_secret_acceptance-test-key-0123456789"
    server = ThreadingHTTPServer(("127.0.0.1", 0), StorageStub)
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = worker_env(database, tmp_path / "unused", storage="supabase", log_format="text",
                     supabase_url=f"http://127.0.0.1:{server.server_address[1]}", supabase_service_role_key=key)
    try:
        outcomes = {}
        for status, body in ((403, {"statusCode": "403", "error": "Unauthorized", "message": "invalid signature"}),
                             (400, {"statusCode": "404", "error": "Bucket not found", "message": "Bucket not found"})):
            server.answer = (status, body)  # type: ignore[attr-defined]
            started = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "worker", "worker"], cwd=PROJECT_ROOT, env=env,
                                    capture_output=True, text=True, timeout=60)
            outcomes[status] = result
            assert result.returncode == 1, result.stderr[-3000:]
            assert time.monotonic() - started < 30 and "Traceback" not in result.stderr
            assert key not in result.stderr + result.stdout
        assert "SUPABASE_SERVICE_ROLE_KEY: the Storage API at 127.0.0.1 refused the service key (HTTP 403" \
            in outcomes[403].stderr
        assert "bucket generated-designs does not exist" in outcomes[400].stderr
        assert "tenkaigen db migrate" in outcomes[400].stderr
        seen = server.seen  # type: ignore[attr-defined]
        assert seen == ["/storage/v1/bucket/generated-designs"] * 2, "one request each, then it stopped"
    finally:
        server.shutdown()
        server.server_close()

    # nothing listens at all: Storage may be briefly down, so the worker warns and starts
    down = spawn_worker(database, tmp_path, "storage-down", storage="supabase",
                        supabase_url=f"http://127.0.0.1:{free_port()}", supabase_service_role_key=key)
    try:
        wait_until(lambda: "worker started" in down.log(), 30, "the worker to start despite Storage being down")
        assert "storage start-up check did not complete" in down.log() and key not in down.log()
        assert down.terminate(within=30) == 0
    finally:
        if down.process.poll() is None:
            down.process.kill()


def test_dev_prompt_runs_the_embedded_default_and_prints_a_png_of_the_requested_size() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="tenkaigen-dev-test-"))
    data_dir.chmod(0o755)                              # the cluster runs as the postgres user when we are root
    try:
        result = tenkaigen("dev", "--prompt", "A majestic dragon", "--width", "512", "--height", "384",
                           "--data-dir", str(data_dir), timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        path = Path(result.stdout.strip().splitlines()[-1])
        assert path.is_file() and path.is_relative_to(data_dir / "storage" / "generated-designs")
        with Image.open(path) as image:
            assert image.size == (512, 384)
        assert "succeeded" in result.stderr
        again = tenkaigen("dev", "--prompt", "again", "--width", "256", "--height", "256",
                          "--data-dir", str(data_dir), timeout=180)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "applied" not in again.stderr, "the second run reuses the cluster and its migrations"

        # someone edits an applied migration: the next dev run recreates the (disposable) dev database
        cluster = LocalCluster(data_dir=data_dir / "cluster").start()
        with psycopg.connect(cluster.dsn_for("tenkaigen"), autocommit=True) as conn:
            conn.execute("update supabase_migrations.schema_migrations set statements = array['-- old text'] "
                         "where version = (select min(version) from supabase_migrations.schema_migrations)")
        cluster.stop()
        third = tenkaigen("dev", "--prompt", "after an edit", "--width", "256", "--height", "256",
                          "--data-dir", str(data_dir), timeout=180)
        assert third.returncode == 0, third.stderr[-3000:]
        assert "changed since the dev database was created: recreating it" in third.stderr

        # a first run interrupted between creating the database and migrating it: the next run recreates it
        cluster.start()
        with psycopg.connect(cluster.dsn_for("tenkaigen"), autocommit=True) as conn:
            conn.execute("drop schema supabase_migrations cascade")
        cluster.stop()
        fourth = tenkaigen("dev", "--prompt", "after an interrupted run", "--width", "256", "--height", "256",
                           "--data-dir", str(data_dir), timeout=180)
        assert fourth.returncode == 0, fourth.stderr[-3000:]
        assert "has no record of its migrations" in fourth.stderr

        # the worker fails to start (its storage directory is a file): exit 1, and PostgreSQL is stopped
        subprocess.run(["rm", "-rf", str(data_dir / "storage")], check=True)
        (data_dir / "storage").write_text("not a directory")
        broken = tenkaigen("dev", "--prompt", "no storage", "--width", "256", "--height", "256",
                           "--data-dir", str(data_dir), timeout=180)
        assert broken.returncode == 1, broken.stderr[-3000:]
        assert "TENKAIGEN_LOCAL_STORAGE_DIR" in broken.stderr and "Traceback" not in broken.stderr
        assert not LocalCluster(data_dir=data_dir / "cluster").is_running(), "PostgreSQL was stopped"
    finally:
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)
