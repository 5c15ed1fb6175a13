"""TenkaiGen generation backend: the worker, its queue client and its command line (`tenkaigen`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "tenkaigen"


def installed_version() -> str:
    """The version of the installed `tenkaigen` distribution (pyproject.toml's `version`)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (the tenkaigen package is not installed: run `pip install .` in the repository)"
