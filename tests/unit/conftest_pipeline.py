"""Helpers for the inference tests (pipeline, Modal class, tiny/local/modal backends), imported explicitly.

Everything here runs offline on a CPU: tiny random Qwen-Image components, no Hub, no Modal token, no GPU.
"""

from __future__ import annotations

import functools
import io
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modal_app import pipeline

MODAL_LOCAL_WARNING = "ignore:The .* function is executing locally:UserWarning"


def tiny_request(**overrides: Any) -> dict[str, Any]:
    """A small, fast request dict for the tiny variant (64x48, 4 steps)."""
    request: dict[str, Any] = {
        "job_id": "job-1",
        "prompt": "A majestic dragon on a t-shirt",
        "negative_prompt": "",
        "variant": "tiny",
        "width": 64,
        "height": 48,
        "steps": 4,
        "true_cfg_scale": 1.0,
        "seed": 1234,
        "init_image": None,
        "lora": None,
    }
    request.update(overrides)
    return request


@functools.cache
def tiny_loaded() -> pipeline.LoadedPipeline:
    """One loaded tiny pipeline for the whole test session."""
    return pipeline.load_pipeline("tiny")


@functools.cache
def init_png(width: int = 64, height: int = 48) -> bytes:
    """A deterministic gradient PNG to use as an init image."""
    from PIL import Image

    image = Image.new("RGB", (width, height))
    image.putdata([(x * 4 % 256, y * 5 % 256, (x + y) % 256) for y in range(height) for x in range(width)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.size


def png_text(png: bytes) -> dict[str, str]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return dict(image.text)


def png_pixels(png: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").tobytes()


class StepSpy:
    """Records, from inside `LoadedPipeline.generate`, every denoising step and how each run ended."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.outcomes: list[str] = []


@contextmanager
def spy_on_denoising(monkeypatch: pytest.MonkeyPatch) -> Iterator[StepSpy]:
    spy = StepSpy()
    original = pipeline.LoadedPipeline.generate

    def generate(
        self: pipeline.LoadedPipeline, request: Any, *, on_step: Any = None, cancel: Any = None
    ) -> Any:
        def counting(step: int, total: int) -> None:
            spy.steps.append(step)
            if on_step is not None:
                on_step(step, total)

        try:
            output = original(self, request, on_step=counting, cancel=cancel)
        except pipeline.GenerationCancelled:
            spy.outcomes.append("cancelled")
            raise
        spy.outcomes.append("finished")
        return output

    monkeypatch.setattr(pipeline.LoadedPipeline, "generate", generate)
    yield spy


def installed_torch_minor() -> str:
    import importlib.metadata

    return ".".join(importlib.metadata.version("torch").split("+")[0].split(".")[:2])


def install_fake_nunchaku(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    real: bool,
    built_for_torch: str | None = None,
    init_source: str = "",
) -> None:
    """Put a `nunchaku` distribution on sys.path: Nunchaku's layout (real) or PyPI's unrelated package.

    A real one is versioned `1.1.0+torch<built_for_torch>` (default: the installed torch's minor, so it passes the
    torch check); `init_source` is its `__init__.py` (e.g. a `raise ImportError(...)` to mimic a broken `_C`).
    """
    package = root / "nunchaku"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(init_source)
    if real:
        (package / "models").mkdir()
        (package / "models" / "__init__.py").write_text("")
        version = f"1.1.0+torch{built_for_torch or installed_torch_minor()}"
        summary = "Nunchaku: inference engine for 4-bit diffusion models"
    else:
        (package / "nunchaku.py").write_text("")
        (package / "gibbs_sampler.py").write_text("")
        version, summary = "0.16.1", "Optimally partitioning data into piece-wise linear segments"
    dist = root / f"nunchaku-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: nunchaku\nVersion: {version}\nSummary: {summary}\n"
    )
    (dist / "RECORD").write_text("")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "nunchaku", raising=False)


BLOCK_HEAVY_IMPORTS = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "diffusers", "transformers", "nunchaku", "accelerate"}:
                raise ImportError(f"blocked in this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    """
)
"""Python source that makes torch, diffusers, transformers, accelerate and nunchaku unimportable."""
