"""modal_app.pipeline: variants, request validation, call arguments, hardware choices, and real runs of the
tiny random pipeline on the CPU (progress, cancellation, seeds, sizes, img2img, edit, LoRA, PNG metadata)."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from modal_app import pins, pipeline
from modal_app.tiny_components import build_tiny_components, write_tiny_lora
from tests.unit.conftest_pipeline import (
    init_png,
    install_fake_nunchaku,
    png_pixels,
    png_size,
    png_text,
    tiny_loaded,
    tiny_request,
)


def request(**overrides):
    return pipeline.PipelineRequest.from_dict(tiny_request(**overrides))


# ## Variants


@pytest.mark.parametrize(
    ("variant", "task", "weights", "steps", "cfg", "lightning"),
    [
        ("lightning-4", "text-to-image", "nunchaku", 4, 1.0, True),
        ("lightning-8", "text-to-image", "nunchaku", 8, 1.0, True),
        ("base", "text-to-image", "nunchaku", 50, 4.0, False),
        ("edit", "edit", "nunchaku", 8, 1.0, True),
        ("bf16", "text-to-image", "bf16", 8, 1.0, True),
        ("tiny", "text-to-image", "tiny", 4, 1.0, False),
    ],
)
def test_each_variant_has_the_contract_defaults(variant, task, weights, steps, cfg, lightning):
    spec = pipeline.variant_spec(variant)
    assert (spec.task, spec.weights, spec.steps, spec.true_cfg_scale, spec.lightning) == (
        task,
        weights,
        steps,
        cfg,
        lightning,
    )
    assert spec.accepts_lora == (weights != "nunchaku")
    assert spec.device == ("cpu" if variant == "tiny" else "cuda")


def test_bf16_fuses_the_8_step_lightning_lora_and_nothing_else_does():
    assert pipeline.variant_spec("bf16").lightning_lora == "Qwen-Image-Lightning-8steps-V1.1-bf16.safetensors"
    assert pins.QWEN_IMAGE_LIGHTNING.repo_id == "lightx2v/Qwen-Image-Lightning"
    assert [v for v, spec in pipeline.VARIANTS.items() if spec.lightning_lora] == ["bf16"]


def test_edit_uses_qwen_image_edit_2509_and_the_others_qwen_image():
    assert pipeline.variant_spec("edit").model == pins.QWEN_IMAGE_EDIT_2509
    assert pipeline.variant_spec("edit").nunchaku == pins.NUNCHAKU_QWEN_IMAGE_EDIT_2509
    for variant in ("lightning-4", "lightning-8", "base", "bf16"):
        assert pipeline.variant_spec(variant).model == pins.QWEN_IMAGE


def test_unknown_variant_is_an_invalid_request_listing_the_known_ones():
    with pytest.raises(pipeline.InvalidRequest, match=r"unknown variant 'turbo'.*lightning-8"):
        pipeline.variant_spec("turbo")


def test_nunchaku_checkpoint_names_follow_the_published_files():
    assert (
        pipeline.nunchaku_file("lightning-8", rank=32, precision="int4")
        == "svdq-int4_r32-qwen-image-lightningv1.1-8steps.safetensors"
    )
    assert (
        pipeline.nunchaku_file("lightning-4", rank=128, precision="fp4")
        == "svdq-fp4_r128-qwen-image-lightningv1.0-4steps.safetensors"
    )
    assert pipeline.nunchaku_file("base", rank=32, precision="int4") == "svdq-int4_r32-qwen-image.safetensors"
    assert pipeline.nunchaku_file("edit", rank=32, precision="int4").endswith(
        "qwen-image-edit-2509-lightning-8steps-251115.safetensors"
    )
    with pytest.raises(pipeline.InvalidRequest, match="rank"):
        pipeline.nunchaku_file("base", rank=64, precision="int4")


def test_lightning_scheduler_gives_the_distilled_four_step_timesteps():
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipeline.LIGHTNING_SCHEDULER_CONFIG)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / 4, 4), mu=math.log(3))
    assert [round(float(t)) for t in scheduler.timesteps] == [1000, 900, 750, 500]


# ## Requests


def test_missing_fields_take_the_variant_defaults_and_a_random_seed():
    parsed = pipeline.PipelineRequest.from_dict({"prompt": "a cat", "variant": "base"})
    assert (parsed.steps, parsed.true_cfg_scale, parsed.width, parsed.height) == (50, 4.0, 1024, 1024)
    assert 0 <= parsed.seed <= pipeline.MAX_SEED
    seeds = {
        pipeline.PipelineRequest.from_dict({"prompt": "a cat", "variant": "base"}).seed for _ in range(5)
    }
    assert len(seeds) > 1


def test_seeds_span_the_database_range_of_0_to_2_pow_32_minus_1():
    assert request(seed=4294967295).seed == 4294967295
    with pytest.raises(pipeline.InvalidRequest, match="seed: must be between 0 and 4294967295"):
        request(seed=4294967296)
    output, _ = run(tiny_loaded(), seed=4294967295, steps=1)
    assert png_text(output.png)["seed"] == "4294967295"


def test_the_generator_variant_fills_in_and_must_match():
    assert pipeline.PipelineRequest.from_dict({"prompt": "a cat"}, variant="lightning-4").steps == 4
    with pytest.raises(pipeline.InvalidRequest, match=r"serves 'lightning-4'.*'base'"):
        pipeline.PipelineRequest.from_dict({"prompt": "a cat", "variant": "base"}, variant="lightning-4")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt: at most"),
        ({"width": 100}, "width: must be a multiple of 16"),
        ({"height": 4096}, "height: must be between"),
        ({"steps": 0}, "steps: must be between 1 and 100"),
        ({"steps": 8.5}, "steps: must be an integer"),
        ({"seed": -1}, "seed: must be between 0"),
        ({"true_cfg_scale": True}, "true_cfg_scale"),
        ({"true_cfg_scale": 99}, "true_cfg_scale"),
        ({"init_image": "not bytes"}, "init_image"),
        ({"variant": None}, "variant: required"),
    ],
)
def test_invalid_fields_are_rejected_with_the_field_named(overrides, message):
    with pytest.raises(pipeline.InvalidRequest, match=message):
        pipeline.PipelineRequest.from_dict(tiny_request(**overrides))


@pytest.mark.parametrize("strength", [0.3, 0.5, 0.6, 0.75, 0.9, 1.0])
def test_img2img_step_count_makes_diffusers_run_exactly_the_requested_steps(strength):
    for steps in range(1, 61):
        n = pipeline.img2img_inference_steps(steps, strength)
        # diffusers' QwenImageImg2ImgPipeline.get_timesteps
        init_timestep = min(n * strength, n)
        t_start = int(max(n - init_timestep, 0))
        assert n - t_start == steps


def test_true_cfg_gets_a_blank_negative_prompt_only_when_it_runs():
    with_cfg = pipeline.call_arguments(request(true_cfg_scale=4.0), mode="text-to-image", width=64, height=48)
    assert with_cfg["negative_prompt"] == " "
    given = pipeline.call_arguments(
        request(true_cfg_scale=4.0, negative_prompt="blurry"), mode="text-to-image", width=64, height=48
    )
    assert given["negative_prompt"] == "blurry"
    without = pipeline.call_arguments(request(true_cfg_scale=1.0), mode="text-to-image", width=64, height=48)
    assert "negative_prompt" not in without
    assert without["num_inference_steps"] == 4 and without["max_sequence_length"] == 512


def test_img2img_arguments_carry_strength_and_stretched_steps():
    args = pipeline.call_arguments(request(steps=8), mode="img2img", width=64, height=48)
    assert args["strength"] == pipeline.IMG2IMG_STRENGTH
    assert args["num_inference_steps"] == pipeline.img2img_inference_steps(8)


def test_tiny_renders_large_sizes_small_and_other_variants_at_full_size():
    tiny = pipeline.variant_spec("tiny")
    assert pipeline.render_size(tiny, 64, 48) == (64, 48)
    assert pipeline.render_size(tiny, 1024, 768) == (128, 96)
    assert pipeline.render_size(pipeline.variant_spec("lightning-8"), 1664, 928) == (1664, 928)


# ## Hardware


@pytest.mark.parametrize(
    ("weights", "memory", "expected"),
    [
        ("nunchaku", 44, "none"),  # L40S
        ("nunchaku", 39, "none"),  # A100-40GB
        ("nunchaku", 22, "model"),  # A10, L4
        ("nunchaku", 14, "sequential"),  # T4
        ("bf16", 79, "none"),  # A100-80GB, H100
        ("bf16", 44, "sequential"),
        ("bf16", 47, "model"),
        ("tiny", 0, "none"),
    ],
)
def test_offload_is_chosen_by_gpu_memory(weights, memory, expected):
    assert pipeline.choose_offload(weights, memory) == expected


@pytest.mark.parametrize(
    ("device_name", "modal_name"),
    [
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA A10G", "A10"),
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("Tesla T4", "T4"),
        (None, "CPU"),
    ],
)
def test_cuda_device_names_map_to_modal_gpu_types(device_name, modal_name):
    assert pipeline.modal_gpu_name(device_name) == modal_name


def test_nunchaku_runs_on_turing_ampere_ada_and_blackwell_workstations_only():
    for capability in [(7, 5), (8, 0), (8, 6), (8, 9), (12, 0)]:
        assert pipeline.nunchaku_supports(capability)
    for capability in [(9, 0), (10, 0), (7, 0), (12, 1)]:  # sm_121 needs nvcc 13; the wheel is CUDA 12.8
        assert not pipeline.nunchaku_supports(capability)


def test_a_missing_nunchaku_is_reported_with_the_wheel_url():
    problem = pipeline.nunchaku_install_problem()  # this test environment never has Nunchaku
    assert problem is not None
    assert pins.NUNCHAKU_WHEEL_URL in problem and "never `pip install nunchaku`" in problem


def test_pypis_unrelated_nunchaku_is_recognised(tmp_path, monkeypatch):
    install_fake_nunchaku(tmp_path, monkeypatch, real=False)
    problem = pipeline.nunchaku_install_problem()
    assert problem is not None
    assert "0.16.1" in problem and "unrelated" in problem and pins.NUNCHAKU_WHEEL_URL in problem


def test_the_real_nunchaku_layout_passes_on_the_torch_it_was_built_for(tmp_path, monkeypatch):
    install_fake_nunchaku(tmp_path, monkeypatch, real=True, built_for_torch="2.8")
    assert pipeline.nunchaku_install_problem(torch_version="2.8.0") is None
    assert pipeline.nunchaku_install_problem(torch_version="2.8.0+cu128") is None


def test_a_nunchaku_wheel_for_another_torch_is_reported_with_the_gpu_install(tmp_path, monkeypatch):
    install_fake_nunchaku(tmp_path, monkeypatch, real=True, built_for_torch="2.8")
    problem = pipeline.nunchaku_install_problem(torch_version="2.13.0+cpu")  # the [ml] extra's torch
    assert problem is not None
    assert "built for torch 2.8" in problem and "pip install -e '.[gpu]'" in problem


@pytest.mark.parametrize(
    ("nunchaku", "torch", "built_for", "mismatch"),
    [
        ("1.1.0+torch2.8", "2.8.0", "2.8", False),
        ("1.1.0+torch2.8", "2.13.0+cpu", "2.8", True),
        ("1.2.1+cu12.8torch2.9", "2.9.1", "2.9", False),
        ("1.2.1+cu12.8torch2.9", "2.8.0", "2.9", True),
        ("1.1.0", "2.8.0", None, False),  # a source build: nothing to compare
    ],
)
def test_the_torch_minor_of_a_nunchaku_wheel_is_compared(nunchaku, torch, built_for, mismatch):
    assert pipeline.torch_minor_of_nunchaku(nunchaku) == built_for
    assert (pipeline.nunchaku_torch_mismatch(nunchaku, torch) is not None) == mismatch


def test_a_gpu_variant_without_cuda_is_an_unsupported_environment():
    with pytest.raises(pipeline.UnsupportedEnvironment, match="needs a CUDA GPU"):
        pipeline.load_pipeline("lightning-8")


# ## Running the tiny pipeline


def run(loaded, **overrides):
    steps = []
    output = loaded.generate(request(**overrides), on_step=lambda step, total: steps.append((step, total)))
    return output, steps


def test_text_to_image_reports_every_step_and_returns_the_requested_size():
    output, steps = run(tiny_loaded(), steps=5)
    assert steps == [(i, 5) for i in range(1, 6)]
    assert png_size(output.png) == (64, 48)
    assert set(output.timings) == {"inference_s", "encode_s"}


def test_a_large_request_is_rendered_small_and_delivered_at_its_size():
    output, steps = run(tiny_loaded(), width=320, height=192, steps=2)
    assert png_size(output.png) == (320, 192) and len(steps) == 2


def test_the_same_seed_gives_the_same_png_and_another_seed_another_image():
    first, _ = run(tiny_loaded(), seed=7)
    again, _ = run(tiny_loaded(), seed=7)
    other, _ = run(tiny_loaded(), seed=8)
    assert first.png == again.png
    assert png_pixels(first.png) != png_pixels(other.png)


def test_true_cfg_runs_with_a_negative_prompt():
    output, steps = run(tiny_loaded(), true_cfg_scale=4.0, negative_prompt="blurry", steps=2)
    plain, _ = run(tiny_loaded(), true_cfg_scale=1.0, steps=2)
    assert len(steps) == 2 and png_pixels(output.png) != png_pixels(plain.png)


def test_the_png_carries_prompt_seed_variant_and_steps():
    output, _ = run(tiny_loaded(), prompt="Ein Drache, 龍", seed=99, steps=3)
    text = png_text(output.png)
    assert text["prompt"] == "Ein Drache, 龍"
    assert (text["seed"], text["variant"], text["steps"]) == ("99", "tiny", "3")
    assert text["Software"] == "TenkaiGen" and text["width"] == "64"


def test_an_init_image_runs_img2img_for_exactly_the_requested_steps():
    output, steps = run(tiny_loaded(), init_image=init_png(), steps=4)
    assert steps == [(i, 4) for i in range(1, 5)]
    assert png_size(output.png) == (64, 48)
    assert png_text(output.png)["init_image"] == "yes"
    plain, _ = run(tiny_loaded(), steps=4)
    assert png_pixels(output.png) != png_pixels(plain.png)


def test_an_unreadable_init_image_is_an_invalid_request():
    with pytest.raises(pipeline.InvalidRequest, match="init_image: not a readable image"):
        run(tiny_loaded(), init_image=b"not a png")


def test_setting_the_cancel_event_stops_denoising_after_the_current_step():
    cancel = threading.Event()
    seen = []

    def on_step(step, total):
        seen.append(step)
        if step == 2:
            cancel.set()

    with pytest.raises(pipeline.GenerationCancelled, match="after step 2 of 30"):
        tiny_loaded().generate(request(steps=30), on_step=on_step, cancel=cancel)
    assert seen == [1, 2]
    output, steps = run(tiny_loaded(), steps=2)  # the pipeline is usable again
    assert len(steps) == 2 and output.png


def test_a_cancel_before_the_start_runs_nothing():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(pipeline.GenerationCancelled, match="before the first step"):
        tiny_loaded().generate(request(), cancel=cancel)


def test_the_load_time_is_charged_once():
    loaded = pipeline.load_pipeline("tiny")
    assert loaded.take_load_s() == loaded.load_s > 0
    assert loaded.take_load_s() == 0.0


# ## Variant wiring on tiny components


def test_lightning_variant_wiring_uses_the_lightning_scheduler_and_refuses_lora(tmp_path):
    components = build_tiny_components()
    loaded = pipeline.load_pipeline("lightning-4", components=components, device="cpu")
    assert loaded.pipe.scheduler.config.time_shift_type == "exponential"
    assert loaded.pipe.scheduler.config.base_shift == pytest.approx(math.log(3))
    output, steps = run(loaded, variant="lightning-4", steps=4)
    assert len(steps) == 4 and png_text(output.png)["variant"] == "lightning-4"
    lora = write_tiny_lora(tmp_path / "franchise.safetensors", components["transformer"])
    with pytest.raises(pipeline.InvalidRequest, match=r"cannot apply custom LoRAs.*bf16"):
        run(loaded, variant="lightning-4", lora=str(lora))


@pytest.fixture
def small_edit_working_size(monkeypatch):
    """Edit-Plus works on ~1024x1024 copies of the input whatever the output size; keep tests small."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as edit_plus

    monkeypatch.setattr(edit_plus, "VAE_IMAGE_SIZE", 64 * 64)
    monkeypatch.setattr(edit_plus, "CONDITION_IMAGE_SIZE", 32 * 32)


