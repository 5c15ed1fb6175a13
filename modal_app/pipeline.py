"""The one Qwen-Image pipeline module: the Modal class, the `local` backend and the `tiny` backend all use it.

What lives here, top to bottom:

1. Variants: which weights, pipeline class, scheduler and defaults each variant id (`lightning-4`, `lightning-8`,
   `base`, `edit`, `bf16`, `tiny`) means.
2. Requests: validating a request dict into a `PipelineRequest` and turning it into pipeline call arguments
   (pure functions, no torch).
3. Loading: `load_pipeline(variant)` builds the diffusers pipeline with a Nunchaku 4-bit transformer, diffusers'
   own BF16 transformer, or tiny random components, and places it on the GPU with the offload mode its memory
   allows.
4. Running: `LoadedPipeline.generate` runs one request with a step callback (progress) that also stops the
   denoising loop when a `threading.Event` is set (cancellation), seeds a `torch.Generator`, and encodes a PNG
   with the prompt, seed, variant and steps in its text metadata.
5. Streaming adapters: `stream()` (a generator of progress/result events, for the Modal method) and
   `agenerate()` (an awaitable for asyncio backends).

Heavy libraries (torch, diffusers, nunchaku, PIL) are imported inside functions, so importing this module costs
nothing and works where they are not installed (the worker process of the `modal` backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import queue
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modal_app import pins

# ## Limits and constants

MIN_SIDE = 16
MAX_SIDE = 2048
SIDE_MULTIPLE = 16  # Qwen-Image latents are 8x downsampled and packed 2x2
MAX_STEPS = 100
MAX_TRUE_CFG_SCALE = 20.0
MAX_SEED = 2**32 - 1  # the database contract: generation_jobs.seed is 0..4294967295
MAX_PROMPT_CHARS = 4000
MAX_SEQUENCE_LENGTH = 512  # prompt tokens the text encoder sees (the pipelines allow up to 1024)
IMG2IMG_STRENGTH = 0.75  # text-to-image variants given an init image re-noise 75 % of it
DEFAULT_SIZE = 1024
PNG_SOFTWARE = "TenkaiGen"
CANCEL_JOIN_TIMEOUT_S = 120.0  # how long stream() waits for the denoising thread after a cancel

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

# Compute capabilities Nunchaku ships kernels for (setup.py get_sm_targets): Turing, Ampere (A100 and A10/A40),
# Ada (L4, L40S), consumer/workstation Blackwell. Hopper (H100/H200, sm_90) and B200 (sm_100) have none.
NUNCHAKU_CAPABILITIES = frozenset({(7, 5), (8, 0), (8, 6), (8, 9), (12, 0), (12, 1)})


class InvalidRequest(ValueError):
    """The request cannot be generated as asked (bad field, wrong variant, unreadable init image)."""


class GenerationCancelled(Exception):
    """The run was cancelled before its last denoising step."""


class UnsupportedEnvironment(RuntimeError):
    """This machine cannot run the variant (no CUDA, a GPU without Nunchaku kernels, PyPI's `nunchaku`)."""


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


def call_arguments(request: PipelineRequest, *, mode: str, width: int, height: int) -> dict[str, Any]:
    """Keyword arguments for the diffusers pipeline call, minus `image`, `generator` and the callback.

    True CFG only runs when `true_cfg_scale > 1` and a negative prompt is given, so an empty negative prompt
    becomes " " in that case (the Qwen-Image recommendation) and is left out otherwise (no warning, no second
    pass).
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
    if request.true_cfg_scale > 1.0:
        kwargs["negative_prompt"] = request.negative_prompt or " "
    if mode == "img2img":
        kwargs["strength"] = IMG2IMG_STRENGTH
        kwargs["num_inference_steps"] = img2img_inference_steps(request.steps)
    return kwargs


def png_text(request: PipelineRequest) -> dict[str, str]:
    """The PNG text chunks: enough to reproduce the image (prompt, seed, variant, steps, CFG, size)."""
    text = {
        "Software": PNG_SOFTWARE,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
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


def encode_png(image: Any, text: Mapping[str, str]) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)  # iTXt: UTF-8, so prompts in any script survive
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_init_image(data: bytes) -> Any:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.convert("RGB")
    except Exception as exc:  # PIL raises several types for unreadable or oversized input
        raise InvalidRequest(f"init_image: not a readable image ({exc})") from exc


# ## Hardware


def modal_gpu_name(device_name: str | None) -> str:
    """Map `torch.cuda.get_device_name()` to Modal's GPU type names (the keys of the price table)."""
    if not device_name:
        return "CPU"
    name = device_name.upper()
    for needle, modal_name in (
        ("H200", "H200"),
        ("H100", "H100"),
        ("B200", "B200"),
        ("RTX PRO 6000", "RTX-PRO-6000"),
        ("L40S", "L40S"),
        ("A100", "A100-80GB" if "80G" in name else "A100-40GB"),
        ("A10", "A10"),  # A10 and A10G
        ("L4", "L4"),
        ("T4", "T4"),
    ):
        if needle in name:
            return modal_name
    return device_name


def choose_offload(weights: str, gpu_memory_gib: float) -> str:
    """How to place a pipeline on a GPU of this size: "none", "model" or "sequential" (per layer).

    Resident sizes (the checkpoints' file sizes on huggingface.co): Nunchaku transformer ~12.7 GB + Qwen2.5-VL text
    encoder 16.6 GB + VAE ~0.3 GB ~= 30 GB; the BF16 transformer alone is 40.9 GB (~58 GB in all). Activations
    at 1024x1024 need a few GB on top. `gpu_memory_gib` is what Nunchaku's `get_gpu_memory()` reports
    (total // 2**30: L40S 44, A100-40GB 39, A10/L4 22, T4 14).
    """
    if weights == "tiny":
        return "none"
    if weights == "nunchaku":
        if gpu_memory_gib >= 36:
            return "none"
        return "model" if gpu_memory_gib > 18 else "sequential"
    if gpu_memory_gib >= 70:
        return "none"
    return "model" if gpu_memory_gib >= 46 else "sequential"


def nunchaku_install_problem() -> str | None:
    """None when the importable `nunchaku` is Nunchaku (MIT Han Lab's); otherwise what is wrong, for humans.

    PyPI's `nunchaku` is an unrelated statistics package with the same import name. This looks at files only;
    it imports nothing.
    """
    install = f"install the release wheel by URL: pip install '{pins.NUNCHAKU_WHEEL_URL}'"
    spec = importlib.util.find_spec("nunchaku")
    if spec is None:
        return f"Nunchaku is not installed; {install} (never `pip install nunchaku`: that is another project)"
    locations = list(spec.submodule_search_locations or [])
    if any(os.path.isdir(os.path.join(location, "models")) for location in locations):
        return None
    try:
        dist = importlib.metadata.distribution("nunchaku")
        found = f"`nunchaku` {dist.version} ({dist.metadata.get('Summary') or 'no summary'})"
    except importlib.metadata.PackageNotFoundError:
        found = f"a `nunchaku` module at {locations or spec.origin}"
    return (
        f"the installed {found} is PyPI's unrelated package, not the Nunchaku inference engine; "
        f"uninstall it (pip uninstall nunchaku) and {install}"
    )


def nunchaku_supports(capability: tuple[int, int]) -> bool:
    return tuple(capability) in NUNCHAKU_CAPABILITIES


# ## LoRA adapters (bf16 and tiny)


def resolve_lora_path(name: str) -> str:
    """A local `.safetensors` file, or `<org>/<repo>/<path/in/repo>.safetensors` downloaded from the Hub."""
    if Path(name).is_file():
        return name
    parts = name.split("/")
    if len(parts) < 3 or not name.endswith(".safetensors"):
        raise InvalidRequest(
            f"lora: {name!r} is neither a local .safetensors file nor '<org>/<repo>/<file>.safetensors'"
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return hf_hub_download(repo_id="/".join(parts[:2]), filename="/".join(parts[2:]))
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise InvalidRequest(f"lora: {name!r} was not found on the Hub ({exc.__class__.__name__})") from exc


@dataclass(slots=True)
class _LoraLayer:
    module_name: str
    down: Any  # lora_A, (rank, in_features)
    up: Any  # lora_B, (out_features, rank)
    scale: float


class LoraAdapters:
    """Custom LoRAs on a diffusers transformer, applied through forward hooks and switchable per request.

    Each targeted `nn.Linear` gets `y += scale * up(down(x))`. Switching adapters only removes and adds hooks,
    so the base weights are never modified and never drift; nothing depends on `peft`. Checkpoints in the
    Kohya/`diffusion_model.`/`lora_unet_` formats are converted by diffusers' `QwenImagePipeline.lora_state_dict`.
    `fuse()` merges a LoRA into the weights for good instead (the Lightning LoRA of the `bf16` variant).
    """

    def __init__(self, transformer: Any, *, cache_size: int = 4) -> None:
        self.transformer = transformer
        self.active: str | None = None
        self.active_strength: float = 1.0
        self.fused: list[str] = []
        self._handles: list[Any] = []
        self._cache: dict[str, list[_LoraLayer]] = {}
        self._cache_size = cache_size

    def activate(self, name: str | None, strength: float = 1.0) -> None:
        """Apply LoRA `name` at `strength` (multiplies its own alpha/rank scale) to the next calls; None: none."""
        if (name, strength) == (self.active, self.active_strength):
            return
        layers = self._layers(name) if name else []
        self._remove_hooks()
        for layer in layers:
            module = self.transformer.get_submodule(layer.module_name)
            self._handles.append(module.register_forward_hook(_lora_hook(layer, strength)))
        self.active, self.active_strength = name, strength

    def fuse(self, path: str, *, name: str | None = None) -> None:
        """Merge a LoRA into the transformer's weights: `W += scale * up @ down` (permanent)."""
        import torch

        for layer in self._load(path, name or path):
            weight = self.transformer.get_submodule(layer.module_name).weight
            with torch.no_grad():
                delta = layer.up.float() @ layer.down.float()
                weight.add_((layer.scale * delta).to(device=weight.device, dtype=weight.dtype))
        self.fused.append(name or path)

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.active = None

    def _layers(self, name: str) -> list[_LoraLayer]:
        if name not in self._cache:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[name] = self._load(resolve_lora_path(name), name)
        return self._cache[name]

    def _load(self, path: str, name: str) -> list[_LoraLayer]:
        import torch
        from diffusers import QwenImagePipeline
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            raw = load_file(path, device="cpu")
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
            converted = QwenImagePipeline.lora_state_dict(raw)
        except Exception as exc:
            raise InvalidRequest(f"lora: {name!r} is not a readable Qwen-Image LoRA ({exc})") from exc
        state = {
            key.replace(".lora_down.weight", ".lora_A.weight").replace(
                ".lora_up.weight", ".lora_B.weight"
            ): value
            for key, value in converted.items()
        }
        config = json.loads(metadata.get("lora_adapter_metadata", "{}") or "{}")
        rank, alpha = config.get("r"), config.get("lora_alpha")
        default_scale = float(alpha) / float(rank) if rank and alpha else 1.0

        layers: list[_LoraLayer] = []
        for key, down in state.items():
            if not key.endswith(".lora_A.weight"):
                continue
            base = key.removesuffix(".lora_A.weight")
            module_name = base.removeprefix("transformer.")
            up = state.get(f"{base}.lora_B.weight")
            layer_alpha = state.get(f"{base}.alpha")
            try:
                module = self.transformer.get_submodule(module_name)
            except AttributeError:
                module = None
            if up is None or not isinstance(module, torch.nn.Linear):
                raise InvalidRequest(
                    f"lora: {name!r} targets {module_name!r}, not a linear layer of this model"
                )
            weight = module.weight
            layers.append(
                _LoraLayer(
                    module_name,
                    down.to(device=weight.device, dtype=weight.dtype),
                    up.to(device=weight.device, dtype=weight.dtype),
                    float(layer_alpha) / down.shape[0] if layer_alpha is not None else default_scale,
                )
            )
        if not layers:
            raise InvalidRequest(f"lora: {name!r} holds no lora_A/lora_B weights for the transformer")
        return layers


def _lora_hook(layer: _LoraLayer, strength: float = 1.0) -> Callable[[Any, tuple[Any, ...], Any], Any]:
    import torch.nn.functional as F

    def hook(_module: Any, inputs: tuple[Any, ...], output: Any) -> Any:
        x = inputs[0]
        if layer.down.device != x.device:  # the module was offloaded and moved since activation
            layer.down, layer.up = layer.down.to(x.device), layer.up.to(x.device)
        delta = F.linear(F.linear(x.to(layer.down.dtype), layer.down), layer.up)
        return output + (strength * layer.scale) * delta.to(output.dtype)

    return hook


# ## Loading


@dataclass(slots=True)
class PipelineOutput:
    png: bytes
    image: Any
    request: PipelineRequest
    timings: dict[str, float] = field(default_factory=dict)


class LoadedPipeline:
    """A loaded variant, ready to run requests one at a time (a lock serialises concurrent callers)."""

    def __init__(
        self,
        spec: VariantSpec,
        pipe: Any,
        *,
        device: str,
        gpu_type: str,
        offload: str,
        load_s: float,
    ) -> None:
        self.spec = spec
        self.pipe = pipe
        self.device = device
        self.gpu_type = gpu_type
        self.offload = offload
        self.load_s = load_s
        self.lora = LoraAdapters(pipe.transformer) if spec.accepts_lora else None
        self._img2img: Any = None
        self._lock = threading.Lock()  # one run at a time
        self._load_lock = threading.Lock()
        self._load_reported = False
        pipe.set_progress_bar_config(disable=True)

    def take_load_s(self) -> float:
        """The load time, charged once: to the first request this pipeline serves (0.0 afterwards)."""
        with self._load_lock:
            if self._load_reported:
                return 0.0
            self._load_reported = True
            return self.load_s

    def _pipeline_for(self, mode: str) -> Any:
        if mode != "img2img":
            return self.pipe
        if self._img2img is None:
            from diffusers import QwenImageImg2ImgPipeline

            self._img2img = QwenImageImg2ImgPipeline.from_pipe(self.pipe)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def generate(
        self,
        request: PipelineRequest,
        *,
        on_step: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> PipelineOutput:
        """Run one request. Blocking; call it from a worker thread.

        `on_step(step, total)` runs after each denoising step (step counts from 1, total == request.steps).
        Setting `cancel` stops the loop after the current step and raises `GenerationCancelled`.
        """
        import torch
        from PIL import Image

        spec = self.spec
        if (
            request.lora and not spec.accepts_lora
        ):  # requests are checked in from_dict; this guards the weights
            raise InvalidRequest(f"lora: variant {spec.name!r} cannot apply custom LoRAs; use 'bf16'")
        if spec.task == "edit" and request.init_image is None:
            raise InvalidRequest(f"init_image: variant {spec.name!r} edits an image and needs one")
        init = read_init_image(request.init_image) if request.init_image is not None else None
        mode = "edit" if spec.task == "edit" else ("img2img" if init is not None else "text-to-image")
        width, height = render_size(spec, request.width, request.height)
        kwargs = call_arguments(request, mode=mode, width=width, height=height)
        if init is not None:
            kwargs["image"] = [init] if mode == "edit" else init

        with self._lock:
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled("cancelled before the first step")
            pipe = self._pipeline_for(mode)
            if self.lora is not None:
                self.lora.activate(request.lora, request.lora_scale)
            total = request.steps
            progress = {"done": 0, "interrupted": False}

            def on_step_end(p: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                progress["done"] = index + 1
                if on_step is not None:
                    on_step(index + 1, total)
                if cancel is not None and cancel.is_set() and index + 1 < total:
                    p._interrupt = True  # the loop skips the remaining steps
                    progress["interrupted"] = True
                return tensors

            started = time.perf_counter()
            with torch.inference_mode():
                output = pipe(
                    **kwargs,
                    generator=torch.Generator(device="cpu").manual_seed(request.seed),
                    callback_on_step_end=on_step_end,
                    callback_on_step_end_tensor_inputs=["latents"],
                )
            inference_s = time.perf_counter() - started
        if progress["interrupted"]:
            raise GenerationCancelled(f"cancelled after step {progress['done']} of {total}")

        started = time.perf_counter()
        image = output.images[0]
        if image.size != (request.width, request.height):
            image = image.resize((request.width, request.height), Image.Resampling.LANCZOS)
        png = encode_png(image, png_text(request))
        encode_s = time.perf_counter() - started
        return PipelineOutput(png, image, request, {"inference_s": inference_s, "encode_s": encode_s})


def load_pipeline(
    variant: str,
    *,
    rank: int = pins.NUNCHAKU_DEFAULT_RANK,
    device: str | None = None,
    components: Mapping[str, Any] | None = None,
) -> LoadedPipeline:
    """Load a variant.

    `components` replaces the weights from the Hub (transformer, vae, text_encoder, tokenizer, processor), so a
    variant's wiring (pipeline class, scheduler, LoRA, placement) can be exercised with tiny random components;
    the `tiny` variant always uses `tiny_components.build_tiny_components()`.
    """
    import torch

    spec = variant_spec(variant)
    started = time.perf_counter()
    device = device or spec.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UnsupportedEnvironment(f"variant {variant!r} needs a CUDA GPU and torch sees none")
    if components is None and spec.weights == "nunchaku":
        check_nunchaku_environment()  # before any download
    if components is None and spec.weights == "tiny":
        from modal_app.tiny_components import build_tiny_components

        components = build_tiny_components(with_processor=spec.task == "edit")

    pipeline_class = _pipeline_class(spec)
    scheduler = _scheduler(spec, components)
    if components is not None:
        parts = dict(components)
        parts["scheduler"] = scheduler
        if spec.task != "edit":
            parts.pop("processor", None)
        pipe = pipeline_class(**parts)
        weights = "tiny"
    else:
        pipe = _from_hub(spec, pipeline_class, scheduler, rank=rank)
        weights = spec.weights

    gpu_type, memory_gib = _gpu(device)
    offload = _place(pipe, weights, device, memory_gib)
    return LoadedPipeline(
        spec,
        pipe,
        device=device,
        gpu_type=gpu_type,
        offload=offload,
        load_s=time.perf_counter() - started,
    )


def check_nunchaku_environment() -> None:
    """Raise UnsupportedEnvironment unless Nunchaku is installed and the current GPU has its kernels."""
    import torch

    problem = nunchaku_install_problem()
    if problem:
        raise UnsupportedEnvironment(problem)
    capability = tuple(torch.cuda.get_device_capability())
    if not nunchaku_supports(capability):
        raise UnsupportedEnvironment(
            f"Nunchaku has no kernels for this GPU ({torch.cuda.get_device_name()}, sm_{capability[0]}"
            f"{capability[1]}); use L40S, A10, L4 or A100, or the 'bf16' variant"
        )


def _pipeline_class(spec: VariantSpec) -> Any:
    from diffusers import QwenImageEditPlusPipeline, QwenImagePipeline

    return QwenImageEditPlusPipeline if spec.task == "edit" else QwenImagePipeline


def _scheduler(spec: VariantSpec, components: Mapping[str, Any] | None) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    if spec.lightning:
        return FlowMatchEulerDiscreteScheduler.from_config(LIGHTNING_SCHEDULER_CONFIG)
    if components is not None and "scheduler" in components:
        return components["scheduler"]
    assert spec.model is not None
    return FlowMatchEulerDiscreteScheduler.from_pretrained(
        spec.model.repo_id, subfolder="scheduler", revision=spec.model.revision
    )


def _compute_dtype() -> Any:
    import torch

    major, _minor = torch.cuda.get_device_capability()
    return torch.float16 if major < 8 else torch.bfloat16  # Turing has no bf16 tensor cores


def _from_hub(spec: VariantSpec, pipeline_class: Any, scheduler: Any, *, rank: int) -> Any:
    assert spec.model is not None
    dtype = _compute_dtype()
    if spec.weights == "bf16":
        pipe = pipeline_class.from_pretrained(
            spec.model.repo_id, revision=spec.model.revision, scheduler=scheduler, torch_dtype=dtype
        )
        if spec.lightning_lora:
            from huggingface_hub import hf_hub_download

            lightning = pins.QWEN_IMAGE_LIGHTNING
            path = hf_hub_download(lightning.repo_id, spec.lightning_lora, revision=lightning.revision)
            LoraAdapters(pipe.transformer).fuse(path, name=f"{lightning.repo_id}/{spec.lightning_lora}")
        return pipe
    from huggingface_hub import hf_hub_download
    from nunchaku import NunchakuQwenImageTransformer2DModel
    from nunchaku.utils import get_precision

    assert spec.nunchaku is not None
    path = hf_hub_download(
        spec.nunchaku.repo_id,
        nunchaku_file(spec.name, rank=rank, precision=get_precision()),
        revision=spec.nunchaku.revision,
    )
    transformer = NunchakuQwenImageTransformer2DModel.from_pretrained(path, torch_dtype=dtype)
    # Passing the transformer keeps diffusers from downloading the 41 GB BF16 one.
    return pipeline_class.from_pretrained(
        spec.model.repo_id,
        revision=spec.model.revision,
        transformer=transformer,
        scheduler=scheduler,
        torch_dtype=dtype,
    )


def _gpu(device: str) -> tuple[str, float]:
    import torch

    if not device.startswith("cuda"):
        return "CPU", 0.0
    properties = torch.cuda.get_device_properties(torch.device(device))
    return modal_gpu_name(properties.name), properties.total_memory // 2**30


def _place(pipe: Any, weights: str, device: str, memory_gib: float) -> str:
    if not device.startswith("cuda"):
        pipe.to(device)
        return "none"
    offload = choose_offload(weights, memory_gib)
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        if weights == "nunchaku":  # Nunchaku streams its own blocks; keep diffusers' hooks off it
            pipe.transformer.set_offload(True, use_pin_memory=False, num_blocks_on_gpu=1)
            pipe._exclude_from_cpu_offload.append("transformer")
        pipe.enable_sequential_cpu_offload(device=device)
    return offload


def prefetch_weights(
    variant: str, *, rank: int = pins.NUNCHAKU_DEFAULT_RANK, precision: str = "int4"
) -> list[str]:
    """Download a variant's weights into the Hugging Face cache (volume warm-up; no GPU needed)."""
    from huggingface_hub import hf_hub_download, snapshot_download

    spec = variant_spec(variant)
    if spec.model is None:
        return []
    fetched = []
    ignore = ["transformer/*"] if spec.weights == "nunchaku" else []
    fetched.append(
        snapshot_download(spec.model.repo_id, revision=spec.model.revision, ignore_patterns=[*ignore, "*.md"])
    )
    if spec.nunchaku is not None:
        fetched.append(
            hf_hub_download(
                spec.nunchaku.repo_id,
                nunchaku_file(spec.name, rank=rank, precision=precision),
                revision=spec.nunchaku.revision,
            )
        )
    if spec.lightning_lora:
        lightning = pins.QWEN_IMAGE_LIGHTNING
        fetched.append(hf_hub_download(lightning.repo_id, spec.lightning_lora, revision=lightning.revision))
    return fetched


# ## Streaming adapters


def result_event(output: PipelineOutput, loaded: LoadedPipeline, *, load_s: float) -> dict[str, Any]:
    """The final event of a Modal generate call: the PNG, the parameters actually used, timings, hardware."""
    request = output.request
    return {
        "type": "result",
        "png": output.png,
        "seed": request.seed,
        "steps": request.steps,
        "variant": request.variant,
        "width": request.width,
        "height": request.height,
        "true_cfg_scale": request.true_cfg_scale,
        "timings": {"load_s": load_s, **output.timings},
        "gpu_type": loaded.gpu_type,
        "offload": loaded.offload,
    }


def error_event(exc: InvalidRequest) -> dict[str, Any]:
    return {"type": "error", "code": "bad_request", "message": str(exc)}


_DONE = object()


def stream(loaded: LoadedPipeline, request: PipelineRequest) -> Iterator[dict[str, Any]]:
    """Run a request in a thread; yield `{"type": "progress", "step", "total"}` per step, then the result.

    An `InvalidRequest` becomes a final `{"type": "error"}` event. Closing the generator early (GeneratorExit)
    or an exception thrown into it (Modal's InputCancellation when the call is cancelled) sets the cancel
    event, and the generator waits for the denoising thread to stop before it exits.
    """
    events: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["output"] = loaded.generate(
                request,
                on_step=lambda step, total: events.put({"type": "progress", "step": step, "total": total}),
                cancel=cancel,
            )
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            events.put(_DONE)

    load_s = loaded.take_load_s()
    thread = threading.Thread(target=work, name="qwen-generate", daemon=True)
    thread.start()
    try:
        while True:
            try:
                event = events.get(timeout=0.5)  # a timeout keeps the thread responsive to signals
            except queue.Empty:
                continue
            if event is _DONE:
                break
            yield event
        error = outcome.get("error")
        if isinstance(error, InvalidRequest):
            yield error_event(error)
            return
        if error is not None:
            raise error
        yield result_event(outcome["output"], loaded, load_s=load_s)
    finally:
        cancel.set()
        thread.join(CANCEL_JOIN_TIMEOUT_S)


async def agenerate(
    loaded: LoadedPipeline,
    request: PipelineRequest,
    on_progress: Callable[[int, int], Awaitable[None]],
) -> PipelineOutput:
    """Run a request in a worker thread and await it; progress is awaited in order on the event loop.

    Cancelling the awaiting task sets the cancel event, waits for the denoising loop to stop, and re-raises
    `CancelledError`. An exception from `on_progress` cancels the run the same way and propagates.
    """
    loop = asyncio.get_running_loop()
    steps: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    cancel = threading.Event()

    def on_step(step: int, total: int) -> None:
        loop.call_soon_threadsafe(steps.put_nowait, (step, total))

    run = asyncio.ensure_future(asyncio.to_thread(loaded.generate, request, on_step=on_step, cancel=cancel))
    getter: asyncio.Future[tuple[int, int]] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(steps.get())
            done, _pending = await asyncio.wait({run, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await on_progress(*getter.result())
                continue
            getter.cancel()
            break
        while not steps.empty():  # steps reported just before the run finished
            await on_progress(*steps.get_nowait())
        return run.result()
    except BaseException:
        cancel.set()
        if getter is not None:
            getter.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.shield(run)  # the thread cannot be killed: wait until the loop has stopped
        raise
