"""Loading a variant: `load_pipeline(variant)` builds the diffusers pipeline with a Nunchaku 4-bit transformer,
diffusers' own BF16 transformer (with the Lightning LoRA fused where the variant has one), or tiny random
components, and places it on the GPU with the offload mode its memory allows. An ImportError or "no kernel image"
while loading is a permanent UnsupportedEnvironment. `prefetch_weights` fills the Hugging Face cache without a GPU.

torch, diffusers, nunchaku and huggingface_hub are imported inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from modal_app import pins
from modal_app.generation import LoadedPipeline
from modal_app.hardware import check_nunchaku_environment, choose_offload, modal_gpu_name
from modal_app.lora import LoraAdapters
from modal_app.pipeline_errors import UnsupportedEnvironment, environment_error
from modal_app.variants import LIGHTNING_SCHEDULER_CONFIG, VariantSpec, nunchaku_file, variant_spec


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
