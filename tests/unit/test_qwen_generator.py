"""modal_app/qwen_generator.py: the Modal class run through `.local()` with the tiny variant (no token, no GPU,
no network), its static configuration, the pins it builds from, and that it imports without torch."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modal_app import pins
from tests.unit.conftest_pipeline import (
    BLOCK_HEAVY_IMPORTS,
    MODAL_LOCAL_WARNING,
    init_png,
    png_pixels,
    png_size,
    png_text,
    spy_on_denoising,
    tiny_request,
)

pytestmark = pytest.mark.filterwarnings(MODAL_LOCAL_WARNING)

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def tiny_generator():
    """One `QwenGenerator(variant="tiny")` for the module: `@modal.enter()` loads it once."""
    from modal_app import qwen_generator

    return qwen_generator.QwenGenerator(variant="tiny")


def events_for(**overrides):
    return list(tiny_generator().generate.local(tiny_request(**overrides)))


# ## Static configuration


def test_importing_the_app_needs_neither_torch_nor_diffusers():
    code = BLOCK_HEAVY_IMPORTS + (
        "import modal_app.qwen_generator as q\n"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules\n"
        "print(q.app.name, q.QwenGenerator, q.QwenGeneratorCPU)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "tenkaigen-qwen" in done.stdout


def test_the_gpu_list_holds_only_cards_with_nunchaku_kernels():
    from modal_app import qwen_generator

    assert qwen_generator.app.name == "tenkaigen-qwen"
    assert set(qwen_generator.NUNCHAKU_GPUS) == {"L40S", "A10", "L4", "A100"}
    assert not {"H100", "H200", "B200"} & {gpu.split(":")[0].upper() for gpu in qwen_generator.NUNCHAKU_GPUS}


def test_the_gpu_class_uses_that_list_and_the_weights_volume_and_tiny_runs_on_cpu():
    from modal._utils.async_utils import synchronizer  # private: the spec Modal would deploy

    from modal_app import qwen_generator

    def spec(cls):
        return synchronizer._translate_in(cls)._get_class_service_function()._spec

    gpu_spec = spec(qwen_generator.QwenGenerator)
    assert gpu_spec.gpus == qwen_generator.NUNCHAKU_GPUS
    assert list(gpu_spec.volumes) == [pins.HF_CACHE_DIR]
    cpu_spec = spec(qwen_generator.QwenGeneratorCPU)
    assert cpu_spec.gpus is None and cpu_spec.cpu == 2.0


def test_pins_build_the_nunchaku_wheel_url_for_the_image_python_and_torch():
    url = pins.NUNCHAKU_WHEEL_URL
    assert url.startswith("https://github.com/nunchaku-tech/nunchaku/releases/download/v")
    torch_minor = ".".join(pins.TORCH_VERSION.split(".")[:2])
    assert f"+torch{torch_minor}-" in url
    python_tag = "cp" + pins.PYTHON_VERSION.replace(".", "")
    assert url.endswith(f"-{python_tag}-{python_tag}-linux_x86_64.whl") and python_tag == pins.PYTHON_TAG
    packages = {req.split("==")[0]: req for req in pins.IMAGE_PACKAGES}
    assert packages["diffusers"] == "diffusers==0.36.0"
    assert packages["torch"] == f"torch=={pins.TORCH_VERSION}"
    assert int(packages["transformers"].split("==")[1].split(".")[0]) < 5
    assert "nunchaku" not in packages  # PyPI's `nunchaku` is an unrelated project
    assert all("==" in req for req in pins.IMAGE_PACKAGES)


# ## Text to image through .local()


def test_tiny_text_to_image_streams_started_progress_per_step_and_the_result():
    events = events_for(steps=5, width=80, height=64, seed=42)
    assert events[0]["type"] == "started" and events[0]["variant"] == "tiny" and events[0]["call_id"] is None
    progress = [e for e in events if e["type"] == "progress"]
    assert [(e["step"], e["total"]) for e in progress] == [(i, 5) for i in range(1, 6)]
    result = events[-1]
    assert result["type"] == "result"
    assert (result["width"], result["height"], result["steps"], result["seed"], result["variant"]) == (
        80,
        64,
        5,
        42,
        "tiny",
    )
    assert png_size(result["png"]) == (80, 64)
    assert set(result["timings"]) == {"load_s", "inference_s", "encode_s"}
    assert result["gpu_type"] == "CPU"
    assert png_text(result["png"])["seed"] == "42"


def test_the_requested_size_is_delivered_even_when_tiny_renders_smaller():
    result = events_for(width=256, height=160, steps=2)[-1]
    assert (result["width"], result["height"]) == (256, 160)
    assert png_size(result["png"]) == (256, 160)


def test_the_same_seed_gives_identical_pngs_and_a_missing_seed_is_chosen_and_reported():
    first = events_for(seed=5)[-1]["png"]
    again = events_for(seed=5)[-1]["png"]
    other = events_for(seed=6)[-1]["png"]
    assert first == again and png_pixels(first) != png_pixels(other)
    chosen = events_for(seed=None)[-1]
    assert isinstance(chosen["seed"], int) and png_text(chosen["png"])["seed"] == str(chosen["seed"])


def test_img2img_with_an_init_image_reports_every_step():
    events = events_for(init_image=init_png(), steps=4)
    assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2, 3, 4]
    assert png_size(events[-1]["png"]) == (64, 48)
    assert png_text(events[-1]["png"])["init_image"] == "yes"


def test_a_request_for_another_variant_is_an_error_event():
    events = events_for(variant="base")
    assert events[-1]["type"] == "error" and events[-1]["code"] == "bad_request"
    assert "serves 'tiny'" in events[-1]["message"]


def test_load_time_is_charged_to_the_first_request_only():
    from modal_app import qwen_generator

    fresh = qwen_generator.QwenGenerator(variant="tiny")
    first = list(fresh.generate.local(tiny_request()))[-1]["timings"]["load_s"]
    second = list(fresh.generate.local(tiny_request()))[-1]["timings"]["load_s"]
    assert first > 0 and second == 0.0


# ## Cancellation


def test_closing_the_generator_mid_run_stops_denoising(monkeypatch):
    with spy_on_denoising(monkeypatch) as spy:
        stream = tiny_generator().generate.local(tiny_request(steps=40))
        progress = 0
        for event in stream:
            if event["type"] == "progress":
                progress += 1
                if progress == 2:
                    break
        started = time.perf_counter()
        stream.close()  # what Modal's InputCancellation does to the generator, in effect
        closed_in = time.perf_counter() - started
    assert spy.outcomes == ["cancelled"]
    assert len(spy.steps) < 10 and closed_in < 10
    assert events_for(steps=2)[-1]["type"] == "result"  # the container serves the next input


def test_an_exception_thrown_into_the_generator_stops_denoising(monkeypatch):
    class FakeInputCancellation(BaseException):
        pass

    with spy_on_denoising(monkeypatch) as spy:
        stream = tiny_generator().generate.local(tiny_request(steps=40))
        assert next(stream)["type"] == "started"
        assert next(stream)["type"] == "progress"
        with pytest.raises(FakeInputCancellation):
            stream.throw(FakeInputCancellation())
    assert spy.outcomes == ["cancelled"] and len(spy.steps) < 10


# ## The command-line entrypoint's output


def test_save_result_writes_the_png_and_prints_progress(tmp_path, capsys):
    from modal_app import qwen_generator

    output = tmp_path / "test_output.png"
    result = qwen_generator.save_result(tiny_generator().generate.local(tiny_request(steps=3)), output)
    assert output.read_bytes() == result["png"]
    assert "step 3/3" in capsys.readouterr().out


def test_save_result_stops_on_an_error_event(tmp_path):
    from modal_app import qwen_generator

    with pytest.raises(SystemExit, match="rejected the request"):
        qwen_generator.save_result(iter([{"type": "error", "message": "nope"}]), tmp_path / "x.png")
    with pytest.raises(SystemExit, match="without a result"):
        qwen_generator.save_result(iter([]), tmp_path / "x.png")
