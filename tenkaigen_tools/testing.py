"""Test doubles for the worker's edges: a fault-injecting backend and storage. Only the backend and storage are
ever doubled; the queue is always the real SQL on a real PostgreSQL.

`FaultInjectingBackend` reads directives from the prompt, so a test (or a worker process) can script each job:

    "a cat [sleep=2.5]"          generate for 2.5 s (progress once per step), cancellable at any point
    "a cat [transient=2]"        raise Transient on the first 2 calls for this job, then succeed
    "a cat [bad_request]"        raise BadRequest (a permanent error) every time
    "a cat [crash=1]"            raise RuntimeError (an unexpected error) on the first call

It records every call, cancellation and completion so tests can assert on them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback
from worker.exceptions import BadRequest, Transient
from worker.results import blank_png
from worker.storage.base import RESULTS_BUCKET, StoredObject

DIRECTIVE = re.compile(r"\[(?P<name>[a-z_]+)(?:=(?P<value>[0-9.]+))?\]")


def directives(prompt: str) -> dict[str, float | None]:
    """`[name=value]` / `[name]` markers in a prompt."""
    return {m["name"]: float(m["value"]) if m["value"] else None for m in DIRECTIVE.finditer(prompt)}


@dataclass
class FaultInjectingBackend:
    """A scripted test double of the Backend protocol (see the module docstring)."""

    name: str = "fault-injecting-test-double"
    calls: Counter[str] = field(default_factory=Counter)
    cancelled: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    started: dict[str, asyncio.Event] = field(default_factory=dict)
    gpu_type: str | None = None
    gpu_seconds: float | None = None

    def started_event(self, job_id: str) -> asyncio.Event:
        return self.started.setdefault(job_id, asyncio.Event())

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        self.calls[request.job_id] += 1
        call = self.calls[request.job_id]
        self.started_event(request.job_id).set()
        script = directives(request.prompt)
        if "bad_request" in script:
            raise BadRequest("prompt: the test backend refuses this request")
        if "transient" in script and call <= int(script["transient"] or 1):
            raise Transient(f"test backend busy (call {call})")
        if "crash" in script and call <= int(script["crash"] or 1):
            raise RuntimeError(f"test backend crashed (call {call})")
        total = max(1, request.steps)
        duration = script.get("sleep") or 0.0
        try:
            for step in range(1, total + 1):
                if duration:
                    await asyncio.sleep(duration / total)
                await on_progress(step, total)
        except asyncio.CancelledError:
            self.cancelled.append(request.job_id)
            raise
        self.finished.append(request.job_id)
        return GenerationResult(
            png=blank_png(request.width, request.height), width=request.width, height=request.height,
            seed=request.seed, steps=total, variant=request.variant, backend=self.name,
            backend_call_id=f"call-{request.job_id}-{call}", gpu_type=self.gpu_type, gpu_seconds=self.gpu_seconds)

    async def aclose(self) -> None:
        return None


@dataclass
class FaultInjectingStorage:
    """A storage test double: keeps objects in memory, fails the first `fail_uploads` uploads with Transient."""

    name: str = "fault-injecting-storage"
    fail_uploads: int = 0
    objects: dict[str, bytes] = field(default_factory=dict)
    uploads: int = 0
    inputs: dict[str, bytes] = field(default_factory=dict)
    upload_times: list[float] = field(default_factory=list)

    async def check(self) -> None:
        return None

    async def upload_result(self, key: str, png: bytes) -> StoredObject:
        self.uploads += 1
        self.upload_times.append(time.monotonic())
        if self.uploads <= self.fail_uploads:
            raise Transient(f"storage unavailable (upload {self.uploads})")
        self.objects[key] = png
        return StoredObject(RESULTS_BUCKET, key, len(png))

    async def download_input(self, path: str) -> bytes:
        try:
            return self.inputs[path]
        except KeyError:
            raise BadRequest(f"init_image_path: no object {path} in bucket generation-inputs") from None

    async def delete_results(self, keys: Sequence[str]) -> int:
        for key in keys:
            self.objects.pop(key, None)
        return len(keys)

    async def aclose(self) -> None:
        return None
