"""Structured logs: one JSON object a line (or readable text), carrying action, job_id, attempt and worker_id.

Call sites log with `extra={"action": "complete_jobs", "job_id": …, "attempt": …}` (same verb as the SQL function).
Secrets never reach the output: `configure_logging` registers the values to hide (database password, service key,
webhook URL) and every formatted line is scrubbed of them, and of any password embedded in a connection URL.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

LOGGER_NAME = "tenkaigen"
CONTEXT_FIELDS = ("action", "worker_id", "job_id", "attempt", "user_id", "status", "duration_s", "count",
                  "error_code", "backend")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_REDACTED = "***"

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class SecretScrubber:
    """Replaces registered secret values and URL passwords in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= 4:
                self._secrets.add(value)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, _REDACTED)
        text = _URL_PASSWORD.sub(lambda m: m["scheme"] + _REDACTED + "@", text)
        return _KEYWORD_PASSWORD.sub(lambda m: m[1] + _REDACTED, text)


scrub = SecretScrubber()


def logger(name: str | None = None) -> logging.Logger:
    """The project's logger (`tenkaigen` or `tenkaigen.<name>`)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, the context fields, then any other extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) or value is None else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`HH:MM:SS level logger: message [key=value …]` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(
            f"{key}={record.__dict__[key]}" for key in CONTEXT_FIELDS
            if key in record.__dict__ and record.__dict__[key] is not None and key != "worker_id")
        line = (f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname.lower():7} "
                f"{record.name}: {record.getMessage()}" + (f" [{context}]" if context else ""))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


class _WorkerIdFilter(logging.Filter):
    def __init__(self, worker_id: str | None) -> None:
        super().__init__()
        self.worker_id = worker_id

    def filter(self, record: logging.LogRecord) -> bool:
        if self.worker_id and not hasattr(record, "worker_id"):
            record.worker_id = self.worker_id
        return True


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "json",
    secrets: Iterable[str | None] = (),
    worker_id: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send the project's logs to `stream` (stderr) in the chosen format, hiding `secrets`."""
    scrub.add(*secrets)
    root = logging.getLogger(LOGGER_NAME)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_WorkerIdFilter(worker_id))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # library chatter (psycopg pool reconnects, APScheduler runs) goes through the same scrubbing handler
    for name, lib_level in (("psycopg", "WARNING"), ("psycopg.pool", "WARNING"), ("apscheduler", "WARNING"),
                            ("httpx", "WARNING")):
        lib = logging.getLogger(name)
        lib.handlers = [handler]
        lib.setLevel(lib_level)
        lib.propagate = False
