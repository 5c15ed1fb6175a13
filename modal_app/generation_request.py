"""A generation request: validation into a `PipelineRequest` and the diffusers call arguments it becomes.

Pure functions, no torch: the step counts (img2img stretching, Lightning's distilled grid), true CFG and the negative
prompt, the render size, the PNG text chunks. Re-exported by `modal_app.pipeline`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modal_app.pipeline_errors import InvalidRequest
from modal_app.variants import (
    DEFAULT_SIZE,
    IMG2IMG_STRENGTH,
    LIGHTNING_MAX_TRUE_CFG_SCALE,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SEQUENCE_LENGTH,
    MAX_SIDE,
    MAX_STEPS,
    MAX_TRUE_CFG_SCALE,
    MIN_SIDE,
    SIDE_MULTIPLE,
    VariantSpec,
    variant_spec,
)

PNG_SOFTWARE = "TenkaiGen"


# ## Requests


@dataclass(frozen=True, slots=True)
class PipelineRequest:
    """A validated generation request. `steps` is the number of denoising steps actually run."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    true_cfg_scale: float
    seed: int
    variant: str
    init_image: bytes | None = None
    lora: str | None = None
    lora_scale: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, variant: str | None = None) -> PipelineRequest:
        """Validate a request dict (the Modal payload, or a worker `GenerationRequest` as a dict).

        Missing `steps`, `true_cfg_scale`, `width`, `height` take the variant's defaults and a missing `seed`
        gets a random one (the result reports it). If `variant` is given (the Modal class's own variant) the
        request must name the same variant or none.
        """
        asked = data.get("variant")
        if variant is not None and asked not in (None, variant):
            raise InvalidRequest(
                f"variant: this generator serves {variant!r}, the request asks for {asked!r}"
            )
        name = variant or asked
        if not isinstance(name, str):
            raise InvalidRequest("variant: required")
        spec = variant_spec(name)

        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt: must be a non-empty string")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"prompt: at most {MAX_PROMPT_CHARS} characters")
        negative_prompt = data.get("negative_prompt") or ""
        if not isinstance(negative_prompt, str) or len(negative_prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"negative_prompt: must be a string of at most {MAX_PROMPT_CHARS} characters"
            )

        width = _int_field(data, "width", DEFAULT_SIZE, MIN_SIDE, MAX_SIDE)
        height = _int_field(data, "height", DEFAULT_SIZE, MIN_SIDE, MAX_SIDE)
        for label, side in (("width", width), ("height", height)):
            if side % SIDE_MULTIPLE:
                raise InvalidRequest(f"{label}: must be a multiple of {SIDE_MULTIPLE}, got {side}")
        steps = _int_field(data, "steps", spec.steps, 1, MAX_STEPS)
        seed = data.get("seed")
        seed = resolve_seed(None) if seed is None else _int_field(data, "seed", 0, 0, MAX_SEED)

        cfg = data.get("true_cfg_scale")
        cfg = spec.true_cfg_scale if cfg is None else cfg
        if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0.0 <= cfg <= MAX_TRUE_CFG_SCALE:
            raise InvalidRequest(f"true_cfg_scale: must be a number between 0 and {MAX_TRUE_CFG_SCALE}")
        if spec.lightning and cfg > LIGHTNING_MAX_TRUE_CFG_SCALE:
            raise InvalidRequest(
                f"true_cfg_scale: variant {spec.name!r} is CFG-distilled (Lightning) and runs without true CFG; "
                f"use at most {LIGHTNING_MAX_TRUE_CFG_SCALE:g} (got {cfg:g}), or the 'base' variant for CFG"
            )

        init_image = data.get("init_image")
        if init_image is not None and not isinstance(init_image, bytes | bytearray):
            raise InvalidRequest("init_image: must be the image file's bytes")
        if spec.task == "edit" and init_image is None:
            raise InvalidRequest(f"init_image: variant {spec.name!r} edits an image and needs one")
        lora = data.get("lora") or None
        if lora is not None and not isinstance(lora, str):
            raise InvalidRequest("lora: must be a string")
        if lora is not None and not spec.accepts_lora:
            raise InvalidRequest(
                f"lora: variant {spec.name!r} runs Nunchaku 4-bit weights, which cannot apply custom LoRAs; "
                "use the 'bf16' variant for jobs with a LoRA"
            )
        lora_scale = data.get("lora_scale")
        lora_scale = 1.0 if lora_scale is None else lora_scale
        if (
            isinstance(lora_scale, bool)
            or not isinstance(lora_scale, int | float)
            or not 0.0 < lora_scale <= 2.0
        ):
            raise InvalidRequest("lora_scale: must be a number in (0, 2]")
        return cls(
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            steps=steps,
            true_cfg_scale=float(cfg),
            seed=seed,
            variant=spec.name,
            init_image=bytes(init_image) if init_image is not None else None,
            lora=lora,
            lora_scale=float(lora_scale),
        )


