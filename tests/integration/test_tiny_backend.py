"""A job end to end through the `tiny` backend: the real Qwen-Image pipeline code with tiny random weights on
the CPU, chosen by name through the registry like a deployed worker would."""

from __future__ import annotations

import sys

from PIL import Image

from tests.integration.conftest import completions, wait_for, wait_status
from worker.backends.registry import create_backend
from worker.storage.base import RESULTS_BUCKET
from worker.storage.local import LocalStorage


async def test_a_job_goes_end_to_end_through_the_tiny_backend(admin, make_job, start_worker, settings_for,
                                                               tmp_path) -> None:
    settings = settings_for(backend="tiny")
    backend = create_backend(settings)
    assert backend.name == "tiny"
    job_id = make_job("a tiny dragon", width=256, height=256, steps=3)
    worker = await start_worker(backend=backend, storage=LocalStorage(tmp_path / "storage"), progress_interval=0)
    try:
        row = await wait_for(wait_status(admin, job_id, "succeeded", "failed"), within=240, message="tiny job")
    finally:
        await backend.aclose()
    assert row["status"] == "succeeded", row["error_message"]
    assert row["backend"] == "tiny" and row["attempts"] == 1
    with Image.open(tmp_path / "storage" / RESULTS_BUCKET / row["result_path"]) as image:
        assert image.size == (256, 256)
    assert completions(admin, job_id) == [(1, worker.worker_id)]
    assert worker.runner.metrics.progress_writes._value.get() >= 1, "progress per denoising step reaches the row"
    assert "torch" in sys.modules


def test_torch_is_not_imported_unless_a_torch_backend_is_chosen() -> None:
    import subprocess

    code = ("import sys\n"
            "from worker.config import Settings\n"
            "from worker.backends.registry import create_backend\n"
            "for name in ('placeholder', 'noop', 'modal'):\n"
            "    create_backend(Settings(database_url='postgresql://x@localhost/db', backend=name))\n"
            "from worker import runner, commands, cli  # noqa\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'diffusers' not in sys.modules\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
