"""Backend selection by name. Modules are imported only when chosen: the torch-based backends (tiny, local)
must never be imported by a worker that runs placeholder or modal.

A backend module exposes `create_backend(settings) -> Backend`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from worker.backends.base import Backend
from worker.exceptions import ConfigurationError

if TYPE_CHECKING:
    from worker.config import Settings

BACKEND_MODULES: dict[str, str] = {
    "placeholder": "worker.backends.placeholder",
    "noop": "tenkaigen_tools.noop_backend",      # the queue benchmark's double (checkout only, see TOOLS_PACKAGE)
    "tiny": "worker.backends.tiny",
    "local": "worker.backends.local",
    "modal": "worker.backends.modal",
    "chaos": "tenkaigen_tools.chaos_backend",   # a test double for scripts/chaos, never for serving users
}

# The test doubles live in the checkout's tools package, which the runtime wheel does not ship.
TOOLS_PACKAGE = "tenkaigen_tools"
TOOLS_HINT = (f"it is a test double from the source checkout's {TOOLS_PACKAGE} package, which an installed wheel "
              "does not ship; run the worker from a checkout's root (python -m worker worker), or choose a "
              "production backend (placeholder, tiny, local, modal)")

INSTALL_HINTS: dict[str, str] = {
    "tiny": "install the ML extras: pip install -e '.[ml]' (CPU torch, pinned)",
    "local": "install the ML extras on a CUDA machine: pip install -e '.[ml]'",
    "modal": "install modal and deploy modal_app/qwen_generator.py (modal deploy)",
}


def create_backend(settings: Settings) -> Backend:
    """The backend named by `settings.backend`, or a ConfigurationError saying what is missing."""
    name = settings.backend
    module_name = BACKEND_MODULES.get(name)
    if module_name is None:
        raise ConfigurationError(
            f"TENKAIGEN_BACKEND: unknown backend {name!r}; choose one of {', '.join(BACKEND_MODULES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = TOOLS_HINT if module_name.startswith(TOOLS_PACKAGE + ".") else INSTALL_HINTS.get(name, "")
        missing = exc.name or str(exc)
        raise ConfigurationError(
            f"TENKAIGEN_BACKEND={name}: cannot import {module_name} (missing {missing})"
            + (f"; {hint}" if hint else "")) from exc
    factory = getattr(module, "create_backend", None)
    if factory is None:
        raise ConfigurationError(f"TENKAIGEN_BACKEND={name}: {module_name} has no create_backend(settings)")
    backend = factory(settings)
    if not isinstance(backend, Backend):
        raise ConfigurationError(f"TENKAIGEN_BACKEND={name}: {module_name}.create_backend returned {backend!r}, "
                                 "which does not implement worker.backends.base.Backend")
    return backend
