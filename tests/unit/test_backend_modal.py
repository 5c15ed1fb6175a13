"""worker.backends.modal at the Modal SDK boundary: spawn, record, follow, cancel, re-attach, version handshake.

Two kinds of stand-ins (tests/unit/modal_fakes.py), shaped like Modal's documented API:
- through the real class: `modal.Cls.from_name` returns a class whose `run.spawn.aio(...)` runs
  `QwenGenerator(...).run.local(...)` in a thread (arguments and outcome pickled as Modal does), progress goes
  through a fake `modal.Queue`, and cancelling raises an InputCancellation-like exception in that thread;
- scripted calls: `FunctionCall`s that stay queued (a cold start), finish, or fail as a test says.
Everything else (spawn, recording the call id, progress, cancellation, re-attach, costing, error mapping) is the
backend's own code. No Modal token, no network.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import modal
import modal.exception
import pytest

from modal_app import pipeline, progress_channel, protocol, qwen_generator
from tests.unit.conftest_pipeline import (
    BLOCK_HEAVY_IMPORTS,
    MODAL_LOCAL_WARNING,
    init_png,
    png_size,
    png_text,
    spy_on_denoising,
    tiny_request,
)
from tests.unit.modal_fakes import FakeFunctionCall, FakeQueue, Lookup, Registry, ScriptedCls
from worker import installed_version
from worker.backends.base import Backend, CallTracker, GenerationRequest
from worker.backends.modal import (
    ModalBackend,
    create_backend,
    map_modal_error,
    price_per_second,
)
from worker.config import GPU_PRICES_USD_PER_SECOND_DEFAULT
from worker.exceptions import BackendRestarted, BadRequest, ConfigurationError, LeaseLost, Transient

pytestmark = pytest.mark.filterwarnings(MODAL_LOCAL_WARNING)

ROOT = Path(__file__).resolve().parents[2]
JOB_ID = "0b6f8a52-3f4e-4c1a-9d55-1f2e3d4c5b6a"


def job(**overrides: Any) -> GenerationRequest:
    return GenerationRequest(**{**tiny_request(job_id=JOB_ID), **overrides})


class Progress:
    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.stop_at = stop_at
        self.reached = asyncio.Event()

    async def __call__(self, step: int, total: int) -> None:
        self.calls.append((step, total))
        if step == self.stop_at:
            self.reached.set()


class Tracker:
    """The runner's side of a call-tracking backend: what was recorded, mismatches counted, keep_running."""

    def __init__(self, previous: str | None = None, *, lease_held: bool = True, keep: bool = False) -> None:
        self.recorded: list[str] = []
        self.mismatches: list[str] = []
        self.recorded_event = asyncio.Event()
        self.lease_held, self.keep = lease_held, keep
        self.calls = CallTracker(previous_call_id=previous, record=self._record, keep_running=lambda: self.keep,
                                 on_version_mismatch=self.mismatches.append)

    async def _record(self, call_id: str) -> bool:
        self.recorded.append(call_id)
        self.recorded_event.set()
        return self.lease_held


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    fake = Registry()
    monkeypatch.setattr(modal.FunctionCall, "from_id", fake.from_id)
    return fake


@pytest.fixture
def progress_queue(monkeypatch: pytest.MonkeyPatch) -> FakeQueue:
    """One named Queue shared by the "container" (LOCAL_PROGRESS) and the worker (modal.Queue.from_name)."""
    fake = FakeQueue()
    names: list[tuple[str, str | None]] = []

    def from_name(name: str, *, environment_name: str | None = None, create_if_missing: bool = False,
                  **_: Any) -> FakeQueue:
        names.append((name, environment_name))
        return fake

    monkeypatch.setattr(progress_channel, "LOCAL_PROGRESS", fake)
    monkeypatch.setattr(modal.Queue, "from_name", from_name)
    fake.names = names  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def lookup(monkeypatch: pytest.MonkeyPatch, registry: Registry, progress_queue: FakeQueue) -> Lookup:
    fake = Lookup(qwen_generator.app, qwen_generator, registry)
    monkeypatch.setattr(modal.Cls, "from_name", fake)
    return fake