def _int_field(data: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(f"{name}: must be between {low} and {high}, got {value}")
    return value


def resolve_seed(seed: int | None) -> int:
    """The seed to use: the given one, or a fresh random one (reported back so the job can record it)."""
    return random.SystemRandom().randint(0, MAX_SEED) if seed is None else seed


def img2img_inference_steps(steps: int, strength: float = IMG2IMG_STRENGTH) -> int:
    """`num_inference_steps` for which an img2img run of `strength` executes exactly `steps` denoising steps.

    diffusers' img2img runs `n - int(n - n * strength)` of `n` scheduled steps; that count grows by 0 or 1 per
    extra `n`, so the smallest `n` reaching `steps` hits it exactly.
    """
    n = max(1, math.floor(steps / strength))
    while n - int(max(n - min(n * strength, n), 0)) < steps:
        n += 1
    return n


def render_size(spec: VariantSpec, width: int, height: int) -> tuple[int, int]:
    """The size the pipeline renders at: the requested size, or for `tiny` a copy scaled down to its cap."""
    cap = spec.render_max_side
    if cap is None or max(width, height) <= cap:
        return width, height
    scale = cap / max(width, height)

    def shrink(side: int) -> int:
        return max(SIDE_MULTIPLE, int(side * scale) // SIDE_MULTIPLE * SIDE_MULTIPLE)

    return shrink(width), shrink(height)


def lightning_img2img_steps(steps: int, strength: float = IMG2IMG_STRENGTH) -> int:
    """How many of a Lightning variant's `steps` distilled timesteps an img2img run of `strength` executes.

    Lightning img2img keeps `num_inference_steps = steps`, so the timesteps are the distilled grid text-to-image
    uses, and `strength` skips its first ones (diffusers' get_timesteps): 8 steps at 0.75 run the last 6 of
    [1000, 954.5, 900, 833.3, 750, 642.9, 500, 300].
    """
    return steps - int(max(steps - min(steps * strength, steps), 0))


def denoising_steps(request: PipelineRequest, *, mode: str) -> int:
    """The number of denoising steps a run executes (the `total` of its progress)."""
    if mode == "img2img" and variant_spec(request.variant).lightning:
        return lightning_img2img_steps(request.steps)
    return request.steps


def negative_prompt_used(request: PipelineRequest) -> bool:
    """True CFG (and with it the negative prompt) only runs when `true_cfg_scale > 1`.

    Lightning variants are limited to 1, so a style's negative prompt is never used on them; the result and the
    PNG say so instead of dropping it without a word.
    """
    return request.true_cfg_scale > 1.0


def call_arguments(request: PipelineRequest, *, mode: str, width: int, height: int) -> dict[str, Any]:
    """Keyword arguments for the diffusers pipeline call, minus `image`, `generator` and the callback.

    True CFG only runs when `true_cfg_scale > 1` and a negative prompt is given, so an empty negative prompt
    becomes " " in that case (the Qwen-Image recommendation) and is left out otherwise (no warning, no second
    pass). img2img on a Lightning variant stays on the distilled timesteps (`lightning_img2img_steps`); other
    variants stretch the schedule so exactly `request.steps` steps run (`img2img_inference_steps`).
    """
    kwargs: dict[str, Any] = {
        "prompt": request.prompt,
        "true_cfg_scale": request.true_cfg_scale,
        "width": width,
        "height": height,
        "num_inference_steps": request.steps,
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        "output_type": "pil",
    }
    if negative_prompt_used(request):
        kwargs["negative_prompt"] = request.negative_prompt or " "
    if mode == "img2img":
        kwargs["strength"] = IMG2IMG_STRENGTH
        if not variant_spec(request.variant).lightning:
            kwargs["num_inference_steps"] = img2img_inference_steps(request.steps)
    return kwargs


def png_text(request: PipelineRequest) -> dict[str, str]:
    """The PNG text chunks: enough to reproduce the image (prompt, seed, variant, steps, CFG, size)."""
    text = {
        "Software": PNG_SOFTWARE,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "negative_prompt_used": "yes" if negative_prompt_used(request) else "no",
        "seed": str(request.seed),
        "variant": request.variant,
        "steps": str(request.steps),
        "true_cfg_scale": f"{request.true_cfg_scale:g}",
        "width": str(request.width),
        "height": str(request.height),
    }
    if request.lora:
        text["lora"] = request.lora
        text["lora_scale"] = f"{request.lora_scale:g}"
    if request.init_image is not None:
        text["init_image"] = "yes"
    return text
