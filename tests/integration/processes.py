"""Worker processes for multi-process tests: the real `python -m worker worker` CLI, configured by environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from worker.migrate import PROJECT_ROOT


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, within: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker {self.pid} ignored SIGTERM for {within} s:\n{self.log()[-3000:]}") from None

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(10)


def worker_env(dsn: str, storage_dir: Path, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENKAIGEN_", "SUPABASE_", "MODAL_"))}
    env.update({
        "DATABASE_URL": dsn,
        "TENKAIGEN_BACKEND": "placeholder",
        "TENKAIGEN_STORAGE": "local",
        "TENKAIGEN_LOCAL_STORAGE_DIR": str(storage_dir),
        "TENKAIGEN_METRICS_PORT": "0",
        "TENKAIGEN_POLL_INTERVAL": "0.5",
        "TENKAIGEN_REAP_INTERVAL": "0.5",
        "TENKAIGEN_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    })
    env.update({f"TENKAIGEN_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def spawn_worker(dsn: str, tmp_path: Path, name: str, *, args: tuple[str, ...] = (), **settings: object) -> WorkerProcess:
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", "worker", *args], cwd=PROJECT_ROOT,
            env=worker_env(dsn, tmp_path / "storage", **settings), stdout=log, stderr=subprocess.STDOUT)
    return WorkerProcess(process, log_path)


def wait_until(predicate, within: float, what: str, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(interval)
