"""Prometheus metrics and the health endpoint.

Every worker process serves `GET /metrics` (Prometheus text format) and `GET /healthz` (200 while the runner
loop is alive and the database answered recently, else 503) on `TENKAIGEN_METRICS_PORT`. Metric names follow
the SQL verbs: `tenkaigen_jobs_claimed_total` counts what `queue.claim_jobs` returned, and so on. Each Metrics
object owns its registry, so several runners can live in one process (tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from worker.logging import logger

DURATION_BUCKETS = (0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
HEALTH_DB_STALE_AFTER_DEFAULT = 60.0

log = logger("metrics")


class Metrics:
    """The worker's metrics, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs_claimed = Counter("tenkaigen_jobs_claimed", "Jobs claimed by this worker (queue.claim_jobs).",
                                    registry=r)
        self.jobs_finished = Counter(
            "tenkaigen_jobs_finished", "Attempts this worker finished, by outcome: succeeded, retried, failed, "
            "canceled, lease_lost, released.", ["outcome"], registry=r)
        self.backend_errors = Counter("tenkaigen_backend_errors", "Errors raised by the backend or storage, by "
                                      "error code.", ["error_code"], registry=r)
        self.db_errors = Counter("tenkaigen_db_errors", "Queue calls that failed because the database was "
                                 "unavailable, by action.", ["action"], registry=r)
        self.progress_writes = Counter("tenkaigen_progress_writes", "queue.report_progress calls.", registry=r)
        self.jobs_in_flight = Gauge("tenkaigen_jobs_in_flight", "Jobs this worker is running now.", registry=r)
        self.job_seconds = Histogram("tenkaigen_job_seconds", "Claim to final write, by outcome.", ["outcome"],
                                     buckets=DURATION_BUCKETS, registry=r)
        self.generation_seconds = Histogram("tenkaigen_generation_seconds", "Time in backend.generate.",
                                            buckets=DURATION_BUCKETS, registry=r)
        self.upload_seconds = Histogram("tenkaigen_upload_seconds", "Time in storage upload.",
                                        buckets=DURATION_BUCKETS, registry=r)
        self.cost_usd = Counter("tenkaigen_cost_usd", "Generation cost of the jobs this worker completed.",
                                registry=r)
        self.gpu_seconds = Counter("tenkaigen_gpu_seconds", "GPU seconds of the jobs this worker completed.",
                                   registry=r)
        # queue-wide gauges, refreshed by the scheduler from queue.job_stats
        self.queue_jobs = Gauge("tenkaigen_queue_jobs", "Active jobs by status: queued, running (queue.job_stats).",
                                ["status"], registry=r)
        self.queue_finished_24h = Gauge("tenkaigen_queue_finished_jobs_last_24h",
                                        "Jobs finished in the last 24 h by status: succeeded, failed, canceled "
                                        "(queue.job_stats).", ["status"], registry=r)
        self.queue_claimable = Gauge("tenkaigen_queue_claimable_jobs", "Queued jobs whose run_after has passed.",
                                     registry=r)
        self.queue_oldest_age = Gauge("tenkaigen_queue_oldest_claimable_age_seconds",
                                      "Age of the oldest claimable job (0 when none).", registry=r)
        self.queue_cost_24h = Gauge("tenkaigen_queue_cost_usd_last_24h", "Cost of jobs finished in the last 24 h.",
                                    registry=r)
        self.queue_gpu_seconds_24h = Gauge("tenkaigen_queue_gpu_seconds_last_24h",
                                           "GPU seconds of jobs finished in the last 24 h.", registry=r)
        self.leases_reaped = Counter("tenkaigen_leases_reaped", "Expired leases reaped by this worker.", registry=r)
        self.jobs_purged = Counter("tenkaigen_jobs_purged", "Finished jobs purged by retention.", registry=r)
        self.listener_reconnects = Gauge("tenkaigen_listener_reconnects", "LISTEN connection reconnects.",
                                         registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Health:
    """What /healthz reports: the runner loop is alive and the database answered recently."""

    stale_after: float = HEALTH_DB_STALE_AFTER_DEFAULT
    running: bool = False
    last_db_ok: float = field(default=0.0)
    fault: str | None = None                  # a WorkerFault the runner is pausing for (e.g. a refused storage key)
    detail: dict[str, object] = field(default_factory=dict)

    def db_ok(self) -> None:
        self.last_db_ok = time.monotonic()

    def status(self) -> tuple[bool, dict[str, object]]:
        age = time.monotonic() - self.last_db_ok if self.last_db_ok else None
        healthy = self.running and age is not None and age <= self.stale_after and self.fault is None
        body: dict[str, object] = {"status": "ok" if healthy else "unhealthy", "running": self.running,
                                   "db_ok_seconds_ago": None if age is None else round(age, 3), **self.detail}
        if self.fault is not None:
            body["fault"] = self.fault
        return healthy, body


class MetricsServer:
    """A minimal asyncio HTTP server for /metrics and /healthz (no framework, no thread)."""

    def __init__(self, metrics: Metrics, health: Health, *, host: str = "0.0.0.0", port: int = 9464) -> None:
        self.metrics = metrics
        self.health = health
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%s/metrics and /healthz", self.host, self.port, extra={"action": "serve"})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while True:                         # skip headers
                line = await asyncio.wait_for(reader.readline(), timeout=5)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
            if path == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, self.metrics.render()
            elif path in ("/healthz", "/health"):
                healthy, info = self.health.status()
                status = "200 OK" if healthy else "503 Service Unavailable"
                ctype, body = "application/json", json.dumps(info).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found: try /metrics or /healthz\n"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
