"""The `chaos` backend: a fault-injecting TEST DOUBLE for the chaos runs (`scripts/chaos`). Never use it to serve
users. It is registered like the others (`TENKAIGEN_BACKEND=chaos`) only so that the harness can start plain
`python -m worker worker` processes.

It renders exactly what the `placeholder` backend renders for the same request (so a stored image can be checked
against its own job row by rendering again), and adds, driven by the prompt and the environment:

- random latency per call: `TENKAIGEN_CHAOS_LATENCY="min,max"` seconds, uniform, spread over the steps
  (seeded by `TENKAIGEN_CHAOS_SEED` and the process id);
- directives in the prompt (the same `[name=value]` syntax as `tenkaigen_tools.testing`), counted per job ACROSS worker
  processes when `TENKAIGEN_CHAOS_STATE_DIR` names a directory they share (one marker file per call, created
  with O_EXCL), so a job retried on another worker still sees its own history:

      [transient=N]   the job's first N calls raise Transient (backend busy)
      [timeout=N]     the first N calls hang until the backend's own call deadline
                      (`TENKAIGEN_CHAOS_TIMEOUT_SECONDS`, default 2), then raise Transient, as a Modal call
                      past its function timeout does
      [crash=N]       the first N calls raise RuntimeError (an unexpected error: retried as internal_error)
      [permanent=K]   every call raises BadRequest("prompt: permanent fault #K injected by the chaos backend")
      [block=S]       the job's first call blocks the worker's whole event loop for S seconds once its image is
                      rendered (a stalled worker: GC pause, CPU-bound code on the loop, a frozen VM). The lease is
                      not renewed meanwhile, so it expires while the worker is "still generating"
      [hang=N]        the first N calls never return (no deadline): only a cancel or a lost lease stops them
      [sleep=S]       generation takes S more seconds
      [slow_first=S]  the job's first call takes S more seconds (later calls are fast)

- with a state directory, a marker `<job_id>.<call>.generated` is written when a call returns its image, so the
  harness knows the worker is now about to upload (scripts/chaos `stale-answer` freezes it right there);

- provenance: the PNG carries a `tEXt` chunk `tenkaigen-chaos` = `worker=<worker id> call=<n>`, so the harness
  can tell which worker wrote a stored object (the pixels are the placeholder's).

Settings are read from `os.environ` in `create_backend` (this is a test double, not a production setting).
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from tenkaigen_tools.testing import directives
from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback
from worker.backends.placeholder import render
from worker.exceptions import BadRequest, Transient

if TYPE_CHECKING:
    from worker.config import Settings

PROVENANCE_KEY = b"tenkaigen-chaos"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_SECONDS_DEFAULT = 2.0


def permanent_message(k: int | float | None) -> str:
    """The error a `[permanent=K]` job must end `failed` with (the harness checks it verbatim)."""
    return f"prompt: permanent fault #{int(k or 0)} injected by the chaos backend"


def add_provenance(png: bytes, text: str) -> bytes:
    """`png` with a tEXt chunk `tenkaigen-chaos=<text>` right after IHDR (pixels unchanged)."""
    ihdr_end = len(PNG_SIGNATURE) + 8 + 13 + 4
    data = PROVENANCE_KEY + b"\0" + text.encode("latin-1", "replace")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def split_provenance(png: bytes) -> tuple[bytes, str | None]:
    """(the PNG without the chaos tEXt chunk, its text or None)."""
    if not png.startswith(PNG_SIGNATURE):
        return png, None
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        end = pos + 12 + length
        if kind == b"tEXt" and png[pos + 8:pos + 8 + length].startswith(PROVENANCE_KEY + b"\0"):
            text = png[pos + 8 + len(PROVENANCE_KEY) + 1:pos + 8 + length].decode("latin-1")
            return png[:pos] + png[end:], text
        if kind == b"IEND":
            break
        pos = end
    return png, None


class ChaosBackend:
    """See the module docstring."""

    name = "chaos"

    def __init__(self, *, worker_id: str, latency: tuple[float, float] = (0.0, 0.0), seed: int = 0,
                 timeout_seconds: float = TIMEOUT_SECONDS_DEFAULT, state_dir: Path | None = None) -> None:
        self.worker_id = worker_id
        self.latency = latency
        self.timeout_seconds = timeout_seconds
        self.state_dir = state_dir
        self._rng = random.Random(seed * 1_000_003 + os.getpid())
        self._calls: Counter[str] = Counter()
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)

    def _count_call(self, job_id: str) -> int:
        """This call's number for the job (1 = first), across processes when a state directory is shared."""
        self._calls[job_id] += 1
        if self.state_dir is None:
            return self._calls[job_id]
        n = 1
        while True:
            try:
                fd = os.open(self.state_dir / f"{job_id}.{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                n += 1
                continue
            os.write(fd, self.worker_id.encode())
            os.close(fd)
            return n

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        started = time.perf_counter()
        call = self._count_call(request.job_id)
        script = directives(request.prompt)
        if "permanent" in script:
            raise BadRequest(permanent_message(script["permanent"]))
        if "transient" in script and call <= int(script["transient"] or 1):
            raise Transient(f"chaos backend busy (call {call})")
        if "crash" in script and call <= int(script["crash"] or 1):
            raise RuntimeError(f"chaos backend crashed (call {call})")
        if "timeout" in script and call <= int(script["timeout"] or 1):
            await asyncio.sleep(self.timeout_seconds)
            raise Transient(f"chaos backend call timed out after {self.timeout_seconds:g} s (call {call})")
        if "hang" in script and call <= int(script["hang"] or 1):
            await asyncio.Event().wait()          # forever: only cancellation ends it
        steps = max(1, request.steps)
        duration = self._rng.uniform(*self.latency) + float(script.get("sleep") or 0.0)
        if call == 1:
            duration += float(script.get("slow_first") or 0.0)
        for step in range(1, steps + 1):
            if duration:
                await asyncio.sleep(duration / steps)
            await on_progress(step, steps)
        png = render(request)
        if "block" in script and call == 1:
            time.sleep(float(script["block"] or 0.0))  # noqa: ASYNC251 - deliberately blocks the event loop: a stalled worker
        png = add_provenance(png, f"worker={self.worker_id} call={call}")
        if self.state_dir is not None:
            (self.state_dir / f"{request.job_id}.{call}.generated").touch()
        return GenerationResult(
            png=png, width=request.width, height=request.height, seed=request.seed, steps=steps,
            variant=request.variant, backend=self.name, backend_call_id=f"chaos-{request.job_id}-{call}",
            timings={"total_s": time.perf_counter() - started})

    async def aclose(self) -> None:
        return None


def _latency(text: str) -> tuple[float, float]:
    parts = [float(p) for p in text.replace("-", ",").split(",") if p.strip()]
    if not parts:
        return 0.0, 0.0
    low, high = parts[0], parts[-1]
    if low < 0 or high < low:
        raise ValueError(f"TENKAIGEN_CHAOS_LATENCY: expected 'min,max' with 0 <= min <= max (got {text!r})")
    return low, high


def create_backend(settings: Settings) -> ChaosBackend:
    env = os.environ
    state_dir = env.get("TENKAIGEN_CHAOS_STATE_DIR")
    return ChaosBackend(
        worker_id=settings.worker_id or f"pid-{os.getpid()}",
        latency=_latency(env.get("TENKAIGEN_CHAOS_LATENCY", "0,0")),
        seed=int(env.get("TENKAIGEN_CHAOS_SEED", "0")),
        timeout_seconds=float(env.get("TENKAIGEN_CHAOS_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS_DEFAULT))),
        state_dir=Path(state_dir) if state_dir else None,
    )
