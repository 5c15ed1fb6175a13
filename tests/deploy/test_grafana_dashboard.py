"""deploy/grafana/tenkaigen.json is an importable dashboard: unique panel ids, no overlapping panels, every query
on the chosen Prometheus data source and scoped to the scrape job (which metrics exist is checked against a real
worker in tests/integration/test_dashboard_and_alerts_query_real_metrics.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "tenkaigen.json").read_text())
PANELS: list[dict[str, Any]] = DASHBOARD["panels"]
QUERY_PANELS = [p for p in PANELS if p["type"] != "row"]


def test_the_dashboard_has_an_identity_and_a_data_source_variable() -> None:
    assert DASHBOARD["uid"] == "tenkaigen-workers" and DASHBOARD["title"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["query"] == "tenkaigen-worker"


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    ids = [p["id"] for p in PANELS]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in PANELS:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = panel["title"]


def test_every_query_uses_the_data_source_variable_and_the_job() -> None:
    assert len(QUERY_PANELS) >= 20
    for panel in QUERY_PANELS:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'job=~"$job"' in target["expr"], f"{panel['title']}: {target['expr']}"


def test_the_issue_s_panels_are_there() -> None:
    exprs = " ".join(t["expr"] for p in QUERY_PANELS for t in p["targets"])
    for needle in ("tenkaigen_queue_jobs", "tenkaigen_queue_oldest_claimable_age_seconds",
                   "rate(tenkaigen_jobs_claimed_total", "sum by (outcome) (rate(tenkaigen_jobs_finished_total",
                   "histogram_quantile(0.5,", "histogram_quantile(0.95,", "tenkaigen_backend_errors_total",
                   "increase(tenkaigen_cost_usd_total", "tenkaigen_worker_ready", "tenkaigen_jobs_in_flight"):
        assert needle in exprs, needle
