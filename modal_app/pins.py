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

import hashlib
import json
from dataclasses import asdict, dataclass

# ## The release this app belongs to

PACKAGE_VERSION = "0.1.0"
"""The `tenkaigen` version (pyproject.toml) this Modal app is deployed from. The container has no installed
distribution to ask, so it reports this constant; a test keeps it equal to pyproject.toml's `version`."""

# ## Python, torch and the Nunchaku wheel

PYTHON_VERSION = "3.12"
PYTHON_TAG = "cp312"

TORCH_VERSION = "2.8.0"
TORCHVISION_VERSION = "0.23.0"  # the torchvision release built for torch 2.8; Nunchaku's wheel depends on it

NUNCHAKU_VERSION = "1.1.0"
NUNCHAKU_RELEASES = "https://github.com/nunchaku-tech/nunchaku/releases/download"


NUNCHAKU_WHEEL_SHA256: str | None = None
"""The wheel's SHA-256, appended to its URL as `#sha256=` (uv and pip then refuse any other file). Unknown until
someone downloads the release asset and hashes it (`sha256sum nunchaku-1.1.0+torch2.8-cp312-cp312-linux_x86_64.whl`);
docs/deploy.md ("Pin the weights and the wheel") says how. None = installed by URL without a hash check."""


def nunchaku_wheel_url(
    version: str = NUNCHAKU_VERSION,
    torch_version: str = TORCH_VERSION,
    python_tag: str = PYTHON_TAG,
    sha256: str | None = None,
) -> str:
    """The GitHub release asset for a Nunchaku version, torch minor and CPython tag (naming of v1.0-v1.1), with
    `#sha256=<hash>` when the hash is known."""
    torch_minor = ".".join(torch_version.split(".")[:2])
    wheel = f"nunchaku-{version}+torch{torch_minor}-{python_tag}-{python_tag}-linux_x86_64.whl"
    url = f"{NUNCHAKU_RELEASES}/v{version}/{wheel}"
    if sha256 is None:
        return url
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256: {sha256!r} is not 64 lower-case hex digits")
    return f"{url}#sha256={sha256}"


NUNCHAKU_WHEEL_URL = nunchaku_wheel_url(sha256=NUNCHAKU_WHEEL_SHA256)

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


    @property
    def pinned(self) -> bool:
        """Whether the revision is a full commit hash (40 hex digits) rather than a branch or tag that can move."""
        return len(self.revision) == 40 and all(c in "0123456789abcdef" for c in self.revision)


UNPINNED = "main"
"""The branch every repository is read at until its commit hash is filled in below. The hashes cannot be known
without asking the Hub, so they are left to the first deploy: `docs/deploy.md` ("Pin the weights and the wheel")
shows how to read each hash from the warmed volume (`modal run modal_app/qwen_generator.py::model_revisions`) and
paste it here. While any repository of a variant is unpinned, every cold start asks the Hub which commit `main`
is; once all are pinned, the image sets HF_HUB_OFFLINE=1 and containers read the volume only."""

QWEN_IMAGE = ModelRepo("Qwen/Qwen-Image", revision=UNPINNED)
QWEN_IMAGE_EDIT_2509 = ModelRepo("Qwen/Qwen-Image-Edit-2509", revision=UNPINNED)
NUNCHAKU_QWEN_IMAGE = ModelRepo("nunchaku-tech/nunchaku-qwen-image", revision=UNPINNED)
NUNCHAKU_QWEN_IMAGE_EDIT_2509 = ModelRepo("nunchaku-tech/nunchaku-qwen-image-edit-2509", revision=UNPINNED)
QWEN_IMAGE_LIGHTNING = ModelRepo("lightx2v/Qwen-Image-Lightning", revision=UNPINNED)

MODEL_REPOS: tuple[ModelRepo, ...] = (
    QWEN_IMAGE,
    QWEN_IMAGE_EDIT_2509,
    NUNCHAKU_QWEN_IMAGE,
    NUNCHAKU_QWEN_IMAGE_EDIT_2509,
    QWEN_IMAGE_LIGHTNING,
)


def unpinned_repos() -> list[str]:
    """The repositories still read at a branch, not a commit hash."""
    return [repo.repo_id for repo in MODEL_REPOS if not repo.pinned]


def hub_offline() -> bool:
    """HF_HUB_OFFLINE for the GPU containers: on once every repository is pinned to a commit (the volume then holds
    exactly those files after `download_weights`), so a cold start never waits for the Hub."""
    return not unpinned_repos()

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


# ## The version a deployed app reports


def pins_digest() -> str:
    """12 hex digits identifying everything above: Python, packages, wheel, model repositories and revisions, files.

    The worker and the deployed app compute it from their own copy of this module, so two different digests mean
    the app was deployed from other pins than the worker runs with."""
    data = {
        "python": PYTHON_VERSION,
        "packages": list(IMAGE_PACKAGES),
        "wheel": NUNCHAKU_WHEEL_URL,
        "repos": [asdict(repo) for repo in MODEL_REPOS],
        "lightning_lora": LIGHTNING_LORA_FILES,
        "nunchaku_files": NUNCHAKU_FILES,
        "ranks": [list(NUNCHAKU_RANKS), NUNCHAKU_DEFAULT_RANK],
    }
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:12]
