"""The worker's HTTP endpoint: `/metrics`, and the liveness and readiness probes.

- `GET /livez`: 200 while the process and its event loop are alive: the server runs on the worker's own event
  loop (no thread), so an answer at all means the loop is turning, and a heartbeat task checks that the loop's
  timers are served on time (503 after `loop_stall_after` seconds without a beat). A WorkerFault (Storage refuses
  the service key, Modal refuses its token) does NOT fail it: restarting the process would not fix a key, and a
  restart loop would hide the message. 503 too once the runner has stopped without draining (it died).
- `GET /readyz`: 200 while the worker can do work: the runner is running, the database answered within
  `stale_after` seconds, no WorkerFault is pausing claims, and the worker is not draining. Otherwise 503 with a
  JSON body whose `failing` lists the checks that fail (`runner`, `database`, `fault`, `draining`) and `checks`
  says why for each.
- `GET /healthz`: the same as `/readyz` (kept for existing probes).
The runner writes the state (`Health.running`, `db_ok()`, `fault`, `draining`); this module only reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from worker.logging import logger

if TYPE_CHECKING:
    from worker.metrics import Metrics

HEALTH_DB_STALE_AFTER_DEFAULT = 60.0
LOOP_BEAT_INTERVAL = 1.0
LOOP_STALL_AFTER_DEFAULT = 30.0
REQUEST_READ_TIMEOUT = 5.0

log = logger("probes")


@dataclass
class Health:
    """What the probes report. The runner sets `running`, calls `db_ok()`, sets `fault` and `draining`."""

    stale_after: float = HEALTH_DB_STALE_AFTER_DEFAULT
    running: bool = False
    last_db_ok: float = field(default=0.0)
    fault: str | None = None                  # a WorkerFault the runner is pausing for (e.g. a refused storage key)
    draining: bool = False                    # the runner was asked to stop: finishing in-flight jobs, no claims
    detail: dict[str, object] = field(default_factory=dict)
    loop_stall_after: float = LOOP_STALL_AFTER_DEFAULT
    last_beat: float = 0.0                    # monotonic time of the last event-loop heartbeat (0: no heartbeat)
    ever_ran: bool = field(default=False, init=False)   # running was True once (set on its own)

    def __post_init__(self) -> None:
        self.ever_ran = self.running

    def __setattr__(self, name: str, value: object) -> None:
        if name == "running" and value:
            object.__setattr__(self, "ever_ran", True)     # remembered: a runner that stopped is not "starting"
        object.__setattr__(self, name, value)

    def db_ok(self) -> None:
        self.last_db_ok = time.monotonic()

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def _db_age(self) -> float | None:
        return time.monotonic() - self.last_db_ok if self.last_db_ok else None

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """(ready, body): every check by name, `ok` or why it fails."""
        age = self._db_age()
        checks: dict[str, str] = {
            "runner": "ok" if self.running else (
                "not running: the runner has stopped" if self.ever_ran else "not running yet: starting"),
            "database": "ok" if age is not None and age <= self.stale_after else (
                "no answer yet" if age is None
                else f"no answer for {age:.0f} s (more than {self.stale_after:.0f} s): check DATABASE_URL and "
                     "the database"),
            "fault": "ok" if self.fault is None else f"claims paused by a worker fault: {self.fault}",
            "draining": "draining: the worker is stopping and finishes its in-flight jobs" if self.draining
            else "ok",
        }
        failing = [name for name, state in checks.items() if state != "ok"]
        body: dict[str, object] = {
            "status": "ok" if not failing else "unhealthy", "failing": failing, "checks": checks,
            "running": self.running, "draining": self.draining,
            "db_ok_seconds_ago": None if age is None else round(age, 3), **self.detail}
        if self.fault is not None:
            body["fault"] = self.fault
        return not failing, body

    def liveness(self) -> tuple[bool, dict[str, object]]:
        """(alive, body): the event loop beats, and the runner has not stopped without draining (died)."""
        since_beat = time.monotonic() - self.last_beat if self.last_beat else None
        checks: dict[str, str] = {
            "event_loop": "ok" if since_beat is None or since_beat <= self.loop_stall_after
            else f"no heartbeat for {since_beat:.0f} s (more than {self.loop_stall_after:.0f} s): the event loop "
                 "is blocked",
            "runner": "died: it stopped without being asked to"
            if self.ever_ran and not self.running and not self.draining else "ok",
        }
        failing = [name for name, state in checks.items() if state != "ok"]
        body: dict[str, object] = {
            "status": "ok" if not failing else "unhealthy", "failing": failing, "checks": checks,
            "heartbeat_seconds_ago": None if since_beat is None else round(since_beat, 3), **self.detail}
        return not failing, body

    def status(self) -> tuple[bool, dict[str, object]]:
        """The readiness (what /healthz answered before /readyz existed)."""
        return self.readiness()


class ReadinessCollector(Collector):
    """Exports what /readyz says, so Prometheus can alert on it: `tenkaigen_worker_ready` (1 ready, 0 not) and
    `tenkaigen_worker_readiness_check{check}` (1 passing, 0 failing) for runner, database, fault, draining."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily("tenkaigen_worker_ready", "1 while this worker's /readyz answers 200, else 0."),
                GaugeMetricFamily("tenkaigen_worker_readiness_check", "Each /readyz check of this worker: 1 "
                                  "passing, 0 failing (runner, database, fault, draining).", labels=["check"]))

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        ready, body = self.health.readiness()
        overall, checks = self._families()
        overall.add_metric([], 1.0 if ready else 0.0)
        states = body["checks"]
        assert isinstance(states, dict)
        for name, state in states.items():
            checks.add_metric([name], 1.0 if state == "ok" else 0.0)
        yield from (overall, checks)


class MetricsServer:
    """A minimal asyncio HTTP server for /metrics, /livez, /readyz and /healthz (no framework, no thread), with
    the event-loop heartbeat that /livez checks. It adds the readiness gauges to the metrics' registry."""

    def __init__(self, metrics: Metrics, health: Health, *, host: str = "0.0.0.0", port: int = 9464) -> None:
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        metrics.registry.register(ReadinessCollector(health))
        self._server: asyncio.Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self.health.beat()
        self._heartbeat = asyncio.create_task(self._beat(), name="probe_heartbeat")
        log.info("metrics on http://%s:%s/metrics, probes on /livez and /readyz", self.host, self.port,
                 extra={"action": "serve"})

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _beat(self) -> None:
        while True:
            self.health.beat()
            await asyncio.sleep(LOOP_BEAT_INTERVAL)

    def _respond(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, self.metrics.render()
        if path in ("/livez", "/readyz", "/healthz"):
            ok, info = self.health.liveness() if path == "/livez" else self.health.readiness()
            return ("200 OK" if ok else "503 Service Unavailable"), "application/json", json.dumps(info).encode()
        return "404 Not Found", "text/plain", b"not found: try /metrics, /livez or /readyz\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=REQUEST_READ_TIMEOUT)
            while True:                         # skip headers
                line = await asyncio.wait_for(reader.readline(), timeout=REQUEST_READ_TIMEOUT)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
            status, ctype, body = self._respond(path)
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
