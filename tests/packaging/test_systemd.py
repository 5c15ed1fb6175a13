"""deploy/systemd/tenkaigen-worker.service: valid for systemd, non-root, restarts on failure, stops like the docs say."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from tests.packaging.build import ROOT
from worker.config import GRACE_PERIOD_DEFAULT

UNIT = ROOT / "deploy" / "systemd" / "tenkaigen-worker.service"
RELEASE_SECONDS = 30                # what docs/deploy.md allows for handing the rest back after the grace period


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_runs_tenkaigen_worker_as_a_non_root_user_from_an_environment_file() -> None:
    service = _service()
    assert service["ExecStart"].split() == ["/opt/tenkaigen/bin/tenkaigen", "worker"]
    assert service["User"] not in ("", "root", "0")
    assert service["EnvironmentFile"].startswith("/etc/")
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"


def test_the_stop_timeout_covers_the_grace_period_and_the_release() -> None:
    service = _service()
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed", "SIGTERM to the worker alone; SIGKILL to all only at the timeout"
    assert int(service["TimeoutStopSec"]) == GRACE_PERIOD_DEFAULT + RELEASE_SECONDS


def test_systemd_analyze_verify_reports_nothing(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    executable = Path(sys.executable).parent / "tenkaigen"
    assert analyze, "systemd-analyze is missing: apt-get install systemd (scripts/bootstrap does, as root)"
    assert executable.is_file(), f"{executable} is missing: run the tests with the project's venv"
    unit = tmp_path / UNIT.name         # verify checks that ExecStart exists: point it at this venv's tenkaigen
    unit.write_text(UNIT.read_text().replace("/opt/tenkaigen/bin/tenkaigen", str(executable)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
