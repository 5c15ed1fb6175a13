"""worker.backends.modal against the real Modal class, run through `.local()`.

Only the network lookup is replaced: `modal.Cls.from_name` returns a stand-in that routes
`Cls(...).generate.remote_gen.aio(request)` to `QwenGenerator(...).generate.local(request)` in a thread, with
the request and every event pickled on the way as Modal serialises them. Everything else (event handling,
progress, cancellation, costing, error mapping) is the backend's own code. No Modal token, no network.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import modal
import modal.exception
import pytest

from modal_app import qwen_generator
from tests.unit.conftest_pipeline import (
    BLOCK_HEAVY_IMPORTS,
    MODAL_LOCAL_WARNING,
    init_png,
    png_size,
    png_text,
    spy_on_denoising,
    tiny_request,
)
from worker.backends.base import Backend, GenerationRequest
from worker.backends.modal import (
    PRICES_USD_PER_SECOND_DEFAULT,
    ModalBackend,
    create_backend,
    map_modal_error,
    price_per_second,
)
from worker.exceptions import BadRequest, ConfigurationError, Transient

pytestmark = pytest.mark.filterwarnings(MODAL_LOCAL_WARNING)

ROOT = Path(__file__).resolve().parents[2]
_END = object()


def job(**overrides: Any) -> GenerationRequest:
    return GenerationRequest(**tiny_request(**overrides))


def roundtrip(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value))


class Lookup:
    """Stands in for `modal.Cls.from_name`, the only network lookup, and records how it was used."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self.options: list[dict[str, Any]] = []
        self.params: list[dict[str, Any]] = []

    def __call__(self, app_name: str, name: str, *, environment_name: str | None = None, **_: Any) -> Any:
        self.calls.append((app_name, name, environment_name))
        if app_name != qwen_generator.app.name:
            raise modal.exception.NotFoundError(f"Lookup failed for Cls '{name}' from the '{app_name}' app")
        return LocalCls(self, getattr(qwen_generator, name))


class LocalCls:
    def __init__(self, lookup: Lookup, cls: Any) -> None:
        self.lookup, self.cls = lookup, cls

    def with_options(self, **options: Any) -> LocalCls:
        self.lookup.options.append(options)
        return self

    def __call__(self, **params: Any) -> Any:
        self.lookup.params.append(params)
        obj = self.cls(**params)
        return SimpleNamespace(generate=SimpleNamespace(remote_gen=LocalRemoteGen(obj.generate)))


class LocalRemoteGen:
    """`remote_gen.aio(...)` on the real method's `.local()`: an async generator fed from a thread."""

    def __init__(self, method: Any) -> None:
        self.method = method

    async def aio(self, payload: dict[str, Any]):
        stream = await asyncio.to_thread(self.method.local, roundtrip(payload))  # runs @modal.enter
        executor = concurrent.futures.ThreadPoolExecutor(1)
        pending: concurrent.futures.Future | None = None
        try:
            while True:
                pending = executor.submit(next, stream, _END)
                item = await asyncio.wrap_future(pending)
                if item is _END:
                    return
                yield roundtrip(item)
        finally:  # the caller went away: stop the "container's" generator, as a cancelled input would
            if pending is not None:
                await asyncio.to_thread(concurrent.futures.wait, [pending])
            await asyncio.to_thread(stream.close)
            executor.shutdown()


@pytest.fixture
def lookup(monkeypatch: pytest.MonkeyPatch) -> Lookup:
    fake = Lookup()
    monkeypatch.setattr(modal.Cls, "from_name", fake)
    return fake


class Progress:
    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.stop_at = stop_at
        self.reached = asyncio.Event()

    async def __call__(self, step: int, total: int) -> None:
        self.calls.append((step, total))
        if step == self.stop_at:
            self.reached.set()


# ## Through the real class


async def test_a_job_streams_progress_and_returns_a_costed_result(lookup):
    backend = ModalBackend(environment_name="test-env")
    assert isinstance(backend, Backend) and backend.name == "modal"
    progress = Progress()
    result = await backend.generate(job(steps=4, width=96, height=64, seed=77), progress)
    assert progress.calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert lookup.calls == [("tenkaigen-qwen", "QwenGeneratorCPU", "test-env")]
    assert lookup.params == [{"variant": "tiny", "rank": 32}]
    assert (result.backend, result.variant, result.width, result.height, result.seed, result.steps) == (
        "modal",
        "tiny",
        96,
        64,
        77,
        4,
    )
    assert png_size(result.png) == (96, 64) and png_text(result.png)["seed"] == "77"
    assert result.gpu_type == "CPU" and result.gpu_seconds is None and result.backend_call_id is None
    seconds = sum(result.timings.values())
    assert result.cost_usd == pytest.approx(seconds * PRICES_USD_PER_SECOND_DEFAULT["CPU"], abs=1e-8)

    again = await backend.generate(job(steps=2), Progress())  # the same warm container pool
    assert len(lookup.calls) == 1 and again.timings["load_s"] == 0.0


