"""Jobs as the worker sees them. The state machine itself lives only in SQL (supabase/migrations).

`JobStatus` mirrors the names of `public.generation_jobs.status` (a test checks it equals the database's CHECK);
Python holds no transition logic. `Job` is a claimed unit of work (the columns `queue.claim_jobs` returns that a
backend needs); `JobRecord` is a job row as the admin commands show it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.backends.base import GenerationRequest


class JobStatus(enum.StrEnum):
    """The contract's job statuses (supabase/migrations/*_generation_jobs.sql gives each meaning)."""

    QUEUED = "queued"        # waiting for a worker (run_after may delay it)
    RUNNING = "running"      # claimed by one worker holding a lease
    SUCCEEDED = "succeeded"  # image stored at result_path (final)
    FAILED = "failed"        # permanent error or attempts exhausted (final)
    CANCELED = "canceled"    # canceled by its owner or an admin (final)


def result_key(user_id: UUID | str, job_id: UUID | str) -> str:
    """The object key of a job's image in bucket generated-designs (contract): `<user_id>/<job_id>.png`."""
    return f"{user_id}/{job_id}.png"


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job: identity, the claim number that fences every write, and the backend request it resolves to."""

    id: UUID
    user_id: UUID
    attempt: int
    """The attempt number (logs, metrics, retries): NOT a fence, a requeue or a release can repeat it."""
    max_attempts: int
    claim: int
    """The claim number (`generation_jobs.claims`, never reset): every write for this run names it (the SQL fence)."""
    request: GenerationRequest
    """What the backend gets (the database already resolved the style preset); the init image is added later."""
    init_image_path: str | None = None
    style: str | None = None
    previous_call_id: str | None = None
    """The backend call an earlier attempt started (`backend_call_id` as claimed: a crash or a release keeps it), for
    the backend to re-attach to instead of generating again."""
    id_text: str = field(default="", compare=False)
    """The id as text, formatted once (it goes into logs, requests and the completion)."""
    result_key: str = field(default="", compare=False)
    """`<user_id>/<job_id>.png`, the object key of the result (see `result_key()`)."""

    def __post_init__(self) -> None:
        if not self.id_text:
            object.__setattr__(self, "id_text", str(self.id))
        if not self.result_key:
            object.__setattr__(self, "result_key", f"{self.user_id}/{self.id_text}.png")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        """From a `queue.claim_jobs` row (dict): `attempts` is the attempt number, `claims` this claim's number."""
        job_id: UUID = row["id"]
        id_text = str(job_id)
        lora_scale = row.get("lora_scale")
        request = GenerationRequest(
            job_id=id_text,
            prompt=row["resolved_prompt"],
            negative_prompt=row["negative_prompt"] or "",
            variant=row["variant"],
            width=row["width"],
            height=row["height"],
            steps=row["steps"],
            true_cfg_scale=float(row["true_cfg_scale"]),
            seed=int(row["seed"]),
            lora=row.get("lora"),
            lora_scale=1.0 if lora_scale is None else float(lora_scale),
        )
        return cls(id=job_id, user_id=row["user_id"], attempt=row["attempts"], max_attempts=row["max_attempts"],
                   claim=row["claims"], request=request, init_image_path=row.get("init_image_path"), style=row.get("style"),
                   previous_call_id=row.get("backend_call_id"), id_text=id_text)

    def to_request(self, init_image: bytes | None = None) -> GenerationRequest:
        """The backend request, with the edit job's init image when there is one."""
        return self.request if init_image is None else replace(self.request, init_image=init_image)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job row for display (`tenkaigen jobs`, `dev --prompt`)."""

    id: UUID
    user_id: UUID
    status: JobStatus
    progress: float
    prompt: str
    style: str
    variant: str
    width: int
    height: int
    attempts: int
    max_attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    locked_by: str | None
    result_path: str | None
    error_code: str | None
    error_message: str | None
    backend: str | None
    gpu_seconds: float | None
    cost_usd: float | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRecord:
        return cls(
            id=row["id"], user_id=row["user_id"], status=JobStatus(row["status"]),
            progress=float(row["progress"]), prompt=row["prompt"], style=row["style"], variant=row["variant"],
            width=row["width"], height=row["height"], attempts=row["attempts"], max_attempts=row["max_attempts"],
            created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
            cancel_requested_at=row["cancel_requested_at"], locked_by=row["locked_by"],
            result_path=row["result_path"], error_code=row["error_code"], error_message=row["error_message"],
            backend=row["backend"],
            gpu_seconds=None if row["gpu_seconds"] is None else float(row["gpu_seconds"]),
            cost_usd=None if row["cost_usd"] is None else float(row["cost_usd"]),
        )

    @property
    def is_final(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class JobStats:
    """A row of the `queue.job_stats` view: the active jobs counted exactly, the finished ones over the last 24 h
    (the view never reads the whole history)."""

    queued: int
    claimable: int
    running: int
    succeeded_last_24h: int
    failed_last_24h: int
    canceled_last_24h: int
    oldest_claimable_age_seconds: float | None
    finished_last_hour: int
    gpu_seconds_last_24h: float
    cost_usd_last_24h: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobStats:
        age = row["oldest_claimable_age_seconds"]
        return cls(
            queued=row["queued"], claimable=row["claimable"], running=row["running"],
            succeeded_last_24h=row["succeeded_last_24h"], failed_last_24h=row["failed_last_24h"],
            canceled_last_24h=row["canceled_last_24h"],
            oldest_claimable_age_seconds=None if age is None else float(age),
            finished_last_hour=row["finished_last_hour"],
            gpu_seconds_last_24h=float(row["gpu_seconds_last_24h"]),
            cost_usd_last_24h=float(row["cost_usd_last_24h"]),
        )