def test_edit_variant_wiring_runs_edit_plus_with_the_init_image(small_edit_working_size):
    loaded = pipeline.load_pipeline(
        "edit", components=build_tiny_components(with_processor=True), device="cpu"
    )
    assert type(loaded.pipe).__name__ == "QwenImageEditPlusPipeline"
    output, steps = run(loaded, variant="edit", init_image=init_png(), steps=3, width=64, height=64)
    assert steps == [(1, 3), (2, 3), (3, 3)] and png_size(output.png) == (64, 64)
    with pytest.raises(pipeline.InvalidRequest, match="init_image: variant 'edit' edits an image"):
        run(loaded, variant="edit")


def test_bf16_variant_applies_a_franchise_lora_per_request(tmp_path):
    components = build_tiny_components()
    lora = write_tiny_lora(tmp_path / "franchise.safetensors", components["transformer"])
    loaded = pipeline.load_pipeline("bf16", components=components, device="cpu")
    plain, _ = run(loaded, variant="bf16", steps=2, true_cfg_scale=1.0)
    styled, steps = run(loaded, variant="bf16", steps=2, true_cfg_scale=1.0, lora=str(lora))
    assert len(steps) == 2
    assert loaded.lora.active == str(lora) and len(loaded.lora._handles) == 8  # 2 blocks x q, k, v, out
    assert png_pixels(styled.png) != png_pixels(plain.png)
    assert png_text(styled.png)["lora"] == str(lora)
    back, _ = run(loaded, variant="bf16", steps=2, true_cfg_scale=1.0)
    assert back.png == plain.png  # hooks removed, base weights untouched
    assert loaded.lora.active is None and not loaded.lora._handles


