"""Prometheus metrics of one worker process, in its own registry.

Names follow https://prometheus.io/docs/practices/naming/ : counters end in `_total` (prometheus_client appends it
to a Counter's name), durations are `_duration_seconds` histograms, every value is in base units (seconds, US
dollars), and the unit comes before `_total`, never after a suffix. The registry also holds the process and
platform collectors (`process_*`, `python_info`, `python_gc_*`) and `tenkaigen_build_info`.

Two kinds of series:
- per worker: what this process did (claims, outcomes, durations, errors, cost). Sum them over instances.
- queue-wide (`tenkaigen_queue_*`): read from `queue.job_stats`, exported by ONE replica at a time, the holder of
  the leader lease (`queue.try_lead`, see worker/maintenance.py collect_queue_metrics); the others export nothing
  for them, so a query over the queue does not change with the replica count. `tenkaigen_queue_metrics_leader`
  is 1 on the replica that exports them, 0 elsewhere.
Each Metrics object owns its registry, so several runners can live in one process (tests).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker import installed_version
from worker.jobs import JobStats, JobStatus

DURATION_BUCKETS = (0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900)


class QueueGauges(Collector):
    """The queue-wide gauges, yielded only while this replica holds the leader lease.

    `lead(stats, until)` records what the leader read and the monotonic time its lease surely lasts to (measured
    from before try_lead was sent, so it ends here no later than in the database); `resign()` stops the export.
    Past `until` (the gauge job stopped renewing: database down, worker stopping) nothing is exported."""

    def __init__(self) -> None:
        self.stats: JobStats | None = None
        self.leader_until = 0.0

    @property
    def leading(self) -> bool:
        return self.stats is not None and time.monotonic() < self.leader_until

    def lead(self, stats: JobStats, until: float) -> None:
        self.stats = stats
        self.leader_until = until

    def resign(self) -> None:
        self.stats = None
        self.leader_until = 0.0

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("tenkaigen_queue_jobs", "Active jobs in the whole queue by status: queued, running "
                              "(queue.job_stats; exported by the queue-metrics leader only).", labels=["status"]),
            GaugeMetricFamily("tenkaigen_queue_claimable_jobs", "Queued jobs whose run_after has passed (leader "
                              "only)."),
            GaugeMetricFamily("tenkaigen_queue_oldest_claimable_age_seconds", "Age of the oldest claimable job, 0 "
                              "when none (leader only)."),
            GaugeMetricFamily("tenkaigen_queue_metrics_leader", "1 on the replica that exports the tenkaigen_queue_* "
                              "gauges (it holds queue.maintenance_leader), 0 on the others."),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        jobs, claimable, oldest, leader = self._families()
        stats = self.stats
        if stats is None or not self.leading:
            leader.add_metric([], 0.0)
            yield leader
            return
        jobs.add_metric([JobStatus.QUEUED.value], float(stats.queued))
        jobs.add_metric([JobStatus.RUNNING.value], float(stats.running))
        claimable.add_metric([], float(stats.claimable))
        oldest.add_metric([], float(stats.oldest_claimable_age_seconds or 0.0))
        leader.add_metric([], 1.0)
        yield from (jobs, claimable, oldest, leader)


class Metrics:
    """The worker's metrics, in their own registry. `backend` labels tenkaigen_build_info."""

    def __init__(self, registry: CollectorRegistry | None = None, *, backend: str = "unknown") -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Info("tenkaigen_build", "The running worker: package version, Python version and "
                               "generation backend (always 1).", registry=r)
        self.build_info.info({"version": installed_version(), "python": platform.python_version(),
                              "backend": backend})
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
        self.job_seconds = Histogram("tenkaigen_job_duration_seconds", "Claim to final write of an attempt, by "
                                     "outcome.", ["outcome"], buckets=DURATION_BUCKETS, registry=r)
        self.generation_seconds = Histogram("tenkaigen_generation_duration_seconds", "Time in backend.generate.",
                                            buckets=DURATION_BUCKETS, registry=r)
        self.upload_seconds = Histogram("tenkaigen_upload_duration_seconds", "Time in the storage upload.",
                                        buckets=DURATION_BUCKETS, registry=r)
        self.cost_usd = Counter("tenkaigen_cost_usd", "Generation cost (US dollars) of the jobs this worker "
                                "completed.", registry=r)
        self.gpu_seconds = Counter("tenkaigen_gpu_seconds", "GPU seconds of the jobs this worker completed.",
                                   registry=r)
        self.leases_reaped = Counter("tenkaigen_leases_reaped", "Expired leases reaped by this worker "
                                     "(queue.reap_expired_leases).", registry=r)
        self.jobs_purged = Counter("tenkaigen_jobs_purged", "Finished jobs purged by retention.", registry=r)
        self.listener_reconnects = Counter("tenkaigen_listener_reconnects", "Times the LISTEN connection was "
                                           "re-established after it broke.", registry=r)
        self.backend_version_mismatch = Counter(
            "tenkaigen_backend_version_mismatch", "Backend calls answered by an app of another version than this "
            "worker's (package version or inference pins), by the app's version.", ["app_version"], registry=r)
        self.queue = QueueGauges()
        r.register(self.queue)

    def render(self) -> bytes:
        return generate_latest(self.registry)
