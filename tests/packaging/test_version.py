"""`tenkaigen --version` prints the installed distribution's version, which is pyproject.toml's."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.packaging.build import ROOT


def test_version_prints_pyprojects_version_and_exits_0() -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = subprocess.run([sys.executable, "-m", "worker", "--version"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tenkaigen {expected}"
