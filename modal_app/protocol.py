"""What the worker and the deployed Modal app agree on: how a generation is started, followed, timed and versioned.

Standard library and `modal_app.pins` only, so the worker imports it without torch (and the app without the worker).

**Start.** The worker `spawn`s `QwenGenerator(variant, rank).run(job_id, request)`, a plain (non-generator) method:
`spawn` returns a `FunctionCall` whose id exists at once, while the input is still queued or its container is
still starting, so the call can be cancelled from its first second (`FunctionCall.from_id(id).cancel()`), and the
id is recorded on the job row (`queue.record_backend_call`) for a worker that takes the job over after a crash to
re-attach to. Modal keeps a spawned call's result for 7 days (https://modal.com/docs/guide/job-queue).

**Follow.** The container puts progress events into the named `modal.Queue` PROGRESS_QUEUE_NAME, in the partition
`partition_key(job_id)` (https://modal.com/docs/reference/modal.Queue: independent FIFO partitions, keys of 1-64
bytes, cleared PROGRESS_PARTITION_TTL_S after the last put). Every event carries the call id that produced it, so
the worker ignores what an earlier call of the same job left behind:
- `{"type": "started", "call_id", "job_id", "app_version", "variant", "gpu_type", "offload"}` once the model is
  loaded and the request starts;
- `{"type": "progress", "call_id", "job_id", "app_version", "step", "total"}` after each denoising step.
The method's return value is the outcome, with the same `call_id`, `job_id` and `app_version` keys:
- `{"type": "result", "png", "seed", "steps", "variant", "width", "height", "true_cfg_scale", "timings",
  "gpu_type", "offload"}`;
- `{"type": "error", "code", "message"}` with code ERROR_BAD_REQUEST (the request can never succeed) or
  ERROR_UNSUPPORTED_ENVIRONMENT (the container could not load the model for a reason no retry fixes: a wheel that
  does not import, a GPU without Nunchaku kernels, weights missing while offline).

**Deadlines.** One model, documented in docs/deploy.md ("Deadlines"): the worker's
`TENKAIGEN_GENERATION_TIMEOUT_SECONDS` (default 900 s) covers everything from `spawn` to the result (queueing,
cold start, denoising); when it passes, the worker cancels the Modal input, wherever it is. Modal's own limits are
only a backstop for a worker that died: STARTUP_TIMEOUT_S for `@modal.enter` (the weights must already be on the
volume: `download_weights` is a deploy step) and EXECUTION_TIMEOUT_S for one call
(https://modal.com/docs/guide/timeouts). Their sum is at least the worker's default, so with default settings the
worker's deadline is the one that fires.

**Version.** Every event and outcome carries `app_version()`: `<tenkaigen version>+<pins digest>`. The worker
compares it with its own and warns (once per app version) and counts `tenkaigen_backend_version_mismatch_total`.
"""

from __future__ import annotations

import hashlib

from modal_app import pins

PROGRESS_QUEUE_NAME = "tenkaigen-progress"
PROGRESS_PARTITION_TTL_S = 3600
"""A partition is cleared an hour after its last event (Modal's default is 24 h)."""

STARTUP_TIMEOUT_S = 10 * 60
"""`startup_timeout` of the GPU classes: `@modal.enter` from a warm volume takes 30-90 s (estimated); 10 min leaves
room for a slow volume read, not for a 30 GB download (run `download_weights` when deploying)."""
EXECUTION_TIMEOUT_S = 10 * 60
"""`timeout` of one call: `base` at 50 steps and 2048x2048 on an A10 is the longest run (minutes, estimated)."""

ERROR_BAD_REQUEST = "bad_request"
ERROR_UNSUPPORTED_ENVIRONMENT = "unsupported_environment"

MAX_PARTITION_KEY_BYTES = 64


def partition_key(job_id: str) -> str:
    """The Queue partition of a job's progress events: the job id (a UUID is 36 bytes), hashed when longer than
    Modal's 64-byte limit."""
    if job_id and len(job_id.encode()) <= MAX_PARTITION_KEY_BYTES:
        return job_id
    return hashlib.sha256(job_id.encode()).hexdigest()


def app_version(package_version: str = pins.PACKAGE_VERSION) -> str:
    """`<tenkaigen version>+<pins digest>`: what the deployed app reports, and what the worker compares it with."""
    return f"{package_version}+{pins.pins_digest()}"


PERMANENT_LOAD_ERRORS = frozenset(
    {
        "UnsupportedEnvironment",  # modal_app.pipeline: no CUDA, a GPU without Nunchaku kernels, PyPI's `nunchaku`
        "ImportError",
        "ModuleNotFoundError",
        "RepositoryNotFoundError",  # huggingface_hub.errors: a wrong repository id, or a gated one without access
        "GatedRepoError",
        "RevisionNotFoundError",  # a pinned commit hash that the repository does not have
        "EntryNotFoundError",
        "LocalEntryNotFoundError",  # HF_HUB_OFFLINE=1 and the file is not on the volume: run download_weights
    }
)
PERMANENT_LOAD_MESSAGES = ("no kernel image is available", "unsupported gpu architecture")


def permanent_load_error(exc: BaseException) -> str | None:
    """A message when an exception raised while loading the model will recur on every container (so retrying it
    only boots more GPUs), else None. Classes are matched by name along the MRO, so neither torch nor
    huggingface_hub nor Nunchaku has to be importable here."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc)
    if names & PERMANENT_LOAD_ERRORS or any(marker in text.lower() for marker in PERMANENT_LOAD_MESSAGES):
        hint = ""
        if "LocalEntryNotFoundError" in names:
            hint = "; the weights are not on the volume: run `modal run modal_app/qwen_generator.py::download_weights`"
        return f"the model could not be loaded: {type(exc).__name__}: {text}{hint}"
    return None
