"""Structured logs carry job ids and attempts; secrets never reach the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from worker.logging import configure_logging, logger, scrub


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers: put them back for the other tests."""
    names = ["tenkaigen", "psycopg", "psycopg.pool", "apscheduler", "httpx"]
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in names}
    secrets = set(scrub._secrets)
    yield
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers, lg.level, lg.propagate = handlers, level, propagate
    scrub._secrets = secrets


def capture(fmt: str = "json", **kwargs: object) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt=fmt, stream=stream, **kwargs)  # type: ignore[arg-type]
    return stream


def test_a_json_line_carries_the_action_job_attempt_and_worker() -> None:
    stream = capture(worker_id="host:1:abc")
    logger("runner").info("succeeded", extra={"action": "complete_jobs", "job_id": "j-1", "attempt": 2})
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["message"] == "succeeded" and entry["level"] == "info" and entry["logger"] == "tenkaigen.runner"
    assert entry["action"] == "complete_jobs" and entry["job_id"] == "j-1" and entry["attempt"] == 2
    assert entry["worker_id"] == "host:1:abc"


def test_text_lines_show_the_context_in_brackets() -> None:
    stream = capture(fmt="text")
    logger("runner").warning("lease lost", extra={"action": "renew_leases", "job_id": "j-2", "attempt": 1})
    assert stream.getvalue().strip().endswith("[action=renew_leases job_id=j-2 attempt=1]")


def test_registered_secrets_and_url_passwords_are_scrubbed() -> None:
    stream = capture(secrets=["sb_secret_abcdef123456", None])
    log = logger("db")
    log.error("connect to postgresql://postgres:hunter2@db.x.supabase.co:5432/postgres failed")
    log.error("key was %s", "sb_secret_abcdef123456")
    log.error("dsn host=x password=hunter3 user=y")
    try:
        raise RuntimeError("Authorization: Bearer sb_secret_abcdef123456")
    except RuntimeError:
        log.exception("boom")
    text = stream.getvalue()
    for secret in ("hunter2", "hunter3", "sb_secret_abcdef123456"):
        assert secret not in text
    assert "postgresql://postgres:***@db.x.supabase.co" in text


def test_scrub_keeps_text_without_secrets() -> None:
    assert scrub("job 1 succeeded in 2.0 s") == "job 1 succeeded in 2.0 s"
