"""The product apart from its tools: no runtime module imports the checkout's `tenkaigen_tools` package (benchmarks,
chaos runs, test doubles), and the doubles that settings can name fail clearly where that package is absent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worker.config import Settings
from worker.exceptions import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
TOOL_NAMES = {"bench", "chaos", "testing", "chaos_backend", "noop", "noop_backend", "memory", "memory_storage"}

# Imports every module of the runtime packages (a `__main__` would run the CLI), then prints what was imported.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import worker, modal_app
names = []
for package in (worker, modal_app):
    names.append(package.__name__)
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
              if not m.name.endswith(".__main__")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"walked": names, "loaded": sorted(sys.modules)}))
"""


def test_importing_every_runtime_module_loads_no_tool() -> None:
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, f"importing the runtime modules failed:\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "worker.runner" in report["walked"] and "modal_app.pipeline" in report["walked"]
    misplaced = [name for name in report["walked"] if name.rsplit(".", 1)[-1] in TOOL_NAMES]
    assert misplaced == [], f"tool modules inside the runtime packages: {misplaced}; move them to tenkaigen_tools/"
    ours = [name for name in report["loaded"] if name.split(".")[0] in {"worker", "modal_app", "tenkaigen_tools"}]
    tools = [name for name in ours if name.startswith("tenkaigen_tools") or name.rsplit(".", 1)[-1] in TOOL_NAMES]
    assert tools == [], f"the runtime's import graph reaches tool modules: {tools}"


@pytest.fixture
def without_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in an installed wheel: `import tenkaigen_tools` fails (a None entry in sys.modules stops the import)."""
    for name in [name for name in sys.modules if name.startswith("tenkaigen_tools.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tenkaigen_tools", None)


@pytest.mark.parametrize("backend", ["noop", "chaos"])
def test_a_test_double_backend_without_the_tools_package_is_a_configuration_error_naming_the_setting(
        without_tools: None, backend: str) -> None:
    from worker.backends.registry import create_backend

    with pytest.raises(ConfigurationError, match=rf"TENKAIGEN_BACKEND={backend}: .*tenkaigen_tools.*installed wheel"):
        create_backend(Settings(database_url="postgresql://x@localhost/db", backend=backend))


def test_memory_storage_without_the_tools_package_is_a_configuration_error_naming_the_setting(
        without_tools: None) -> None:
    from worker.storage import create_storage

    with pytest.raises(ConfigurationError, match=r"TENKAIGEN_STORAGE=memory: .*tenkaigen_tools.*installed wheel"):
        create_storage(Settings(database_url="postgresql://x@localhost/db", storage="memory"))


def test_from_a_checkout_the_doubles_are_reached_by_name() -> None:
    from worker.backends.registry import create_backend
    from worker.storage import create_storage

    settings = Settings(database_url="postgresql://x@localhost/db", backend="chaos", storage="memory")
    assert type(create_backend(settings)).__module__ == "tenkaigen_tools.chaos_backend"
    assert type(create_storage(settings)).__module__ == "tenkaigen_tools.memory_storage"
