"""supabase/schema.sql, the live schema in one readable file, is what the migrations build.

The committed snapshot is compared with one generated now from a database migrated by supabase/migrations (the
session's template: stand-in + every migration), so a migration added or changed without regenerating the
snapshot, or a snapshot edited by hand, fails here with the command that fixes it."""

from __future__ import annotations

import difflib
import importlib.util
import sys
import types
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "supabase" / "schema.sql"
FIX = "run scripts/schema_snapshot and commit supabase/schema.sql with the migration"


def _load_schema_snapshot() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("schema_snapshot", ROOT / "scripts" / "schema_snapshot.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["schema_snapshot"] = module
    spec.loader.exec_module(module)
    return module


def _drift(committed: str, generated: str) -> str:
    diff = difflib.unified_diff(
        committed.splitlines(), generated.splitlines(), "supabase/schema.sql", "from supabase/migrations", lineterm=""
    )
    return "\n".join(list(diff)[:80])


def test_the_committed_schema_snapshot_is_what_the_migrations_build(database: str) -> None:
    generated = _load_schema_snapshot().generate(database)
    committed = SNAPSHOT.read_text(encoding="utf-8")
    assert committed == generated, (
        f"supabase/schema.sql and the migrations disagree: {FIX}.\n{_drift(committed, generated)}"
    )


def test_a_schema_change_the_snapshot_does_not_hold_is_caught(admin: psycopg.Connection, database: str) -> None:
    """Guard for the test above: a change to the migrated schema (here a new column and a new grant) shows up in the
    generated snapshot, so a migration that is not in the committed file cannot pass unnoticed."""
    module = _load_schema_snapshot()
    before = module.generate(database)
    admin.execute("alter table public.generation_jobs add column probe_drift text")
    admin.execute("grant select on queue.franchise_loras to tenkaigen_worker")
    after = module.generate(database)
    assert before == SNAPSHOT.read_text(encoding="utf-8")
    assert after != before
    added = {line.strip() for line in after.splitlines()} - {line.strip() for line in before.splitlines()}
    assert any(line.startswith("probe_drift text") for line in added), added
    assert "GRANT SELECT ON TABLE queue.franchise_loras TO tenkaigen_worker;" in added