def test_the_lora_scale_of_a_franchise_changes_the_image_and_is_recorded(tmp_path):
    components = build_tiny_components()
    lora = write_tiny_lora(tmp_path / "franchise.safetensors", components["transformer"])
    loaded = pipeline.load_pipeline("bf16", components=components, device="cpu")
    full, _ = run(loaded, variant="bf16", steps=2, true_cfg_scale=1.0, lora=str(lora))
    half, _ = run(loaded, variant="bf16", steps=2, true_cfg_scale=1.0, lora=str(lora), lora_scale=0.5)
    again, _ = run(loaded, variant="bf16", steps=2, true_cfg_scale=1.0, lora=str(lora), lora_scale=0.5)
    assert png_pixels(half.png) != png_pixels(full.png)
    assert again.png == half.png
    assert png_text(half.png)["lora_scale"] == "0.5"
    with pytest.raises(pipeline.InvalidRequest, match="lora_scale"):
        run(loaded, variant="bf16", lora=str(lora), lora_scale=3)


def test_a_kohya_style_lora_is_converted_and_applied(tmp_path):
    from safetensors.torch import load_file, save_file

    components = build_tiny_components()
    peft_style = write_tiny_lora(tmp_path / "peft.safetensors", components["transformer"])
    kohya = {}
    for key, tensor in load_file(str(peft_style)).items():
        key = (
            key.removeprefix("transformer.")
            .replace(".lora_A.", ".lora_down.")
            .replace(".lora_B.", ".lora_up.")
        )
        kohya[f"diffusion_model.{key}"] = tensor
    for key in [k for k in kohya if k.endswith(".lora_down.weight")]:
        kohya[key.replace(".lora_down.weight", ".alpha")] = __import__("torch").tensor(2.0)  # alpha == rank
    save_file(kohya, str(tmp_path / "kohya.safetensors"))
    loaded = pipeline.load_pipeline("bf16", components=components, device="cpu")
    via_peft, _ = run(loaded, variant="bf16", steps=2, lora=str(peft_style))
    via_kohya, _ = run(loaded, variant="bf16", steps=2, lora=str(tmp_path / "kohya.safetensors"))
    assert png_pixels(via_kohya.png) == png_pixels(via_peft.png)