# ## Through the real class


async def test_a_job_is_spawned_its_call_recorded_at_once_followed_and_costed(lookup, progress_queue):
    backend = ModalBackend(environment_name="test-env")
    assert isinstance(backend, Backend) and backend.name == "modal" and backend.tracks_calls
    tracker, progress = Tracker(), Progress()
    result = await backend.generate(job(steps=4, width=96, height=64, seed=77), progress, calls=tracker.calls)
    assert tracker.recorded == ["fc-local-1"] and result.backend_call_id == "fc-local-1"
    assert progress.calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert lookup.calls == [("tenkaigen-qwen", "QwenGeneratorCPU", "test-env")]
    assert lookup.params == [{"variant": "tiny", "rank": 32}]
    assert progress_queue.names == [(protocol.PROGRESS_QUEUE_NAME, "test-env")]
    assert set(progress_queue.ttls) == {protocol.PROGRESS_PARTITION_TTL_S}
    assert (result.backend, result.variant, result.width, result.height, result.seed, result.steps) == (
        "modal", "tiny", 96, 64, 77, 4)
    assert png_size(result.png) == (96, 64) and png_text(result.png)["seed"] == "77"
    assert result.gpu_type == "CPU" and result.gpu_seconds is None
    seconds = sum(result.timings.values())
    assert result.cost_usd == pytest.approx(seconds * GPU_PRICES_USD_PER_SECOND_DEFAULT["CPU"], abs=1e-8)
    assert tracker.mismatches == []  # the app and the worker run the same release and pins

    again = await backend.generate(job(steps=2), Progress(), calls=Tracker().calls)  # the same warm pool
    assert len(lookup.calls) == 1 and again.timings["load_s"] == 0.0


async def test_an_init_image_travels_to_the_generator(lookup):
    progress = Progress()
    result = await ModalBackend().generate(job(init_image=init_png(), steps=3), progress)
    assert progress.calls == [(1, 3), (2, 3), (3, 3)]
    assert png_text(result.png)["init_image"] == "yes"


async def test_cancelling_the_job_cancels_the_modal_input_and_the_container_stops_denoising(
    lookup, registry, monkeypatch
):
    backend = ModalBackend()
    progress = Progress(stop_at=2)
    with spy_on_denoising(monkeypatch) as spy:
        task = asyncio.create_task(backend.generate(job(steps=40), progress, calls=Tracker().calls))
        await progress.reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        call = lookup.spawned[0]
        await asyncio.wait_for(call.finished.wait(), 30)   # the "container" stopped its input
    assert registry.cancelled == ["fc-local-1"]
    assert spy.outcomes == ["cancelled"] and len(spy.steps) < 10
    assert (await backend.generate(job(steps=2), Progress())).steps == 2  # the container serves the next input


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
    tracker = Tracker()
    with pytest.raises(BadRequest, match=message):
        await ModalBackend().generate(job(**overrides), Progress(), calls=tracker.calls)
    assert lookup.calls == [] and tracker.recorded == []  # no container was started for it


def test_gpu_variants_go_to_the_gpu_class_and_bf16_asks_for_an_80gb_card_with_more_memory(lookup):
    backend = ModalBackend(rank=128)
    backend._instance("lightning-8")
    backend._instance("bf16")
    assert [call[1] for call in lookup.calls] == ["QwenGenerator", "QwenGenerator"]
    assert lookup.options == [{"gpu": "A100-80GB", "memory": qwen_generator.BF16_MEMORY_MIB}]
    assert lookup.params == [{"variant": "lightning-8", "rank": 128}, {"variant": "bf16", "rank": 128}]


