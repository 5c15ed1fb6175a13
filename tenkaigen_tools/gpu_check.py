"""The GPU check behind `scripts/gpu_check`: run the real pipeline once on a machine with a supported NVIDIA GPU.

On an L40S, A10, L4 or A100 with the weights already in the Hugging Face cache (read offline, HF_HUB_OFFLINE=1), in
under 10 minutes: load a variant (`lightning-8` by default), generate 3 images (per-image timings, peak GPU memory),
run img2img from the first, cancel a generation after step 2 (how long the cancel took), try 1664x1664 and
2048x2048 (OK or OOM), and write the PNGs and `summary.json` to an output directory.

It refuses, with one clear line and a distinct exit code, a machine it cannot check: no torch (3), no CUDA GPU (2),
a GPU without Nunchaku kernels such as H100/H200 (sm_90) or B200 (sm_100) (3), a wrong Nunchaku install (4), weights
missing from the cache (5). Exit 1: a step failed (see the summary); 0: every step ran (an OOM at a large size is a
result, not a failure).

Everything but `run_checks` is pure (arguments, the GPU decision, the weights lookup in the local cache, the
summary) and tested on the CPU; torch is imported only once a GPU is looked for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modal_app import pins, pipeline

EXIT_OK, EXIT_STEP_FAILED, EXIT_NO_GPU, EXIT_UNSUPPORTED, EXIT_INSTALL, EXIT_NO_WEIGHTS = 0, 1, 2, 3, 4, 5
CHECKED_GPUS = ("L40S", "A10", "L4", "A100-40GB", "A100-80GB")  # the Modal pools this project uses
DEFAULT_PROMPT = "A majestic dragon curled around a mountain peak, t-shirt print, bold colours"
# text-to-image on a GPU (edit needs an input image for every step; tiny is the CPU smoke test)
TEXT_TO_IMAGE_GPU_VARIANTS = [
    name
    for name, spec in pipeline.VARIANTS.items()
    if spec.task == "text-to-image" and spec.weights != "tiny"
]
INSTALL_HINT = "python3.12 -m venv .venv-gpu && .venv-gpu/bin/pip install -e '.[gpu]'"


class CheckExit(Exception):
    """Stop the check with this exit code and message (a machine the check cannot run on)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Options:
    out: Path
    variant: str = "lightning-8"
    rank: int = pins.NUNCHAKU_DEFAULT_RANK
    images: int = 3
    sizes: tuple[int, ...] = (1664, 2048)
    cancel_after: int = 2
    budget_s: float = 540.0
    prompt: str = DEFAULT_PROMPT


@dataclass(frozen=True, slots=True)
class GpuInfo:
    name: str
    capability: tuple[int, int]
    memory_gib: float


@dataclass(slots=True)
class StepResult:
    name: str
    status: str  # "ok", "oom", "error" or "skipped"
    seconds: float | None = None
    peak_gib: float | None = None
    png: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="scripts/gpu_check", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--out", type=Path, help="output directory (default: gpu_check_out/<UTC time>)")
    parser.add_argument("--variant", default="lightning-8", choices=TEXT_TO_IMAGE_GPU_VARIANTS)
    parser.add_argument("--rank", type=int, default=pins.NUNCHAKU_DEFAULT_RANK, choices=pins.NUNCHAKU_RANKS)
    parser.add_argument("--images", type=int, default=3, help="text-to-image runs (default 3)")
    parser.add_argument("--sizes", default="1664,2048", help="square sides to try, comma-separated")
    parser.add_argument("--cancel-after", type=int, default=2, help="cancel the cancel test after this step")
    parser.add_argument("--budget-s", type=float, default=540.0, help="skip the remaining steps after this")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    args = parser.parse_args(argv)
    try:
        sizes = tuple(int(side) for side in args.sizes.split(",") if side.strip())
    except ValueError:
        parser.error(f"--sizes: comma-separated integers, got {args.sizes!r}")
    for side in sizes:
        if side % pipeline.SIDE_MULTIPLE or not pipeline.MIN_SIDE <= side <= pipeline.MAX_SIDE:
            parser.error(f"--sizes: {side} is not a multiple of 16 between 16 and {pipeline.MAX_SIDE}")
    if args.images < 1 or args.cancel_after < 1 or args.budget_s <= 0:
        parser.error("--images, --cancel-after and --budget-s must be positive")
    out = args.out or Path("gpu_check_out") / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Options(
        out, args.variant, args.rank, args.images, sizes, args.cancel_after, args.budget_s, args.prompt
    )


