# ---
# cmd: ["modal", "run", "modal_app/qwen_generator.py", "--variant", "tiny"]
# output-directory: "."
# ---

# # Qwen-Image with Nunchaku 4-bit weights on Modal

# This app serves TenkaiGen's image generations. It runs [Qwen-Image](https://huggingface.co/Qwen/Qwen-Image),
# a 20B-parameter text-to-image model, with its transformer quantized to 4 bits by
# [Nunchaku](https://github.com/nunchaku-tech/nunchaku) (SVDQuant). The 4-bit transformer is about 12.7 GB instead
# of 41 GB, so a whole pipeline fits a 48 GB L40S with room to spare and a 24 GB A10 or L4 with model offload.

# The worker calls one method, `QwenGenerator.generate`, which streams an event per denoising step and then the
# PNG. The worker turns those events into the job's progress, and cancels the call when the job is canceled.

# The pipeline code itself (loading, the Lightning scheduler, request to call arguments, PNG encoding) lives in
# `modal_app/pipeline.py`, a plain module that the worker's `local` and `tiny` backends use as well. This file only
# says where and how it runs.

# Run it from the repository root:

# ```bash
# modal run modal_app/qwen_generator.py --prompt "A majestic dragon"        # lightning-8 on a GPU
# modal run modal_app/qwen_generator.py --variant tiny                       # random tiny weights on CPU
# modal deploy modal_app/qwen_generator.py                                   # what the worker calls
# ```

# Only the standard library, `modal` and `modal_app.pins` (plain constants) are imported at the top of this file,
# so it imports on a laptop (and in the worker) without torch; the pipeline is imported under `image.imports()`.

import os
import time
from collections.abc import Iterable
from pathlib import Path

import modal

from modal_app import pins

# ## Constants

MINUTES = 60  # seconds
APP_NAME = "tenkaigen-qwen"
CACHE_DIR = pins.HF_CACHE_DIR  # the Hugging Face cache lives on a Modal Volume mounted here

# Nunchaku ships kernels for Turing, Ampere, Ada and consumer Blackwell only. H100/H200 (sm_90) and B200
# (sm_100) have no 4-bit tensor cores it can use, so they are never on this list. The order is the preference:
# L40S runs the whole pipeline resident; A10 and L4 need model offload; A100 works but Nunchaku is not tuned
# for it (same speed as BF16 in upstream reports), so it is the last resort.
NUNCHAKU_GPUS = ["L40S", "A10", "L4", "A100"]

# Container RAM holds the offloaded weights on 24 GB cards (text encoder 16.6 GB + transformer 12.7 GB).
GPU_CONTAINER_MEMORY_MIB = 40 * 1024

# ## The container image

# Every version comes from `modal_app/pins.py`. The Nunchaku wheel is installed by URL from its GitHub release in
# the same resolution as the pinned packages, so it cannot pull in another diffusers; a bare `nunchaku` would
# install PyPI's unrelated package of the same name.

