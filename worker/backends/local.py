"""The `local` backend: the Modal app's pipeline (`modal_app.pipeline`) in this process, on a local CUDA GPU.

One variant is loaded at a time (a Qwen-Image pipeline fills most of a GPU); a job for another variant unloads it
and loads the new one. Generation runs in a worker thread; each denoising step is reported through the job's
async progress callback in order, and cancelling the awaiting task stops the denoising loop after the current
step. Missing CUDA, PyPI's unrelated `nunchaku` package installed in place of Nunchaku, or a Nunchaku wheel built
for another torch minor than the installed one (e.g. the `[ml]` extra's torch next to the `+torch2.8` wheel) is a
`ConfigurationError` at construction, with the fix in its message; so is a load that fails with an ImportError or
"no kernel image" (`UnsupportedEnvironment`), never a Transient error that would be retried.

Install for this backend: `pip install -e '.[gpu]'` (torch, diffusers and the Nunchaku wheel pinned together from
modal_app/pins.py), not `.[ml]` (the CPU stack of the `tiny` backend).

torch is imported only when the backend is built (never by a worker that runs another backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from typing import TYPE_CHECKING

from modal_app import pins
from modal_app.pipeline import (
    GenerationCancelled,
    InvalidRequest,
    LoadedPipeline,
    PipelineRequest,
    UnsupportedEnvironment,
    agenerate,
    load_pipeline,
    nunchaku_install_problem,
)
from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback
from worker.exceptions import BadRequest, ConfigurationError, Transient

if TYPE_CHECKING:
    from worker.config import Settings

ML_EXTRA_HINT = "install the pinned ML stack: pip install -e '.[ml]'"
GPU_EXTRA_HINT = "install the pinned GPU stack: pip install -e '.[gpu]'"


def torch_problem(hint: str = ML_EXTRA_HINT) -> str | None:
    if importlib.util.find_spec("torch") is None:
        return f"torch is not installed; {hint}"
    return None


def cuda_problem(device: str) -> str | None:
    """Why `device` cannot be used, or None."""
    import torch

    if not torch.cuda.is_available():
        build = torch.version.cuda
        why = f"a CUDA {build} build" if build else "a CPU-only build"
        return (
            f"the local backend needs a CUDA GPU, and torch {torch.__version__} ({why}) sees none; "
            "run it on a machine with an NVIDIA GPU and a CUDA torch, or use TENKAIGEN_BACKEND=modal "
            "(or tiny for a CPU smoke test)"
        )
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        return f"{device} does not exist: torch sees {torch.cuda.device_count()} CUDA device(s)"
    return None


class LocalBackend:
    """Runs `modal_app.pipeline` in-process on a CUDA GPU."""

    name = "local"

    def __init__(self, *, device: str = "cuda", rank: int = pins.NUNCHAKU_DEFAULT_RANK) -> None:
        self.device = device
        self.rank = rank
        self._loaded: LoadedPipeline | None = None
        self._loading: asyncio.Future[LoadedPipeline] | None = None
        self._loading_variant: str | None = None
        self._lock = asyncio.Lock()  # one generation, and one loaded model, at a time
        self.check_environment()

    def check_environment(self) -> None:
        """Raise ConfigurationError for a machine this backend cannot work on."""
        problem = torch_problem(GPU_EXTRA_HINT)
        if problem is None and importlib.util.find_spec("nunchaku") is not None:
            # an installed impostor, or a wheel for another torch, is wrong whatever the variant
            problem = nunchaku_install_problem()
        if problem is None:
            problem = cuda_problem(self.device)
        if problem is not None:
            raise ConfigurationError(f"TENKAIGEN_BACKEND={self.name}: {problem}")

    def pipeline_variant(self, request: GenerationRequest) -> str:
        """The variant to load for a request."""
        return request.variant

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        variant = self.pipeline_variant(request)
        try:
            parsed = PipelineRequest.from_dict({**request.to_dict(), "variant": variant})
        except InvalidRequest as exc:
            raise BadRequest(str(exc)) from exc
        async with self._lock:
            loaded = await self._ensure_loaded(variant)
            load_s = loaded.take_load_s()
            try:
                output = await agenerate(loaded, parsed, on_progress)
            except InvalidRequest as exc:
                raise BadRequest(str(exc)) from exc
            except UnsupportedEnvironment as exc:
                raise ConfigurationError(str(exc)) from exc
            except GenerationCancelled as exc:  # only when cancelled from outside the task; retry the job
                raise Transient(str(exc)) from exc
        timings = {"load_s": load_s, **output.timings}
        on_gpu = loaded.gpu_type != "CPU"
        return GenerationResult(
            png=output.png,
            width=parsed.width,
            height=parsed.height,
            seed=parsed.seed,
            steps=parsed.steps,
            variant=parsed.variant,
            backend=self.name,
            gpu_type=loaded.gpu_type,
            gpu_seconds=sum(timings.values()) if on_gpu else None,
            timings=timings,
        )

    async def _ensure_loaded(self, variant: str) -> LoadedPipeline:
        if self._loaded is not None and self._loaded.spec.name == variant:
            return self._loaded
        if self._loading is None or self._loading_variant != variant:
            if self._loading is not None:  # a load for another variant, left running by a cancelled job
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self._loading)
            self._release()
            self._loading_variant = variant
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._load, variant))
        try:
            # Shielded: a job cancelled during a load leaves it running for the next job of this variant.
            self._loaded = await asyncio.shield(self._loading)
        except Exception as exc:
            if self._loading.done():
                self._loading = self._loading_variant = None  # the next job tries again
            if isinstance(exc, UnsupportedEnvironment):
                raise ConfigurationError(f"TENKAIGEN_BACKEND={self.name}: {exc}") from exc
            if isinstance(exc, InvalidRequest):
                raise BadRequest(str(exc)) from exc
            raise
        return self._loaded

    def _load(self, variant: str) -> LoadedPipeline:
        return load_pipeline(variant, rank=self.rank, device=self.device)

    def _release(self) -> None:
        """Drop the loaded pipeline (or a finished load nobody picked up) and give its GPU memory back."""
        if self._loaded is None and self._loading is None:
            return
        self._loaded = None
        self._loading = self._loading_variant = None
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._loading)
        self._release()


def create_backend(settings: Settings) -> LocalBackend:
    return LocalBackend(
        device=getattr(settings, "local_device", "cuda"),
        rank=getattr(settings, "nunchaku_rank", pins.NUNCHAKU_DEFAULT_RANK),
    )
