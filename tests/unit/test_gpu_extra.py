"""pyproject's `gpu` extra (the `local` backend's install) is the Modal image's stack: pins.IMAGE_PACKAGES plus the
Nunchaku wheel built for that torch, and nothing that pulls PyPI's unrelated `nunchaku` or another torch."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from modal_app import pins, pipeline

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def extra(name: str) -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(line) for line in project["optional-dependencies"][name]]


def test_the_gpu_extra_pins_exactly_the_modal_image_packages_and_the_matching_wheel():
    requirements = extra("gpu")
    pinned = sorted(str(r) for r in requirements if r.url is None)
    assert pinned == sorted(pins.IMAGE_PACKAGES)
    [wheel] = [r for r in requirements if r.url is not None]
    assert (wheel.name, wheel.url) == ("nunchaku", pins.NUNCHAKU_WHEEL_URL)
    assert wheel.marker is not None
    assert wheel.marker.evaluate(
        {"python_version": pins.PYTHON_VERSION, "sys_platform": "linux", "platform_machine": "x86_64"}
    )
    assert not wheel.marker.evaluate(
        {"python_version": "3.11", "sys_platform": "linux", "platform_machine": "x86_64"}
    )


def test_the_gpu_extras_torch_is_the_one_the_nunchaku_wheel_was_built_for():
    [torch] = [r for r in extra("gpu") if r.name == "torch"]
    version = next(iter(torch.specifier)).version
    assert pipeline.nunchaku_torch_mismatch(f"{pins.NUNCHAKU_VERSION}+torch2.8", version) is None
    assert "+torch2.8-" in pins.NUNCHAKU_WHEEL_URL and version == pins.TORCH_VERSION


def test_the_modal_floor_has_startup_timeout_and_uv_pip_install():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    [modal] = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "modal"]
    assert str(modal.specifier) in {">=1.1.4,<2", "<2,>=1.1.4"}
