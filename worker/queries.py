"""The named queries of worker/queries.sql: every statement the Python side runs, loaded once at import.

A block starts with a `-- name --` line; the `--` lines right after it describe it; the SQL follows.
"""

from __future__ import annotations

import re
from importlib import resources


def load_queries(text: str) -> dict[str, str]:
    """Split a queries file into {name: sql}. A block starts with a `-- name --` line; `--` lines right after it
    are its description and are dropped."""
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    header = re.compile(r"^-- ([a-z][a-z0-9_]*) --\s*$")

    def close() -> None:
        if name is not None:
            body = "\n".join(lines).strip()
            if not body:
                raise ValueError(f"query {name!r} is empty")
            queries[name] = body.rstrip(";").strip() if body.count(";") <= 1 else body

    for line in text.splitlines():
        match = header.match(line)
        if match:
            close()
            name = match[1]
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice")
            lines = []
        elif name is not None and not (not lines and line.startswith("--")):
            lines.append(line)
    close()
    return queries


QUERIES: dict[str, str] = load_queries(resources.files("worker").joinpath("queries.sql").read_text("utf-8"))
