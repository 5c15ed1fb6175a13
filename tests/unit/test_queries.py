"""worker/queries.sql: parsed once at import; every query name the code uses exists; no SQL built from strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tenkaigen_tools.queries import TOOL_QUERIES
from worker.queue import QUERIES, load_queries

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "worker"
SCRIPTS = ROOT / "scripts"
TOOLS = ROOT / "tenkaigen_tools"
QUEUE_FUNCTIONS = ("claim_jobs", "renew_leases", "report_progress", "complete_jobs", "fail_job",
                   "acknowledge_cancel", "release_jobs", "reap_expired_leases", "purge_finished_jobs",
                   "requeue_job", "cancel_job", "record_backend_call")


def test_the_parser_splits_named_blocks_and_drops_their_descriptions() -> None:
    text = "-- header comment\n\n-- one --\n-- what it does\nselect 1;\n\n-- two --\n-- more\nselect %(x)s\nfrom t;\n"
    assert load_queries(text) == {"one": "select 1", "two": "select %(x)s\nfrom t"}


def test_the_parser_rejects_duplicates_and_empty_blocks() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        load_queries("-- a --\nselect 1;\n-- a --\nselect 2;\n")
    with pytest.raises(ValueError, match="empty"):
        load_queries("-- a --\n-- nothing\n")


def test_every_queue_function_has_a_query_calling_it() -> None:
    for name in QUEUE_FUNCTIONS:
        assert f"queue.{name}(" in QUERIES[name], name


def test_every_query_name_used_in_the_code_exists() -> None:
    used: set[str] = set()
    for path in [*WORKER.rglob("*.py"), *TOOLS.rglob("*.py"), *SCRIPTS.glob("*.py")]:   # the benchmarks use QUERIES too
        text = path.read_text()
        used |= set(re.findall(r'QUERIES\["([a-z_0-9]+)"\]', text))
        used |= set(re.findall(r'(?:_fetchall|_fetchval|\.q|\.val)\(\s*"([a-z_0-9]+)"', text))
    assert used, "the scan found the query uses"
    missing = used - set(QUERIES) - set(TOOL_QUERIES)
    assert not missing, f"queries used but not defined in worker/queries.sql or tenkaigen_tools/queries.sql: {missing}"
    unused = (set(QUERIES) | set(TOOL_QUERIES)) - used
    assert not unused, f"queries defined but never used: {unused}"


def test_the_worker_ships_only_the_queries_its_own_code_runs() -> None:
    """A query only the tools run (benchmarks) belongs in tenkaigen_tools/queries.sql, not in the runtime package."""
    used: set[str] = set()
    for path in WORKER.rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'QUERIES\["([a-z_0-9]+)"\]', text))
        used |= set(re.findall(r'(?:_fetchall|_fetchval|\.q|\.val)\(\s*"([a-z_0-9]+)"', text))
    tools_only = set(QUERIES) - used
    assert not tools_only, f"worker/queries.sql holds queries no worker module runs: {sorted(tools_only)}"


def test_no_worker_module_builds_sql_from_strings() -> None:
    pattern = re.compile(r'(execute|cursor\(\)\.execute)\(\s*f["\']|["\']\s*(select|insert|update|delete) .*["\']\s*%\s',
                         re.IGNORECASE)
    for path in [*WORKER.rglob("*.py"), *TOOLS.rglob("*.py")]:
        if path.name in ("migrate.py", "pgcluster.py"):        # the schema tools, not the worker
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.name}:{number}: SQL built from a string: {line.strip()}"
