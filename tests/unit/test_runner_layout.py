"""The runner stays split into short modules of one idea, keeps its public names, and its fault pause doubles."""

from __future__ import annotations

from pathlib import Path

import pytest

import worker.runner
from worker.exceptions import WorkerFault
from worker.probes import Health
from worker.runner.faults import FAULT_PAUSE_MAX, FaultPause

RUNNER_DIR = Path(worker.runner.__file__).parent
MAX_LINES = 250


def test_every_runner_module_is_short_and_named_in_the_package_map() -> None:
    modules = sorted(p for p in RUNNER_DIR.glob("*.py") if p.name != "__init__.py")
    assert len(modules) >= 10, "the runner is split by part"
    package_map = worker.runner.__doc__ or ""
    for module in modules:
        lines = len(module.read_text().splitlines())
        assert lines <= MAX_LINES, f"{module.name} has {lines} lines; split it by idea (at most {MAX_LINES})"
        assert f"`{module.name}`" in package_map, f"add {module.name} to the module map in worker/runner/__init__.py"


def test_the_public_names_are_importable_from_the_package() -> None:
    from worker.runner import ActiveJob, Runner, make_worker_id

    assert Runner.__module__ == "worker.runner.supervisor"
    assert ActiveJob.__module__ == "worker.runner.active"
    host, pid, suffix = make_worker_id().split(":")
    assert host and pid.isdigit() and len(suffix) == 6


def test_the_fault_pause_doubles_up_to_its_cap_and_a_success_resets_it() -> None:
    health = Health()
    pause = FaultPause(health=health, minimum=5.0)
    fault = WorkerFault("storage refused the service key")
    assert [pause.begin(fault) for _ in range(4)] == [5.0, 10.0, 20.0, 40.0]
    assert health.fault == "storage refused the service key"
    assert pause.remaining() == pytest.approx(40.0, abs=1.0)   # the longest pause set so far
    for _ in range(10):
        pause.begin(fault)
    assert pause.current == FAULT_PAUSE_MAX
    pause.cleared()
    assert health.fault is None
    assert pause.begin(fault) == 5.0, "after a success the next fault starts from the shortest pause"
