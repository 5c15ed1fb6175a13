"""Job rows → work items → backend requests."""

from __future__ import annotations

import uuid

from worker.jobs import Job, JobStatus, result_key
from worker.runner import make_worker_id


def claimed_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.uuid4(), "user_id": uuid.uuid4(), "attempts": 2, "max_attempts": 3, "claims": 4,
        "resolved_prompt": "anime style illustration of a cat", "negative_prompt": None, "variant": "lightning-8",
        "width": 1024, "height": 768, "steps": 8, "true_cfg_scale": 1.0, "seed": 4294967295,
        "init_image_path": None, "style": "anime", "lora": None, "lora_scale": None}
    row.update(overrides)
    return row


def test_a_claimed_row_becomes_a_job_holding_its_attempt() -> None:
    row = claimed_row()
    job = Job.from_row(row)
    assert job.attempt == 2 and job.request.prompt == "anime style illustration of a cat"
    assert job.claim == 4, "the claim number (the fence) is its own column, not the attempt"
    assert job.request.negative_prompt == "" and job.request.job_id == str(row["id"])
    assert job.result_key == f"{row['user_id']}/{row['id']}.png" == result_key(row["user_id"], row["id"])


def test_the_backend_request_carries_the_resolved_fields() -> None:
    job = Job.from_row(claimed_row())
    request = job.to_request(b"init")
    assert (request.job_id, request.width, request.height, request.steps, request.seed) == (
        str(job.id), 1024, 768, 8, 4294967295)
    assert request.init_image == b"init" and request.prompt == job.request.prompt
    assert request.lora is None and request.lora_scale == 1.0
    assert job.to_request() is job.request and job.request.init_image is None, "no copy without an init image"


def test_a_franchise_lora_reaches_the_backend() -> None:
    job = Job.from_row(claimed_row(variant="bf16", lora="loras/naruto.safetensors", lora_scale=0.8))
    request = job.to_request()
    assert (request.variant, request.lora, request.lora_scale) == ("bf16", "loras/naruto.safetensors", 0.8)


def test_job_status_names_are_the_contract() -> None:
    assert [s.value for s in JobStatus] == ["queued", "running", "succeeded", "failed", "canceled"]


def test_a_worker_id_is_host_pid_and_a_random_suffix() -> None:
    import os

    host, pid, suffix = make_worker_id().split(":")
    assert host and int(pid) == os.getpid() and len(suffix) == 6
    assert make_worker_id() != make_worker_id()
