"""scripts/dev installs what the placeholder path needs and nothing more: the project without extras (no torch)."""

from __future__ import annotations

import re

from tests.packaging.build import ROOT


def test_scripts_dev_installs_the_project_without_extras() -> None:
    script = (ROOT / "scripts" / "dev").read_text()
    installs = re.findall(r"pip install ([^\n]*)", script)
    project_installs = [line for line in installs if "upgrade pip" not in line]
    assert project_installs == ["-q -e ."], project_installs
    assert "[test]" not in script and "[ml]" not in script