image = (
    modal.Image.debian_slim(python_version=pins.PYTHON_VERSION)
    .uv_pip_install(*pins.IMAGE_PACKAGES, f"nunchaku @ {pins.NUNCHAKU_WHEEL_URL}")
    .env(
        {
            "HF_HOME": CACHE_DIR,
            "HF_XET_HIGH_PERFORMANCE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    .add_local_python_source("modal_app")
)

with image.imports():
    from modal_app import pipeline

# ## Cache model weights

# The first container downloads about 30 GB (the Qwen-Image text encoder and VAE, and one Nunchaku transformer)
# into this Volume; later containers read them from it. `download_weights` below fills it without a GPU.

hf_cache = modal.Volume.from_name("tenkaigen-hf-cache", create_if_missing=True)

app = modal.App(APP_NAME, image=image)

# ## The generator

# The class body is shared by two Modal classes: `QwenGenerator` on the Nunchaku GPU list, for every real
# variant, and `QwenGeneratorCPU` for the `tiny` variant (random weights, a smoke test of a deployment that
# costs no GPU time). Each value of the `variant` and `rank` parameters is its own autoscaling pool of
# containers, so a container loads exactly one model once, in `@modal.enter()`.

# `generate` is a generator: Modal streams what it yields to the caller's `remote_gen`. Events are plain dicts:

# - `{"type": "started", "call_id": …}` first: the function call id, which the worker needs to cancel the call;
# - `{"type": "progress", "step": i, "total": n}` after each denoising step;
# - `{"type": "result", "png": bytes, "seed", "steps", "variant", "width", "height", "timings", "gpu_type"}` last,
#   with the parameters actually used and `timings` = `load_s` (model load charged to the container's first
#   request, 0.0 afterwards), `inference_s`, `encode_s`;
# - or `{"type": "error", "code": "bad_request", "message": …}` for a request that can never succeed.

# When the call is cancelled, Modal raises `InputCancellation` in the container; `pipeline.stream` turns that
# into a cancel event that stops the denoising loop after the current step.


class _QwenGeneratorBody:
    variant: str
    rank: int

    @modal.enter()
    def load(self) -> None:
        self.loaded = pipeline.load_pipeline(self.variant, rank=self.rank)

    @modal.method(is_generator=True)
    def generate(self, request: dict):
        yield {
            "type": "started",
            "call_id": modal.current_function_call_id(),
            "variant": self.variant,
            "gpu_type": self.loaded.gpu_type,
        }
        try:
            parsed = pipeline.PipelineRequest.from_dict(request, variant=self.variant)
        except pipeline.InvalidRequest as exc:
            yield pipeline.error_event(exc)
            return
        yield from pipeline.stream(self.loaded, parsed)


@app.cls(
    gpu=NUNCHAKU_GPUS,
    memory=GPU_CONTAINER_MEMORY_MIB,
    volumes={CACHE_DIR: hf_cache},
    timeout=10 * MINUTES,  # one image; base at 50 steps is the longest
    startup_timeout=30 * MINUTES,  # the first container downloads ~30 GB
    scaledown_window=2 * MINUTES,
    max_containers=int(os.environ.get("TENKAIGEN_MODAL_MAX_CONTAINERS", "4")),
)
class QwenGenerator(_QwenGeneratorBody):
    variant: str = modal.parameter(default="lightning-8")
    rank: int = modal.parameter(default=pins.NUNCHAKU_DEFAULT_RANK)  # 32, or 128 for better quality


@app.cls(cpu=2.0, memory=4 * 1024, timeout=5 * MINUTES, scaledown_window=1 * MINUTES)
class QwenGeneratorCPU(_QwenGeneratorBody):
    variant: str = modal.parameter(default="tiny")
    rank: int = modal.parameter(default=pins.NUNCHAKU_DEFAULT_RANK)  # unused by tiny; keeps one call shape


# ## Fill the weights cache

# `modal run modal_app/qwen_generator.py::download_weights --variant base` downloads one variant's weights on a
# CPU container, so the first GPU container does not spend its startup on downloads.


@app.function(volumes={CACHE_DIR: hf_cache}, cpu=4.0, memory=8 * 1024, timeout=60 * MINUTES)
def download_weights(variant: str = "lightning-8", rank: int = pins.NUNCHAKU_DEFAULT_RANK) -> list[str]:
    paths = pipeline.prefetch_weights(variant, rank=rank)
    hf_cache.commit()
    return paths


# ## Generate from the command line

# `modal run modal_app/qwen_generator.py` calls the deployed-shape class exactly as the worker does, prints the
# progress and timings, and writes `test_output.png`. `--steps 0` and `--seed -1` mean the variant's default
# step count and a random seed.


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
) -> None:
    request: dict = {"prompt": prompt, "variant": variant, "width": width, "height": height}
    if steps > 0:
        request["steps"] = steps
    if seed >= 0:
        request["seed"] = seed
    if init_image:
        request["init_image"] = Path(init_image).read_bytes()
    generator_cls = QwenGeneratorCPU if variant == "tiny" else QwenGenerator
    started = time.perf_counter()
    result = save_result(generator_cls(variant=variant, rank=rank).generate.remote_gen(request), output)
    print(
        f"wrote {output}: {result['width']}x{result['height']}, {result['steps']} steps, seed {result['seed']}, "
        f"on {result['gpu_type']}; round trip {time.perf_counter() - started:.1f}s, timings {result['timings']}"
    )


# ## Helpers


def save_result(events: Iterable[dict], output: str | os.PathLike) -> dict:
    """Consume a `generate` event stream, print progress, write the PNG, return the result event."""
    result = None
    for event in events:
        if event["type"] == "progress":
            print(f"step {event['step']}/{event['total']}")
        elif event["type"] == "error":
            raise SystemExit(f"the generator rejected the request: {event['message']}")
        elif event["type"] == "result":
            result = event
    if result is None:
        raise SystemExit("the generator ended without a result")
    Path(output).write_bytes(result["png"])
    return result
