"""Fixtures for the packaging tests: one wheel + venv per session (`empty_database` is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.packaging.build import InstalledWorker, build_and_install


@pytest.fixture(scope="session")
def installed_worker(tmp_path_factory: pytest.TempPathFactory) -> InstalledWorker:
    """The wheel built and installed with deploy/docker/install-worker into a venv in a temp dir (not the repo)."""
    return build_and_install(tmp_path_factory.mktemp("installed-worker"))

