# ---
# cmd: ["modal", "run", "modal_app/qwen_generator.py", "--variant", "tiny"]
# output-directory: "."
# ---

# # Qwen-Image with Nunchaku 4-bit weights on Modal

# This app serves TenkaiGen's image generations. It runs [Qwen-Image](https://huggingface.co/Qwen/Qwen-Image),
# a 20B-parameter text-to-image model, with its transformer quantized to 4 bits by
# [Nunchaku](https://github.com/nunchaku-tech/nunchaku) (SVDQuant). The 4-bit transformer is about 12.7 GB instead
# of 41 GB, so a whole pipeline fits a 48 GB L40S with room to spare and a 24 GB A10 or L4 with model offload.

# The worker `spawn`s one method, `run(job_id, request)`, which returns the PNG and how it was made. A spawned
# call has an id at once, even while it waits for a container, so the worker records it on the job and can
# cancel it from the first second; progress travels through a `modal.Queue` partition keyed by the job id.
# `modal_app/protocol.py` is the contract between the two sides (events, deadlines, versions).

# The pipeline code itself (loading, the Lightning scheduler, request to call arguments, PNG encoding) lives in
# `modal_app/pipeline.py`, a plain module that the worker's `local` and `tiny` backends use as well. This file only
# says where and how it runs.

# Run it from the repository root:

# ```bash
# modal run modal_app/qwen_generator.py --prompt "A majestic dragon"        # lightning-8 on a GPU
# modal run modal_app/qwen_generator.py --variant tiny                       # random tiny weights, on a CPU container
# modal run modal_app/qwen_generator.py::download_weights                    # fill the weights volume (deploy step)
# modal deploy modal_app/qwen_generator.py                                   # what the worker calls
# ```

# Only the standard library, `modal` and `modal_app.pins`/`protocol` (plain constants) are imported at the top of
# this file, so it imports on a laptop (and in the worker) without torch; the pipeline is imported under
# `image.imports()`.

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import modal

from modal_app import pins, protocol
from modal_app.progress_channel import progress_channel
from modal_app.run_output import cached_revisions, describe_result, save_result
from modal_app.warm_pool import warm_pool

log = logging.getLogger("tenkaigen.modal_app")

# ## Constants

MINUTES = 60  # seconds
GIB = 1024  # MiB
APP_NAME = "tenkaigen-qwen"
CACHE_DIR = pins.HF_CACHE_DIR  # the Hugging Face cache lives on a Modal Volume mounted here

# Nunchaku ships kernels for Turing, Ampere, Ada and consumer Blackwell only. H100/H200 (sm_90) and B200
# (sm_100) have no 4-bit tensor cores it can use, so they are never on a list below. The GPUs are split in two
# pools because they need different container memory, which Modal bills whether it is used or not ("charged
# based on whichever is higher: your reservation or actual usage", https://modal.com/docs/guide/resources):
# - RESIDENT_GPUS hold the whole ~30 GB pipeline on the GPU, so the container needs little RAM. L40S first;
#   A100 last: Nunchaku is not tuned for compute cards and upstream reports it slower per step than BF16 on
#   an A100-80GB (nunchaku issues #701 and #899), so measure it before relying on it.
# - OFFLOAD_GPUS (24 GB) keep the text encoder and transformer in RAM and move them in per image.
RESIDENT_GPUS = ["L40S", "A100"]
OFFLOAD_GPUS = ["A10", "L4"]
NUNCHAKU_GPUS = RESIDENT_GPUS + OFFLOAD_GPUS

# Container memory requests (MiB), estimated from the checkpoint sizes: resident pools only stage weights in RAM
# while loading; offload pools keep text encoder (16.6 GB) + transformer (12.7 GB) in RAM for good.
RESIDENT_MEMORY_MIB = 24 * GIB
OFFLOAD_MEMORY_MIB = 40 * GIB
# The bf16 variant (41 GB transformer + 17 GB text encoder) stages ~58 GB in RAM while loading; the worker asks
# for it with `with_options(gpu="A100-80GB", memory=BF16_MEMORY_MIB)` (worker/backends/modal.py).
BF16_MEMORY_MIB = 64 * GIB


# The warm pool of each GPU pool is read from TENKAIGEN_MODAL_* when `modal deploy` imports this file
# (`modal_app/warm_pool.py` `warm_pool`, which also raises or lowers a deployed pool without redeploying).
# Progress travels through a `modal.Queue` partition per job (`modal_app/progress_channel.py`); what
# `modal run` prints and writes is in `modal_app/run_output.py`.

# ## The container image

# Every version comes from `modal_app/pins.py`. The Nunchaku wheel is installed by URL from its GitHub release in
# the same resolution as the pinned packages, so it cannot pull in another diffusers; a bare `nunchaku` would
# install PyPI's unrelated package of the same name. Once every model repository is pinned to a commit hash,
# HF_HUB_OFFLINE=1: containers read the volume only and never wait for the Hub.

