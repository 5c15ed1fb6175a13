"""Stand-ins for the Modal SDK objects the `modal` backend uses, shaped like Modal's documented API (modal 1.6):

- `FakeFunctionCall`: `object_id`; `get.aio(timeout)` returns the outcome, raises the builtin `TimeoutError` while
  there is none yet (`timeout=0` polls), or raises the error the call ended with; `cancel.aio()`.
- `FakeQueue`: `put(v, *, partition, partition_ttl, timeout)` (the container side, sync) and
  `get_many.aio(n, block, timeout, *, partition)` (the worker side), raising the stdlib `queue.Empty` when a
  blocking read times out.
- `FakeCls` / `Lookup`: `modal.Cls.from_name(app, name, environment_name=…)`, `.with_options(**options)`,
  `Cls(**params).run.spawn.aio(*args)`.

`LocalCalls` runs a spawned call on the real Modal class through `.local()` in a thread (no token, no network), and
its cancel does what Modal does in a container: it raises an InputCancellation-like BaseException in the thread
running the method (Modal's SIGUSR1 handler does that in the container's main thread).
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import ctypes
import itertools
import pickle
import queue
import threading
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import modal.exception


def roundtrip(value: Any) -> Any:
    """What Modal's serialisation does to arguments and results."""
    return pickle.loads(pickle.dumps(value))


class FakeInputCancellation(BaseException):
    """Raised in the "container" thread when its call is cancelled, as modal.exception.InputCancellation is."""


class FakeQueue:
    """A named modal.Queue: FIFO partitions, filled by the container, drained by the worker."""

    def __init__(self) -> None:
        self.partitions: dict[str, list[Any]] = defaultdict(list)
        self.ttls: list[int] = []
        self.lock = threading.Lock()
        self.get_many = SimpleNamespace(aio=self._get_many)

    def put(self, v: Any, block: bool = True, timeout: float | None = None, *, partition: str | None = None,
            partition_ttl: int = 24 * 3600) -> None:
        with self.lock:
            self.partitions[partition or ""].append(roundtrip(v))
            self.ttls.append(partition_ttl)

    async def _get_many(self, n_values: int, block: bool = True, timeout: float | None = None, *,  # noqa: ASYNC109 (Modal's signature)
                        partition: str | None = None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                items = self.partitions[partition or ""]
                if items or not block:
                    taken, items[:] = items[:n_values], items[n_values:]
                    return taken
            if deadline is not None and time.monotonic() >= deadline:
                raise queue.Empty
            await asyncio.sleep(0.005)


class FakeFunctionCall:
    """A spawned call: `outcome` when it has finished, `error` if it ended with one, neither while pending."""

    def __init__(self, object_id: str, *, outcome: Any = None, error: BaseException | None = None) -> None:
        self.object_id = object_id
        self.outcome, self.error = outcome, error
        self.finished = asyncio.Event() if outcome is None and error is None else None
        self.cancelled = False
        self.polls: list[float | None] = []
        self.get = SimpleNamespace(aio=self._get)
        self.cancel = SimpleNamespace(aio=self._cancel)

    def finish(self, outcome: Any = None, error: BaseException | None = None) -> None:
        self.outcome, self.error = outcome, error
        if self.finished is not None:
            self.finished.set()

    async def _get(self, timeout: float | None = None, *, index: int = 0) -> Any:  # noqa: ASYNC109 (Modal's)
        self.polls.append(timeout)
        if self.finished is not None and not self.finished.is_set():
            if timeout == 0:
                raise builtins.TimeoutError()
            try:
                await asyncio.wait_for(self.finished.wait(), timeout)
            except TimeoutError:
                raise builtins.TimeoutError() from None
        if self.error is not None:
            raise self.error
        return roundtrip(self.outcome)

    async def _cancel(self, terminate_containers: bool = False) -> None:
        self.cancelled = True


class Registry:
    """`modal.FunctionCall.from_id`: the calls Modal knows, by id; an unknown id fails as Modal's lookup does."""

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}
        self.cancelled: list[str] = []

    def add(self, call: Any) -> Any:
        self.calls[call.object_id] = call
        return call

    def from_id(self, function_call_id: str, client: Any = None) -> Any:
        call = self.calls.get(function_call_id)
        if call is None:
            return FakeFunctionCall(function_call_id, error=modal.exception.NotFoundError(
                f"Function call {function_call_id} not found"))
        original = call.cancel.aio

        async def cancel(terminate_containers: bool = False) -> None:
            self.cancelled.append(function_call_id)
            await original()

        return SimpleNamespace(object_id=call.object_id, get=call.get, cancel=SimpleNamespace(aio=cancel))


