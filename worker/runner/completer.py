"""Completed: one batching writer for `queue.complete_jobs` (River's completer).

Whatever finished while the previous `complete_jobs` call was in flight goes in the next one (at most
`batch_size` per call), and each job awaits its own fenced result: True when its attempt was recorded, False when
its lease was lost (the result is dropped). A batch the database refuses is retried one job at a time, so one bad
completion cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib

from worker.queue import Completion, DatabaseUnavailable, QueueClient
from worker.runner.writes import Writes

COMPLETION_BATCH_SIZE_DEFAULT = 200


class Completer:
    """Batches `complete_jobs` calls: everything submitted while one call is in flight goes in the next."""

    def __init__(self, *, queue: QueueClient, writes: Writes,
                 batch_size: int = COMPLETION_BATCH_SIZE_DEFAULT) -> None:
        self._queue = queue
        self._writes = writes
        self._batch_size = batch_size
        self._pending: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.calls = 0

    async def submit(self, completion: Completion) -> bool:
        """True when this attempt's result was recorded; False when the lease was lost (drop the result)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((completion, future))
        self._idle.clear()
        self._wake.set()
        return await future          # the write runs in the completer task: cancelling the waiter cannot stop it

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._batch_size]
                del self._pending[: self._batch_size]
                await self._flush(batch)
            self._idle.set()

    async def _flush(self, batch: list[tuple[Completion, asyncio.Future[bool]]]) -> None:
        completions = [c for c, _ in batch]
        self.calls += 1
        try:
            done = await self._writes.write("complete_jobs", lambda: self._queue.complete_jobs(completions))
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, DatabaseUnavailable):
                for item in batch:              # isolate the one the database refuses
                    await self._flush([item])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for completion, future in batch:
            if not future.done():
                future.set_result(completion.job_id in done)

    async def wait_idle(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)
