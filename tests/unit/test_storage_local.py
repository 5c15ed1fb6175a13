"""LocalStorage: files under <root>/<bucket>/<user>/<file>, written atomically, keys confined to a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenkaigen_tools.memory_storage import MemoryStorage
from worker.exceptions import BadRequest
from worker.storage import create_storage
from worker.storage.local import LocalStorage

USER = "6f1b7a0e-8a3c-4f5e-9b1d-2c3d4e5f6a7b"


async def test_an_upload_lands_at_bucket_and_key_and_replaces_an_earlier_one(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.upload_result(f"{USER}/job.png", b"first")
    stored = await storage.upload_result(f"{USER}/job.png", b"second")
    path = tmp_path / "generated-designs" / USER / "job.png"
    assert path.read_bytes() == b"second" and stored.size == 6
    assert [p.name for p in path.parent.iterdir()] == ["job.png"], "no temporary files left behind"


async def test_inputs_are_read_from_generation_inputs(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    (tmp_path / "generation-inputs" / USER).mkdir(parents=True)
    (tmp_path / "generation-inputs" / USER / "in.png").write_bytes(b"in")
    assert await storage.download_input(f"{USER}/in.png") == b"in"
    with pytest.raises(BadRequest, match="init_image_path: no object"):
        await storage.download_input(f"{USER}/missing.png")


async def test_keys_cannot_escape_their_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    for key in ("../evil.png", f"{USER}/../../evil.png", "/etc/passwd", f"{USER}/.hidden"):
        with pytest.raises(BadRequest):
            await storage.upload_result(key, b"x")


async def test_purged_results_are_deleted(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.upload_result(f"{USER}/a.png", b"a")
    assert await storage.delete_results([f"{USER}/a.png", f"{USER}/never.png"]) == 2
    assert not (tmp_path / "generated-designs" / USER / "a.png").exists()


async def test_memory_storage_is_a_dict() -> None:
    storage = MemoryStorage()
    await storage.upload_result(f"{USER}/a.png", b"a")
    assert storage.objects == {("generated-designs", f"{USER}/a.png"): b"a"}


def test_storage_is_chosen_by_name(tmp_path: Path) -> None:
    from worker.config import Settings

    base = {"database_url": "postgresql://x@localhost/db"}
    assert create_storage(Settings(**base, storage="local", local_storage_dir=tmp_path)).name == "local"
    assert create_storage(Settings(**base, storage="memory")).name == "memory"
    supabase = create_storage(Settings(**base, storage="supabase", supabase_url="https://a.supabase.co",
                                       supabase_service_role_key="k"))
    assert supabase.name == "supabase"


async def test_an_upload_is_fsynced_file_first_then_its_directory(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut after the rename must find either the old object or the whole new one: the file's bytes reach
    the disk before the rename, and the rename itself (a directory entry) reaches it after."""
    import os
    import stat

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append("dir" if stat.S_ISDIR(mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    await LocalStorage(tmp_path).upload_result(f"{USER}/job.png", b"png")
    assert synced == ["file", "dir"]
    assert (tmp_path / "generated-designs" / USER / "job.png").read_bytes() == b"png"