async def test_an_init_image_travels_to_the_generator(lookup):
    progress = Progress()
    result = await ModalBackend().generate(job(init_image=init_png(), steps=3), progress)
    assert progress.calls == [(1, 3), (2, 3), (3, 3)]
    assert png_text(result.png)["init_image"] == "yes"


async def test_cancelling_the_job_stops_the_remote_denoising(lookup, monkeypatch):
    backend = ModalBackend()
    progress = Progress(stop_at=2)
    with spy_on_denoising(monkeypatch) as spy:
        task = asyncio.create_task(backend.generate(job(steps=40), progress))
        await progress.reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert spy.outcomes == ["cancelled"] and len(spy.steps) < 10
    assert (await backend.generate(job(steps=2), Progress())).steps == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 100}, "width: must be a multiple of 16"),
        ({"variant": "turbo"}, "unknown variant 'turbo'"),
        ({"variant": "edit"}, "init_image: variant 'edit' edits an image and needs one"),
        ({"variant": "lightning-8", "lora": "org/franchise/x.safetensors"}, "cannot apply custom LoRAs"),
    ],
)
async def test_a_request_that_cannot_succeed_is_rejected_before_any_modal_call(lookup, overrides, message):
    with pytest.raises(BadRequest, match=message):
        await ModalBackend().generate(job(**overrides), Progress())
    assert lookup.calls == []  # no GPU container was started for it


def test_gpu_variants_go_to_the_gpu_class_and_bf16_asks_for_an_80gb_card(lookup):
    backend = ModalBackend(rank=128)
    backend._instance("lightning-8")
    backend._instance("bf16")
    assert [call[1] for call in lookup.calls] == ["QwenGenerator", "QwenGenerator"]
    assert lookup.options == [{"gpu": "A100-80GB"}]
    assert lookup.params == [{"variant": "lightning-8", "rank": 128}, {"variant": "bf16", "rank": 128}]


async def test_an_app_that_is_not_deployed_is_a_configuration_error(lookup):
    with pytest.raises(ConfigurationError, match=r"modal deploy modal_app/qwen_generator\.py"):
        await ModalBackend(app_name="tenkaigen-qwen-typo").generate(job(), Progress())


# ## Scripted streams: call ids, errors, exceptions


class ScriptedStream:
    """An async generator stand-in that yields scripted events, then raises or blocks."""

    def __init__(
        self, events: list[dict[str, Any]], *, then: BaseException | None = None, block: bool = False
    ):
        self.events, self.then, self.block, self.closed = events, then, block, False

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self.events:
            return self.events.pop(0)
        if self.then is not None:
            raise self.then
        if self.block:
            await asyncio.Event().wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


def scripted_backend(stream: ScriptedStream) -> ModalBackend:
    backend = ModalBackend()
    handle = SimpleNamespace(generate=SimpleNamespace(remote_gen=SimpleNamespace(aio=lambda payload: stream)))
    backend._instances["tiny"] = handle
    return backend


STARTED = {"type": "started", "call_id": "fc-123", "variant": "tiny", "gpu_type": "L40S"}


class FakeCall:
    cancelled: ClassVar[list[str]] = []

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.cancel = SimpleNamespace(aio=self._cancel)

    async def _cancel(self) -> None:
        FakeCall.cancelled.append(self.call_id)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    FakeCall.cancelled = []
    monkeypatch.setattr(modal.FunctionCall, "from_id", FakeCall)
    return FakeCall.cancelled


async def test_a_cancelled_job_cancels_the_modal_function_call(calls):
    stream = ScriptedStream([STARTED, {"type": "progress", "step": 1, "total": 8}], block=True)
    progress = Progress(stop_at=1)
    task = asyncio.create_task(scripted_backend(stream).generate(job(), progress))
    await progress.reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == ["fc-123"] and stream.closed


async def test_the_result_records_the_call_id_gpu_seconds_and_cost(calls):
    result_event = {
        "type": "result",
        "png": b"png",
        "seed": 1,
        "steps": 8,
        "variant": "lightning-8",
        "width": 1024,
        "height": 1024,
        "timings": {"load_s": 20.0, "inference_s": 6.0, "encode_s": 0.5},
        "gpu_type": "L40S",
    }
    stream = ScriptedStream([STARTED, result_event])
    result = await scripted_backend(stream).generate(job(), Progress())
    assert result.backend_call_id == "fc-123" and result.gpu_type == "L40S"
    assert result.gpu_seconds == pytest.approx(26.5)
    assert result.cost_usd == pytest.approx(26.5 * 0.000542)
    assert calls == []  # a finished call is not cancelled


