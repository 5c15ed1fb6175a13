"""The placeholder and noop backends, and backend selection by name."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tenkaigen_tools.noop_backend import NoopBackend
from worker.backends.base import Backend, GenerationRequest
from worker.backends.placeholder import PlaceholderBackend
from worker.backends.registry import BACKEND_MODULES, create_backend
from worker.config import Settings
from worker.exceptions import ConfigurationError


def request(**overrides: object) -> GenerationRequest:
    values: dict[str, object] = {"job_id": "j", "prompt": "A majestic dragon", "negative_prompt": "",
                                 "variant": "lightning-8", "width": 512, "height": 256, "steps": 4,
                                 "true_cfg_scale": 1.0, "seed": 7}
    values.update(overrides)
    return GenerationRequest(**values)  # type: ignore[arg-type]


async def test_the_placeholder_draws_a_png_of_the_requested_size_and_reports_each_step() -> None:
    steps: list[tuple[int, int]] = []

    async def on_progress(step: int, total: int) -> None:
        steps.append((step, total))

    result = await PlaceholderBackend().generate(request(), on_progress)
    with Image.open(io.BytesIO(result.png)) as image:
        assert image.size == (512, 256) and image.format == "PNG"
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert (result.backend, result.seed, result.steps, result.variant) == ("placeholder", 7, 4, "lightning-8")


async def test_the_placeholder_is_deterministic_per_seed_and_prompt() -> None:
    async def nothing(step: int, total: int) -> None:
        return None

    a = await PlaceholderBackend().generate(request(), nothing)
    b = await PlaceholderBackend().generate(request(), nothing)
    c = await PlaceholderBackend().generate(request(seed=8), nothing)
    assert a.png == b.png and a.png != c.png


async def test_noop_returns_a_png_at_once() -> None:
    async def nothing(step: int, total: int) -> None:
        raise AssertionError("noop reports no progress")

    result = await NoopBackend().generate(request(), nothing)
    assert result.png.startswith(b"\x89PNG") and result.backend == "noop"


@pytest.mark.parametrize("name", ["placeholder", "noop"])
def test_backends_are_created_by_name(name: str) -> None:
    backend = create_backend(Settings(database_url="postgresql://x@localhost/db", backend=name))
    assert isinstance(backend, Backend) and backend.name == name


def test_a_backend_module_that_cannot_be_imported_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKEND_MODULES, "local", "worker.backends.does_not_exist")
    with pytest.raises(ConfigurationError, match="TENKAIGEN_BACKEND=local: cannot import"):
        create_backend(Settings(database_url="postgresql://x@localhost/db", backend="local"))
