"""What each variant id means (weights, pipeline class, scheduler, defaults) and the request limits.

Pure data and Python (no torch): imported by the request validation, the pipeline loader, the Modal app and the
worker. Re-exported by `modal_app.pipeline`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modal_app import pins
from modal_app.pipeline_errors import InvalidRequest

# ## Limits and constants

MIN_SIDE = 16
MAX_SIDE = 2048
SIDE_MULTIPLE = 16  # Qwen-Image latents are 8x downsampled and packed 2x2
MAX_STEPS = 100
MAX_TRUE_CFG_SCALE = 20.0
# Lightning checkpoints are CFG-distilled: upstream runs them at true_cfg_scale=1.0 (Nunchaku's
# examples/v1/qwen-image-lightning.py); above 1 true CFG doubles the passes and over-saturates the image.
LIGHTNING_MAX_TRUE_CFG_SCALE = 1.0
MAX_SEED = 2**32 - 1  # the database contract: generation_jobs.seed is 0..4294967295
MAX_PROMPT_CHARS = 4000
MAX_SEQUENCE_LENGTH = 512  # prompt tokens the text encoder sees (the pipelines allow up to 1024)
IMG2IMG_STRENGTH = 0.75  # text-to-image variants given an init image re-noise 75 % of it
DEFAULT_SIZE = 1024

# The scheduler the Lightning checkpoints were distilled with (ModelTC/Qwen-Image-Lightning
# generate_with_diffusers.py, repeated in every Nunchaku Lightning example): a fixed shift of 3 via
# exponential time shifting, whatever the image size. 4 steps give timesteps [1000, 900, 750, 500].
LIGHTNING_SCHEDULER_CONFIG: dict[str, Any] = {
    "base_image_seq_len": 256,
    "base_shift": math.log(3),
    "invert_sigmas": False,
    "max_image_seq_len": 8192,
    "max_shift": math.log(3),
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": None,
    "stochastic_sampling": False,
    "time_shift_type": "exponential",
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}

# ## Variants


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """What a variant id means."""

    name: str
    task: str  # "text-to-image" or "edit" (Qwen-Image-Edit-2509, needs an init image)
    weights: str  # "nunchaku" (4-bit SVDQuant), "bf16" (diffusers' transformer), "tiny" (random, CPU)
    steps: int
    true_cfg_scale: float
    lightning: bool  # distilled checkpoint: use LIGHTNING_SCHEDULER_CONFIG
    model: pins.ModelRepo | None  # the diffusers pipeline repository (None: tiny components)
    nunchaku: pins.ModelRepo | None = None
    render_max_side: int | None = None  # render smaller and resize up (tiny: the weights are noise anyway)
    lightning_lora: str | None = (
        None  # a Lightning LoRA fused into BF16 weights at load (pins.QWEN_IMAGE_LIGHTNING)
    )

    @property
    def accepts_lora(self) -> bool:
        """Nunchaku cannot apply custom LoRAs to Qwen-Image; diffusers' own transformer can."""
        return self.weights != "nunchaku"

    @property
    def device(self) -> str:
        return "cpu" if self.weights == "tiny" else "cuda"


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec(
            "lightning-4",
            "text-to-image",
            "nunchaku",
            4,
            1.0,
            True,
            pins.QWEN_IMAGE,
            pins.NUNCHAKU_QWEN_IMAGE,
        ),
        VariantSpec(
            "lightning-8",
            "text-to-image",
            "nunchaku",
            8,
            1.0,
            True,
            pins.QWEN_IMAGE,
            pins.NUNCHAKU_QWEN_IMAGE,
        ),
        VariantSpec(
            "base", "text-to-image", "nunchaku", 50, 4.0, False, pins.QWEN_IMAGE, pins.NUNCHAKU_QWEN_IMAGE
        ),
        VariantSpec(
            "edit",
            "edit",
            "nunchaku",
            8,
            1.0,
            True,
            pins.QWEN_IMAGE_EDIT_2509,
            pins.NUNCHAKU_QWEN_IMAGE_EDIT_2509,
        ),
        # BF16 Qwen-Image with the 8-step Lightning LoRA fused in: the only variant that takes franchise LoRAs.
        VariantSpec(
            "bf16",
            "text-to-image",
            "bf16",
            8,
            1.0,
            True,
            pins.QWEN_IMAGE,
            lightning_lora=pins.LIGHTNING_LORA_FILES["bf16"],
        ),
        VariantSpec("tiny", "text-to-image", "tiny", 4, 1.0, False, None, render_max_side=128),
    )
}


def variant_spec(name: str) -> VariantSpec:
    try:
        return VARIANTS[name]
    except KeyError:
        raise InvalidRequest(f"unknown variant {name!r}; known variants: {', '.join(VARIANTS)}") from None


def nunchaku_file(variant: str, *, rank: int, precision: str) -> str:
    """The Nunchaku checkpoint file of a variant, e.g. `svdq-int4_r32-qwen-image-lightningv1.1-8steps.safetensors`."""
    if rank not in pins.NUNCHAKU_RANKS:
        raise InvalidRequest(f"nunchaku rank must be one of {pins.NUNCHAKU_RANKS}, got {rank}")
    return pins.NUNCHAKU_FILES[variant].format(precision=precision, rank=rank)
