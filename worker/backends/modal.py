"""The `modal` backend: generate on the deployed Modal app (modal_app/qwen_generator.py, contract in
modal_app/protocol.py).

For each job it picks the container pool for the job's variant (`QwenGenerator(variant=…, rank=…)` looked up by
app, class and environment, all configurable; `tiny` goes to the CPU class, `bf16` gets an A100-80GB with more
memory), then:

1. **Re-attach** when an earlier attempt of the job left a call id (a crashed or stopped worker): a call still
   queued or running is followed instead of paying for a second generation; one that finished with a result is
   used as is; one that failed, was cancelled or expired is ignored.
2. **Spawn** `run(job_id, request)` otherwise. `spawn` returns the FunctionCall id at once, even while the input
   waits for a container, and the id is recorded on the job row before anything else, so a cancel or the worker's
   deadline cancels the Modal input even during a cold start (`FunctionCall.from_id(id).cancel()`).
3. **Follow**: progress events come from the job's partition of the `modal.Queue` PROGRESS_QUEUE_NAME (only those
   of this call, read by modal_progress.py); the outcome is the call's return value (`FunctionCall.get`).

When the awaiting task is cancelled the call is cancelled too, unless the job is going to another worker
(shutdown, lost lease: `CallTracker.keep_running`), which re-attaches to it. Every answer carries the app's version
(`<tenkaigen version>+<pins digest>`); another version than this worker's is logged once per version and counted.
A call that Modal terminated (the app was redeployed or stopped) is `BackendRestarted` once per job: handed back
without using an attempt. Modal's own exceptions are mapped once, in `map_modal_error`, to `BadRequest` /
`Transient` / `ConfigurationError` with a message that says what happened and what to do (modal_support.py).

Requests are validated locally first (`modal_app.pipeline.PipelineRequest`, no torch), so a bad request costs no
GPU time. This module imports no torch.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import modal
import modal.exception

from modal_app import pins, protocol
from worker import installed_version
from worker.backends.base import CallTracker, GenerationRequest, GenerationResult, ProgressCallback
from worker.backends.modal_progress import ProgressReader
from worker.backends.modal_support import map_modal_error, price_per_second, request_payload
from worker.config import GPU_PRICES_USD_PER_SECOND_DEFAULT
from worker.exceptions import (
    BackendRestarted,
    BadRequest,
    ConfigurationError,
    LeaseLost,
    TenkaigenError,
    Transient,
)
from worker.logging import logger, route_library_loggers

if TYPE_CHECKING:
    from worker.config import Settings

log = logger("backends.modal")
route_library_loggers()   # `import modal` above added its own stderr handlers: route them through ours

APP_NAME_DEFAULT = "tenkaigen-qwen"
CLASS_NAME_DEFAULT = "QwenGenerator"
CPU_CLASS_NAME_DEFAULT = "QwenGeneratorCPU"
CPU_VARIANTS = frozenset({"tiny"})

# The BF16 pipeline (41 GB transformer + 17 GB text encoder) needs an 80 GB card, and it has no Nunchaku
# kernels to worry about; loading stages ~58 GB in RAM, so it asks for more container memory than the Nunchaku
# pools (modal_app/qwen_generator.py BF16_MEMORY_MIB). Everything else runs on the class's own GPU list.
VARIANT_OPTIONS_DEFAULT: dict[str, dict[str, Any]] = {"bf16": {"gpu": "A100-80GB", "memory": 64 * 1024}}

CANCEL_TIMEOUT_S = 10.0
PENDING = object()         # re-attach: the previous call is still queued or running


class ModalBackend:
    """Spawns generations on the deployed Modal app and follows them (see the module docstring)."""

    name = "modal"
    tracks_calls = True

    def __init__(
        self,
        *,
        app_name: str = APP_NAME_DEFAULT,
        class_name: str = CLASS_NAME_DEFAULT,
        cpu_class_name: str = CPU_CLASS_NAME_DEFAULT,
        environment_name: str | None = None,
        gpu_prices: Mapping[str, float] | None = None,
        rank: int = pins.NUNCHAKU_DEFAULT_RANK,
        variant_options: Mapping[str, Mapping[str, Any]] | None = None,
        progress_queue_name: str = protocol.PROGRESS_QUEUE_NAME,
    ) -> None:
        self.app_name = app_name
        self.class_name = class_name
        self.cpu_class_name = cpu_class_name
        self.environment_name = environment_name
        self.gpu_prices = dict(GPU_PRICES_USD_PER_SECOND_DEFAULT if gpu_prices is None else gpu_prices)
        self.rank = rank
        self.variant_options = {k: dict(v) for k, v in (VARIANT_OPTIONS_DEFAULT if variant_options is None
                                                         else variant_options).items()}
        self.progress_queue_name = progress_queue_name
        self.version = protocol.app_version(installed_version())
        self._instances: dict[str, Any] = {}
        self._progress = ProgressReader(progress_queue_name, environment_name)
        self._versions_warned: set[str] = set()
        self._restarted_jobs: set[str] = set()

    def _instance(self, variant: str) -> Any:
        """The (lazy) handle on the container pool of a variant; no network until the first call."""
        if variant not in self._instances:
            class_name = self.cpu_class_name if variant in CPU_VARIANTS else self.class_name
            cls = modal.Cls.from_name(self.app_name, class_name, environment_name=self.environment_name)
            options = self.variant_options.get(variant)
            if options:
                cls = cls.with_options(**options)
            self._instances[variant] = cls(variant=variant, rank=self.rank)
        return self._instances[variant]

    async def generate(
        self, request: GenerationRequest, on_progress: ProgressCallback, *, calls: CallTracker | None = None
    ) -> GenerationResult:
        calls = calls or CallTracker()
        payload = request_payload(request)
        call: Any = None
        try:
            call, outcome = await self._reattach(request.job_id, calls.previous_call_id)
            if call is None:
                call = await self._instance(request.variant).run.spawn.aio(request.job_id, payload)
                if not await calls.record(call.object_id):
                    await self._cancel_call(call.object_id)
                    raise LeaseLost("lease lost as the Modal call started; the call was cancelled")
                log.info("spawned Modal call %s", call.object_id,
                         extra={"action": "spawn_modal_call", "job_id": request.job_id})
            if outcome is PENDING or outcome is None:
                outcome = await self._follow(call, request.job_id, on_progress)
        except asyncio.CancelledError:
            if call is not None and not calls.keep_running():
                await self._cancel_call(call.object_id)
            raise
        except TenkaigenError:
            raise
        except BaseException as exc:   # InputCancellation is a BaseException; interrupts map to None and propagate
            mapped = self.map_error(exc, job_id=request.job_id)
            if mapped is None:
                raise
            raise mapped from exc
        return self.to_result(self._checked(outcome, calls), call.object_id)

    async def _reattach(self, job_id: str, previous: str | None) -> tuple[Any, Any]:
        """(call, outcome) for an earlier attempt's call worth keeping: still running (PENDING) or finished with a
        result; (None, None) when there is none, or it failed, was cancelled or expired (generate anew)."""
        if not previous:
            return None, None
        call = modal.FunctionCall.from_id(previous)
        extra = {"action": "reattach_modal_call", "job_id": job_id}
        try:
            outcome = await call.get.aio(timeout=0)
        except builtins.TimeoutError:          # Modal's "no output yet": queued, starting or running
            log.info("re-attaching to Modal call %s, still running", previous, extra=extra)
            return call, PENDING
        except Exception as exc:               # cancelled, terminated, failed, expired, unknown id: start anew
            log.info("previous Modal call %s cannot be reused (%s: %s); spawning a new one", previous,
                     type(exc).__name__, exc, extra=extra)
            return None, None
        if isinstance(outcome, Mapping) and outcome.get("type") == "result":
            log.info("previous Modal call %s already finished; using its result", previous, extra=extra)
            return call, outcome
        return None, None

    async def _follow(self, call: Any, job_id: str, on_progress: ProgressCallback) -> Any:
        """Await the call's outcome while forwarding its progress events."""
        getter = asyncio.ensure_future(call.get.aio(timeout=None))
        follower = asyncio.ensure_future(self._progress.forward(
            call.object_id, job_id, on_progress, lambda version: self._compare_version(version, job_id)))
        try:
            done, _ = await asyncio.wait({getter, follower}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                return getter.result()
            follower.result()                  # progress failed: raise its error
            return await getter
        finally:
            for task in (getter, follower):
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(getter, follower, return_exceptions=True)

    def _compare_version(self, app_version: Any, job_id: str) -> bool:
        """True when the app reports another version than this worker's; warns once per app version."""
        if app_version == self.version:
            return False
        shown = str(app_version or "unknown (an app deployed before the version handshake)")
        if shown not in self._versions_warned:
            self._versions_warned.add(shown)
            log.warning("the Modal app %r runs version %s, this worker %s: redeploy the app (modal deploy "
                        "modal_app/qwen_generator.py) or the worker so that both run the same release", self.app_name,
                        shown, self.version, extra={"action": "version_handshake", "job_id": job_id})
        return True

    def _checked(self, outcome: Any, calls: CallTracker) -> Mapping[str, Any]:
        """The outcome as a result event, or the worker error it stands for."""
        if not isinstance(outcome, Mapping):
            raise Transient(f"the Modal app answered {type(outcome).__name__}, not a result; is it an older "
                            "deployment? Redeploy modal_app/qwen_generator.py")
        job_id = str(outcome.get("job_id") or "")
        if self._compare_version(outcome.get("app_version"), job_id):
            calls.on_version_mismatch(str(outcome.get("app_version") or "unknown"))
        kind = outcome.get("type")
        if kind == "result":
            return outcome
        message = outcome.get("message")
        if kind == "error" and outcome.get("code") == protocol.ERROR_BAD_REQUEST:
            raise BadRequest(f"the Modal generator rejected the request: {message}")
        if kind == "error" and outcome.get("code") == protocol.ERROR_UNSUPPORTED_ENVIRONMENT:
            raise ConfigurationError(f"the Modal app {self.app_name!r} cannot run this variant: {message}")
        raise Transient(f"the Modal generator finished without a result ({kind}: {message}); retrying")

    async def _cancel_call(self, call_id: str | None) -> None:
        """Cancel the remote input, wherever it is: queued, starting (cold start) or denoising (the container then
        raises InputCancellation and stops after the current step)."""
        if not call_id:
            return
        try:
            call = modal.FunctionCall.from_id(call_id)
            await asyncio.wait_for(call.cancel.aio(), CANCEL_TIMEOUT_S)
            log.info("cancelled Modal call %s", call_id, extra={"action": "cancel_modal_call"})
        except Exception as exc:  # best effort: the call's own timeout still bounds it
            log.warning(
                "could not cancel Modal call %s: %s", call_id, exc, extra={"action": "cancel_modal_call"}
            )

    def to_result(self, event: Mapping[str, Any], call_id: str | None) -> GenerationResult:
        timings = {key: float(value) for key, value in (event.get("timings") or {}).items()}
        gpu_type = event.get("gpu_type")
        seconds = sum(timings.get(key, 0.0) for key in ("load_s", "inference_s", "encode_s"))
        price = price_per_second(self.gpu_prices, gpu_type)
        return GenerationResult(
            png=event["png"],
            width=int(event["width"]),
            height=int(event["height"]),
            seed=int(event["seed"]),
            steps=int(event["steps"]),
            variant=str(event["variant"]),
            backend=self.name,
            backend_call_id=call_id,
            gpu_type=gpu_type,
            gpu_seconds=None if gpu_type in (None, "CPU") else seconds,
            cost_usd=None if price is None else round(seconds * price, 8),
            timings=timings,
        )

    def map_error(self, exc: BaseException, *, job_id: str | None = None) -> TenkaigenError | None:
        where = f"Modal app {self.app_name!r} (class {self.class_name!r}, environment {self.environment_name or 'default'})"
        mapped = map_modal_error(exc, where=where)
        if isinstance(mapped, BackendRestarted) and job_id is not None:
            if job_id in self._restarted_jobs:   # once per job: a second time is no redeploy, retry with backoff
                return Transient(f"the Modal call was terminated again ({type(exc).__name__}: {exc})")
            self._restarted_jobs.add(job_id)
        return mapped

    async def aclose(self) -> None:
        self._instances.clear()
        self._progress.reset()


def create_backend(settings: Settings) -> ModalBackend:
    return ModalBackend(
        app_name=getattr(settings, "modal_app_name", APP_NAME_DEFAULT),
        class_name=getattr(settings, "modal_class_name", CLASS_NAME_DEFAULT),
        cpu_class_name=getattr(settings, "modal_cpu_class_name", CPU_CLASS_NAME_DEFAULT),
        environment_name=getattr(settings, "modal_environment", None),
        gpu_prices={**GPU_PRICES_USD_PER_SECOND_DEFAULT, **getattr(settings, "gpu_prices", {})},
        rank=getattr(settings, "nunchaku_rank", pins.NUNCHAKU_DEFAULT_RANK),
        progress_queue_name=getattr(settings, "modal_progress_queue", protocol.PROGRESS_QUEUE_NAME),
    )