class ScriptedCls:
    """A deployed class whose `run.spawn.aio` hands out the calls a test prepared, in order."""

    def __init__(self, registry: Registry, calls: list[Any]) -> None:
        self.registry, self.pending = registry, list(calls)
        self.spawned: list[tuple[Any, ...]] = []

    def handle(self) -> Any:
        return SimpleNamespace(run=SimpleNamespace(spawn=SimpleNamespace(aio=self._spawn)))

    async def _spawn(self, *args: Any) -> Any:
        self.spawned.append(roundtrip(args))
        return self.registry.add(self.pending.pop(0))


class LocalCall(FakeFunctionCall):
    """A call of the real Modal class, run through `.local()` in its own thread."""

    def __init__(self, object_id: str, method: Any, args: tuple[Any, ...]) -> None:
        super().__init__(object_id)
        self.thread_id: int | None = None
        self.running = threading.Event()
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.loop = asyncio.get_running_loop()
        threading.Thread(target=self._work, args=(method, roundtrip(args)), daemon=True).start()

    def _work(self, method: Any, args: tuple[Any, ...]) -> None:
        self.thread_id = threading.get_ident()
        self.running.set()
        try:
            outcome = method.local(*args)
        except BaseException as exc:
            self.loop.call_soon_threadsafe(self.finish, None, exc)
        else:
            self.loop.call_soon_threadsafe(self.finish, outcome, None)

    async def _cancel(self, terminate_containers: bool = False) -> None:
        self.cancelled = True
        await asyncio.to_thread(self.running.wait)
        if self.finished is not None and not self.finished.is_set() and self.thread_id is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread_id), ctypes.py_object(FakeInputCancellation))


class Lookup:
    """`modal.Cls.from_name` for the real app's classes, spawning through `.local()`; records how it was used."""

    def __init__(self, app: Any, module: Any, registry: Registry) -> None:
        self.app, self.module, self.registry = app, module, registry
        self.calls: list[tuple[str, str, str | None]] = []
        self.options: list[dict[str, Any]] = []
        self.params: list[dict[str, Any]] = []
        self.spawned: list[LocalCall] = []
        self.ids = itertools.count(1)

    def __call__(self, app_name: str, name: str, *, environment_name: str | None = None, **_: Any) -> Any:
        self.calls.append((app_name, name, environment_name))
        if app_name != self.app.name:
            raise modal.exception.NotFoundError(f"Lookup failed for Cls '{name}' from the '{app_name}' app")
        return FakeCls(self, getattr(self.module, name))


class FakeCls:
    def __init__(self, lookup: Lookup, cls: Any) -> None:
        self.lookup, self.cls = lookup, cls

    def with_options(self, **options: Any) -> FakeCls:
        self.lookup.options.append(options)
        return self

    def __call__(self, **params: Any) -> Any:
        self.lookup.params.append(params)
        obj = self.cls(**params)
        lookup = self.lookup

        async def spawn(*args: Any) -> LocalCall:
            call = LocalCall(f"fc-local-{next(lookup.ids)}", obj.run, args)
            lookup.spawned.append(call)
            return lookup.registry.add(call)

        return SimpleNamespace(run=SimpleNamespace(spawn=SimpleNamespace(aio=spawn)))
