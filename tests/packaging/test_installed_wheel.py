"""A wheel installed into a fresh venv outside the repository migrates an empty database and runs a job end to end.

The venv is made by deploy/docker/install-worker (the image's install); every command runs with that venv's
`tenkaigen`, with the temp dir as working directory and no PYTHONPATH, so nothing is read from the checkout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tomllib
from pathlib import Path

import psycopg
import pytest

from tests.integration.processes import wait_until
from tests.packaging.build import ROOT, InstalledWorker

pytestmark = pytest.mark.slow

MIGRATION_FILES = sorted((ROOT / "supabase" / "migrations").glob("*.sql"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TENKAIGEN_", "SUPABASE_", "MODAL_")) and k not in ("PYTHONPATH", "DATABASE_URL")}
    return {**env, **extra}


def _tenkaigen(installed: InstalledWorker, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(installed.tenkaigen), *args], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, timeout=180)


def test_version_is_the_installed_distributions(installed_worker: InstalledWorker, tmp_path: Path) -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = _tenkaigen(installed_worker, tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tenkaigen {expected}"


def test_the_runtime_install_has_no_torch_runs_modal_and_storage3_and_reads_the_sql_from_the_package(
    installed_worker: InstalledWorker, tmp_path: Path
) -> None:
    probe = ("import importlib.util, sys, worker.migrate as m, worker.storage.supabase, worker.backends.modal; "
             "print(importlib.util.find_spec('torch') is None and 'torch' not in sys.modules); "
             "print(m.MIGRATIONS_DIR); print(m.STANDIN_FILE)")
    result = subprocess.run([str(installed_worker.python), "-c", probe], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    no_torch, migrations_dir, standin_file = result.stdout.split("\n")[:3]
    assert no_torch == "True", "the runtime install pulled torch"
    assert Path(migrations_dir).is_relative_to(installed_worker.venv), migrations_dir
    assert sorted(p.name for p in Path(migrations_dir).glob("*.sql")) == [p.name for p in MIGRATION_FILES]
    assert Path(standin_file).is_relative_to(installed_worker.venv) and Path(standin_file).is_file()


def test_an_installed_wheel_migrates_an_empty_database_and_runs_a_placeholder_job(
    installed_worker: InstalledWorker, empty_database: str, tmp_path: Path
) -> None:
    migrated = _tenkaigen(installed_worker, tmp_path, "db", "migrate", "--standin", DATABASE_URL=empty_database)
    assert migrated.returncode == 0, migrated.stderr
    assert f"{len(MIGRATION_FILES)} migration(s) applied" in migrated.stderr
    with psycopg.connect(empty_database, autocommit=True) as conn:
        claim = conn.execute("select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                             "where n.nspname = 'queue' and p.proname = 'claim_jobs'").fetchone()[0]
    assert claim >= 1, "queue.claim_jobs is missing after db migrate"

    enqueued = _tenkaigen(installed_worker, tmp_path, "enqueue", "--dev-user", "a packaged dragon",
                          DATABASE_URL=empty_database)
    assert enqueued.returncode == 0, enqueued.stderr
    with psycopg.connect(empty_database, autocommit=True) as conn:
        (job_id,) = conn.execute("select id from public.generation_jobs").fetchone()

    storage = tmp_path / "storage"
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [str(installed_worker.tenkaigen), "worker"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            env=_env(DATABASE_URL=empty_database, TENKAIGEN_BACKEND="placeholder", TENKAIGEN_STORAGE="local",
                     TENKAIGEN_LOCAL_STORAGE_DIR=str(storage), TENKAIGEN_METRICS_PORT="0",
                     TENKAIGEN_POLL_INTERVAL="0.5", PYTHONUNBUFFERED="1"))
    try:
        def finished() -> tuple[str, str | None] | None:
            if worker.poll() is not None:
                raise AssertionError(f"the worker exited with {worker.returncode}:\n{log_path.read_text()[-3000:]}")
            with psycopg.connect(empty_database, autocommit=True) as conn:
                status, path = conn.execute("select status, result_path from public.generation_jobs where id = %s",
                                            (job_id,)).fetchone()
            return (status, path) if status in ("succeeded", "failed", "canceled") else None

        status, result_path = wait_until(finished, within=90, what=f"job {job_id} to finish")
        assert status == "succeeded", log_path.read_text()[-3000:]
        png = storage / "generated-designs" / result_path
        assert png.read_bytes().startswith(PNG_SIGNATURE), png
    finally:
        exit_code = _stop(worker)
    assert exit_code == 0, f"SIGTERM: exit {exit_code}\n{log_path.read_text()[-3000:]}"


def _stop(worker: subprocess.Popen[bytes], within: float = 60.0) -> int | None:
    """SIGTERM and wait (the worker drains, then exits 0); SIGKILL if it ignores it, so no process is left behind."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(within)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return None
