"""LoRA adapters for the `bf16` and `tiny` variants: custom LoRAs applied through forward hooks and switched per
request, or fused into the weights for good (the Lightning LoRA of `bf16`).

torch, diffusers, safetensors and huggingface_hub are imported inside functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modal_app.pipeline_errors import InvalidRequest


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
