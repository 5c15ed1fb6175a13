"""Run every test suite against one ephemeral PostgreSQL and print one closing line `N passed, N failed`.

Called by scripts/test after scripts/bootstrap. Order: ruff, pgTAP (pg_prove on supabase/tests), pytest,
the quick chaos runs (scripts/chaos --quick), deno (scripts/test_deno). A skipped pytest test counts as failed: nothing real is skipped in CI.
With DATABASE_URL set the suites use that server (its user needs CREATEDB) instead of starting a cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.migrate import migrate  # noqa: E402
from worker.pgcluster import LocalCluster  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"


@dataclass
class SuiteResult:
    name: str
    passed: int
    failed: int
    seconds: float
    note: str = ""


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    print(f"\n$ {' '.join(cmd)}", flush=True)
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    print(proc.stdout, end="", flush=True)
    return proc


def run_ruff() -> SuiteResult:
    start = time.monotonic()
    proc = _run([str(VENV_BIN / "ruff"), "check", "worker", "modal_app", "tenkaigen_tools", "tests", "scripts"])
    ok = proc.returncode == 0
    return SuiteResult("ruff", int(ok), int(not ok), time.monotonic() - start)


def _dsn_with_db(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


def run_pgtap(server_dsn: str) -> SuiteResult:
    """pg_prove on supabase/tests, as `supabase test db` runs it, in a fresh migrated database."""
    start = time.monotonic()
    dbname = f"pgtap_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    try:
        dsn = _dsn_with_db(server_dsn, dbname)
        migrate(dsn, standin=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create extension if not exists pgtap with schema extensions")
        params = conninfo_to_dict(dsn)
        cmd = [
            "pg_prove",
            "--ext",
            ".sql",
            "-r",
            "--verbose",
            "--failures",
            "-h",
            params.get("host", "127.0.0.1"),
            "-p",
            str(params.get("port", 5432)),
            "-U",
            params.get("user", "postgres"),
            "-d",
            dbname,
            "supabase/tests",
        ]
        env = {"PGPASSWORD": params["password"]} if params.get("password") else {}
        proc = _run(cmd, env)
        passed = len(re.findall(r"^\s*ok \d+", proc.stdout, re.M))
        failed = len(re.findall(r"^\s*not ok \d+", proc.stdout, re.M))
        note = ""
        if proc.returncode != 0 and failed == 0:
            failed, note = 1, "pg_prove failed outside an assertion (plan mismatch or SQL error); see above"
        return SuiteResult("pgTAP", passed, failed, time.monotonic() - start, note)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))


def run_pytest(server_dsn: str, extra_args: list[str]) -> SuiteResult:
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        proc = _run(
            [
                str(VENV_BIN / "python"),
                "-m",
                "pytest",
                "-q",
                "-rfEs",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                *extra_args,
            ],
            {"DATABASE_URL": server_dsn},
        )
        if not report.exists():
            return SuiteResult("pytest", 0, 1, time.monotonic() - start, "pytest produced no report")
        tests = failed = skipped = 0
        for suite in ET.parse(report).getroot().iter("testsuite"):
            tests += int(suite.get("tests", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    note = f"{skipped} skipped (a skip counts as a failure)" if skipped else ""
    if proc.returncode not in (0, 1) and failed == 0:
        failed, note = 1, f"pytest exited with {proc.returncode}"
    return SuiteResult("pytest", tests - failed - skipped, failed + skipped, time.monotonic() - start, note)


def run_counted_script(name: str, args: list[str]) -> SuiteResult:
    """A script that ends with the line `<name>: N passed, N failed` (scripts/test_deno, scripts/chaos)."""
    start = time.monotonic()
    proc = _run(args)
    match = re.search(rf"^{name}: (\d+) passed, (\d+) failed\s*$", proc.stdout, re.M)
    if not match:
        return SuiteResult(name, 0, 1, time.monotonic() - start, f"no '{name}: N passed, N failed' line")
    passed, failed = int(match[1]), int(match[2])
    if proc.returncode != 0 and failed == 0:
        failed = 1
    return SuiteResult(name, passed, failed, time.monotonic() - start)


def with_server(body: Callable[[str], list[SuiteResult]]) -> list[SuiteResult]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return body(url)
    cluster = LocalCluster.temporary(prefix="tenkaigen-test-")
    try:
        cluster.start()
        print(f"ephemeral PostgreSQL on 127.0.0.1:{cluster.port} ({cluster.data_dir})", flush=True)
        return body(cluster.dsn)
    finally:
        cluster.destroy()


def main(argv: list[str]) -> int:
    results: list[SuiteResult] = [run_ruff()]

    def database_suites(dsn: str) -> list[SuiteResult]:
        return [run_pgtap(dsn), run_pytest(dsn, argv)]

    try:
        results += with_server(database_suites)
    except Exception as exc:  # the harness itself broke: report it as a failure, never as a pass
        print(f"test harness error: {type(exc).__name__}: {exc}", flush=True)
        results.append(SuiteResult("harness", 0, 1, 0.0, str(exc)))
    # the chaos runs start their own clusters and worker processes (scripts/chaos --quick: under 3 minutes)
    results.append(run_counted_script("chaos", [str(ROOT / "scripts" / "chaos"), "--quick"]))
    results.append(run_counted_script("deno", [str(ROOT / "scripts" / "test_deno")]))

    print("\nsuite      passed  failed  seconds")
    for r in results:
        print(f"{r.name:<10} {r.passed:>6}  {r.failed:>6}  {r.seconds:>7.1f}  {r.note}")
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
