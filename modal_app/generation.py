"""Running one request on a loaded pipeline: `LoadedPipeline.generate` runs it with a step callback (progress)
that also stops the denoising loop, before the VAE decode, when a `threading.Event` is set (cancellation); seeds a
`torch.Generator`; decodes in VAE tiles above ~1.6 MP; and encodes a PNG with the prompt, seed, variant and steps in
its text metadata. `modal_app.loading.load_pipeline` builds the `LoadedPipeline`.

torch, diffusers and PIL are imported inside functions.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modal_app.generation_request import (
    PipelineRequest,
    call_arguments,
    denoising_steps,
    png_text,
    render_size,
)
from modal_app.lora import LoraAdapters
from modal_app.pipeline_errors import GenerationCancelled, InvalidRequest, environment_error
from modal_app.variants import VariantSpec

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