image = (
    modal.Image.debian_slim(python_version=pins.PYTHON_VERSION)
    .uv_pip_install(*pins.IMAGE_PACKAGES, f"nunchaku @ {pins.NUNCHAKU_WHEEL_URL}")
    .env(
        {
            "HF_HOME": CACHE_DIR,
            "HF_XET_HIGH_PERFORMANCE": "1",
            "HF_HUB_OFFLINE": "1" if pins.hub_offline() else "0",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    .add_local_python_source("modal_app")
)

with image.imports():
    from modal_app import pipeline

# ## Cache model weights

# The first container would download about 30 GB (the Qwen-Image text encoder and VAE, and one Nunchaku
# transformer) into this Volume; `download_weights` below fills it without a GPU, and is a deploy step: the GPU
# classes' startup_timeout leaves no room for the download.

hf_cache = modal.Volume.from_name("tenkaigen-hf-cache", create_if_missing=True)

app = modal.App(APP_NAME, image=image)

# ## The generator

# The class body is shared by three Modal classes: `QwenGenerator` (resident pool) and `QwenGeneratorOffload`
# (24 GB cards) for every real variant, and `QwenGeneratorCPU` for the `tiny` variant (random weights, a smoke
# test of a deployment that costs no GPU time). Each value of the `variant` and `rank` parameters is its own
# autoscaling pool of containers, so a container loads exactly one model once.

# Loading is split for memory snapshots (https://modal.com/docs/guide/memory-snapshot): `prepare`
# (`snap=True`) runs before the snapshot and must not touch CUDA (no GPU is attached then; Nunchaku's loader asks
# CUDA for the compute capability), so it imports the inference stack (torch, diffusers, transformers: seconds of
# every cold start) and builds CPU-only variants whole; `load` (`snap=False`) runs after each restore and loads
# the weights onto the GPU. A load error that no retry can fix (`protocol.permanent_load_error`) is kept, not
# raised: the container then answers each call with an `unsupported_environment` error at once, which the worker
# turns into a ConfigurationError (job handed back, claims paused), instead of crash-looping GPU containers.


class _QwenGeneratorBody:
    variant: str
    rank: int

    @modal.enter(snap=True)
    def prepare(self) -> None:
        self.loaded: Any = None
        self.load_error: str | None = None
        self.load_started = time.perf_counter()
        try:
            spec = pipeline.variant_spec(self.variant)
            import_inference_stack()
            if not spec.device.startswith("cuda"):
                self.loaded = pipeline.load_pipeline(self.variant, rank=self.rank)
        except Exception as exc:
            self._keep_load_error(exc)

    @modal.enter(snap=False)
    def load(self) -> None:
        if self.loaded is not None or self.load_error is not None:
            return
        try:
            self.loaded = pipeline.load_pipeline(self.variant, rank=self.rank)
        except Exception as exc:
            self._keep_load_error(exc)

    def _keep_load_error(self, exc: Exception) -> None:
        message = load_error_message(exc, self.variant)
        if message is None:
            raise exc  # e.g. the Hub or the volume failed: a new container may succeed
        log.error("variant %s cannot be loaded here: %s", self.variant, message)
        self.load_error = message

    @modal.method()
    def run(self, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        header = {
            "call_id": modal.current_function_call_id(),
            "job_id": job_id,
            "app_version": protocol.app_version(),
        }
        if self.load_error is not None:
            return {"type": "error", "code": protocol.ERROR_UNSUPPORTED_ENVIRONMENT, "message": self.load_error,
                    **header}
        channel = progress_channel(job_id)
        channel.put(
            {
                "type": "started",
                "variant": self.variant,
                "gpu_type": self.loaded.gpu_type,
                "offload": self.loaded.offload,
                **header,
            }
        )
        try:
            parsed = pipeline.PipelineRequest.from_dict(request, variant=self.variant)
        except pipeline.InvalidRequest as exc:
            return {**pipeline.error_event(exc), **header}
        # closing(): when Modal cancels the input it raises InputCancellation in this thread; closing the stream
        # sets the pipeline's cancel event and waits for the denoising thread to stop.
        with contextlib.closing(pipeline.stream(self.loaded, parsed)) as events:
            for event in events:
                if event["type"] == "progress":
                    channel.put({**event, **header})
                else:
                    return {**event, **header}
        return {"type": "error", "code": "internal", "message": "the pipeline ended without a result", **header}


def import_inference_stack() -> None:
    """Import what every load needs, without touching CUDA (safe before a memory snapshot)."""
    import diffusers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImageEditPlusPipeline, QwenImagePipeline  # noqa: F401


def load_error_message(exc: BaseException, variant: str) -> str | None:
    """The message of a load error no retry fixes (see protocol.permanent_load_error), else None."""
    unsupported = pipeline.environment_error(exc, variant=variant)
    return str(unsupported) if unsupported is not None else protocol.permanent_load_error(exc)


GPU_CLASS_OPTIONS: dict[str, Any] = {
    "volumes": {CACHE_DIR: hf_cache},
    "timeout": protocol.EXECUTION_TIMEOUT_S,
    "startup_timeout": protocol.STARTUP_TIMEOUT_S,
    "scaledown_window": 2 * MINUTES,
    "enable_memory_snapshot": True,
    **warm_pool(),
}


@app.cls(gpu=RESIDENT_GPUS, memory=RESIDENT_MEMORY_MIB, **GPU_CLASS_OPTIONS)
class QwenGenerator(_QwenGeneratorBody):
    variant: str = modal.parameter(default="lightning-8")
    rank: int = modal.parameter(default=pins.NUNCHAKU_DEFAULT_RANK)  # 32, or 128 for better quality


@app.cls(gpu=OFFLOAD_GPUS, memory=OFFLOAD_MEMORY_MIB, **GPU_CLASS_OPTIONS)
class QwenGeneratorOffload(_QwenGeneratorBody):
    variant: str = modal.parameter(default="lightning-8")
    rank: int = modal.parameter(default=pins.NUNCHAKU_DEFAULT_RANK)


@app.cls(cpu=2.0, memory=4 * GIB, timeout=5 * MINUTES, scaledown_window=1 * MINUTES, enable_memory_snapshot=True)
class QwenGeneratorCPU(_QwenGeneratorBody):
    variant: str = modal.parameter(default="tiny")
    rank: int = modal.parameter(default=pins.NUNCHAKU_DEFAULT_RANK)  # unused by tiny; keeps one call shape


# ## Fill the weights cache, then pin it

# `modal run modal_app/qwen_generator.py::download_weights --variant base` downloads one variant's weights on a
# CPU container (HF_HUB_OFFLINE is off here whatever the pins say), so GPU containers never download.
# `::model_revisions` prints the commit hash each cached repository is at, to paste into pins.py.


@app.function(
    volumes={CACHE_DIR: hf_cache}, cpu=4.0, memory=8 * GIB, timeout=60 * MINUTES, env={"HF_HUB_OFFLINE": "0"}
)
def download_weights(variant: str = "lightning-8", rank: int = pins.NUNCHAKU_DEFAULT_RANK) -> list[str]:
    paths = pipeline.prefetch_weights(variant, rank=rank)
    hf_cache.commit()
    return paths


@app.function(volumes={CACHE_DIR: hf_cache}, cpu=1.0, timeout=5 * MINUTES)
def model_revisions() -> dict[str, str | None]:
    found = cached_revisions(Path(CACHE_DIR) / "hub")
    for repo_id, commit in found.items():
        print(f"{repo_id}: {commit or 'not on the volume'}")
    return found


# ## Generate from the command line

# `modal run modal_app/qwen_generator.py` spawns the `run` method of an ephemeral copy of the app exactly as the
# worker does with the deployed one, waits for the result, prints the GPU, the offload mode and the timings, and
# writes `test_output.png`. `--steps 0` and `--seed -1` mean the variant's default step count and a random seed.
# `--variant tiny` runs `QwenGeneratorCPU` (random weights on a CPU container), the GPU variants `QwenGenerator`
# (`--pool offload` for `QwenGeneratorOffload`).


@app.local_entrypoint()
def main(
    prompt: str = "A majestic dragon",
    variant: str = "lightning-8",
    width: int = 1024,
    height: int = 1024,
    steps: int = 0,
    seed: int = -1,
    rank: int = pins.NUNCHAKU_DEFAULT_RANK,
    init_image: str = "",
    output: str = "test_output.png",
    pool: str = "resident",
) -> None:
    request: dict[str, Any] = {"prompt": prompt, "variant": variant, "width": width, "height": height}
    if steps > 0:
        request["steps"] = steps
    if seed >= 0:
        request["seed"] = seed
    if init_image:
        request["init_image"] = Path(init_image).read_bytes()
    started = time.perf_counter()
    call = generator_class(variant, pool)(variant=variant, rank=rank).run.spawn(f"cli-{time.time_ns()}", request)
    print(f"spawned call {call.object_id} (cancel it with modal.FunctionCall.from_id(...).cancel())")
    result = save_result(call.get(), output)
    print(describe_result(result, output, time.perf_counter() - started))


# ## Helpers


def generator_class(variant: str, pool: str = "resident") -> Any:
    """The class a variant runs on from the command line: CPU for tiny, else the resident or offload GPU pool."""
    if variant == "tiny":
        return QwenGeneratorCPU
    if pool not in ("resident", "offload"):
        raise SystemExit(f"--pool: {pool!r} is not resident or offload")
    return QwenGeneratorOffload if pool == "offload" else QwenGenerator
