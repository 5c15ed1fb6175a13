"""Every version pin of the inference stack, in one place.

The Modal image (`qwen_generator.py`), the weight loading code (`pipeline.py`) and the docs read these names;
nothing else in the repository spells a version of torch, diffusers, transformers, Nunchaku or a model repo.
This module is plain data (standard library only) so that it imports anywhere, including on a laptop with
neither torch nor Modal installed.

Why these versions (sources: the Nunchaku repository, https://github.com/nunchaku-tech/nunchaku (its
releases page for the wheel names, `.github/workflows/release-build.yaml` at tag v1.1.0 for the build matrix,
`docs/source/installation/installation.rst` for the install); diffusers' release notes,
https://github.com/huggingface/diffusers/releases):

- Nunchaku is NOT on PyPI. PyPI's `nunchaku` is an unrelated statistics package with the same import name,
  so the image installs the GitHub release wheel by URL and no requirement anywhere says bare `nunchaku`.
- The wheel is built per Python minor and per torch minor (`nunchaku-<ver>+torch<X.Y>-cp3N-cp3N-…whl` up to
  v1.1.0). v1.1.0's release matrix builds torch 2.8 against CUDA 12.8, which is what PyPI's `torch==2.8.0`
  is, so torch is pinned to that minor and Python to the wheel's `cp312`.
- diffusers is pinned to 0.36.0: 0.37 stopped passing `txt_seq_lens` to the Qwen transformer, which released
  Nunchaku (<= 1.2.x) still relies on; `QwenImageEditPlusPipeline` (Qwen-Image-Edit-2509) needs >= 0.36.0.
- transformers stays below 5 (diffusers 0.36.0 and Nunchaku 1.1 were released against 4.x); 4.57.6 is the
  version the tiny offline pipeline is tested with in this repository.

To move to a newer Nunchaku: change NUNCHAKU_VERSION / TORCH_VERSION / TORCHVISION_VERSION together, check the
release's asset name (v1.2.x adds a CUDA tag: `nunchaku-1.2.1+cu12.8torch2.9-cp312-cp312-linux_x86_64.whl`),
and run the import smoke test in docs/deploy.md on a GPU container before deploying.
"""

from __future__ import annotations

from dataclasses import dataclass

# ## Python, torch and the Nunchaku wheel

PYTHON_VERSION = "3.12"
PYTHON_TAG = "cp312"

TORCH_VERSION = "2.8.0"
TORCHVISION_VERSION = "0.23.0"  # the torchvision release built for torch 2.8; Nunchaku's wheel depends on it

NUNCHAKU_VERSION = "1.1.0"
NUNCHAKU_RELEASES = "https://github.com/nunchaku-tech/nunchaku/releases/download"


def nunchaku_wheel_url(
    version: str = NUNCHAKU_VERSION, torch_version: str = TORCH_VERSION, python_tag: str = PYTHON_TAG
) -> str:
    """The GitHub release asset for a Nunchaku version, torch minor and CPython tag (naming of v1.0-v1.1)."""
    torch_minor = ".".join(torch_version.split(".")[:2])
    wheel = f"nunchaku-{version}+torch{torch_minor}-{python_tag}-{python_tag}-linux_x86_64.whl"
    return f"{NUNCHAKU_RELEASES}/v{version}/{wheel}"


NUNCHAKU_WHEEL_URL = nunchaku_wheel_url()

# ## The Python packages of the image

DIFFUSERS_VERSION = "0.36.0"
TRANSFORMERS_VERSION = "4.57.6"  # < 5, see the module docstring

IMAGE_PACKAGES: tuple[str, ...] = (
    f"torch=={TORCH_VERSION}",
    f"torchvision=={TORCHVISION_VERSION}",
    f"diffusers=={DIFFUSERS_VERSION}",
    f"transformers=={TRANSFORMERS_VERSION}",
    "accelerate==1.12.0",
    "peft==0.17.1",
    "huggingface-hub==0.36.2",
    "safetensors==0.7.0",
    "sentencepiece==0.2.1",
    "protobuf==6.33.2",
    "einops==0.8.1",
    "pillow==11.3.0",
    "numpy==2.3.5",
)
"""Installed first, with uv, so the Nunchaku wheel (installed second) finds every dependency already pinned."""

# ## Model repositories

HF_CACHE_DIR = "/cache"
"""Mount point of the Modal Volume holding the Hugging Face cache (HF_HOME)."""


@dataclass(frozen=True, slots=True)
class ModelRepo:
    """A Hugging Face repository at a fixed revision."""

    repo_id: str
    revision: str


# Revisions are branch names until the first deploy resolves them: `docs/deploy.md` ("Pin the model
# revisions") shows how to replace each with the commit hash that was downloaded and tested.
QWEN_IMAGE = ModelRepo("Qwen/Qwen-Image", revision="main")
QWEN_IMAGE_EDIT_2509 = ModelRepo("Qwen/Qwen-Image-Edit-2509", revision="main")
NUNCHAKU_QWEN_IMAGE = ModelRepo("nunchaku-tech/nunchaku-qwen-image", revision="main")
NUNCHAKU_QWEN_IMAGE_EDIT_2509 = ModelRepo("nunchaku-tech/nunchaku-qwen-image-edit-2509", revision="main")
QWEN_IMAGE_LIGHTNING = ModelRepo("lightx2v/Qwen-Image-Lightning", revision="main")

# The Lightning LoRA fused into the BF16 transformer of the `bf16` variant (8 steps, true CFG off), the same
# distillation the Nunchaku lightning-8 checkpoint was built from.
LIGHTNING_LORA_FILES: dict[str, str] = {"bf16": "Qwen-Image-Lightning-8steps-V1.1-bf16.safetensors"}

# Nunchaku checkpoint file names; {precision} is "int4" (Turing/Ampere/Ada) or "fp4" (Blackwell), {rank} 32 or 128.
NUNCHAKU_FILES: dict[str, str] = {
    "lightning-4": "svdq-{precision}_r{rank}-qwen-image-lightningv1.0-4steps.safetensors",
    "lightning-8": "svdq-{precision}_r{rank}-qwen-image-lightningv1.1-8steps.safetensors",
    "base": "svdq-{precision}_r{rank}-qwen-image.safetensors",
    "edit": "lightning-251115/svdq-{precision}_r{rank}-qwen-image-edit-2509-lightning-8steps-251115.safetensors",
}
NUNCHAKU_RANKS = (32, 128)
NUNCHAKU_DEFAULT_RANK = 32
