"""modal_app.pipeline fixes found by the desk check of the Modal/Nunchaku path (issue 12), shown on the CPU with
tiny components: img2img with a transformer subclass (F1), no CFG above 1 on Lightning (F5), img2img on the
distilled timesteps (F6), no VAE decode after a cancel (F10), tiled VAE decode for large sizes (F11), load and
kernel failures as a permanent UnsupportedEnvironment (F12), negative prompts reported as unused (F14)."""

from __future__ import annotations

import threading

import pytest
import torch
from diffusers import QwenImageTransformer2DModel

from modal_app import loading, pipeline
from modal_app.tiny_components import build_tiny_components
from tests.unit.conftest_pipeline import init_png, install_fake_nunchaku, png_text, tiny_loaded, tiny_request

LIGHTNING_8_TIMESTEPS = [1000.0, 954.5, 900.0, 833.3, 750.0, 642.9, 500.0, 300.0]  # inference-review.md F6


class NunchakuStandIn(QwenImageTransformer2DModel):
    """Stands in for nunchaku's NunchakuQwenImageTransformer2DModel: a subclass, not the exact class."""


def lightning_8_with_subclassed_transformer() -> pipeline.LoadedPipeline:
    components = build_tiny_components()
    plain = components["transformer"]
    subclassed = NunchakuStandIn.from_config(plain.config)
    subclassed.load_state_dict(plain.state_dict())
    components["transformer"] = subclassed.eval()
    return pipeline.load_pipeline("lightning-8", components=components, device="cpu")


def request(**overrides) -> pipeline.PipelineRequest:
    return pipeline.PipelineRequest.from_dict(tiny_request(**overrides))


def run(loaded, **overrides):
    steps = []
    output = loaded.generate(request(**overrides), on_step=lambda step, total: steps.append((step, total)))
    return output, steps


def record_timesteps(transformer) -> tuple[list[float], object]:
    """Every timestep (0..1000 scale) the transformer is called with."""
    seen: list[float] = []

    def hook(_module, _args, kwargs):
        seen.append(round(float(kwargs["timestep"].flatten()[0]) * 1000, 1))

    return seen, transformer.register_forward_pre_hook(hook, with_kwargs=True)


# ## F1: img2img keeps a subclassed transformer


def test_img2img_runs_with_a_transformer_subclass_like_nunchakus():
    loaded = lightning_8_with_subclassed_transformer()
    output, steps = run(loaded, variant="lightning-8", steps=8, init_image=init_png())
    assert output.png and steps[-1] == (6, 6)
    assert loaded._img2img.transformer is loaded.pipe.transformer
    assert type(loaded._img2img.transformer) is NunchakuStandIn


# ## F5: Lightning variants run without true CFG


@pytest.mark.parametrize("variant", ["lightning-4", "lightning-8", "edit", "bf16"])
def test_lightning_variants_reject_a_cfg_scale_above_1_naming_the_field(variant):
    with pytest.raises(pipeline.InvalidRequest, match=r"^true_cfg_scale: .*CFG-distilled.*at most 1"):
        pipeline.PipelineRequest.from_dict(
            tiny_request(variant=variant, true_cfg_scale=1.5, init_image=init_png())
        )
    accepted = pipeline.PipelineRequest.from_dict(
        tiny_request(variant=variant, true_cfg_scale=1.0, init_image=init_png())
    )
    assert accepted.true_cfg_scale == 1.0


def test_the_base_variant_keeps_true_cfg():
    assert (
        pipeline.PipelineRequest.from_dict(tiny_request(variant="base", true_cfg_scale=4.0)).true_cfg_scale
        == 4
    )


# ## F6: img2img with Lightning stays on the distilled timesteps


def test_lightning_img2img_runs_the_tail_of_the_distilled_8_step_grid():
    loaded = lightning_8_with_subclassed_transformer()
    seen, handle = record_timesteps(loaded.pipe.transformer)
    try:
        _, text_steps = run(loaded, variant="lightning-8", steps=8)
        text_timesteps = list(seen)
        seen.clear()
        _, img_steps = run(loaded, variant="lightning-8", steps=8, init_image=init_png())
    finally:
        handle.remove()
    assert text_timesteps == pytest.approx(LIGHTNING_8_TIMESTEPS, abs=0.1)
    assert seen == text_timesteps[2:]  # strength 0.75 skips the first 2 of 8; no step off the grid
    assert len(text_steps) == 8 and img_steps == [(i, 6) for i in range(1, 7)]
    assert pipeline.lightning_img2img_steps(8) == 6 and pipeline.lightning_img2img_steps(4) == 3


def test_non_lightning_img2img_still_runs_exactly_the_requested_steps():
    args = pipeline.call_arguments(request(steps=8), mode="img2img", width=64, height=48)
    assert args["num_inference_steps"] == pipeline.img2img_inference_steps(8)
    lightning = pipeline.call_arguments(
        request(variant="lightning-8", steps=8), mode="img2img", width=64, height=48
    )
    assert lightning["num_inference_steps"] == 8 and lightning["strength"] == pipeline.IMG2IMG_STRENGTH


