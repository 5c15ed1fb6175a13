"""The metrics registry (names, types, the leader-only queue gauges) and the probe endpoint over HTTP."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from worker import installed_version
from worker.jobs import JobStats
from worker.metrics import Metrics
from worker.probes import Health, MetricsServer


def families(metrics: Metrics) -> dict[str, str]:
    """{family name: type} as a Prometheus server parses the exposition."""
    return {f.name: f.type for f in text_string_to_metric_families(metrics.render().decode())}


def stats(**values: float) -> JobStats:
    row: dict[str, object] = {"queued": 0, "claimable": 0, "running": 0, "succeeded_last_24h": 0,
                              "failed_last_24h": 0, "canceled_last_24h": 0, "oldest_claimable_age_seconds": None,
                              "finished_last_hour": 0, "gpu_seconds_last_24h": 0.0, "cost_usd_last_24h": 0.0}
    row.update(values)
    return JobStats.from_row(row)


def test_names_follow_the_prometheus_naming_practices() -> None:
    found = families(Metrics())
    ours = {name: kind for name, kind in found.items() if name.startswith("tenkaigen_")}
    for name, kind in ours.items():
        if kind == "histogram":
            assert name.endswith("_duration_seconds"), f"{name}: a duration histogram in seconds"
        assert "_last_" not in name, f"{name}: a window belongs in PromQL, not in the name"
    # the parser strips `_total` from counter family names: the exposition carries it on every sample
    counters = {name for name, kind in ours.items() if kind == "counter"}
    assert counters == {"tenkaigen_jobs_claimed", "tenkaigen_jobs_finished", "tenkaigen_backend_errors",
                        "tenkaigen_db_errors", "tenkaigen_progress_writes", "tenkaigen_cost_usd",
                        "tenkaigen_gpu_seconds", "tenkaigen_leases_reaped", "tenkaigen_jobs_purged",
                        "tenkaigen_listener_reconnects", "tenkaigen_backend_version_mismatch"}
    text = Metrics().render().decode()
    assert "# TYPE tenkaigen_listener_reconnects_total counter" in text, "reconnects are counted, not gauged"
    assert "tenkaigen_cost_usd_total 0.0" in text and "tenkaigen_gpu_seconds_total 0.0" in text
    assert {"tenkaigen_job_duration_seconds", "tenkaigen_generation_duration_seconds",
            "tenkaigen_upload_duration_seconds"} <= {n for n, k in ours.items() if k == "histogram"}


def test_build_info_and_the_process_and_platform_collectors_are_registered() -> None:
    metrics = Metrics(backend="modal")
    text = metrics.render().decode()
    build = [s for f in text_string_to_metric_families(text) if f.name == "tenkaigen_build_info" for s in f.samples]
    assert len(build) == 1 and build[0].value == 1.0
    assert build[0].labels["backend"] == "modal" and build[0].labels["version"] == installed_version()
    assert build[0].labels["python"].count(".") == 2
    found = families(metrics)
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_start_time_seconds",
            "python_info"} <= set(found)


def test_queue_gauges_are_exported_only_while_leading() -> None:
    metrics = Metrics()
    text = metrics.render().decode()
    assert "tenkaigen_queue_metrics_leader 0.0" in text and "tenkaigen_queue_jobs" not in text, "not leading"
    metrics.queue.lead(stats(queued=5, claimable=4, running=2, oldest_claimable_age_seconds=12.5),
                       until=time.monotonic() + 60)
    text = metrics.render().decode()
    for line in ('tenkaigen_queue_jobs{status="queued"} 5.0', 'tenkaigen_queue_jobs{status="running"} 2.0',
                 "tenkaigen_queue_claimable_jobs 4.0", "tenkaigen_queue_oldest_claimable_age_seconds 12.5",
                 "tenkaigen_queue_metrics_leader 1.0"):
        assert line in text
    metrics.queue.lead(stats(queued=5), until=time.monotonic() - 0.001)      # the lease ran out unrenewed
    text = metrics.render().decode()
    assert "tenkaigen_queue_jobs{" not in text and "tenkaigen_queue_claimable_jobs " not in text
    assert "tenkaigen_queue_metrics_leader 0.0" in text
    metrics.queue.lead(stats(queued=1), until=time.monotonic() + 60)
    metrics.queue.resign()
    assert "tenkaigen_queue_oldest_claimable_age_seconds " not in metrics.render().decode()


def test_readiness_names_each_failing_check() -> None:
    health = Health(stale_after=60)
    ready, body = health.readiness()
    assert not ready and body["failing"] == ["runner", "database"]
    health.running = True
    health.db_ok()
    assert health.readiness()[0]
    health.fault = "storage: the service key was refused (HTTP 403)"
    ready, body = health.readiness()
    assert not ready and body["failing"] == ["fault"] and "403" in str(body["checks"])
    health.fault = None
    health.draining = True
    ready, body = health.readiness()
    assert not ready and body["failing"] == ["draining"]
    stale = Health(stale_after=0.0, running=True)
    stale.db_ok()
    time.sleep(0.002)
    ready, body = stale.readiness()
    assert not ready and body["failing"] == ["database"]


def test_liveness_ignores_faults_and_draining_but_not_a_dead_runner_or_a_stalled_loop() -> None:
    health = Health(loop_stall_after=30)
    assert health.liveness()[0], "starting is alive"
    health.running = True
    health.fault = "modal: token refused"
    health.beat()
    assert health.liveness()[0], "a worker fault does not restart the process"
    health.draining = True
    health.running = False
    assert health.liveness()[0], "draining is alive"
    died = Health(running=True)
    died.running = False
    alive, body = died.liveness()
    assert not alive and body["failing"] == ["runner"]
    stalled = Health(loop_stall_after=0.0)
    stalled.beat()
    time.sleep(0.002)
    alive, body = stalled.liveness()
    assert not alive and body["failing"] == ["event_loop"]


async def test_metrics_and_probes_are_served_over_http() -> None:
    metrics, health = Metrics(), Health(stale_after=60)
    metrics.jobs_claimed.inc(3)
    metrics.jobs_finished.labels("succeeded").inc(2)
    server = MetricsServer(metrics, health, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            body = (await client.get("/metrics")).text
            assert "tenkaigen_jobs_claimed_total 3.0" in body
            assert 'tenkaigen_jobs_finished_total{outcome="succeeded"} 2.0' in body
            assert (await client.get("/livez")).status_code == 200, "alive while starting"
            assert "tenkaigen_worker_ready 0.0" in body, "the server exports what /readyz says"
            assert 'tenkaigen_worker_readiness_check{check="runner"} 0.0' in body
            for path in ("/readyz", "/healthz"):
                starting = await client.get(path)
                assert starting.status_code == 503 and starting.json()["status"] == "unhealthy"
            health.running = True
            health.db_ok()
            for path in ("/readyz", "/healthz", "/livez"):
                answer = await client.get(path)
                assert answer.status_code == 200 and answer.json()["status"] == "ok", path
            body = (await client.get("/metrics")).text
            assert "tenkaigen_worker_ready 1.0" in body
            assert 'tenkaigen_worker_readiness_check{check="draining"} 1.0' in body
            assert (await client.get("/nope")).status_code == 404
    finally:
        await server.close()


def test_two_metrics_objects_do_not_collide() -> None:
    first, second = Metrics(), Metrics()
    first.jobs_claimed.inc()
    assert "tenkaigen_jobs_claimed_total 0.0" in second.render().decode()
