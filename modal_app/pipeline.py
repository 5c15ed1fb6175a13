"""The one Qwen-Image pipeline entry point: the Modal class, the `local` backend and the `tiny` backend all use it.

Its pure parts live in their own modules and are re-exported here (import them from `modal_app.pipeline`):
`modal_app.variants` (what each variant id means, the request limits), `modal_app.generation_request`
(validating a request dict into a `PipelineRequest`, the diffusers call arguments) and `modal_app.pipeline_errors`
(InvalidRequest, GenerationCancelled, UnsupportedEnvironment and `environment_error`).

What lives here, top to bottom:

1. Hardware: Modal GPU names, the offload mode a GPU's memory allows, whether Nunchaku is installed, built for
   the installed torch, and has kernels for the GPU.
2. LoRA adapters for the `bf16` and `tiny` variants.
3. Loading: `load_pipeline(variant)` builds the diffusers pipeline with a Nunchaku 4-bit transformer, diffusers'
   own BF16 transformer, or tiny random components, and places it on the GPU with the offload mode its memory
   allows. An ImportError or "no kernel image" while loading is a permanent UnsupportedEnvironment.
4. Running: `LoadedPipeline.generate` runs one request with a step callback (progress) that also stops the
   denoising loop, before the VAE decode, when a `threading.Event` is set (cancellation); seeds a
   `torch.Generator`; decodes in VAE tiles above ~1.6 MP; and encodes a PNG with the prompt, seed, variant and
   steps in its text metadata.
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
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modal_app import pins
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
from modal_app.pipeline_errors import (
    GPU_INSTALL_HINT,
    GenerationCancelled,
    InvalidRequest,
    UnsupportedEnvironment,
    environment_error,
)
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

# Names of the split-out modules that callers import from here (modal_app.pipeline stays the one entry point).
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

# ## Constants

CANCEL_JOIN_TIMEOUT_S = 120.0  # how long stream() waits for the denoising thread after a cancel

# Compute capabilities the pinned Nunchaku wheel (v1.1.0, torch 2.8, CUDA 12.8) has kernels for (setup.py
# get_sm_targets, https://github.com/nunchaku-tech/nunchaku/blob/v1.1.0/setup.py): Turing, Ampere (A100 and
# A10/A40), Ada (L4, L40S), consumer/workstation Blackwell (sm_120a). Hopper (H100/H200, sm_90) and B200 (sm_100)
# have none ("Hopper does not have 4-bit tensor cores", nunchaku-tech/ComfyUI-nunchaku#76); sm_121 (GB10) needs
# nvcc >= 13.0 (setup.py `support_sm121`), which the CUDA 12.8 wheel was not built with.
NUNCHAKU_CAPABILITIES = frozenset({(7, 5), (8, 0), (8, 6), (8, 9), (12, 0)})

# The VAE decodes in tiles above this many output pixels (~1.6 MP; 1248x1248 is under, 1280x1280 over): an untiled
# decode at 2048x2048 (4 MP) needs several GB on top of the ~30 GB resident pipeline on a 40-48 GB card.
VAE_TILING_MIN_PIXELS = 1_600_000


class _StopDenoising(Exception):
    """Raised from the step callback to leave the diffusers loop at once (no VAE decode after a cancel)."""


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


def torch_minor_of_nunchaku(version: str) -> str | None:
    """The torch minor a Nunchaku wheel was built for: `1.1.0+torch2.8` -> `2.8`, `1.2.1+cu12.8torch2.9` -> `2.9`."""
    _, _, local = version.partition("+")
    _, found, tail = local.partition("torch")
    if not found:
        return None
    parts = tail.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(x.isdigit() for x in parts[:2]) else None


def nunchaku_torch_mismatch(nunchaku_version: str, torch_version: str) -> str | None:
    """Why a Nunchaku wheel cannot run on this torch, or None.

    Nunchaku's setup.py appends `+torch<major.minor>` to the version and compiles `nunchaku._C` against that torch,
    so on any other minor `import nunchaku` fails with undefined symbols.
    """
    built_for = torch_minor_of_nunchaku(nunchaku_version)
    running = ".".join(torch_version.split("+")[0].split(".")[:2])
    if built_for is None or built_for == running:
        return None
    return (
        f"Nunchaku {nunchaku_version} was built for torch {built_for} but torch {torch_version} is installed, "
        f"so `nunchaku._C` cannot load; {GPU_INSTALL_HINT} (torch {pins.TORCH_VERSION}, "
        f"wheel {pins.NUNCHAKU_WHEEL_URL}), never the `[ml]` extra's torch next to Nunchaku"
    )


def nunchaku_install_problem(*, torch_version: str | None = None) -> str | None:
    """None when the importable `nunchaku` is Nunchaku (MIT Han Lab's) built for the installed torch; otherwise
    what is wrong, for humans.

    PyPI's `nunchaku` is an unrelated statistics package with the same import name; a Nunchaku wheel for another
    torch minor cannot import. This looks at files and distribution metadata only; it imports nothing.
    `torch_version` defaults to the installed torch distribution's.
    """
    install = f"install the release wheel by URL: pip install '{pins.NUNCHAKU_WHEEL_URL}'"
    spec = importlib.util.find_spec("nunchaku")
    if spec is None:
        return f"Nunchaku is not installed; {install} (never `pip install nunchaku`: that is another project)"
    locations = list(spec.submodule_search_locations or [])
    if any(os.path.isdir(os.path.join(location, "models")) for location in locations):
        try:
            nunchaku_version = importlib.metadata.version("nunchaku")
            torch_version = torch_version or importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            return None  # a source checkout on sys.path, or no torch: the import itself will tell
        return nunchaku_torch_mismatch(nunchaku_version, torch_version)
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

            # from_pipe carries a component over only if its type is exactly the one the signature names, so
            # Nunchaku's transformer (a QwenImageTransformer2DModel subclass) would be dropped: pass every
            # component img2img takes explicitly.
            expected, _optional = QwenImageImg2ImgPipeline._get_signature_keys(QwenImageImg2ImgPipeline)
            shared = {name: part for name, part in self.pipe.components.items() if name in expected}
            self._img2img = QwenImageImg2ImgPipeline.from_pipe(self.pipe, **shared)
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

        `on_step(step, total)` runs after each denoising step (step counts from 1; total is the number of steps
        this run executes: request.steps, or fewer for img2img on a Lightning variant, see `denoising_steps`).
        Setting `cancel` stops the loop after the current step and raises `GenerationCancelled`: the callback
        raises out of the diffusers loop, so no VAE decode runs after a cancel. The VAE decodes in tiles above
        VAE_TILING_MIN_PIXELS. A load-time-like failure (ImportError, "no kernel image") is UnsupportedEnvironment.
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
            set_vae_tiling(pipe.vae, request.width, request.height)
            total = denoising_steps(request, mode=mode)
            progress = {"done": 0}

            def on_step_end(_p: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                progress["done"] = index + 1
                if on_step is not None:
                    on_step(index + 1, total)
                if cancel is not None and cancel.is_set() and index + 1 < total:
                    raise _StopDenoising  # leaves the loop before the remaining steps and the VAE decode
                return tensors

            started = time.perf_counter()
            try:
                with torch.inference_mode():
                    output = pipe(
                        **kwargs,
                        generator=torch.Generator(device="cpu").manual_seed(request.seed),
                        callback_on_step_end=on_step_end,
                        callback_on_step_end_tensor_inputs=["latents"],
                    )
            except _StopDenoising:
                raise GenerationCancelled(f"cancelled after step {progress['done']} of {total}") from None
            except (ImportError, RuntimeError, OSError) as exc:
                unsupported = environment_error(exc, variant=spec.name)
                if unsupported is None:
                    raise
                raise unsupported from exc
            inference_s = time.perf_counter() - started

        started = time.perf_counter()
        image = output.images[0]
        if image.size != (request.width, request.height):
            image = image.resize((request.width, request.height), Image.Resampling.LANCZOS)
        png = encode_png(image, png_text(request))
        encode_s = time.perf_counter() - started
        return PipelineOutput(png, image, request, {"inference_s": inference_s, "encode_s": encode_s})


def vae_tiling_needed(width: int, height: int) -> bool:
    """Whether a request of this size decodes its latents in tiles (above VAE_TILING_MIN_PIXELS)."""
    return width * height > VAE_TILING_MIN_PIXELS


def set_vae_tiling(vae: Any, width: int, height: int) -> bool:
    """Turn the VAE's tiled decode on for large requests and off again for the others; returns the setting.

    Decided on the requested size (the `tiny` variant renders smaller, where tiling changes nothing).
    """
    tiled = vae_tiling_needed(width, height)
    if tiled:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    return tiled


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
        try:
            pipe = _from_hub(spec, pipeline_class, scheduler, rank=rank)
        except (ImportError, RuntimeError, OSError) as exc:
            unsupported = environment_error(exc, variant=variant)
            if unsupported is None:
                raise
            raise unsupported from exc
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
        # Lightning variants run without true CFG, so a negative prompt (a style's) is not used there.
        "negative_prompt_used": negative_prompt_used(request),
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