def gpu_verdict(gpu: GpuInfo) -> tuple[bool, str]:
    """Whether Nunchaku can run here, and a line that says so (naming the fix when it cannot)."""
    major, minor = gpu.capability
    modal_type = pipeline.modal_gpu_name(gpu.name)
    if not pipeline.nunchaku_supports(gpu.capability):
        return False, (
            f"{gpu.name} (sm_{major}{minor}) has no Nunchaku kernels (H100/H200 are sm_90, B200 is sm_100: Nunchaku "
            f"1.1 ships none for them); run this check on an L40S, A10, L4 or A100"
        )
    if modal_type not in CHECKED_GPUS:
        return True, (
            f"{gpu.name} (sm_{major}{minor}) has Nunchaku kernels but is not one of the Modal pools "
            f"({', '.join(CHECKED_GPUS)}): timings are indicative only"
        )
    return True, f"{gpu.name} (sm_{major}{minor}, {gpu.memory_gib:g} GiB): supported ({modal_type})"


def precision_for(capability: tuple[int, int]) -> str:
    """Nunchaku's checkpoint precision on this GPU: fp4 on Blackwell, int4 elsewhere (nunchaku.utils.get_precision)."""
    return "fp4" if capability[0] >= 10 else "int4"


def missing_weights(variant: str, *, rank: int, precision: str, cache_dir: str | None = None) -> list[str]:
    """The weight files of a variant that are not in the local Hugging Face cache (empty: all there). No network.

    Looks for the pipeline repository's index and component configs, the Nunchaku checkpoint and the Lightning LoRA
    (a partly downloaded pipeline repository still fails the load, which the check then reports).
    """
    spec = pipeline.variant_spec(variant)
    files: list[tuple[pins.ModelRepo, str]] = []
    if spec.model is not None:
        components = ["text_encoder", "vae"] + ([] if spec.weights == "nunchaku" else ["transformer"])
        files.append((spec.model, "model_index.json"))
        files.extend((spec.model, f"{component}/config.json") for component in components)
    if spec.nunchaku is not None:
        files.append((spec.nunchaku, pipeline.nunchaku_file(variant, rank=rank, precision=precision)))
    if spec.lightning_lora:
        files.append((pins.QWEN_IMAGE_LIGHTNING, spec.lightning_lora))
    missing = []
    for repo, filename in files:
        if not _cached(repo, filename, cache_dir or hub_cache_dir()):
            missing.append(f"{repo.repo_id}/{filename}@{repo.revision}")
    return missing


def hub_cache_dir() -> str:
    """The Hugging Face hub cache this process reads (HF_HUB_CACHE, else $HF_HOME/hub), read from the environment now."""
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub")


def _cached(repo: pins.ModelRepo, filename: str, cache_dir: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo.repo_id, filename, cache_dir=cache_dir, revision=repo.revision)
    return isinstance(found, str) and os.path.isfile(found)


def weights_message(variant: str, missing: Sequence[str]) -> str:
    cache = hub_cache_dir()
    return (
        f"the weights of {variant!r} are not in the Hugging Face cache ({cache}): missing {', '.join(missing)}. "
        f'Download them once with network access (python -c "from modal_app.pipeline import prefetch_weights; '
        f"prefetch_weights('{variant}')\"), or point HF_HOME at a cache that has them"
    )


def detect_gpu() -> GpuInfo:
    """The first CUDA device, or CheckExit when torch or a CUDA GPU is missing."""
    try:
        import torch
    except ImportError:
        raise CheckExit(
            EXIT_UNSUPPORTED, f"torch is not installed; install the GPU stack: {INSTALL_HINT}"
        ) from None
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        raise CheckExit(
            EXIT_NO_GPU,
            f"no CUDA GPU: torch {torch.__version__} ({build}) sees none. Run this on a machine with an L40S, A10, "
            f"L4 or A100 and the GPU stack installed ({INSTALL_HINT})",
        )
    properties = torch.cuda.get_device_properties(0)
    return GpuInfo(
        properties.name, tuple(torch.cuda.get_device_capability(0)), properties.total_memory // 2**30
    )


def preflight(options: Options, detect: Callable[[], GpuInfo] = detect_gpu) -> tuple[GpuInfo, str, str]:
    """Every check before loading: GPU, Nunchaku install, weights. Returns the GPU, its verdict line, precision."""
    gpu = detect()
    supported, verdict = gpu_verdict(gpu)
    if not supported:
        raise CheckExit(EXIT_UNSUPPORTED, verdict)
    if pipeline.variant_spec(options.variant).weights == "nunchaku":
        problem = pipeline.nunchaku_install_problem()
        if problem:
            raise CheckExit(EXIT_INSTALL, problem)
    precision = precision_for(gpu.capability)
    missing = missing_weights(options.variant, rank=options.rank, precision=precision)
    if missing:
        raise CheckExit(EXIT_NO_WEIGHTS, weights_message(options.variant, missing))
    return gpu, verdict, precision


def build_summary(
    options: Options, gpu: GpuInfo, steps: Sequence[StepResult], *, load: dict[str, Any], elapsed_s: float
) -> dict[str, Any]:
    """The JSON summary: machine, variant, load, every step; `ok` when no step errored or was skipped."""
    return {
        "gpu": {
            "name": gpu.name,
            "modal_type": pipeline.modal_gpu_name(gpu.name),
            "capability": f"sm_{gpu.capability[0]}{gpu.capability[1]}",
            "memory_gib": gpu.memory_gib,
        },
        "variant": options.variant,
        "rank": options.rank,
        "load": load,
        "steps": [asdict(step) for step in steps],
        "ok": all(step.status in ("ok", "oom") for step in steps),
        "elapsed_s": round(elapsed_s, 1),
    }


