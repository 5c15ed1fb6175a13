"""scripts/gpu_check's pure parts on the CPU: arguments, which GPUs it accepts, the weights lookup in a local
Hugging Face cache, the summary, and the one-line exits for no GPU, an unsupported GPU, no Nunchaku, no weights."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from modal_app import pins, pipeline
from tenkaigen_tools import gpu_check
from tests.unit.conftest_pipeline import install_fake_nunchaku

ROOT = Path(__file__).resolve().parents[2]
L40S = gpu_check.GpuInfo("NVIDIA L40S", (8, 9), 44)


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch):
    """main() sets HF_HUB_OFFLINE=1 if unset; set it here so monkeypatch restores the environment afterwards."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def fake_cache(root: Path, variant: str, *, rank: int = 32, precision: str = "int4") -> Path:
    """A Hugging Face hub cache holding exactly the files `missing_weights` looks for."""
    spec = pipeline.variant_spec(variant)
    wanted: list[tuple[pins.ModelRepo, str]] = [
        (spec.model, "model_index.json"),
        (spec.model, "text_encoder/config.json"),
        (spec.model, "vae/config.json"),
    ]
    if spec.nunchaku is not None:
        wanted.append((spec.nunchaku, pipeline.nunchaku_file(variant, rank=rank, precision=precision)))
    for repo, filename in wanted:
        folder = root / f"models--{repo.repo_id.replace('/', '--')}"
        commit = "0" * 40
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / repo.revision).write_text(commit)
        path = folder / "snapshots" / commit / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    return root


def test_defaults_run_lightning_8_with_three_images_and_two_large_sizes(tmp_path):
    options = gpu_check.parse_args(["--out", str(tmp_path)])
    assert (options.variant, options.images, options.sizes, options.cancel_after) == (
        "lightning-8",
        3,
        (1664, 2048),
        2,
    )
    assert options.out == tmp_path and options.budget_s < 600
    assert gpu_check.parse_args([]).out.parent == Path("gpu_check_out")


@pytest.mark.parametrize(
    "argv",
    [
        ["--sizes", "1000"],
        ["--sizes", "abc"],
        ["--images", "0"],
        ["--variant", "tiny"],
        ["--variant", "edit"],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        gpu_check.parse_args(argv)
    assert exited.value.code == 2 and "usage: scripts/gpu_check" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "capability"),
    [
        ("NVIDIA L40S", (8, 9)),
        ("NVIDIA A10", (8, 6)),
        ("NVIDIA L4", (8, 9)),
        ("NVIDIA A100-SXM4-40GB", (8, 0)),
    ],
)
def test_the_modal_pool_gpus_are_supported(name, capability):
    supported, line = gpu_check.gpu_verdict(gpu_check.GpuInfo(name, capability, 22))
    assert supported and "supported" in line and "indicative" not in line


@pytest.mark.parametrize(
    ("name", "capability", "sm"),
    [
        ("NVIDIA H100 80GB HBM3", (9, 0), "sm_90"),
        ("NVIDIA H200", (9, 0), "sm_90"),
        ("NVIDIA B200", (10, 0), "sm_100"),
    ],
)
def test_hopper_and_b200_are_refused_with_the_reason(name, capability, sm):
    supported, line = gpu_check.gpu_verdict(gpu_check.GpuInfo(name, capability, 79))
    assert not supported
    assert f"({sm})" in line and "no Nunchaku kernels" in line and "L40S, A10, L4 or A100" in line


def test_another_nunchaku_gpu_runs_but_is_flagged():
    supported, line = gpu_check.gpu_verdict(gpu_check.GpuInfo("NVIDIA GeForce RTX 4090", (8, 9), 23))
    assert supported and "indicative" in line


def test_precision_follows_nunchaku():
    assert [gpu_check.precision_for(c) for c in [(7, 5), (8, 9), (12, 0)]] == ["int4", "int4", "fp4"]


