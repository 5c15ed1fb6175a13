"""The named queries the tools run: the worker's (worker/queries.sql) and the benchmarks' own
(tenkaigen_tools/queries.sql), in one mapping. A tool query may not reuse a worker query's name."""

from __future__ import annotations

from pathlib import Path

from worker.queue import QUERIES as WORKER_QUERIES
from worker.queue import load_queries

TOOL_QUERIES: dict[str, str] = load_queries((Path(__file__).parent / "queries.sql").read_text("utf-8"))

_clashes = sorted(set(TOOL_QUERIES) & set(WORKER_QUERIES))
if _clashes:
    raise ValueError(f"tenkaigen_tools/queries.sql redefines worker queries {_clashes}; rename them")

QUERIES: dict[str, str] = {**WORKER_QUERIES, **TOOL_QUERIES}
