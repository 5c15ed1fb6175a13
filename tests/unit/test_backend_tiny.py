"""worker.backends.tiny: the real pipeline code with tiny random weights on the CPU, through the Backend
protocol: progress per step on the event loop, cancellation, img2img, errors."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.conftest_pipeline import init_png, png_size, png_text, spy_on_denoising, tiny_request
from worker.backends.base import Backend, GenerationRequest
from worker.backends.tiny import TinyBackend, create_backend
from worker.exceptions import BadRequest


def job(**overrides) -> GenerationRequest:
    fields = tiny_request(**overrides)
    return GenerationRequest(**fields)


@pytest.fixture
def backend():
    return TinyBackend()  # per test: its asyncio primitives belong to the test's event loop


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.reached = asyncio.Event()
        self.stop_at: int | None = None

    async def __call__(self, step: int, total: int) -> None:
        self.calls.append((step, total))
        if step == self.stop_at:
            self.reached.set()


def test_it_is_a_backend_named_tiny():
    backend = create_backend(None)
    assert isinstance(backend, Backend) and backend.name == "tiny"


async def test_a_job_reports_each_step_and_returns_a_png_of_the_requested_size(backend):
    progress = Progress()
    result = await backend.generate(
        job(variant="lightning-8", steps=5, width=96, height=64, seed=11), progress
    )
    assert progress.calls == [(i, 5) for i in range(1, 6)]
    assert (result.width, result.height, result.seed, result.steps) == (96, 64, 11, 5)
    assert (result.backend, result.variant, result.gpu_type, result.gpu_seconds) == (
        "tiny",
        "tiny",
        "CPU",
        None,
    )
    assert png_size(result.png) == (96, 64)
    assert png_text(result.png)["prompt"] == "A majestic dragon on a t-shirt"
    assert set(result.timings) == {"load_s", "inference_s", "encode_s"}


async def test_the_same_seed_gives_the_same_image(backend):
    async def ignore(step: int, total: int) -> None:
        return None

    first = await backend.generate(job(seed=3), ignore)
    again = await backend.generate(job(seed=3), ignore)
    assert first.png == again.png


async def test_an_edit_job_with_an_init_image_runs_img2img(backend):
    progress = Progress()
    result = await backend.generate(job(variant="edit", init_image=init_png(), steps=3), progress)
    assert progress.calls == [(1, 3), (2, 3), (3, 3)]
    assert png_text(result.png)["init_image"] == "yes"


async def test_cancelling_the_task_stops_denoising_and_reraises(backend, monkeypatch):
    progress = Progress()
    progress.stop_at = 2
    with spy_on_denoising(monkeypatch) as spy:
        task = asyncio.create_task(backend.generate(job(steps=40), progress))
        await progress.reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert spy.outcomes == ["cancelled"] and len(spy.steps) < 10
    result = await backend.generate(job(steps=2), Progress())  # the backend is free for the next job
    assert result.steps == 2


async def test_a_bad_request_fails_without_running(backend):
    with pytest.raises(BadRequest, match="width: must be a multiple of 16"):
        await backend.generate(job(width=100), Progress())
    with pytest.raises(BadRequest, match="init_image"):
        await backend.generate(job(init_image=b"nope"), Progress())


async def test_an_error_from_the_progress_callback_stops_the_job(backend):
    async def lease_lost(step: int, total: int) -> None:
        raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError, match="lease lost"):
        await backend.generate(job(steps=40), lease_lost)


async def test_aclose_releases_the_pipeline():
    backend = TinyBackend()
    await backend.generate(job(steps=1), Progress())
    await backend.aclose()
    assert backend._loaded is None
