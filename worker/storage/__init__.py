"""Result storage: where a finished PNG goes (and where edit jobs' input images come from).

`create_storage(settings)` picks one by name, importing only that module: `supabase` (Storage API through storage3),
`local` (a directory, for the embedded default) or `memory` (the queue benchmark's double, from the checkout's
`tenkaigen_tools` package, which the runtime wheel does not ship).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from worker.exceptions import ConfigurationError
from worker.storage.base import Storage, StoredObject

if TYPE_CHECKING:
    from worker.config import Settings

__all__ = ["Storage", "StoredObject", "create_storage"]


def create_storage(settings: Settings) -> Storage:
    """The storage named by `settings.storage`."""
    if settings.storage == "local":
        from worker.storage.local import LocalStorage

        return LocalStorage(settings.local_storage_dir)
    if settings.storage == "memory":
        return _memory_storage()
    from worker.storage.supabase import SupabaseStorage

    assert settings.supabase_url and settings.supabase_service_role_key   # checked by load_settings
    return SupabaseStorage(settings.supabase_url, settings.supabase_service_role_key.get_secret_value())


def _memory_storage() -> Storage:
    """The benchmark's in-memory double, imported by module path so the runtime never imports the tools package."""
    try:
        module = importlib.import_module("tenkaigen_tools.memory_storage")
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            "TENKAIGEN_STORAGE=memory: cannot import tenkaigen_tools.memory_storage "
            f"(missing {exc.name or exc}); it is a test double from the source checkout's tenkaigen_tools package, "
            "which an installed wheel does not ship; run from a checkout's root, or choose local or supabase"
        ) from exc
    storage: Storage = module.MemoryStorage()
    return storage
