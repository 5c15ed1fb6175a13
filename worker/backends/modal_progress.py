"""Progress of a Modal generation: the job's partition of the named `modal.Queue` (modal_app/protocol.py).

The container puts a `started` event (with the app's version) and one `progress` event per denoising step into the
partition of its job id; `ProgressReader.forward` reads them in batches and passes on those of one call (events an
earlier call of the same job left behind are skipped). Progress is best effort: the outcome comes from the call
itself, so an unreadable queue is retried with backoff and never fails the generation.
"""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
from collections.abc import Callable, Mapping
from typing import Any

import modal

from modal_app import protocol
from worker.backends.base import ProgressCallback
from worker.logging import logger

PROGRESS_WAIT_S = 30.0     # one blocking Queue read; an empty read just starts the next one
PROGRESS_BATCH = 64
PROGRESS_RETRY_MAX_S = 10.0

log = logger("backends.modal")


class ProgressReader:
    """Reads one named progress queue (looked up lazily: no network until the first generation)."""

    def __init__(self, queue_name: str, environment_name: str | None) -> None:
        self.queue_name = queue_name
        self.environment_name = environment_name
        self._queue: Any = None

    def _handle(self) -> Any:
        if self._queue is None:
            self._queue = modal.Queue.from_name(
                self.queue_name, environment_name=self.environment_name, create_if_missing=True)
        return self._queue

    def reset(self) -> None:
        self._queue = None

    async def forward(self, call_id: str, job_id: str, on_progress: ProgressCallback,
                      on_started: Callable[[Any], object]) -> None:
        """Forward the call's progress events until cancelled; `on_started(app_version)` for its `started` event."""
        partition = protocol.partition_key(job_id)
        progress_queue = self._handle()
        failures = 0
        while True:
            try:
                events = await progress_queue.get_many.aio(
                    PROGRESS_BATCH, block=True, timeout=PROGRESS_WAIT_S, partition=partition)
            except stdlib_queue.Empty:
                continue
            except Exception as exc:           # progress is best effort: the outcome comes from the call itself
                failures += 1
                if failures == 1:
                    log.warning("cannot read progress of Modal call %s: %s", call_id, exc,
                                extra={"action": "modal_progress", "job_id": job_id})
                await asyncio.sleep(min(PROGRESS_RETRY_MAX_S, 0.5 * 2 ** min(failures, 6)))
                continue
            failures = 0
            for event in events:
                if not isinstance(event, Mapping) or event.get("call_id") not in (call_id, None):
                    continue                    # left behind by an earlier call of the same job
                if event.get("type") == "started":
                    on_started(event.get("app_version"))
                elif event.get("type") == "progress":
                    await on_progress(int(event["step"]), int(event["total"]))