async def test_an_error_event_is_a_bad_request(calls):
    stream = ScriptedStream(
        [STARTED, {"type": "error", "code": "bad_request", "message": "init_image: junk"}]
    )
    with pytest.raises(BadRequest, match="rejected the request: init_image: junk"):
        await scripted_backend(stream).generate(job(), Progress())
    assert stream.closed


async def test_a_stream_without_a_result_is_transient(calls):
    with pytest.raises(Transient, match="without a result"):
        await scripted_backend(ScriptedStream([STARTED])).generate(job(), Progress())


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        (
            modal.exception.FunctionTimeoutError("Function timed out"),
            Transient,
            "past the function's timeout",
        ),
        (modal.exception.OutputExpiredError("expired"), Transient, "output expired"),
        (TimeoutError(), Transient, "timed out"),
        (
            modal.exception.InputCancellation("Input was cancelled"),
            Transient,
            "cancelled outside this worker",
        ),
        (modal.exception.ConnectionError("Could not connect"), Transient, "Modal call failed"),
        (modal.exception.InternalFailure("worker died"), Transient, "Modal call failed"),
        (modal.exception.ResourceExhaustedError("no GPUs"), Transient, "Modal call failed"),
        (modal.exception.AuthError("Token missing"), ConfigurationError, "MODAL_TOKEN_ID"),
        (modal.exception.NotFoundError("no app"), ConfigurationError, "modal deploy"),
        (modal.exception.PermissionDeniedError("no"), ConfigurationError, "may not call"),
        (modal.exception.InvalidError("bad argument"), BadRequest, "rejected the request's input"),
        (modal.exception.RequestSizeError("too big"), BadRequest, "rejected the request's input"),
        (RuntimeError("CUDA out of memory"), Transient, "the Modal generator failed.*CUDA out of memory"),
    ],
)
async def test_modal_errors_map_to_worker_errors(calls, error, expected, message):
    stream = ScriptedStream([STARTED, {"type": "progress", "step": 1, "total": 8}], then=error)
    with pytest.raises(expected, match=message) as raised:
        await scripted_backend(stream).generate(job(), Progress())
    assert raised.value.__cause__ is error
    assert stream.closed


def test_cancellation_and_interrupts_are_never_mapped():
    assert map_modal_error(asyncio.CancelledError()) is None
    assert map_modal_error(KeyboardInterrupt()) is None


def test_prices_are_looked_up_by_modal_gpu_name_or_an_alias():
    assert price_per_second(PRICES_USD_PER_SECOND_DEFAULT, "L40S") == 0.000542
    assert price_per_second({"A10G": 0.0003}, "A10") == 0.0003
    assert price_per_second({"A100": 0.0006}, "A100-80GB") == 0.0006
    assert price_per_second({"L4": 0.0002}, "T4") is None
    assert price_per_second({"L4": 0.0002}, None) is None


def test_create_backend_reads_the_settings():
    settings = SimpleNamespace(modal_app_name="tenkaigen-qwen-staging", gpu_prices={"L40S": 0.001})
    backend = create_backend(settings)
    assert backend.app_name == "tenkaigen-qwen-staging" and backend.class_name == "QwenGenerator"
    assert backend.gpu_prices["L40S"] == 0.001 and backend.gpu_prices["CPU"] > 0


# ## Without the stand-in: no token means a clear configuration error, at once


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env.update(HOME=str(tmp_path), MODAL_CONFIG_PATH=str(tmp_path / "no-such.toml"))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_without_a_modal_token_the_real_lookup_fails_as_a_configuration_error(tmp_path):
    code = (
        "import asyncio\n"
        "from worker.backends.base import GenerationRequest\n"
        "from worker.backends.modal import ModalBackend\n"
        "from worker.exceptions import ConfigurationError\n"
        "async def progress(step, total): pass\n"
        "request = GenerationRequest(job_id='j', prompt='a cat', negative_prompt='', variant='lightning-8',\n"
        "    width=1024, height=1024, steps=8, true_cfg_scale=1.0, seed=1)\n"
        "try:\n"
        "    asyncio.run(ModalBackend().generate(request, progress))\n"
        "except ConfigurationError as exc:\n"
        "    print('ConfigurationError:', exc)\n"
    )
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ConfigurationError: Modal rejected this worker's credentials" in done.stdout
    assert "MODAL_TOKEN_ID" in done.stdout


def test_importing_the_modal_backend_never_imports_torch(tmp_path):
    code = BLOCK_HEAVY_IMPORTS + (
        "import worker.backends.modal as m\nassert 'torch' not in sys.modules\nprint(m.ModalBackend.name)\n"
    )
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "modal"
