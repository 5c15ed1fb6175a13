"""The one Qwen-Image pipeline entry point: the Modal class, the `local` backend and the `tiny` backend all use it.

It holds no code of its own: each idea lives in its module, and every public name is re-exported here (import them
from `modal_app.pipeline`, which stays the one entry point):

| idea | module |
| --- | --- |
| what each variant id means, the request limits | `modal_app.variants` |
| validating a request dict into a `PipelineRequest`, the diffusers call arguments | `modal_app.generation_request` |
| InvalidRequest, GenerationCancelled, UnsupportedEnvironment, `environment_error` | `modal_app.pipeline_errors` |
| Modal GPU names, offload mode by GPU memory, Nunchaku installed / built for this torch / kernels for this GPU | `modal_app.hardware` |
| LoRA adapters (`bf16`, `tiny`): per-request hooks, or fused | `modal_app.lora` |
| loading a variant (`load_pipeline`) and prefetching its weights | `modal_app.loading` |
| running one request (`LoadedPipeline.generate`): progress, cancel, VAE tiling, PNG | `modal_app.generation` |
| `stream()` (events for the Modal method) and `agenerate()` (asyncio backends) | `modal_app.streaming` |

Heavy libraries (torch, diffusers, nunchaku, PIL) are imported inside functions, so importing this module costs
nothing and works where they are not installed (the worker process of the `modal` backend).
"""

from __future__ import annotations

from modal_app.generation import (
    VAE_TILING_MIN_PIXELS,
    LoadedPipeline,
    PipelineOutput,
    encode_png,
    read_init_image,
    set_vae_tiling,
    vae_tiling_needed,
)
from modal_app.generation_request import (
    PNG_SOFTWARE,
    PipelineRequest,
    call_arguments,
    denoising_steps,
    img2img_inference_steps,
    lightning_img2img_steps,
    negative_prompt_used,
    png_text,
    render_size,
    resolve_seed,
)
from modal_app.hardware import (
    NUNCHAKU_CAPABILITIES,
    check_nunchaku_environment,
    choose_offload,
    modal_gpu_name,
    nunchaku_install_problem,
    nunchaku_supports,
    nunchaku_torch_mismatch,
    torch_minor_of_nunchaku,
)
from modal_app.loading import load_pipeline, prefetch_weights
from modal_app.lora import LoraAdapters, resolve_lora_path
from modal_app.pipeline_errors import (
    GPU_INSTALL_HINT,
    GenerationCancelled,
    InvalidRequest,
    UnsupportedEnvironment,
    environment_error,
)
from modal_app.streaming import CANCEL_JOIN_TIMEOUT_S, agenerate, error_event, result_event, stream
from modal_app.variants import (
    DEFAULT_SIZE,
    IMG2IMG_STRENGTH,
    LIGHTNING_MAX_TRUE_CFG_SCALE,
    LIGHTNING_SCHEDULER_CONFIG,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SEQUENCE_LENGTH,
    MAX_SIDE,
    MAX_STEPS,
    MAX_TRUE_CFG_SCALE,
    MIN_SIDE,
    SIDE_MULTIPLE,
    VARIANTS,
    VariantSpec,
    nunchaku_file,
    variant_spec,
)

# Every name callers import from here.
__all__ = [
    "CANCEL_JOIN_TIMEOUT_S",
    "DEFAULT_SIZE",
    "GPU_INSTALL_HINT",
    "IMG2IMG_STRENGTH",
    "LIGHTNING_MAX_TRUE_CFG_SCALE",
    "LIGHTNING_SCHEDULER_CONFIG",
    "MAX_PROMPT_CHARS",
    "MAX_SEED",
    "MAX_SEQUENCE_LENGTH",
    "MAX_SIDE",
    "MAX_STEPS",
    "MAX_TRUE_CFG_SCALE",
    "MIN_SIDE",
    "NUNCHAKU_CAPABILITIES",
    "PNG_SOFTWARE",
    "SIDE_MULTIPLE",
    "VAE_TILING_MIN_PIXELS",
    "VARIANTS",
    "GenerationCancelled",
    "InvalidRequest",
    "LoadedPipeline",
    "LoraAdapters",
    "PipelineOutput",
    "PipelineRequest",
    "UnsupportedEnvironment",
    "VariantSpec",
    "agenerate",
    "call_arguments",
    "check_nunchaku_environment",
    "choose_offload",
    "denoising_steps",
    "encode_png",
    "environment_error",
    "error_event",
    "img2img_inference_steps",
    "lightning_img2img_steps",
    "load_pipeline",
    "modal_gpu_name",
    "negative_prompt_used",
    "nunchaku_file",
    "nunchaku_install_problem",
    "nunchaku_supports",
    "nunchaku_torch_mismatch",
    "png_text",
    "prefetch_weights",
    "read_init_image",
    "render_size",
    "resolve_lora_path",
    "resolve_seed",
    "result_event",
    "set_vae_tiling",
    "stream",
    "torch_minor_of_nunchaku",
    "vae_tiling_needed",
    "variant_spec",
]