async def test_an_app_that_is_not_deployed_is_a_configuration_error(lookup):
    with pytest.raises(ConfigurationError, match=r"modal deploy modal_app/qwen_generator\.py"):
        await ModalBackend(app_name="tenkaigen-qwen-typo").generate(job(), Progress())


async def test_a_model_that_cannot_load_in_the_container_is_a_configuration_error_not_a_crash_loop(
    lookup, monkeypatch
):
    def broken(variant: str, **_: Any) -> Any:
        raise pipeline.UnsupportedEnvironment("Nunchaku has no kernels for this GPU (NVIDIA H100, sm_90)")

    monkeypatch.setattr(pipeline, "load_pipeline", broken)
    with pytest.raises(ConfigurationError, match=r"cannot run this variant: .*no kernels for this GPU"):
        await ModalBackend().generate(job(), Progress(), calls=Tracker().calls)
    assert len(lookup.spawned) == 1 and lookup.spawned[0].error is None  # answered, not crashed


# ## Scripted calls: cold starts, re-attach after a crash, versions, redeploys


def result_outcome(call_id: str | None, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "result", "png": b"png", "seed": 1, "steps": 8, "variant": "lightning-8", "width": 1024,
        "height": 1024, "timings": {"load_s": 20.0, "inference_s": 6.0, "encode_s": 0.5}, "gpu_type": "L40S",
        "offload": "none", "call_id": call_id, "job_id": JOB_ID,
        "app_version": protocol.app_version(installed_version()), **overrides,
    }


def progress_event(call_id: str, step: int, total: int = 8) -> dict[str, Any]:
    return {"type": "progress", "step": step, "total": total, "call_id": call_id, "job_id": JOB_ID,
            "app_version": protocol.app_version(installed_version())}


def scripted(registry: Registry, calls: list[Any], **options: Any) -> tuple[ModalBackend, ScriptedCls]:
    backend = ModalBackend(**options)
    cls = ScriptedCls(registry, calls)
    backend._instances["tiny"] = cls.handle()
    return backend, cls


async def test_a_cancel_during_a_cold_start_cancels_the_queued_input(registry, progress_queue):
    cold = FakeFunctionCall("fc-cold")        # queued: no container yet, no event, no output
    backend, cls = scripted(registry, [cold])
    tracker = Tracker()
    task = asyncio.create_task(backend.generate(job(), Progress(), calls=tracker.calls))
    await asyncio.wait_for(tracker.recorded_event.wait(), 5)
    assert tracker.recorded == ["fc-cold"]    # the id was on the job before any container started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.cancelled == ["fc-cold"] and cold.cancelled
    assert cls.spawned == [(JOB_ID, job().to_dict())]


