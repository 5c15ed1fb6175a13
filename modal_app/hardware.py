"""The hardware a pipeline runs on: Modal's GPU names, the offload mode a GPU's memory allows, and whether
Nunchaku is installed, built for the installed torch, and has kernels for the GPU.

Imports nothing heavy at module level (torch only inside `check_nunchaku_environment`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from modal_app import pins
from modal_app.pipeline_errors import GPU_INSTALL_HINT, UnsupportedEnvironment

# Compute capabilities the pinned Nunchaku wheel (v1.1.0, torch 2.8, CUDA 12.8) has kernels for (setup.py
# get_sm_targets, https://github.com/nunchaku-tech/nunchaku/blob/v1.1.0/setup.py): Turing, Ampere (A100 and
# A10/A40), Ada (L4, L40S), consumer/workstation Blackwell (sm_120a). Hopper (H100/H200, sm_90) and B200 (sm_100)
# have none ("Hopper does not have 4-bit tensor cores", nunchaku-tech/ComfyUI-nunchaku#76); sm_121 (GB10) needs
# nvcc >= 13.0 (setup.py `support_sm121`), which the CUDA 12.8 wheel was not built with.
NUNCHAKU_CAPABILITIES = frozenset({(7, 5), (8, 0), (8, 6), (8, 9), (12, 0)})



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