# ## F10: a cancel stops before the VAE decode


@pytest.fixture
def decodes(monkeypatch):
    """Counts VAE decodes of the shared tiny pipeline and records whether tiling was on for each."""
    vae = tiny_loaded().pipe.vae
    original = vae.decode
    tiling: list[bool] = []

    def decode(*args, **kwargs):
        tiling.append(bool(vae.use_tiling))
        return original(*args, **kwargs)

    monkeypatch.setattr(vae, "decode", decode)
    yield tiling
    vae.disable_tiling()


def test_a_cancel_runs_no_vae_decode(decodes):
    cancel = threading.Event()

    def on_step(step, total):
        if step == 2:
            cancel.set()

    with pytest.raises(pipeline.GenerationCancelled, match="after step 2 of 30"):
        tiny_loaded().generate(request(steps=30), on_step=on_step, cancel=cancel)
    assert decodes == []
    run(tiny_loaded(), steps=1)
    assert len(decodes) == 1  # the spy sees an ordinary run's decode


# ## F11: tiled VAE decode for large sizes


def test_vae_tiling_is_on_for_2048_and_off_for_1024(decodes):
    run(tiny_loaded(), steps=1, width=2048, height=2048)
    run(tiny_loaded(), steps=1, width=1024, height=1024)
    assert decodes == [True, False]
    assert pipeline.vae_tiling_needed(1664, 1664) and not pipeline.vae_tiling_needed(1248, 1248)


# ## F12: load and kernel failures are permanent


@pytest.fixture
def pretend_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 9))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA L40S")


def test_a_nunchaku_that_does_not_import_is_an_unsupported_environment(tmp_path, monkeypatch, pretend_cuda):
    install_fake_nunchaku(
        tmp_path,
        monkeypatch,
        real=True,
        init_source="raise ImportError('nunchaku/_C.so: undefined symbol: _ZN3c104cuda9SetDeviceEa')\n",
    )
    with pytest.raises(pipeline.UnsupportedEnvironment, match=r"does not import.*undefined symbol.*\[gpu\]"):
        pipeline.load_pipeline("lightning-8")


def test_a_nunchaku_built_for_another_torch_stops_the_load_before_any_download(
    tmp_path, monkeypatch, pretend_cuda
):
    install_fake_nunchaku(tmp_path, monkeypatch, real=True, built_for_torch="2.8")
    monkeypatch.setattr(loading, "_from_hub", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(pipeline.UnsupportedEnvironment, match=r"built for torch 2\.8"):
        pipeline.load_pipeline("lightning-8")


def test_no_kernel_image_while_loading_is_an_unsupported_environment(tmp_path, monkeypatch, pretend_cuda):
    install_fake_nunchaku(tmp_path, monkeypatch, real=True)

    def from_hub(*args, **kwargs):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    monkeypatch.setattr(loading, "_from_hub", from_hub)
    with pytest.raises(pipeline.UnsupportedEnvironment, match="retrying will not help"):
        pipeline.load_pipeline("lightning-8")


def test_no_kernel_image_while_generating_is_an_unsupported_environment(monkeypatch):
    loaded = pipeline.load_pipeline("tiny")

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    monkeypatch.setattr(loaded.pipe.transformer, "forward", broken)
    with pytest.raises(pipeline.UnsupportedEnvironment, match="no kernel image"):
        run(loaded, steps=1)


def test_other_errors_keep_their_type():
    assert pipeline.environment_error(RuntimeError("out of memory"), variant="base") is None
    assert pipeline.environment_error(ValueError("no kernel image"), variant="base") is None
    assert isinstance(
        pipeline.environment_error(ModuleNotFoundError("No module named 'einops'"), variant="base"),
        pipeline.UnsupportedEnvironment,
    )


# ## F14: negative prompts on Lightning variants are reported as unused


def test_the_png_and_the_result_say_whether_the_negative_prompt_was_used():
    loaded = tiny_loaded()
    unused, _ = run(loaded, steps=1, negative_prompt="blurry", true_cfg_scale=1.0)
    used, _ = run(loaded, steps=1, negative_prompt="blurry", true_cfg_scale=2.0)
    assert png_text(unused.png)["negative_prompt_used"] == "no"
    assert png_text(used.png)["negative_prompt_used"] == "yes"
    assert pipeline.result_event(unused, loaded, load_s=0.0)["negative_prompt_used"] is False
    assert pipeline.result_event(used, loaded, load_s=0.0)["negative_prompt_used"] is True


def test_sm_121_is_not_listed_as_supported():
    assert (12, 1) not in pipeline.NUNCHAKU_CAPABILITIES
    assert pipeline.nunchaku_supports((12, 0))
