"""The exceptions of the Qwen-Image pipeline, and which load or run failures are a permanent UnsupportedEnvironment.

Pure Python (no torch, no diffusers): the worker's Modal backend and the Modal app import these names to map them
to the worker's error kinds (InvalidRequest -> BadRequest, UnsupportedEnvironment -> ConfigurationError). They are
re-exported by `modal_app.pipeline`.
"""

from __future__ import annotations

GPU_INSTALL_HINT = "pip install -e '.[gpu]', which pins torch, diffusers and the Nunchaku wheel of modal_app/pins.py together"


class InvalidRequest(ValueError):
    """The request cannot be generated as asked (bad field, wrong variant, unreadable init image)."""


class GenerationCancelled(Exception):
    """The run was cancelled before its last denoising step."""


class UnsupportedEnvironment(RuntimeError):
    """This machine cannot run the variant: a permanent error, retrying on the same image cannot help.

    Raised for no CUDA, a GPU without Nunchaku kernels, PyPI's `nunchaku`, a Nunchaku wheel built for another torch,
    an ImportError while loading, or CUDA's "no kernel image is available" (a wheel without kernels for this GPU).
    The worker backends map it to ConfigurationError (never Transient), so a job does not boot GPU after GPU.
    """


# Messages of errors that mean "this binary cannot run here"; matched case-insensitively.
_ENVIRONMENT_ERROR_MARKERS = (
    "no kernel image is available",
    "undefined symbol",
    "nunchaku._c",
    "cuda driver version is insufficient",
)


def environment_error(exc: BaseException, *, variant: str) -> UnsupportedEnvironment | None:
    """The UnsupportedEnvironment an error from loading or running a variant stands for, or None if it is not one.

    An ImportError (a wheel that does not import: Nunchaku compiled for another torch, a missing dependency) or a
    RuntimeError naming a missing kernel image or undefined symbol will fail the same way on every retry.
    """
    if isinstance(exc, UnsupportedEnvironment):
        return exc
    text = f"{exc.__class__.__name__}: {exc}"
    if isinstance(exc, ImportError):
        why = "a library of the inference stack does not import"
    elif isinstance(exc, RuntimeError | OSError) and any(
        m in text.lower() for m in _ENVIRONMENT_ERROR_MARKERS
    ):
        why = "the installed binaries cannot run on this machine"
    else:
        return None
    return UnsupportedEnvironment(
        f"variant {variant!r}: {why} ({text[:300]}); install the pinned GPU stack "
        f"({GPU_INSTALL_HINT}) on an L40S, A10, L4 or A100 and redeploy; retrying will not help"
    )
