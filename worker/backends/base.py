"""The one interface every generation backend implements.

A backend turns a resolved request into PNG bytes. It reports denoising progress through an async callback and
is cancelled by cancelling the asyncio task that awaits `generate` (a cancel NOTIFY does exactly that). It raises
`worker.exceptions.BadRequest` for requests it can never serve and `worker.exceptions.Transient` for failures
worth retrying; anything else is treated as transient by the runner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

ProgressCallback = Callable[[int, int], Awaitable[None]]
"""Called as `await on_progress(step, total)` after each denoising step (step counts from 1)."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything a backend needs; the database already resolved style presets into these fields."""

    job_id: str
    prompt: str
    negative_prompt: str
    variant: str
    width: int
    height: int
    steps: int
    true_cfg_scale: float
    seed: int
    init_image: bytes | None = None
    lora: str | None = None
    lora_scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (no deep copy of the image bytes): the pipeline's request payload."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """A finished image and how it was made."""

    png: bytes
    width: int
    height: int
    seed: int
    steps: int
    variant: str
    backend: str
    backend_call_id: str | None = None
    gpu_type: str | None = None
    gpu_seconds: float | None = None
    cost_usd: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A way to generate images. `name` is recorded on the job row as `backend`."""

    name: str

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback
    ) -> GenerationResult: ...

    async def aclose(self) -> None: ...
