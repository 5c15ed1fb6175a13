"""The `tiny` backend: the real Qwen-Image pipeline code with tiny random weights, in-process on the CPU.

Every job runs `modal_app.pipeline`'s `tiny` variant, whatever variant it asked for, with the job's own prompt,
size, steps, CFG, seed, init image (img2img) and LoRA; the job row records backend = tiny and variant = tiny.
The images are noise. It exists to run the whole worker path (claim, progress per step, cancellation, upload,
completion) on a laptop or in CI with the same code the GPU backends run, in about a second per job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.backends.base import GenerationRequest
from worker.backends.local import LocalBackend, torch_problem
from worker.exceptions import ConfigurationError

if TYPE_CHECKING:
    from worker.config import Settings


class TinyBackend(LocalBackend):
    """`LocalBackend` on the CPU with the `tiny` variant for every job."""

    name = "tiny"

    def __init__(self) -> None:
        super().__init__(device="cpu")

    def check_environment(self) -> None:
        problem = torch_problem()
        if problem is not None:
            raise ConfigurationError(f"TENKAIGEN_BACKEND={self.name}: {problem}")

    def pipeline_variant(self, request: GenerationRequest) -> str:
        return "tiny"


def create_backend(settings: Settings) -> TinyBackend:
    return TinyBackend()
