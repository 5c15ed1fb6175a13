"""Result storage: where a finished PNG goes (and where edit jobs' input images come from).

`create_storage(settings)` picks one by name, importing only that module: `supabase` (Storage API through storage3),
`local` (a directory, for the embedded default) or `memory` (the queue benchmark only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        from worker.storage.memory import MemoryStorage

        return MemoryStorage()
    from worker.storage.supabase import SupabaseStorage

    assert settings.supabase_url and settings.supabase_service_role_key   # checked by load_settings
    return SupabaseStorage(settings.supabase_url, settings.supabase_service_role_key.get_secret_value())
