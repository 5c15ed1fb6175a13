"""modal_app/qwen_generator.py: the Modal classes run through `.local()` with the tiny variant (no token, no GPU,
no network): the spawnable `run` method, its progress partition, load errors, its static configuration (pools,
memory, deadlines, snapshots, warm pool), the pins and version it reports, and that it imports without torch."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from modal_app import pins, protocol
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
from tests.unit.modal_fakes import FakeInputCancellation, FakeQueue

pytestmark = pytest.mark.filterwarnings(MODAL_LOCAL_WARNING)

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def tiny_generator() -> Any:
    """One `QwenGeneratorCPU(variant="tiny")` for the module: its `@modal.enter` hooks load it once."""
    from modal_app import qwen_generator

    return qwen_generator.QwenGeneratorCPU(variant="tiny")


@pytest.fixture
def progress(monkeypatch: pytest.MonkeyPatch) -> FakeQueue:
    from modal_app import progress_channel

    fake = FakeQueue()
    monkeypatch.setattr(progress_channel, "LOCAL_PROGRESS", fake)
    return fake


def run(job_id: str = "job-1", **overrides: Any) -> dict[str, Any]:
    return tiny_generator().run.local(job_id, tiny_request(job_id=job_id, **overrides))


# ## Static configuration


def test_importing_the_app_needs_neither_torch_nor_diffusers():
    code = BLOCK_HEAVY_IMPORTS + (
        "import modal_app.qwen_generator as q\n"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules\n"
        "print(q.app.name, q.QwenGenerator, q.QwenGeneratorOffload, q.QwenGeneratorCPU)\n"
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
    assert qwen_generator.NUNCHAKU_GPUS == qwen_generator.RESIDENT_GPUS + qwen_generator.OFFLOAD_GPUS
    assert not {"H100", "H200", "B200"} & {gpu.split(":")[0].upper() for gpu in qwen_generator.NUNCHAKU_GPUS}


def spec(cls: Any) -> Any:
    from modal._utils.async_utils import synchronizer  # private: the spec Modal would deploy

    return synchronizer._translate_in(cls)._get_class_service_function()._spec


def test_two_gpu_pools_reserve_the_memory_they_need_and_tiny_runs_on_cpu():
    from modal_app import qwen_generator as q

    resident, offload, cpu = spec(q.QwenGenerator), spec(q.QwenGeneratorOffload), spec(q.QwenGeneratorCPU)
    assert resident.gpus == ["L40S", "A100"] and resident.memory == 24 * 1024   # whole pipeline on the GPU
    assert offload.gpus == ["A10", "L4"] and offload.memory == 40 * 1024        # weights kept in RAM
    assert list(resident.volumes) == list(offload.volumes) == [pins.HF_CACHE_DIR]
    assert cpu.gpus is None and cpu.cpu == 2.0


def test_gpu_classes_snapshot_memory_and_share_the_deadline_model_with_the_worker():
    from modal_app import qwen_generator as q
    from worker.config import GENERATION_TIMEOUT_DEFAULT

    options = q.GPU_CLASS_OPTIONS
    assert options["enable_memory_snapshot"] is True
    assert options["startup_timeout"] == protocol.STARTUP_TIMEOUT_S
    assert options["timeout"] == protocol.EXECUTION_TIMEOUT_S
    # the worker's deadline (spawn to result) fires first and cancels the input; Modal's limits are a backstop
    assert GENERATION_TIMEOUT_DEFAULT <= protocol.STARTUP_TIMEOUT_S + protocol.EXECUTION_TIMEOUT_S


def test_snapshot_safe_loading_runs_first_and_gpu_variants_load_only_after_the_snapshot(monkeypatch):
    import sys

    from modal_app import pipeline, qwen_generator

    order: list[str] = []
    original = pipeline.load_pipeline

    def load(variant: str, **kwargs: Any) -> Any:
        order.append(f"{variant} loaded in {sys._getframe(1).f_code.co_name}")   # prepare (snap=True) or load
        if variant == "tiny":
            return original(variant, **kwargs)
        raise pipeline.UnsupportedEnvironment("no CUDA GPU here")

    monkeypatch.setattr(qwen_generator, "import_inference_stack", lambda: order.append("imports"))
    monkeypatch.setattr(pipeline, "load_pipeline", load)
    tiny = qwen_generator.QwenGeneratorCPU(variant="tiny").run.local("a", tiny_request(steps=1))
    gpu = qwen_generator.QwenGenerator(variant="lightning-8").run.local("b", tiny_request(variant="lightning-8"))
    assert tiny["type"] == "result" and gpu["code"] == protocol.ERROR_UNSUPPORTED_ENVIRONMENT
    assert order == ["imports", "tiny loaded in prepare", "imports", "lightning-8 loaded in load"]


def test_the_warm_pool_comes_from_the_deploy_environment():
    from modal_app.qwen_generator import warm_pool

    assert warm_pool({}) == {"max_containers": 4}
    assert warm_pool({"TENKAIGEN_MODAL_MIN_CONTAINERS": "1", "TENKAIGEN_MODAL_BUFFER_CONTAINERS": "2",
                      "TENKAIGEN_MODAL_MAX_CONTAINERS": "8"}) == {
        "max_containers": 8, "min_containers": 1, "buffer_containers": 2}
    with pytest.raises(ValueError, match="TENKAIGEN_MODAL_MIN_CONTAINERS: -1 is negative"):
        warm_pool({"TENKAIGEN_MODAL_MIN_CONTAINERS": "-1"})


def test_the_app_reports_the_pyproject_version_and_a_digest_of_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == pins.PACKAGE_VERSION
    digest = pins.pins_digest()
    assert len(digest) == 12 and protocol.app_version() == f"{project['version']}+{digest}"


def test_the_pins_digest_changes_with_any_pin(monkeypatch):
    before = pins.pins_digest()
    monkeypatch.setattr(pins, "QWEN_IMAGE_LIGHTNING", pins.ModelRepo("lightx2v/Qwen-Image-Lightning", "b" * 40))
    monkeypatch.setattr(pins, "MODEL_REPOS", (*pins.MODEL_REPOS[:-1], pins.QWEN_IMAGE_LIGHTNING))
    assert pins.pins_digest() != before


def test_the_hub_is_read_offline_only_once_every_repository_is_pinned_to_a_commit(monkeypatch):
    assert pins.ModelRepo("x/y", "0123456789abcdef0123456789abcdef01234567").pinned
    assert not pins.ModelRepo("x/y", "main").pinned
    assert pins.hub_offline() is (pins.unpinned_repos() == [])
    monkeypatch.setattr(pins, "MODEL_REPOS", tuple(pins.ModelRepo(r.repo_id, "c" * 40) for r in pins.MODEL_REPOS))
    assert pins.unpinned_repos() == [] and pins.hub_offline()


def test_the_wheel_url_carries_its_hash_once_known():
    digest = "d" * 64
    assert pins.nunchaku_wheel_url(sha256=digest).endswith(f"-linux_x86_64.whl#sha256={digest}")
    assert "#" not in pins.nunchaku_wheel_url()
    with pytest.raises(ValueError, match="not 64 lower-case hex digits"):
        pins.nunchaku_wheel_url(sha256="abc")


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


# ## run(): spawnable, progress through the job's Queue partition, the outcome as return value


def test_run_puts_started_and_a_progress_event_per_step_in_the_jobs_partition_and_returns_the_result(progress):
    result = run("job-7", steps=5, width=80, height=64, seed=42)
    events = progress.partitions[protocol.partition_key("job-7")]
    assert [e["type"] for e in events] == ["started"] + ["progress"] * 5
    assert [(e["step"], e["total"]) for e in events[1:]] == [(i, 5) for i in range(1, 6)]
    assert events[0]["variant"] == "tiny" and events[0]["gpu_type"] == "CPU" and events[0]["offload"] == "none"
    header = {"call_id": None, "job_id": "job-7", "app_version": protocol.app_version()}  # no call id in .local()
    assert all({k: e[k] for k in header} == header for e in [*events, result])
    assert result["type"] == "result"
    assert (result["width"], result["height"], result["steps"], result["seed"], result["variant"]) == (
        80, 64, 5, 42, "tiny")
    assert png_size(result["png"]) == (80, 64) and png_text(result["png"])["seed"] == "42"
    assert set(result["timings"]) == {"load_s", "inference_s", "encode_s"}
    assert result["gpu_type"] == "CPU" and result["offload"] == "none"


def test_the_requested_size_is_delivered_even_when_tiny_renders_smaller(progress):
    result = run(width=256, height=160, steps=2)
    assert (result["width"], result["height"]) == (256, 160)
    assert png_size(result["png"]) == (256, 160)


def test_the_same_seed_gives_identical_pngs_and_a_missing_seed_is_chosen_and_reported(progress):
    first = run(seed=5)["png"]
    again = run(seed=5)["png"]
    other = run(seed=6)["png"]
    assert first == again and png_pixels(first) != png_pixels(other)
    chosen = run(seed=None)
    assert isinstance(chosen["seed"], int) and png_text(chosen["png"])["seed"] == str(chosen["seed"])


def test_img2img_with_an_init_image_reports_every_step(progress):
    result = run("job-i2i", init_image=init_png(), steps=4)
    steps = [e["step"] for e in progress.partitions["job-i2i"] if e["type"] == "progress"]
    assert steps == [1, 2, 3, 4]
    assert png_size(result["png"]) == (64, 48) and png_text(result["png"])["init_image"] == "yes"


def test_a_request_for_another_variant_is_an_error_outcome(progress):
    outcome = run(variant="base")
    assert outcome["type"] == "error" and outcome["code"] == protocol.ERROR_BAD_REQUEST
    assert "serves 'tiny'" in outcome["message"] and outcome["app_version"] == protocol.app_version()


def test_load_time_is_charged_to_the_first_request_only(progress):
    from modal_app import qwen_generator

    fresh = qwen_generator.QwenGeneratorCPU(variant="tiny")
    first = fresh.run.local("a", tiny_request())["timings"]["load_s"]
    second = fresh.run.local("b", tiny_request())["timings"]["load_s"]
    assert first > 0 and second == 0.0


def test_a_long_job_id_gets_a_partition_key_within_modals_64_bytes():
    uuid = "0b6f8a52-3f4e-4c1a-9d55-1f2e3d4c5b6a"
    assert protocol.partition_key(uuid) == uuid
    long_key = protocol.partition_key("x" * 100)
    assert len(long_key.encode()) == 64 and long_key == protocol.partition_key("x" * 100)


# ## Cancellation: Modal raises InputCancellation in the thread running the input


def test_a_cancelled_input_stops_denoising_and_the_container_serves_the_next(progress, monkeypatch):
    import ctypes

    outcome: dict[str, Any] = {}
    with spy_on_denoising(monkeypatch) as spy:
        def work() -> None:
            try:
                outcome["value"] = run("job-c", steps=40)
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=work)
        thread.start()
        deadline = time.monotonic() + 60
        while len(progress.partitions["job-c"]) < 3 and time.monotonic() < deadline:   # started + 2 steps
            time.sleep(0.01)
        started = time.perf_counter()
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                   ctypes.py_object(FakeInputCancellation))
        thread.join(60)
        stopped_in = time.perf_counter() - started
    assert isinstance(outcome.get("error"), FakeInputCancellation)
    assert spy.outcomes == ["cancelled"] and len(spy.steps) < 10 and stopped_in < 10
    assert run(steps=2)["type"] == "result"


# ## Load errors: permanent ones are answered, not crash-looped


def test_a_permanent_load_error_is_kept_and_each_call_answers_unsupported_environment(progress, monkeypatch):
    from modal_app import pipeline, qwen_generator

    loads: list[str] = []

    def broken(variant: str, **_: Any) -> Any:
        loads.append(variant)
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    monkeypatch.setattr(pipeline, "load_pipeline", broken)
    generator = qwen_generator.QwenGeneratorCPU(variant="tiny")
    answers = [generator.run.local(job_id, tiny_request()) for job_id in ("a", "b")]
    assert loads == ["tiny"]           # one load per container, not one per call
    assert [a["code"] for a in answers] == [protocol.ERROR_UNSUPPORTED_ENVIRONMENT] * 2
    assert "no kernel image" in answers[0]["message"] and progress.partitions == {}


def test_a_load_error_a_new_container_may_not_hit_is_raised(progress, monkeypatch):
    from modal_app import pipeline, qwen_generator

    def flaky(variant: str, **_: Any) -> Any:
        raise ConnectionError("the Hub did not answer")

    monkeypatch.setattr(pipeline, "load_pipeline", flaky)
    with pytest.raises(ConnectionError, match="did not answer"):
        qwen_generator.QwenGeneratorCPU(variant="tiny").run.local("a", tiny_request())


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (ImportError("libnunchaku: undefined symbol"), True),
        (ModuleNotFoundError("No module named 'nunchaku'"), True),
        (RuntimeError("CUDA error: no kernel image is available for execution on the device"), True),
        (type("LocalEntryNotFoundError", (FileNotFoundError,), {})("not cached"), True),
        (type("GatedRepoError", (OSError,), {})("401"), True),
        (RuntimeError("CUDA out of memory"), False),
        (ConnectionError("reset by peer"), False),
    ],
)
def test_which_load_errors_are_permanent(error, permanent):
    message = protocol.permanent_load_error(error)
    assert (message is not None) is permanent
    if type(error).__name__ == "LocalEntryNotFoundError":
        assert "download_weights" in message


# ## The command line


def test_save_result_writes_the_png_and_describes_gpu_offload_and_version(tmp_path, progress):
    from modal_app import qwen_generator

    output = tmp_path / "test_output.png"
    result = qwen_generator.save_result(run(steps=3), output)
    assert output.read_bytes() == result["png"]
    line = qwen_generator.describe_result(result, str(output), 1.25)
    assert "on CPU (offload: none)" in line and protocol.app_version() in line and "round trip 1.2s" in line


def test_save_result_stops_on_an_error_or_a_missing_result(tmp_path):
    from modal_app import qwen_generator

    with pytest.raises(SystemExit, match="answered bad_request: nope"):
        qwen_generator.save_result({"type": "error", "code": "bad_request", "message": "nope"}, tmp_path / "x.png")
    with pytest.raises(SystemExit, match="without a result"):
        qwen_generator.save_result({}, tmp_path / "x.png")


def test_the_command_line_runs_tiny_on_the_cpu_class_and_gpu_variants_on_the_chosen_pool():
    from modal_app import qwen_generator as q

    assert q.generator_class("tiny") is q.QwenGeneratorCPU
    assert q.generator_class("lightning-8") is q.QwenGenerator
    assert q.generator_class("lightning-8", "offload") is q.QwenGeneratorOffload
    with pytest.raises(SystemExit, match="--pool"):
        q.generator_class("base", "huge")


def test_model_revisions_reads_the_commit_each_cached_repository_is_at(tmp_path):
    from modal_app import qwen_generator

    commit = "a" * 40
    ref = tmp_path / "models--Qwen--Qwen-Image" / "refs" / "main"
    ref.parent.mkdir(parents=True)
    ref.write_text(commit + "\n")
    found = qwen_generator.cached_revisions(tmp_path)
    assert found["Qwen/Qwen-Image"] == commit
    assert found["nunchaku-tech/nunchaku-qwen-image"] is None
    assert set(found) == {repo.repo_id for repo in pins.MODEL_REPOS}


# ## Warm pool for busy hours: update_autoscaler on the deployed pool of a variant


def test_the_warm_pool_command_updates_the_autoscaler_of_the_variants_pool(monkeypatch, capsys):
    import modal

    from modal_app import warm_pool

    seen: dict[str, Any] = {}

    class Instance:
        def update_autoscaler(self, **settings: Any) -> None:
            seen["settings"] = settings

    def from_name(app: str, name: str, *, environment_name: str | None = None) -> Any:
        seen["lookup"] = (app, name, environment_name)

        def make(**params: Any) -> Instance:
            seen["params"] = params
            return Instance()

        return make

    monkeypatch.setattr(modal.Cls, "from_name", from_name)
    assert warm_pool.main(["--variant", "lightning-4", "--min-containers", "2", "--buffer-containers", "1",
                           "--class", "QwenGeneratorOffload", "--environment", "prod"]) == 0
    assert seen == {"lookup": ("tenkaigen-qwen", "QwenGeneratorOffload", "prod"),
                    "params": {"variant": "lightning-4", "rank": 32},
                    "settings": {"min_containers": 2, "buffer_containers": 1}}
    assert "min_containers=2, buffer_containers=1" in capsys.readouterr().out
    for bad in ([], ["--min-containers", "-1"]):
        with pytest.raises(SystemExit):
            warm_pool.parse_args(bad)
