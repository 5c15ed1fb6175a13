"""The `noop` backend: returns a blank (transparent) PNG of the requested size at once. It exists for the queue
benchmark only (it measures claim → complete without any generation cost); never run it for real jobs. The PNG
is built once per size and cached (`worker.results.blank_png`), so a job costs a dictionary lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback
from worker.results import blank_png

if TYPE_CHECKING:
    from worker.config import Settings


class NoopBackend:
    """Generates nothing, instantly."""

    name = "noop"

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        return GenerationResult(
            png=blank_png(request.width, request.height), width=request.width, height=request.height,
            seed=request.seed, steps=request.steps, variant=request.variant, backend=self.name)

    async def aclose(self) -> None:
        return None


def create_backend(settings: Settings) -> NoopBackend:
    return NoopBackend()
