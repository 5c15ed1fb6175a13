"""Streaming adapters around `LoadedPipeline.generate`: `stream()` (a generator of progress/result events, for the
Modal method) and `agenerate()` (an awaitable for asyncio backends). Both run the blocking generation in a thread
and stop it through its cancel event when the consumer goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from modal_app.generation import LoadedPipeline, PipelineOutput
from modal_app.generation_request import PipelineRequest, negative_prompt_used
from modal_app.pipeline_errors import InvalidRequest

CANCEL_JOIN_TIMEOUT_S = 120.0  # how long stream() waits for the denoising thread after a cancel



def result_event(output: PipelineOutput, loaded: LoadedPipeline, *, load_s: float) -> dict[str, Any]:
    """The final event of a Modal generate call: the PNG, the parameters actually used, timings, hardware."""
    request = output.request
    return {
        "type": "result",
        "png": output.png,
        "seed": request.seed,
        "steps": request.steps,
        "variant": request.variant,
        "width": request.width,
        "height": request.height,
        "true_cfg_scale": request.true_cfg_scale,
        # Lightning variants run without true CFG, so a negative prompt (a style's) is not used there.
        "negative_prompt_used": negative_prompt_used(request),
        "timings": {"load_s": load_s, **output.timings},
        "gpu_type": loaded.gpu_type,
        "offload": loaded.offload,
    }


def error_event(exc: InvalidRequest) -> dict[str, Any]:
    return {"type": "error", "code": "bad_request", "message": str(exc)}


_DONE = object()


def stream(loaded: LoadedPipeline, request: PipelineRequest) -> Iterator[dict[str, Any]]:
    """Run a request in a thread; yield `{"type": "progress", "step", "total"}` per step, then the result.

    An `InvalidRequest` becomes a final `{"type": "error"}` event. Closing the generator early (GeneratorExit)
    or an exception thrown into it (Modal's InputCancellation when the call is cancelled) sets the cancel
    event, and the generator waits for the denoising thread to stop before it exits.
    """
    events: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["output"] = loaded.generate(
                request,
                on_step=lambda step, total: events.put({"type": "progress", "step": step, "total": total}),
                cancel=cancel,
            )
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            events.put(_DONE)

    load_s = loaded.take_load_s()
    thread = threading.Thread(target=work, name="qwen-generate", daemon=True)
    thread.start()
    try:
        while True:
            try:
                event = events.get(timeout=0.5)  # a timeout keeps the thread responsive to signals
            except queue.Empty:
                continue
            if event is _DONE:
                break
            yield event
        error = outcome.get("error")
        if isinstance(error, InvalidRequest):
            yield error_event(error)
            return
        if error is not None:
            raise error
        yield result_event(outcome["output"], loaded, load_s=load_s)
    finally:
        cancel.set()
        thread.join(CANCEL_JOIN_TIMEOUT_S)


async def agenerate(
    loaded: LoadedPipeline,
    request: PipelineRequest,
    on_progress: Callable[[int, int], Awaitable[None]],
) -> PipelineOutput:
    """Run a request in a worker thread and await it; progress is awaited in order on the event loop.

    Cancelling the awaiting task sets the cancel event, waits for the denoising loop to stop, and re-raises
    `CancelledError`. An exception from `on_progress` cancels the run the same way and propagates.
    """
    loop = asyncio.get_running_loop()
    steps: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    cancel = threading.Event()

    def on_step(step: int, total: int) -> None:
        loop.call_soon_threadsafe(steps.put_nowait, (step, total))

    run = asyncio.ensure_future(asyncio.to_thread(loaded.generate, request, on_step=on_step, cancel=cancel))
    getter: asyncio.Future[tuple[int, int]] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(steps.get())
            done, _pending = await asyncio.wait({run, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await on_progress(*getter.result())
                continue
            getter.cancel()
            break
        while not steps.empty():  # steps reported just before the run finished
            await on_progress(*steps.get_nowait())
        return run.result()
    except BaseException:
        cancel.set()
        if getter is not None:
            getter.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.shield(run)  # the thread cannot be killed: wait until the loop has stopped
        raise
