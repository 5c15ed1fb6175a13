"""The runtime wheel ships the product only: no tools package, no benchmark, chaos or test-double module; and the
settings that name a test double fail clearly there."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path, PurePosixPath

from tests.packaging.build import InstalledWorker

TOOL_STEMS = {"bench", "chaos", "testing", "chaos_backend", "noop", "noop_backend", "memory", "memory_storage"}


def test_the_built_wheel_holds_no_tools(installed_worker: InstalledWorker) -> None:
    with zipfile.ZipFile(installed_worker.wheel) as wheel:
        files = [PurePosixPath(name) for name in wheel.namelist()]
    python = [path for path in files if path.suffix == ".py"]
    shipped = {str(path) for path in python}
    assert {"worker/__init__.py", "worker/queue.py", "modal_app/pipeline.py"} <= shipped, f"not the worker's wheel: {shipped}"
    tools = [str(path) for path in files if path.parts[0] == "tenkaigen_tools" or path.stem in TOOL_STEMS]
    assert tools == [], f"the runtime wheel ships tools: {tools}"
    top_level = sorted({path.parts[0] for path in python})
    assert top_level == ["modal_app", "worker"], f"unexpected top-level packages in the wheel: {top_level}"


CREATE_DOUBLES = """
from worker.backends.registry import create_backend
from worker.config import Settings
from worker.exceptions import ConfigurationError
from worker.storage import create_storage

for make, field, name in ((create_backend, "backend", "noop"), (create_backend, "backend", "chaos"),
                          (create_storage, "storage", "memory")):
    try:
        make(Settings(database_url="postgresql://x@localhost/db", **{field: name}))
    except ConfigurationError as exc:
        print(exc)
    else:
        print(f"created {name}")
"""


def test_an_installed_wheel_refuses_the_test_doubles_naming_the_setting(
        installed_worker: InstalledWorker, tmp_path: Path) -> None:
    result = subprocess.run([str(installed_worker.python), "-c", CREATE_DOUBLES], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "TENKAIGEN_BACKEND=noop", "TENKAIGEN_BACKEND=chaos", "TENKAIGEN_STORAGE=memory"], result.stdout
    assert all("tenkaigen_tools" in line and "installed wheel" in line for line in lines), result.stdout
