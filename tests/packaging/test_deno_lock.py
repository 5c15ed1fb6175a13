"""The Edge Functions' npm imports are pinned by a committed deno.lock that scripts/test_deno reads with --frozen."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "supabase" / "functions"


def npm_packages(imports: dict[str, str]) -> set[str]:
    """`npm:@scope/name@1.2.3/sub` → `npm:@scope/name@1.2.3` for every npm import."""
    found = set()
    for target in imports.values():
        match = re.fullmatch(r"(npm:@?[^@/]+(?:/[^@/]+)?@[^/]+)(?:/.*)?", target)
        if match:
            found.add(match.group(1))
    return found


def test_the_functions_lockfile_is_committed_used_and_records_every_npm_import() -> None:
    config = json.loads((FUNCTIONS / "deno.json").read_text())
    assert config.get("lock", True) is not False, "deno.json must not switch the lockfile off"
    lock = json.loads((FUNCTIONS / "deno.lock").read_text())
    packages = npm_packages(config["imports"])
    assert packages, "deno.json imports npm packages"
    assert packages <= set(lock["specifiers"]), (
        f"deno.lock does not record {sorted(packages - set(lock['specifiers']))}: run the update command at the "
        "top of scripts/test_deno and commit supabase/functions/deno.lock")


def test_scripts_test_deno_fails_on_a_stale_lockfile() -> None:
    script = (ROOT / "scripts" / "test_deno").read_text()
    assert re.search(r'check "\$\{FUNCTIONS\[@\]\}" --frozen', script)
    assert re.search(r'run_tests functions "\$\{FUNCTIONS\[@\]\}" --frozen', script)
