"""What the `modal` backend (worker/backends/modal.py) needs besides the Modal calls themselves: the one mapping of
Modal's exceptions to the worker's errors, the price lookup by GPU name, and the request payload, validated locally
(no torch) so a bad request never reaches a GPU."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Mapping
from typing import Any

import modal.exception

from modal_app.pipeline import InvalidRequest, PipelineRequest, UnsupportedEnvironment
from worker.backends.base import GenerationRequest
from worker.exceptions import BackendRestarted, BadRequest, ConfigurationError, TenkaigenError, Transient

# Prices: worker/config.py GPU_PRICES_USD_PER_SECOND_DEFAULT (the one table), overridden by TENKAIGEN_GPU_PRICES.
# Other spellings of the same card in price tables (settings may use Modal's older names).
PRICE_ALIASES: dict[str, tuple[str, ...]] = {
    "A10": ("A10G",),
    "A100-40GB": ("A100",),
    "A100-80GB": ("A100",),
}


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
    where: str = "the Modal app",
) -> TenkaigenError | None:
    """The worker error for an exception raised by a Modal call, or None to let it propagate unchanged. `where`
    names the deployed app, class and environment in the messages that ask the operator to fix them."""
    me = modal.exception
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
    if isinstance(exc, me.InputCancellation | me.RemoteError):
        # a call Modal terminated without an exception of the function's own (GENERIC_STATUS_TERMINATED): the
        # app was redeployed or stopped, or the call was cancelled outside this worker
        return BackendRestarted(
            f"the Modal call was terminated outside this worker, e.g. by a redeploy or `modal app stop` ({detail}); "
            "the job is handed back without using an attempt"
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
