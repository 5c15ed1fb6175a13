"""Writes that must not be lost: a queue call retried while the database is unreachable, and final writes
(complete, fail, acknowledge_cancel, release) run under `asyncio.shield` so a cancellation cannot interrupt them.

A job that finishes during a database restart is still recorded once the database is back, as long as that
happens within `final_write_deadline` (then its lease has long expired and the reaper has it anyway).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from worker.logging import logger
from worker.metrics import Metrics
from worker.probes import Health
from worker.queue import DatabaseUnavailable

FINAL_WRITE_DEADLINE_DEFAULT = 600.0
"""How long a final write is retried while the database is unreachable (then the lease has long expired)."""
RETRY_DELAY_MIN = 0.05
RETRY_DELAY_MAX = 2.0

log = logger("runner")
T = TypeVar("T")


class Writes:
    """Retries queue calls on `DatabaseUnavailable`, counting each failure in `tenkaigen_db_errors_total`."""

    def __init__(self, *, metrics: Metrics, health: Health,
                 final_write_deadline: float = FINAL_WRITE_DEADLINE_DEFAULT) -> None:
        self.metrics = metrics
        self.health = health
        self.final_write_deadline = final_write_deadline

    async def write(self, action: str, call: Callable[[], Awaitable[T]], *, deadline: float | None = None) -> T:
        """Run a queue call, retrying while the database is unreachable (up to `deadline` seconds)."""
        limit = self.final_write_deadline if deadline is None else deadline
        started = time.monotonic()
        delay = RETRY_DELAY_MIN
        attempt = 0
        while True:
            try:
                result = await call()
            except DatabaseUnavailable as exc:
                attempt += 1
                self.metrics.db_errors.labels(action).inc()
                if time.monotonic() - started + delay > limit:
                    log.error("%s gave up after %.0f s: %s", action, time.monotonic() - started, exc,
                              extra={"action": action})
                    raise
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("%s failed (%s); retrying", action, exc, extra={"action": action, "count": attempt})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_DELAY_MAX)
                continue
            self.health.db_ok()
            return result

    async def final(self, action: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """A final write that a cancellation cannot interrupt; None if the database stayed unreachable."""
        try:
            return await asyncio.shield(self.write(action, call))
        except DatabaseUnavailable:
            return None
