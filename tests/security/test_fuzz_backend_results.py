"""Fuzzing what a backend returns (hypothesis), through the REAL runner against a real PostgreSQL.

A backend is outside the worker's trust boundary: a half-deployed Modal image, a proxy's error page or a transfer
cut short must never end up in the results bucket as a user's design. Each example draws a batch of jobs, each
with a scripted result: valid PNGs of the requested size (several encoders and colour types), valid PNGs of
another size, empty bytes, random bytes, truncated PNGs, the PNG signature followed by garbage, a corrupt IHDR,
data after IEND, and payloads over the (small, for this test) `max_result_bytes`. A runner runs the batch with a
test-double backend that returns exactly those bytes. Then, for every job:

- either it `succeeded`, its result was valid, and exactly those bytes are stored at `<user_id>/<job_id>.png`;
- or it is not succeeded (`queued` for a retry when attempts are left, else `failed`) with error_code
  `invalid_backend_result`, a message naming the backend and the problem, and nothing stored or even uploaded.

Never an internal error, never a job left `running`, never a dead runner.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image
from psycopg.rows import dict_row

from tenkaigen_tools.chaos_backend import add_provenance
from tenkaigen_tools.testing import FaultInjectingStorage
from tests.support import create_user
from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback
from worker.db import open_pool
from worker.metrics import Metrics
from worker.queue import QueueClient
from worker.results import PNG_SIGNATURE, blank_png
from worker.runner import Runner, make_worker_id

LIMIT = 256 * 1024                                   # max_result_bytes of the runner under test
BACKEND = "scripted-results-test-double"
WHO = f"backend '{BACKEND}' returned "
EXAMPLES = 100


@dataclass
class ScriptedResultsBackend:
    """A TEST DOUBLE of the Backend protocol: returns, for each job, the bytes the test scripted for it, while
    claiming (as a lying backend would) the requested size."""

    results: dict[str, bytes]
    name: str = BACKEND
    calls: Counter[str] = field(default_factory=Counter)

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        self.calls[request.job_id] += 1
        return GenerationResult(
            png=self.results[request.job_id], width=request.width, height=request.height, seed=request.seed,
            steps=request.steps, variant=request.variant, backend=self.name)

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class Case:
    """One job: its request size, what the backend returns, and what must happen (None: it succeeds; else a
    text the error message must contain)."""

    kind: str
    width: int
    height: int
    png: bytes
    problem: str | None
    max_attempts: int = 3

    def __repr__(self) -> str:                      # keep hypothesis' falsifying examples readable
        return (f"Case({self.kind!r}, {self.width}x{self.height}, {len(self.png)} bytes "
                f"{self.png[:40]!r}{'…' if len(self.png) > 40 else ''}, max_attempts={self.max_attempts})")


def pil_png(width: int, height: int, mode: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), 1).save(out, format="PNG")
    return out.getvalue()


def padded(png: bytes, size: int) -> bytes:
    """`png` grown to `size` bytes by an ancillary chunk before IEND: still a valid PNG."""
    data = b"\0" * (size - len(png) - 12)
    chunk = struct.pack(">I", len(data)) + b"zzZz" + data + struct.pack(">I", zlib.crc32(b"zzZz" + data))
    return png[:-12] + chunk + png[-12:]


request_sizes = st.integers(16, 128).map(lambda n: n * 16)      # what the database accepts: 256..2048, step 16


@st.composite
def valid_pngs(draw: st.DrawFn, width: int, height: int) -> bytes:
    """A valid PNG of exactly width×height, from one of several encoders."""
    encoders = ["blank", "chaos-provenance"]
    if width * height <= 512 * 512:                 # PIL only for small sizes: it encodes every pixel
        encoders.append("pil")
    encoder = draw(st.sampled_from(encoders))
    if encoder == "blank":
        return blank_png(width, height)
    if encoder == "chaos-provenance":
        return add_provenance(blank_png(width, height), draw(st.text(max_size=30)))
    return pil_png(width, height, draw(st.sampled_from(["RGB", "RGBA", "L", "P", "1", "LA"])))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    width, height = draw(request_sizes), draw(request_sizes)
    kind = draw(st.sampled_from(["valid", "valid", "wrong_size", "empty", "random", "signature_garbage",
                                 "truncated", "corrupt_ihdr", "trailing_data", "huge"]))
    max_attempts = draw(st.sampled_from([1, 3]))
    png: bytes
    problem: str | None
    if kind == "valid":
        png, problem = draw(valid_pngs(width, height)), None
    elif kind == "wrong_size":
        other = draw(st.one_of(
            st.tuples(st.integers(1, 2100), st.integers(1, 2100)),
            st.just((height, width)),                       # transposed
            st.tuples(st.just(width), st.integers(1, 2100)),
            st.tuples(st.integers(1, 2100), st.just(height)),
        ).filter(lambda wh: wh != (width, height)))
        png = blank_png(*other)
        problem = f"{WHO}a {other[0]}×{other[1]} PNG for a {width}×{height} request"
    elif kind == "empty":
        png, problem = b"", f"{WHO}an empty result (0 bytes)"
    elif kind == "random":
        png = draw(st.binary(min_size=1, max_size=512).filter(lambda b: not b.startswith(PNG_SIGNATURE)))
        problem = "that are not a PNG (no PNG signature"
    elif kind == "signature_garbage":
        png = PNG_SIGNATURE + draw(st.binary(max_size=256))
        problem = "the first chunk is not a complete 13-byte IHDR header"
    elif kind == "truncated":
        whole = draw(valid_pngs(width, height))
        cut = draw(st.integers(0, len(whole) - 1))
        png = whole[:cut]
        problem = (f"{WHO}an empty result" if cut == 0 else "that are not a PNG" if cut < 8
                   else "not a complete 13-byte IHDR header" if cut < 33
                   else f"{WHO}a truncated PNG ({cut} bytes) for a {width}×{height} request: it does not end "
                        "with an IEND chunk")
    elif kind == "corrupt_ihdr":
        whole = bytearray(draw(valid_pngs(width, height)))
        whole[draw(st.integers(12, 32))] ^= 1 << draw(st.integers(0, 7))     # IHDR type, data or CRC
        png = bytes(whole)
        problem = "IHDR"                            # the type: "not … IHDR"; data or CRC: "fails its CRC check"
    elif kind == "trailing_data":
        png = draw(valid_pngs(width, height)) + draw(st.binary(min_size=1, max_size=64))
        problem = "does not end with an IEND chunk (cut short, or data after the image)"
    else:  # huge
        size = draw(st.integers(LIMIT + 1, LIMIT + 4096))
        png = padded(blank_png(width, height), size) if draw(st.booleans()) else b"\x89" * size
        problem = f"{WHO}{size} bytes for a {width}×{height} request, more than the {LIMIT}-byte limit"
    return Case(kind, width, height, png, problem, max_attempts)


def insert_job(admin: psycopg.Connection, user: uuid.UUID, case: Case) -> uuid.UUID:
    return admin.execute(
        "insert into generation_jobs (user_id, prompt, width, height, style, steps, max_attempts) "
        "values (%s, %s, %s, %s, 'none', 1, %s) returning id",
        (user, f"fuzz {case.kind}", case.width, case.height, case.max_attempts)).fetchone()[0]


def rows(admin: psycopg.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    with admin.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from generation_jobs where id = any(%s)", (ids,))
        return {r["id"]: r for r in cur.fetchall()}


def attempted(row: dict) -> bool:
    return row["attempts"] == 1 and row["status"] in ("succeeded", "failed", "queued")


async def run_batch(database: str, admin: psycopg.Connection, jobs: dict[uuid.UUID, Case],
                    storage: FaultInjectingStorage) -> tuple[dict[uuid.UUID, dict], Runner]:
    """Run the real runner until every job has had its one attempt; return the rows and the (stopped) runner."""
    backend = ScriptedResultsBackend({str(job_id): case.png for job_id, case in jobs.items()})
    pool = await open_pool(database, min_size=1, max_size=4)
    try:
        runner = Runner(queue=QueueClient(pool, make_worker_id(), lease_seconds=30), backend=backend,
                        storage=storage, concurrency=8, poll_interval=0.02, grace_period=5.0,
                        max_result_bytes=LIMIT, metrics=Metrics())
        task = asyncio.create_task(runner.run())
        ids = list(jobs)
        deadline = time.monotonic() + 20
        while True:
            found = rows(admin, ids)
            if len(found) == len(ids) and all(attempted(r) for r in found.values()):
                break
            assert not task.done(), f"the runner stopped: {task.exception() if not task.cancelled() else ''}"
            assert time.monotonic() < deadline, f"jobs not finished: {[r['status'] for r in found.values()]}"
            await asyncio.sleep(0.01)
        runner.stop()
        await asyncio.wait_for(task, 10)            # raises if any side task died
    finally:
        await pool.close()
    assert all(backend.calls[str(job_id)] == 1 for job_id in jobs)
    return rows(admin, ids), runner


# Every category pinned once, whatever the random draws do.
PINNED = [
    Case("valid", 256, 256, blank_png(256, 256), None),
    Case("valid", 512, 384, pil_png(512, 384, "RGBA"), None, max_attempts=1),
    Case("wrong_size", 1024, 1024, blank_png(512, 512), f"{WHO}a 512×512 PNG for a 1024×1024 request"),
    Case("empty", 256, 512, b"", f"{WHO}an empty result (0 bytes)", max_attempts=1),
    Case("random", 256, 256, b"\xff\xd8\xff\xe0JFIF", "that are not a PNG (no PNG signature"),
    Case("signature_garbage", 256, 256, PNG_SIGNATURE + b"garbage", "not a complete 13-byte IHDR header"),
    Case("truncated", 256, 256, blank_png(256, 256)[:-1], "it does not end with an IEND chunk", max_attempts=1),
    Case("corrupt_ihdr", 256, 256, blank_png(256, 256)[:20] + b"\x01" + blank_png(256, 256)[21:],
         "the IHDR header fails its CRC check"),
    Case("trailing_data", 256, 256, blank_png(256, 256) + b"\n", "data after the image"),
    Case("huge", 256, 256, padded(blank_png(256, 256), LIMIT + 1), f"more than the {LIMIT}-byte limit"),
    Case("valid", 256, 256, padded(blank_png(256, 256), LIMIT), None),     # exactly the limit passes
]


def test_whatever_a_backend_returns_only_a_valid_png_of_the_requested_size_is_stored(
    database: str, admin: psycopg.Connection
) -> None:
    user = create_user(admin)
    seen: Counter[tuple[str, str]] = Counter()
    examples = 0

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(batch=st.lists(cases(), min_size=1, max_size=6))
    @example(batch=PINNED[:6])
    @example(batch=PINNED[6:])
    def run(batch: list[Case]) -> None:
        nonlocal examples
        examples += 1
        jobs = {insert_job(admin, user, case): case for case in batch}
        storage = FaultInjectingStorage()
        found, runner = asyncio.run(run_batch(database, admin, jobs, storage))
        succeeded = set()
        for job_id, case in jobs.items():
            row = found[job_id]
            key = f"{user}/{job_id}.png"
            seen[case.kind, row["status"]] += 1
            assert row["locked_by"] is None and row["lease_expires_at"] is None, case
            if case.problem is None:
                assert row["status"] == "succeeded", (case, row["error_code"], row["error_message"])
                assert row["result_path"] == key and row["result_bytes"] == len(case.png)
                assert storage.objects[key] == case.png, "exactly the backend's bytes are stored"
                succeeded.add(key)
                continue
            assert row["status"] == ("failed" if case.max_attempts == 1 else "queued"), (case, row["status"])
            assert row["error_code"] == "invalid_backend_result", (case, row["error_code"], row["error_message"])
            assert row["error_message"].startswith(WHO), (case, row["error_message"])
            assert case.problem in row["error_message"], (case, row["error_message"])
            assert row["result_path"] is None and key not in storage.objects, case
        assert set(storage.objects) == succeeded and storage.uploads == len(succeeded), "nothing else uploaded"
        finished = runner.metrics.jobs_finished
        assert {o: finished.labels(o)._value.get() for o in ("succeeded", "retried", "failed")} == {
            "succeeded": len(succeeded),
            "retried": sum(c.problem is not None and c.max_attempts > 1 for c in jobs.values()),
            "failed": sum(c.problem is not None and c.max_attempts == 1 for c in jobs.values()),
        }
        assert runner.metrics.backend_errors.labels("internal_error")._value.get() == 0
        admin.execute("update generation_jobs set run_after = 'infinity' where id = any(%s) and status = 'queued'",
                      (list(jobs),))            # this example's retries must not reach the next example's runner

    run()
    kinds = {kind for kind, _ in seen}
    statuses = {status for _, status in seen}
    print(f"\nbackend-results fuzz: {examples} examples, {sum(seen.values())} jobs: "
          + ", ".join(f"{k}/{s}={n}" for (k, s), n in sorted(seen.items())))
    assert kinds == {"valid", "wrong_size", "empty", "random", "signature_garbage", "truncated", "corrupt_ihdr",
                     "trailing_data", "huge"}
    assert statuses == {"succeeded", "queued", "failed"}
