"""The /metrics and /healthz endpoint."""

from __future__ import annotations

import httpx

from worker.metrics import Health, Metrics, MetricsServer


async def test_metrics_and_health_are_served_over_http() -> None:
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
            unhealthy = await client.get("/healthz")
            assert unhealthy.status_code == 503 and unhealthy.json()["status"] == "unhealthy"
            health.running = True
            health.db_ok()
            healthy = await client.get("/healthz")
            assert healthy.status_code == 200 and healthy.json()["running"] is True
            assert (await client.get("/nope")).status_code == 404
    finally:
        await server.close()


def test_health_goes_stale_when_the_database_stops_answering() -> None:
    health = Health(stale_after=0.0, running=True)
    health.db_ok()
    assert not health.status()[0]


def test_two_metrics_objects_do_not_collide() -> None:
    Metrics()
    Metrics()