def step_line(step: StepResult) -> str:
    parts = [f"{step.name:<22} {step.status.upper():<7}"]
    if step.seconds is not None:
        parts.append(f"{step.seconds:7.2f} s")
    if step.peak_gib is not None:
        parts.append(f"peak {step.peak_gib:5.1f} GiB")
    parts.extend(f"{key}={value}" for key, value in step.detail.items())
    return "  ".join(parts)


def run_checks(
    options: Options, gpu: GpuInfo
) -> tuple[dict[str, Any], list[StepResult]]:  # pragma: no cover - GPU
    """Load the variant and run every step on the GPU (each step's failure is recorded, the next one still runs)."""
    import torch

    options.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + options.budget_s
    started = time.perf_counter()
    loaded = pipeline.load_pipeline(options.variant, rank=options.rank)
    load = {
        "seconds": round(time.perf_counter() - started, 1),
        "offload": loaded.offload,
        "gpu": loaded.gpu_type,
    }
    print(f"loaded {options.variant} in {load['seconds']} s (offload: {loaded.offload})", flush=True)
    base = {"prompt": options.prompt, "variant": options.variant}
    steps: list[StepResult] = []
    first_png: bytes | None = None
    marks: dict[str, float] = {}

    def measure(name: str, png: str | None, request: dict[str, Any], **kwargs: Any) -> Any:
        if time.monotonic() > deadline:
            steps.append(
                StepResult(name, "skipped", detail={"why": f"past the {options.budget_s:g} s budget"})
            )
            return None
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        step = StepResult(name, "ok")
        output = None
        try:
            try:
                output = loaded.generate(pipeline.PipelineRequest.from_dict({**base, **request}), **kwargs)
            finally:
                marks[f"{name} ended"] = time.perf_counter()
            if png:
                (options.out / png).write_bytes(output.png)
                step.png = png
                step.detail.update({k: round(v, 2) for k, v in output.timings.items()})
        except torch.OutOfMemoryError:
            step.status = "oom"
        except pipeline.GenerationCancelled as exc:
            step.detail["cancelled"] = str(exc)
        except Exception as exc:
            step.status, step.detail["error"] = "error", f"{type(exc).__name__}: {exc}"[:500]
        step.seconds = round(time.perf_counter() - t0, 2)
        step.peak_gib = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        steps.append(step)
        print(step_line(step), flush=True)
        return output

    for index in range(options.images):
        output = measure(f"text-to-image {index + 1}", f"text-to-image-{index + 1}.png", {"seed": index})
        if index == 0 and output is not None:
            first_png = output.png
    if first_png is not None:
        measure("img2img", "img2img.png", {"seed": 0, "init_image": first_png})

    cancel = threading.Event()

    def on_step(step: int, _total: int) -> None:
        if step == options.cancel_after:
            marks["set"] = time.perf_counter()
            cancel.set()

    measure("cancel", None, {"seed": 1}, on_step=on_step, cancel=cancel)
    if "set" in marks and steps[-1].name == "cancel":
        steps[-1].detail["cancel_s"] = round(marks["cancel ended"] - marks["set"], 3)
        steps[-1].detail["after_step"] = options.cancel_after
        if "cancelled" not in steps[-1].detail and steps[-1].status == "ok":
            steps[-1].status, steps[-1].detail["error"] = (
                "error",
                "the run finished although it was cancelled",
            )
        print(f"cancel took {steps[-1].detail['cancel_s']} s after step {options.cancel_after}", flush=True)
    for side in options.sizes:
        measure(f"{side}x{side}", f"size-{side}.png", {"seed": 2, "width": side, "height": side})
    return load, steps


def main(argv: Sequence[str] | None = None, *, detect: Callable[[], GpuInfo] = detect_gpu) -> int:
    options = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights must already be cached; never wait for the Hub
    started = time.perf_counter()
    try:
        gpu, verdict, _precision = preflight(options, detect)
        print(f"gpu_check: {verdict}", flush=True)
        try:
            load, steps = run_checks(options, gpu)
        except pipeline.UnsupportedEnvironment as exc:
            raise CheckExit(EXIT_INSTALL, str(exc)) from exc
        except Exception as exc:  # the load itself failed: nothing to summarise
            raise CheckExit(
                EXIT_STEP_FAILED, f"loading {options.variant!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
    except CheckExit as stop:
        print(f"gpu_check: {stop}", file=sys.stderr)
        return stop.code
    summary = build_summary(options, gpu, steps, load=load, elapsed_s=time.perf_counter() - started)
    path = options.out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"gpu_check: {'all steps ran' if summary['ok'] else 'a step failed'}; summary: {path}")
    return EXIT_OK if summary["ok"] else EXIT_STEP_FAILED


if __name__ == "__main__":
    sys.exit(main())
