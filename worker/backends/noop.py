"""The `noop` backend: returns a constant tiny PNG at once. It exists for the queue benchmark only (it measures
claim → complete without any generation cost); never run it for real jobs."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback

if TYPE_CHECKING:
    from worker.config import Settings

# a valid 1x1 transparent PNG
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


class NoopBackend:
    """Generates nothing, instantly."""

    name = "noop"

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        return GenerationResult(
            png=PNG_1X1, width=request.width, height=request.height, seed=request.seed, steps=request.steps,
            variant=request.variant, backend=self.name)

    async def aclose(self) -> None:
        return None


def create_backend(settings: Settings) -> NoopBackend:
    return NoopBackend()
