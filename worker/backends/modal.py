"""The `modal` backend: generate on the deployed Modal class `QwenGenerator` (modal_app/qwen_generator.py).

For each job it looks up the deployed class by name (app, class, environment: configurable), picks the container
pool for the job's variant (`QwenGenerator(variant=…, rank=…)`; `tiny` goes to the CPU class, and variants that
need bigger cards get a GPU override), and streams the generator method with `generate.remote_gen.aio(request)`:

- `started` carries the Modal function call id (recorded as backend_call_id, and used to cancel);
- each `progress` event is awaited through the job's progress callback;
- `result` carries the PNG, the parameters used, the container's timings and GPU type, from which this
  backend computes `gpu_seconds` and `cost_usd` with a per-GPU price table ($/s);
- `error` is a request the generator can never serve: `BadRequest`.

When the awaiting task is cancelled (the job was canceled) the backend cancels the remote function call, so the
container stops denoising after its current step, closes the stream, and re-raises `CancelledError`. Modal's own
exceptions are mapped once, in `map_modal_error`, to `BadRequest` / `Transient` / `ConfigurationError` with a
message that says what happened and what to do.

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

from modal_app import pins
from modal_app.pipeline import InvalidRequest, PipelineRequest, UnsupportedEnvironment
from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback
from worker.exceptions import BadRequest, ConfigurationError, TenkaigenError, Transient
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
# kernels to worry about, so it may use Hopper. Everything else runs on the class's Nunchaku GPU list.
VARIANT_GPUS_DEFAULT: dict[str, str] = {"bf16": "A100-80GB"}

# Modal's published per-second prices (https://modal.com/pricing, read 2026-10; verify there before relying on them).
# "CPU" prices the tiny variant's 2-core / 4 GiB container: 2 x $0.0000131 + 4 x $0.00000222.
PRICES_USD_PER_SECOND_DEFAULT: dict[str, float] = {
    "T4": 0.000164,
    "L4": 0.000222,
    "A10": 0.000306,
    "L40S": 0.000542,
    "A100-40GB": 0.000583,
    "A100-80GB": 0.000694,
    "RTX-PRO-6000": 0.000842,
    "H100": 0.001097,
    "H200": 0.001261,
    "B200": 0.001736,
    "CPU": 2 * 0.0000131 + 4 * 0.00000222,
}
# Other spellings of the same card in price tables (settings may use Modal's older names).
PRICE_ALIASES: dict[str, tuple[str, ...]] = {
    "A10": ("A10G",),
    "A100-40GB": ("A100",),
    "A100-80GB": ("A100",),
}

CANCEL_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 30.0


class ModalBackend:
    """Streams generations from the deployed Modal class."""

    name = "modal"

    def __init__(
        self,
        *,
        app_name: str = APP_NAME_DEFAULT,
        class_name: str = CLASS_NAME_DEFAULT,
        cpu_class_name: str = CPU_CLASS_NAME_DEFAULT,
        environment_name: str | None = None,
        gpu_prices: Mapping[str, float] | None = None,
        rank: int = pins.NUNCHAKU_DEFAULT_RANK,
        variant_gpus: Mapping[str, str] | None = None,
    ) -> None:
        self.app_name = app_name
        self.class_name = class_name
        self.cpu_class_name = cpu_class_name
        self.environment_name = environment_name
        self.gpu_prices = dict(PRICES_USD_PER_SECOND_DEFAULT if gpu_prices is None else gpu_prices)
        self.rank = rank
        self.variant_gpus = dict(VARIANT_GPUS_DEFAULT if variant_gpus is None else variant_gpus)
        self._instances: dict[str, Any] = {}

    def _instance(self, variant: str) -> Any:
        """The (lazy) handle on the container pool of a variant; no network until the first call."""
        if variant not in self._instances:
            class_name = self.cpu_class_name if variant in CPU_VARIANTS else self.class_name
            cls = modal.Cls.from_name(self.app_name, class_name, environment_name=self.environment_name)
            gpu = self.variant_gpus.get(variant)
            if gpu:
                cls = cls.with_options(gpu=gpu)
            self._instances[variant] = cls(variant=variant, rank=self.rank)
        return self._instances[variant]

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        payload = request_payload(request)
        stream: Any = None
        call_id: str | None = None
        result: dict[str, Any] | None = None
        finished = False
        try:
            stream = self._instance(request.variant).generate.remote_gen.aio(payload)
            async for event in stream:
                kind = event.get("type")
                if kind == "started":
                    call_id = event.get("call_id")
                elif kind == "progress":
                    await on_progress(int(event["step"]), int(event["total"]))
                elif kind == "error":
                    finished = True
                    raise BadRequest(f"the Modal generator rejected the request: {event.get('message')}")
                elif kind == "result":
                    result = event
            finished = True
        except (TenkaigenError, asyncio.CancelledError):
            raise
        except BaseException as exc:
            mapped = self.map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if not finished:
                await self._cancel_call(call_id)
            if stream is not None:
                await _close(stream)
        if result is None:
            raise Transient("the Modal generator finished without a result; the job will be retried")
        return self.to_result(result, call_id)

    async def _cancel_call(self, call_id: str | None) -> None:
        """Cancel the remote input so its container stops denoising (it raises InputCancellation there)."""
        if not call_id:
            return
        try:
            call = modal.FunctionCall.from_id(call_id)
            await asyncio.wait_for(call.cancel.aio(), CANCEL_TIMEOUT_S)
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

    def map_error(self, exc: BaseException) -> TenkaigenError | None:
        return map_modal_error(
            exc, app_name=self.app_name, class_name=self.class_name, environment_name=self.environment_name
        )

    async def aclose(self) -> None:
        self._instances.clear()


def request_payload(request: GenerationRequest) -> dict[str, Any]:
    """The dict the Modal method receives, validated here first so a bad request never reaches a GPU."""
    payload = request.to_dict()
    try:
        PipelineRequest.from_dict(payload)
    except InvalidRequest as exc:
        raise BadRequest(str(exc)) from exc
    return payload


def price_per_second(prices: Mapping[str, float], gpu_type: str | None) -> float | None:
    if gpu_type is None:
        return None
    for name in (gpu_type, *PRICE_ALIASES.get(gpu_type, ())):
        if name in prices:
            return float(prices[name])
    return None


def map_modal_error(
    exc: BaseException,
    *,
    app_name: str = APP_NAME_DEFAULT,
    class_name: str = CLASS_NAME_DEFAULT,
    environment_name: str | None = None,
) -> TenkaigenError | None:
    """The worker error for an exception raised by a Modal call, or None to let it propagate unchanged."""
    me = modal.exception
    where = f"Modal app {app_name!r} (class {class_name!r}, environment {environment_name or 'default'})"
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit | GeneratorExit):
        return None
    if isinstance(exc, TenkaigenError):
        return exc
    if isinstance(exc, InvalidRequest):
        return BadRequest(str(exc))
    if isinstance(exc, UnsupportedEnvironment):
        return ConfigurationError(f"{where} cannot run this variant: {exc}")
    if isinstance(exc, me.OutputExpiredError):
        return Transient(f"the Modal call's output expired before it was read ({detail}); regenerating")
    if isinstance(exc, me.FunctionTimeoutError):
        return Transient(f"the Modal call ran past the function's timeout ({detail})")
    if isinstance(exc, me.TimeoutError | builtins.TimeoutError):
        return Transient(f"timed out waiting for Modal ({detail})")
    if isinstance(exc, me.InputCancellation):
        return Transient(
            f"the Modal call was cancelled outside this worker, e.g. by a redeploy or app stop ({detail})"
        )
    if isinstance(exc, me.AuthError):
        return ConfigurationError(
            f"Modal rejected this worker's credentials ({detail}); set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET "
            "(modal token new) for the workspace that deployed the app"
        )
    if isinstance(exc, me.NotFoundError):
        return ConfigurationError(
            f"{where} was not found ({detail}); deploy it with `modal deploy modal_app/qwen_generator.py` "
            "or fix the app/class/environment settings"
        )
    if isinstance(exc, me.PermissionDeniedError):
        return ConfigurationError(f"this Modal token may not call {where} ({detail})")
    if isinstance(exc, me.VersionError):
        return ConfigurationError(f"the installed modal client is not supported by Modal any more ({detail})")
    if isinstance(exc, me.InvalidError | me.RequestSizeError | me.SerializationError):
        return BadRequest(f"Modal rejected the request's input ({detail})")
    if isinstance(exc, me.Error | builtins.ConnectionError | OSError):
        return Transient(f"Modal call failed ({detail})")
    if isinstance(exc, Exception):  # an exception raised by the generator in the container
        return Transient(f"the Modal generator failed ({detail})")
    return None


async def _close(stream: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(stream.aclose(), CLOSE_TIMEOUT_S)


def create_backend(settings: Settings) -> ModalBackend:
    return ModalBackend(
        app_name=getattr(settings, "modal_app_name", APP_NAME_DEFAULT),
        class_name=getattr(settings, "modal_class_name", CLASS_NAME_DEFAULT),
        cpu_class_name=getattr(settings, "modal_cpu_class_name", CPU_CLASS_NAME_DEFAULT),
        environment_name=getattr(settings, "modal_environment", None),
        gpu_prices={**PRICES_USD_PER_SECOND_DEFAULT, **getattr(settings, "gpu_prices", {})},
        rank=getattr(settings, "nunchaku_rank", pins.NUNCHAKU_DEFAULT_RANK),
    )