async def test_a_job_handed_to_another_worker_leaves_its_call_running(registry, progress_queue):
    running = FakeFunctionCall("fc-running")
    backend, _ = scripted(registry, [running])
    tracker = Tracker(keep=True)              # shutdown or a lost lease: the next owner re-attaches
    task = asyncio.create_task(backend.generate(job(), Progress(), calls=tracker.calls))
    await asyncio.wait_for(tracker.recorded_event.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.cancelled == [] and not running.cancelled


async def test_after_a_crash_the_next_attempt_reattaches_to_the_running_call_and_spawns_nothing(
    registry, progress_queue
):
    previous = registry.add(FakeFunctionCall("fc-previous"))   # still denoising for the crashed worker
    backend, cls = scripted(registry, [])
    tracker, progress = Tracker(previous="fc-previous"), Progress(stop_at=6)
    partition = protocol.partition_key(JOB_ID)
    progress_queue.put(progress_event("fc-older", 7), partition=partition)   # an earlier call's leftover
    for step in (5, 6):
        progress_queue.put(progress_event("fc-previous", step), partition=partition)
    task = asyncio.create_task(backend.generate(job(), progress, calls=tracker.calls))
    await asyncio.wait_for(progress.reached.wait(), 5)
    previous.finish(result_outcome("fc-previous"))
    result = await task
    assert cls.spawned == [] and tracker.recorded == []      # no second generation, nothing new to record
    assert previous.polls[0] == 0                            # polled first, then followed
    assert progress.calls == [(5, 8), (6, 8)]
    assert result.backend_call_id == "fc-previous" and result.gpu_seconds == pytest.approx(26.5)
    assert registry.cancelled == []


async def test_a_previous_call_that_already_finished_is_used_without_waiting(registry, progress_queue):
    registry.add(FakeFunctionCall("fc-done", outcome=result_outcome("fc-done")))
    backend, cls = scripted(registry, [])
    result = await backend.generate(job(), Progress(), calls=Tracker(previous="fc-done").calls)
    assert cls.spawned == [] and result.backend_call_id == "fc-done" and result.png == b"png"


@pytest.mark.parametrize(
    "ended",
    [
        FakeFunctionCall("fc-prev", error=modal.exception.RemoteError("Function call was terminated")),
        FakeFunctionCall("fc-prev", error=modal.exception.OutputExpiredError()),
        FakeFunctionCall("fc-prev", outcome={"type": "error", "code": "unsupported_environment", "message": "x"}),
    ],
    ids=["cancelled-or-terminated", "expired", "answered-an-error"],
)
async def test_a_previous_call_without_a_usable_result_is_replaced_by_a_new_one(registry, progress_queue, ended):
    registry.add(ended)
    backend, cls = scripted(registry, [FakeFunctionCall("fc-new", outcome=result_outcome("fc-new"))])
    tracker = Tracker(previous="fc-prev")
    result = await backend.generate(job(), Progress(), calls=tracker.calls)
    assert len(cls.spawned) == 1 and tracker.recorded == ["fc-new"] and result.backend_call_id == "fc-new"


async def test_an_unknown_previous_call_id_is_replaced_by_a_new_one(registry, progress_queue):
    backend, cls = scripted(registry, [FakeFunctionCall("fc-new", outcome=result_outcome("fc-new"))])
    result = await backend.generate(job(), Progress(), calls=Tracker(previous="fc-gone").calls)
    assert len(cls.spawned) == 1 and result.backend_call_id == "fc-new"


async def test_a_lease_lost_as_the_call_starts_cancels_it(registry, progress_queue):
    backend, _ = scripted(registry, [FakeFunctionCall("fc-orphan")])
    with pytest.raises(LeaseLost, match="lease lost"):
        await backend.generate(job(), Progress(), calls=Tracker(lease_held=False).calls)
    assert registry.cancelled == ["fc-orphan"]


async def test_another_app_version_is_logged_once_and_counted_per_call(registry, progress_queue, caplog):
    other = "0.0.9+000000000000"
    calls = [FakeFunctionCall(f"fc-{i}", outcome=result_outcome(f"fc-{i}", app_version=other)) for i in range(2)]
    backend, _ = scripted(registry, calls)
    tracker = Tracker()
    with caplog.at_level(logging.WARNING, logger="tenkaigen"):
        for _ in range(2):
            await backend.generate(job(), Progress(), calls=tracker.calls)
    assert tracker.mismatches == [other, other]
    warnings = [r for r in caplog.records if "runs version" in r.getMessage()]
    assert len(warnings) == 1 and other in warnings[0].getMessage() and backend.version in warnings[0].getMessage()


async def test_a_redeploy_during_a_call_hands_the_job_back_once_then_retries(registry, progress_queue):
    terminated = [FakeFunctionCall(f"fc-{i}", error=modal.exception.RemoteError("terminated")) for i in range(2)]
    backend, _ = scripted(registry, terminated)
    with pytest.raises(BackendRestarted, match="handed back without using an attempt"):
        await backend.generate(job(), Progress(), calls=Tracker().calls)
    with pytest.raises(Transient, match="terminated again"):
        await backend.generate(job(), Progress(), calls=Tracker().calls)


async def test_the_result_records_the_call_id_gpu_seconds_and_cost(registry, progress_queue):
    backend, _ = scripted(registry, [FakeFunctionCall("fc-123", outcome=result_outcome("fc-123"))])
    result = await backend.generate(job(), Progress())
    assert result.backend_call_id == "fc-123" and result.gpu_type == "L40S"
    assert result.gpu_seconds == pytest.approx(26.5)
    assert result.cost_usd == pytest.approx(26.5 * 0.000542)
    assert registry.cancelled == []  # a finished call is not cancelled


async def test_an_error_outcome_is_a_bad_request(registry, progress_queue):
    outcome = {"type": "error", "code": "bad_request", "message": "init_image: junk", "call_id": "fc-1",
               "job_id": JOB_ID, "app_version": protocol.app_version(installed_version())}
    backend, _ = scripted(registry, [FakeFunctionCall("fc-1", outcome=outcome)])
    with pytest.raises(BadRequest, match="rejected the request: init_image: junk"):
        await backend.generate(job(), Progress())


async def test_an_answer_that_is_no_outcome_is_transient(registry, progress_queue):
    backend, _ = scripted(registry, [FakeFunctionCall("fc-1", outcome=["not", "a", "dict"])])
    with pytest.raises(Transient, match="not a result"):
        await backend.generate(job(), Progress())


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        (modal.exception.FunctionTimeoutError("Function timed out"), Transient, "past the function's timeout"),
        (modal.exception.OutputExpiredError("expired"), Transient, "output expired"),
        (TimeoutError(), Transient, "timed out"),
        (modal.exception.InputCancellation("Input was cancelled"), BackendRestarted, "terminated outside"),
        (modal.exception.RemoteError("terminated"), BackendRestarted, "terminated outside"),
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
async def test_modal_errors_map_to_worker_errors(registry, progress_queue, error, expected, message):
    backend, _ = scripted(registry, [FakeFunctionCall("fc-1", error=error)])
    with pytest.raises(expected, match=message) as raised:
        await backend.generate(job(), Progress())
    assert raised.value.__cause__ is error
    assert registry.cancelled == []   # the call had ended; nothing left to cancel


def test_cancellation_and_interrupts_are_never_mapped():
    assert map_modal_error(asyncio.CancelledError()) is None
    assert map_modal_error(KeyboardInterrupt()) is None


def test_prices_are_looked_up_by_modal_gpu_name_or_an_alias():
    assert price_per_second(GPU_PRICES_USD_PER_SECOND_DEFAULT, "L40S") == 0.000542
    assert price_per_second({"A10G": 0.0003}, "A10") == 0.0003
    assert price_per_second({"A100": 0.0006}, "A100-80GB") == 0.0006
    assert price_per_second({"L4": 0.0002}, "T4") is None
    assert price_per_second({"L4": 0.0002}, None) is None


def test_create_backend_reads_the_settings():
    settings = SimpleNamespace(modal_app_name="tenkaigen-qwen-staging", gpu_prices={"L40S": 0.001},
                               modal_class_name="QwenGeneratorOffload", modal_progress_queue="staging-progress")
    backend = create_backend(settings)
    assert backend.app_name == "tenkaigen-qwen-staging" and backend.class_name == "QwenGeneratorOffload"
    assert backend.progress_queue_name == "staging-progress"
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


async def test_an_unreadable_progress_queue_never_fails_the_generation(registry, progress_queue, monkeypatch):
    tried = asyncio.Event()

    async def broken(*args: Any, **kwargs: Any) -> list[Any]:
        tried.set()
        raise modal.exception.ConnectionError("queue unreachable")

    monkeypatch.setattr(progress_queue.get_many, "aio", broken)
    call = FakeFunctionCall("fc-1")
    backend, _ = scripted(registry, [call])
    task = asyncio.create_task(backend.generate(job(), Progress()))
    await asyncio.wait_for(tried.wait(), 5)
    call.finish(result_outcome("fc-1"))
    assert (await task).backend_call_id == "fc-1"
