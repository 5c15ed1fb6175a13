"""A local PostgreSQL cluster on a private port: the embedded default for `tenkaigen dev`, tests and benchmarks.

It uses the PostgreSQL server binaries on PATH (initdb, pg_ctl). initdb refuses to run as root, so when this
process is root the cluster runs as the `postgres` OS user (the data directory is owned by it); as a normal user
it runs directly. Connections go over TCP on 127.0.0.1 with trust authentication: never expose such a cluster.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from worker.exceptions import ConfigurationError

SERVER_SETTINGS_DEFAULT: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "logical",
    "max_connections": "200",
    "fsync": "on",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
}
"""wal_level=logical matches Supabase (publication supabase_realtime); fsync stays on so crash tests are real."""


PORT_ATTEMPTS = 5


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """The OS user that must run the server: `postgres` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ConfigurationError(
            "running as root, and PostgreSQL refuses to run as root: create a `postgres` OS user "
            "(apt-get install postgresql-15 does) or run as a normal user"
        ) from exc
    return "postgres"


def _require_binaries() -> None:
    missing = [b for b in ("initdb", "pg_ctl") if shutil.which(b) is None]
    if missing:
        raise ConfigurationError(
            f"PostgreSQL server binaries not found on PATH: {', '.join(missing)}. "
            "Install them (Debian: apt-get install postgresql-15, then add /usr/lib/postgresql/15/bin to PATH)."
        )


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    settings: dict[str, str] = field(default_factory=lambda: dict(SERVER_SETTINGS_DEFAULT))
    _started: bool = field(default=False, init=False, repr=False)
    """Set by the first start: from then on the port is fixed (clients hold DSNs with it)."""

    @classmethod
    def temporary(cls, prefix: str = "tenkaigen-pg-") -> LocalCluster:
        """A throwaway cluster in a new temporary directory (remove it with `destroy`)."""
        return cls(data_dir=Path(tempfile.mkdtemp(prefix=prefix)) / "data")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _server_user()
        cmd = ["su", user, "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in args)] if user else args
        result = subprocess.run(cmd, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise ConfigurationError(
                f"{args[0]} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb into data_dir (its parent is created and, as root, handed to the postgres user)."""
        _require_binaries()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user:
            shutil.chown(self.data_dir.parent, user, user)
        self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        )

    def is_running(self) -> bool:
        return self._run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False).returncode == 0

    def start(self) -> LocalCluster:
        """initdb when needed, then start the server and wait until it accepts connections."""
        if not self.is_initialized():
            self.init()
        if self.is_running():
            self.port = self._running_port()
            return self
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._pg_ctl_start()
                break
            except ConfigurationError:
                # `free_port()` releases the port before the server binds it: another cluster may have taken it
                # meanwhile. Only a first start may move to another port.
                if self._started or attempt == PORT_ATTEMPTS - 1 or not self._port_was_taken():
                    raise
                self.port = free_port()
        self._started = True
        self._wait_ready()
        return self

    def _pg_ctl_start(self) -> None:
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        options += f" -p {self.port} -k {self.data_dir.parent}"
        self._run(["pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.log_file), "-w", "-t", "60",
                   "start"])

    def _port_was_taken(self) -> bool:
        try:
            tail = self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return False
        return "Address already in use" in tail and f"port {self.port}" in tail

    def _running_port(self) -> int:
        pid_file = self.data_dir / "postmaster.pid"
        lines = pid_file.read_text().splitlines()
        return int(lines[3])

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise ConfigurationError(
            f"PostgreSQL did not accept connections on port {self.port}; see {self.log_file}"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: mode `fast` (clean) or `immediate` (like a crash; recovery runs at next start)."""
        if self.is_initialized() and self.is_running():
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete the whole temporary directory."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"