def test_lora_down_up_keys_without_prefix_or_alpha_are_read_too(tmp_path):
    from safetensors.torch import load_file, save_file

    components = build_tiny_components()
    peft_style = write_tiny_lora(tmp_path / "peft.safetensors", components["transformer"])
    plain = {
        key.removeprefix("transformer.")
        .replace(".lora_A.", ".lora_down.")
        .replace(".lora_B.", ".lora_up."): value
        for key, value in load_file(str(peft_style)).items()
    }
    save_file(plain, str(tmp_path / "plain.safetensors"))
    loaded = pipeline.load_pipeline("bf16", components=components, device="cpu")
    via_peft, _ = run(loaded, variant="bf16", steps=2, lora=str(peft_style))
    via_plain, _ = run(loaded, variant="bf16", steps=2, lora=str(tmp_path / "plain.safetensors"))
    assert png_pixels(via_plain.png) == png_pixels(via_peft.png)


def test_fusing_a_lora_matches_applying_it_through_hooks(tmp_path):
    import numpy as np

    hooked = pipeline.load_pipeline("bf16", components=build_tiny_components(), device="cpu")
    lora = write_tiny_lora(tmp_path / "lightning.safetensors", hooked.pipe.transformer, magnitude=0.2)
    with_hooks, _ = run(hooked, variant="bf16", steps=2, lora=str(lora))
    fused = pipeline.load_pipeline("bf16", components=build_tiny_components(), device="cpu")
    fused.lora.fuse(str(lora), name="lightning")
    with_fusion, _ = run(fused, variant="bf16", steps=2)
    assert fused.lora.fused == ["lightning"] and not fused.lora._handles
    a = np.frombuffer(png_pixels(with_hooks.png), dtype=np.uint8).astype(int)
    b = np.frombuffer(png_pixels(with_fusion.png), dtype=np.uint8).astype(int)
    assert np.abs(a - b).max() <= 2  # float rounding only
    unfused = pipeline.load_pipeline("bf16", components=build_tiny_components(), device="cpu")
    plain, _ = run(unfused, variant="bf16", steps=2)
    assert png_pixels(plain.png) != png_pixels(with_fusion.png)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("franchise-x", "neither a local .safetensors file"),
        ("{tmp}/garbage.safetensors", "not a readable Qwen-Image LoRA"),
    ],
)
def test_a_bad_lora_is_an_invalid_request(tmp_path, name, message):
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    loaded = pipeline.load_pipeline("bf16", components=build_tiny_components(), device="cpu")
    with pytest.raises(pipeline.InvalidRequest, match=message):
        run(loaded, variant="bf16", lora=name.format(tmp=tmp_path))


