"""client/ and examples/nextjs type-check with the TypeScript compiler under a new Next.js app's tsconfig
(`moduleResolution: "bundler"`, strict, no `allowImportingTsExtensions`), and client/database.types.ts is what
scripts/gen_types generates from the migrated schema."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
TSC = ROOT / "node_modules" / ".bin" / "tsc"
GENERATED = ROOT / "client" / "database.types.ts"


def _load_gen_types() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_types", ROOT / "scripts" / "gen_types.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_types"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("project", ["client", "examples/nextjs"])
def test_tsc_type_checks_under_nextjs_default_tsconfig(project: str) -> None:
    assert TSC.exists(), "node_modules/.bin/tsc is missing: run scripts/bootstrap (it runs `npm ci`)"
    proc = subprocess.run(
        [str(TSC), "-p", f"{project}/tsconfig.json", "--pretty", "false"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"tsc -p {project}/tsconfig.json:\n{proc.stdout}{proc.stderr}"


def test_the_tsconfigs_are_nextjs_defaults_without_ts_extension_imports() -> None:
    import json

    for project in ("client", "examples/nextjs"):
        options = json.loads((ROOT / project / "tsconfig.json").read_text())["compilerOptions"]
        assert options["moduleResolution"] == "bundler" and options["strict"] is True and options["noEmit"] is True
        assert "allowImportingTsExtensions" not in options
    for source in (ROOT / "client").glob("*.ts"):
        assert ".ts\"" not in "".join(
            line for line in source.read_text().splitlines() if line.startswith(("import", "export", "} from"))
            and "supabase/functions" not in line
        ), f"{source.name} imports a module with a .ts extension, which Next's tsconfig rejects"


def test_the_committed_database_types_are_current(admin: psycopg.Connection) -> None:
    generated = _load_gen_types().generate(admin)
    assert GENERATED.read_text() == generated, "client/database.types.ts is stale: run scripts/gen_types"


def test_the_generated_types_cover_what_clients_may_reach_and_nothing_else(admin: psycopg.Connection) -> None:
    source = _load_gen_types().generate(admin)
    for name in ("generation_jobs: {", "generation_styles: {", "generation_variants: {",
                 "cancel_generation_job: {", "generation_job_queue_position: {"):  # fmt: skip
        assert name in source
    for hidden in ("generation_jobs_prepare_request", "claim_jobs", "quota_limits", "locked_by?:"):
        assert hidden not in source, f"{hidden}: not reachable by anon/authenticated, so not typed"