def test_weights_are_looked_up_in_the_local_cache_only(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = gpu_check.missing_weights("lightning-8", rank=32, precision="int4", cache_dir=str(empty))
    assert "Qwen/Qwen-Image/model_index.json@main" in missing
    assert any("svdq-int4_r32-qwen-image-lightningv1.1-8steps.safetensors" in item for item in missing)
    full = fake_cache(tmp_path / "full", "lightning-8")
    assert gpu_check.missing_weights("lightning-8", rank=32, precision="int4", cache_dir=str(full)) == []
    assert gpu_check.missing_weights("lightning-8", rank=128, precision="int4", cache_dir=str(full)) == [
        "nunchaku-tech/nunchaku-qwen-image/svdq-int4_r128-qwen-image-lightningv1.1-8steps.safetensors@main"
    ]


def test_without_a_gpu_the_check_exits_2_with_one_line(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path)]) == gpu_check.EXIT_NO_GPU  # this machine: CPU-only torch
    err = capsys.readouterr().err
    assert err.startswith("gpu_check: no CUDA GPU") and "pip install -e '.[gpu]'" in err
    assert not (tmp_path / "summary.json").exists()


def test_the_script_exits_cleanly_here_with_the_no_gpu_message(tmp_path):
    result = subprocess.run(
        [str(ROOT / "scripts" / "gpu_check"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == gpu_check.EXIT_NO_GPU, result.stderr
    assert "gpu_check: no CUDA GPU" in result.stderr and "Traceback" not in result.stderr


def test_an_h100_is_refused_before_anything_loads(tmp_path, capsys):
    h100 = gpu_check.GpuInfo("NVIDIA H100 80GB HBM3", (9, 0), 79)
    assert gpu_check.main(["--out", str(tmp_path)], detect=lambda: h100) == gpu_check.EXIT_UNSUPPORTED
    assert "sm_90" in capsys.readouterr().err


def test_without_nunchaku_the_check_names_the_install(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path)], detect=lambda: L40S) == gpu_check.EXIT_INSTALL
    assert "Nunchaku is not installed" in capsys.readouterr().err


def test_without_weights_the_check_exits_5_naming_the_missing_files(tmp_path, monkeypatch, capsys):
    install_fake_nunchaku(tmp_path / "site", monkeypatch, real=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert gpu_check.main(["--out", str(tmp_path / "out")], detect=lambda: L40S) == gpu_check.EXIT_NO_WEIGHTS
    err = capsys.readouterr().err
    assert "not in the Hugging Face cache" in err and str(tmp_path / "empty-cache") in err
    assert "prefetch_weights('lightning-8')" in err


def test_with_weights_the_preflight_passes(tmp_path, monkeypatch):
    install_fake_nunchaku(tmp_path / "site", monkeypatch, real=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(fake_cache(tmp_path / "cache", "lightning-8")))
    options = gpu_check.parse_args(["--out", str(tmp_path / "out")])
    gpu, verdict, precision = gpu_check.preflight(options, lambda: L40S)
    assert (gpu, precision) == (L40S, "int4") and "supported (L40S)" in verdict


def test_the_summary_is_json_and_ok_unless_a_step_errored_or_was_skipped(tmp_path):
    options = gpu_check.parse_args(["--out", str(tmp_path)])
    steps = [
        gpu_check.StepResult("text-to-image 1", "ok", 3.2, 30.1, "text-to-image-1.png", {"inference_s": 3.0}),
        gpu_check.StepResult("cancel", "ok", 0.9, 30.0, detail={"cancel_s": 0.4, "after_step": 2}),
        gpu_check.StepResult("2048x2048", "oom", 5.0, 43.9),
    ]
    summary = gpu_check.build_summary(options, L40S, steps, load={"seconds": 41.0}, elapsed_s=80.04)
    decoded = json.loads(json.dumps(summary))
    assert decoded["ok"] is True and decoded["gpu"] == {
        "name": "NVIDIA L40S",
        "modal_type": "L40S",
        "capability": "sm_89",
        "memory_gib": 44,
    }
    assert [s["status"] for s in decoded["steps"]] == ["ok", "ok", "oom"] and decoded["elapsed_s"] == 80.0
    failed = [*steps, gpu_check.StepResult("img2img", "error", detail={"error": "ValueError: x"})]
    assert gpu_check.build_summary(options, L40S, failed, load={}, elapsed_s=1)["ok"] is False
    skipped = [*steps, gpu_check.StepResult("1664x1664", "skipped")]
    assert gpu_check.build_summary(options, L40S, skipped, load={}, elapsed_s=1)["ok"] is False
    line = gpu_check.step_line(steps[1])
    assert line.startswith("cancel") and "OK" in line and "cancel_s=0.4" in line and "peak  30.0 GiB" in line
