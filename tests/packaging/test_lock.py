"""requirements/worker.lock pins every runtime dependency of pyproject.toml, with hashes, and nothing it rejects.

The fast checks read both files; the slow one is the proof: deploy/docker/install-worker installed the lock
(`--require-hashes --no-deps`) and the wheel (`--no-deps`) into a fresh venv, and `pip check` found nothing
missing or out of range. Regenerate the lock with `scripts/lock` after changing a dependency.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.packaging.build import LOCK_FILE, ROOT, InstalledWorker

PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$")
REGENERATE = "run scripts/lock and commit requirements/worker.lock"


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def _pins() -> dict[str, list[tuple[Version, Marker | None, int]]]:
    """name → [(version, marker, number of hashes)] from the lock (a name may be pinned per marker)."""
    pins: dict[str, list[tuple[Version, Marker | None, int]]] = {}
    current: list[object] | None = None
    for line in LOCK_FILE.read_text().splitlines():
        match = PIN.match(line)
        if match:
            marker = Marker(match["marker"]) if match["marker"] else None
            current = [Version(match["version"]), marker, 0]
            pins.setdefault(canonicalize_name(match["name"]), []).append(current)  # type: ignore[arg-type]
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current[2] += 1  # type: ignore[operator]
    return {name: [tuple(entry) for entry in entries] for name, entries in pins.items()}  # type: ignore[misc]


def test_every_runtime_requirement_is_pinned_within_its_range() -> None:
    pins = _pins()
    for requirement in _runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} (pyproject.toml) is not in requirements/worker.lock: {REGENERATE}"
        for version, _marker, _hashes in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/worker.lock pins {name}=={version}, outside pyproject.toml's {requirement}: {REGENERATE}")
        for extra in requirement.extras:             # psycopg[binary,pool] → psycopg-binary, psycopg-pool
            assert canonicalize_name(f"{name}-{extra}") in pins, f"{requirement} extra {extra!r} not locked"


def test_every_pin_is_exact_and_carries_hashes() -> None:
    pins = _pins()
    assert pins, "requirements/worker.lock has no pins"
    for name, entries in pins.items():
        for version, _marker, hashes in entries:
            assert hashes >= 1, f"{name}=={version} has no --hash in requirements/worker.lock: {REGENERATE}"


def test_the_lock_holds_no_ml_stack() -> None:
    assert not {"torch", "diffusers", "transformers", "accelerate"} & set(_pins()), (
        "the worker's runtime lock pulls the ML stack; ML belongs to the [ml] extra")


@pytest.mark.slow
def test_the_lock_installs_with_hashes_and_satisfies_the_wheel(installed_worker: InstalledWorker) -> None:
    assert "No broken requirements found." in installed_worker.install_log
    frozen = subprocess.run([str(installed_worker.python), "-m", "pip", "list", "--format=freeze",
                             "--exclude", "pip", "--exclude", "setuptools"],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    installed = {canonicalize_name(n): Version(v) for n, v in (line.split("==") for line in frozen.split())}
    assert installed.pop("tenkaigen")
    expected = {name: version for name, entries in _pins().items() for version, marker, _ in entries
                if marker is None or marker.evaluate()}
    assert installed == expected, "the venv holds exactly the lock's pins for this platform"
