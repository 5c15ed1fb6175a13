"""Build the tenkaigen wheel from a clean copy of the image's build context and install it the way the image does.

The copy holds exactly the paths that .dockerignore lets into the container build, so a file the build needs but
the image would not get fails here first; building from a copy also keeps setuptools' stale build/ directory of
the checkout out of the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERIGNORE = ROOT / ".dockerignore"
INSTALL_SCRIPT = ROOT / "deploy" / "docker" / "install-worker"
LOCK_FILE = ROOT / "requirements" / "worker.lock"


@dataclass(frozen=True)
class InstalledWorker:
    """A venv made by deploy/docker/install-worker from a freshly built wheel, outside the repository."""

    wheel: Path
    venv: Path
    install_log: str

    @property
    def tenkaigen(self) -> Path:
        return self.venv / "bin" / "tenkaigen"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def build_context_paths() -> list[str]:
    """The paths .dockerignore re-includes (`!path`) after excluding everything (`*`)."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    assert entries[0] == "*", ".dockerignore must start by excluding everything ('*'), then list what the build needs"
    return [line[1:].rstrip("/") for line in entries if line.startswith("!")]


def copy_build_context(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for relative in build_context_paths():
        source = ROOT / relative
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=ignore)
        else:
            shutil.copy2(source, destination)
    return target


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output[-4000:]}"
    return output


def build_and_install(workdir: Path) -> InstalledWorker:
    """Wheel from a copy of the build context, then install-worker into a new venv; all under `workdir`."""
    source = copy_build_context(workdir / "src")
    dist = workdir / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source)], workdir)
    (wheel,) = dist.glob("tenkaigen-*.whl")
    venv = workdir / "venv"
    log = _run([str(source / "deploy" / "docker" / "install-worker"), str(venv), str(wheel),
                str(source / "requirements" / "worker.lock")], workdir)
    return InstalledWorker(wheel=wheel, venv=venv, install_log=log)
