"""The one interface every generation backend implements.

A backend turns a resolved request into PNG bytes. It reports denoising progress through an async callback and
is cancelled by cancelling the asyncio task that awaits `generate` (a cancel NOTIFY does exactly that). It raises
`worker.exceptions.BadRequest` for requests it can never serve and `worker.exceptions.Transient` for failures
worth retrying; anything else is treated as transient by the runner.

A backend whose generations are remote calls with ids (Modal) also sets `tracks_calls = True` and accepts a
`calls: CallTracker` keyword: it reports each call id as soon as the call exists (the runner records it on the job
row, so the call can be cancelled from its first second and a later attempt can re-attach to it), it tries the
previous attempt's call before starting a new one, and it leaves the call running when the task was stopped for a
reason that hands the job to another worker (shutdown, lost lease). `generate_with_calls` passes the tracker to
backends that take it and calls the others as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

ProgressCallback = Callable[[int, int], Awaitable[None]]
"""Called as `await on_progress(step, total)` after each denoising step (step counts from 1)."""


async def _record_nothing(_call_id: str) -> bool:
    return True


def _cancel_always() -> bool:
    return False


def _ignore_version(_app_version: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CallTracker:
    """What the runner tells a call-tracking backend about the job's calls, and how the backend reports a new one."""

    previous_call_id: str | None = None
    """The call an earlier attempt of this job started (kept by a crash or a release): re-attach to it if it still
    runs or finished with a result, instead of paying for a second generation."""
    record: Callable[[str], Awaitable[bool]] = _record_nothing
    """`await record(call_id)` as soon as a call exists; False = this worker lost the job's lease."""
    keep_running: Callable[[], bool] = _cancel_always
    """Asked when the generation is cancelled: True = leave the remote call running (the job goes to another
    worker, which re-attaches to it); False = cancel it (the job was canceled or ran past its deadline)."""
    on_version_mismatch: Callable[[str], None] = _ignore_version
    """Called with the remote app's version each time a call is answered by an app of another version."""


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


async def generate_with_calls(
    backend: Backend, request: GenerationRequest, on_progress: ProgressCallback, calls: CallTracker
) -> GenerationResult:
    """`backend.generate(...)`, with the call tracker for a backend that sets `tracks_calls`."""
    if getattr(backend, "tracks_calls", False):
        return await backend.generate(request, on_progress, calls=calls)  # type: ignore[call-arg]
    return await backend.generate(request, on_progress)
