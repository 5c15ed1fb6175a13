"""Every metric the Grafana dashboard and the alert rules query exists in a running worker's /metrics.

A real `tenkaigen worker` (commands.worker: placeholder backend, local storage, scheduler on, metrics endpoint)
runs one job so that its labelled series exist, and leads the queue metrics (it is alone); its scrape is then
compared with every `tenkaigen_*`, `process_*` and `python_*` name in deploy/grafana/tenkaigen.json and
deploy/prometheus/alerts.yml. `up` and other names Prometheus makes itself are not looked for.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from tests.integration.conftest import job_row
from worker import commands
from worker.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "tenkaigen.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
NAME = re.compile(r"\b((?:tenkaigen|process|python)_[a-z0-9_]+)\b")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
WITHIN = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def expressions(node: Any) -> Iterator[str]:
    """Every `expr` string in a Grafana dashboard (panels, rows, targets at any depth)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def dashboard_names() -> set[str]:
    exprs = list(expressions(json.loads(DASHBOARD.read_text())))
    assert len(exprs) >= 20, "the dashboard has its queries"
    return {name for expr in exprs for name in NAME.findall(expr)}


def alert_names() -> set[str]:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    return {name for rule in rules for name in NAME.findall(rule["expr"])}


def exposed_names(text: str) -> set[str]:
    """Series names a Prometheus server would store from this scrape, histogram series included, plus families
    declared without samples yet (a labelled counter before its first increment)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update(name + suffix for suffix in HISTOGRAM_SERIES)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


async def scrape_when(client: httpx.AsyncClient, ready: Callable[[str], bool], message: str) -> str:
    deadline = time.monotonic() + WITHIN
    while True:
        try:
            text = (await client.get("/metrics")).text
        except httpx.TransportError:
            text = ""                                  # not listening yet
        if text and ready(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WITHIN} s waiting for {message}")
        await asyncio.sleep(0.1)


async def test_every_queried_metric_exists_in_a_running_workers_scrape(
        settings_for: Callable[..., Settings], make_job, admin: psycopg.Connection) -> None:
    port = free_port()
    settings = settings_for(metrics_port=port, metrics_host="127.0.0.1")
    stop = asyncio.Event()
    worker = asyncio.create_task(commands.worker(settings, stop_event=stop, install_signal_handlers=False))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            job_id = make_job("a dashboard's first job")
            text = await scrape_when(
                client, lambda t: 'tenkaigen_jobs_finished_total{outcome="succeeded"} 1.0' in t
                and "tenkaigen_queue_metrics_leader 1.0" in t and "tenkaigen_queue_jobs{" in t,
                "the job to be counted and the queue gauges to be exported")
        assert job_row(admin, job_id)["status"] == "succeeded"
    finally:
        stop.set()
        await asyncio.wait_for(worker, WITHIN)
    exposed = exposed_names(text)
    queried = dashboard_names() | alert_names()
    assert {"tenkaigen_generation_duration_seconds_bucket", "tenkaigen_queue_oldest_claimable_age_seconds",
            "tenkaigen_cost_usd_total", "process_resident_memory_bytes"} <= queried, "the check reads the queries"
    assert sorted(queried - exposed) == [], "queried by the dashboard or the alerts but not exported"
    assert "tenkaigen_build_info" in exposed and "process_cpu_seconds_total" in exposed
