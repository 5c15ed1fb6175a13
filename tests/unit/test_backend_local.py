"""worker.backends.local: clear ConfigurationErrors on machines it cannot work on (no CUDA, PyPI's unrelated
`nunchaku`, a GPU without Nunchaku kernels), and the same pipeline path as tiny once CUDA is there (simulated:
the test machine has a CPU-only torch)."""

from __future__ import annotations

import pytest
import torch

from modal_app import loading, pins, pipeline
from tests.unit.conftest_pipeline import install_fake_nunchaku, png_size, tiny_request
from worker.backends.base import Backend, GenerationRequest
from worker.backends.local import LocalBackend, create_backend
from worker.exceptions import BadRequest, ConfigurationError


def job(**overrides) -> GenerationRequest:
    return GenerationRequest(**tiny_request(**overrides))


async def ignore(step: int, total: int) -> None:
    return None


@pytest.fixture
def pretend_cuda(monkeypatch):
    """Make the CPU-only torch report one CUDA device of the given name and compute capability."""

    def install(name: str = "NVIDIA L40S", capability: tuple[int, int] = (8, 9)) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)

    return install


def test_without_cuda_the_backend_refuses_to_start_and_says_why():
    assert not torch.cuda.is_available()  # this test machine: CPU-only torch
    with pytest.raises(ConfigurationError) as raised:
        LocalBackend()
    message = str(raised.value)
    assert "TENKAIGEN_BACKEND=local" in message
    assert "needs a CUDA GPU" in message and "CPU-only build" in message and torch.__version__ in message
    assert "TENKAIGEN_BACKEND=modal" in message


def test_create_backend_builds_from_settings_and_checks_the_machine():
    with pytest.raises(ConfigurationError, match="needs a CUDA GPU"):
        create_backend(None)


def test_pypis_unrelated_nunchaku_is_a_configuration_error(tmp_path, monkeypatch, pretend_cuda):
    pretend_cuda()
    install_fake_nunchaku(tmp_path, monkeypatch, real=False)
    with pytest.raises(ConfigurationError) as raised:
        LocalBackend()
    message = str(raised.value)
    assert "PyPI's unrelated package" in message and "0.16.1" in message
    assert "pip uninstall nunchaku" in message and pins.NUNCHAKU_WHEEL_URL in message


def test_a_nunchaku_wheel_for_another_torch_is_a_configuration_error(tmp_path, monkeypatch, pretend_cuda):
    pretend_cuda()
    install_fake_nunchaku(
        tmp_path, monkeypatch, real=True, built_for_torch="2.8"
    )  # torch here: the [ml] 2.13
    with pytest.raises(ConfigurationError) as raised:
        LocalBackend()
    message = str(raised.value)
    assert "TENKAIGEN_BACKEND=local" in message and "built for torch 2.8" in message
    assert "pip install -e '.[gpu]'" in message


async def test_a_load_that_cannot_import_nunchaku_is_a_configuration_error(
    tmp_path, monkeypatch, pretend_cuda
):
    pretend_cuda()
    install_fake_nunchaku(
        tmp_path, monkeypatch, real=True, init_source="raise ImportError('_C.so: undefined symbol: x')\n"
    )
    backend = LocalBackend()
    with pytest.raises(ConfigurationError, match=r"TENKAIGEN_BACKEND=local: .*does not import"):
        await backend.generate(job(variant="lightning-8"), ignore)


def test_a_missing_device_index_is_a_configuration_error(pretend_cuda):
    pretend_cuda()
    with pytest.raises(ConfigurationError, match="cuda:3 does not exist"):
        LocalBackend(device="cuda:3")


async def test_a_nunchaku_variant_without_nunchaku_fails_with_the_install_hint(pretend_cuda):
    pretend_cuda()
    backend = LocalBackend()  # CUDA "works"; Nunchaku is simply not installed
    assert isinstance(backend, Backend) and backend.name == "local"
    with pytest.raises(ConfigurationError, match=r"Nunchaku is not installed.*never `pip install nunchaku`"):
        await backend.generate(job(variant="lightning-8"), ignore)


async def test_a_nunchaku_variant_on_hopper_fails_before_downloading(tmp_path, monkeypatch, pretend_cuda):
    pretend_cuda("NVIDIA H100 80GB HBM3", (9, 0))
    install_fake_nunchaku(tmp_path, monkeypatch, real=True)
    backend = LocalBackend()

    def no_downloads(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(loading, "_from_hub", no_downloads)
    with pytest.raises(ConfigurationError, match=r"no kernels for this GPU \(NVIDIA H100 80GB HBM3, sm_90\)"):
        await backend.generate(job(variant="base"), ignore)


async def test_a_bad_request_is_rejected_before_loading(pretend_cuda):
    pretend_cuda()
    backend = LocalBackend()
    with pytest.raises(BadRequest, match="steps: must be between 1 and 100"):
        await backend.generate(job(variant="lightning-8", steps=500), ignore)
    assert backend._loaded is None and backend._loading is None


async def test_with_a_device_it_runs_the_shared_pipeline(monkeypatch, pretend_cuda):
    """The in-process path (load once per variant, progress, result fields) with tiny components on the CPU."""
    pretend_cuda()
    loads = []

    def load(self, variant):
        loads.append(variant)
        return pipeline.load_pipeline("tiny")

    monkeypatch.setattr(LocalBackend, "_load", load)
    backend = LocalBackend()
    steps = []

    async def on_progress(step, total):
        steps.append((step, total))

    monkeypatch.setattr(LocalBackend, "pipeline_variant", lambda self, request: "tiny")
    first = await backend.generate(job(steps=3, width=64, height=64), on_progress)
    second = await backend.generate(job(steps=2), on_progress)
    assert loads == ["tiny"]
    assert steps == [(1, 3), (2, 3), (3, 3), (1, 2), (2, 2)]
    assert (first.backend, png_size(first.png), first.timings["load_s"] > 0) == ("local", (64, 64), True)
    assert second.timings["load_s"] == 0.0
    await backend.aclose()
    assert backend._loaded is None