# ## Streaming adapters


def test_stream_yields_progress_per_step_then_the_result():
    events = list(pipeline.stream(tiny_loaded(), request(steps=3)))
    assert [e["type"] for e in events] == ["progress"] * 3 + ["result"]
    assert [(e["step"], e["total"]) for e in events[:3]] == [(1, 3), (2, 3), (3, 3)]
    result = events[-1]
    assert (result["width"], result["height"], result["seed"], result["steps"], result["variant"]) == (
        64,
        48,
        1234,
        3,
        "tiny",
    )
    assert set(result["timings"]) == {"load_s", "inference_s", "encode_s"}
    assert result["gpu_type"] == "CPU"


def test_closing_the_stream_stops_the_denoising_thread():
    events = pipeline.stream(tiny_loaded(), request(steps=40))
    assert next(events)["step"] == 1
    events.close()
    assert not [t for t in threading.enumerate() if t.name == "qwen-generate"]


def test_stream_turns_an_invalid_request_into_an_error_event():
    events = list(pipeline.stream(tiny_loaded(), request(init_image=b"junk")))
    assert events == [{"type": "error", "code": "bad_request", "message": events[0]["message"]}]
    assert "init_image" in events[0]["message"]


async def test_agenerate_awaits_progress_in_order():
    seen = []

    async def on_progress(step, total):
        await asyncio.sleep(0)
        seen.append((step, total))

    output = await pipeline.agenerate(tiny_loaded(), request(steps=4), on_progress)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)] and output.png


async def test_cancelling_agenerate_stops_the_loop_and_reraises():
    seen = []
    two_steps = asyncio.Event()

    async def on_progress(step, total):
        seen.append(step)
        if step == 2:
            two_steps.set()

    task = asyncio.create_task(pipeline.agenerate(tiny_loaded(), request(steps=40), on_progress))
    await two_steps.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) < 10
    _, steps = run(tiny_loaded(), steps=2)  # the lock was released
    assert len(steps) == 2


async def test_an_error_in_the_progress_callback_stops_the_run():
    async def on_progress(step, total):
        raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError, match="lease lost"):
        await pipeline.agenerate(tiny_loaded(), request(steps=40), on_progress)
