"""Structured logs: one JSON object a line (or readable text), carrying action, job_id, attempt and worker_id.

Call sites log with `extra={"action": "complete_jobs", "job_id": …, "attempt": …}` (same verb as the SQL function)
through `logger(name)`, the project's `tenkaigen.<name>` tree.

`configure_logging` installs ONE handler, on the root logger, and removes every other handler in the process, so
every record of every logger (ours, and modal, storage3, httpx, httpcore, hpack, grpclib, psycopg, apscheduler,
urllib3, … including loggers created later) goes through the formatter and the secret scrubber. Library loggers
are held at WARNING unless the level is DEBUG. Python warnings (`warnings.warn`) and uncaught exceptions (main
thread and other threads) are logged the same way.

Secrets never reach the output: the scrubber replaces the registered values (database password, service-role key,
cost-alert webhook URL, and MODAL_TOKEN_ID / MODAL_TOKEN_SECRET read from the environment at configure time) and
anything shaped like a secret: a password in a connection URL or a `password=` keyword, a JWT (`eyJ….….…`), a
Supabase secret key (`sb_secret_…`), a Modal token (`ak-…`, `as-…`). It is applied to the message with its
arguments, the exception text, the stack and every extra field, before they are encoded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, TextIO

LOGGER_NAME = "tenkaigen"
CONTEXT_FIELDS = ("action", "worker_id", "job_id", "attempt", "user_id", "status", "duration_s", "count",
                  "error_code", "backend")
# Loggers of the libraries the worker uses, held at WARNING (their INFO/DEBUG chatter) unless the level is DEBUG.
# modal logs through "modal-client" and "modal-utils" (modal/config.py, modal/_utils/logger.py), not "modal".
LIBRARY_LOGGERS = ("modal", "modal-client", "modal-utils", "storage3", "httpx", "httpcore", "hpack", "grpclib",
                   "psycopg", "psycopg.pool", "apscheduler", "urllib3")
# The environment variables of a Modal token (https://modal.com/docs/reference/modal.config).
MODAL_TOKEN_VARIABLES = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")

_REDACTED = "***"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_SECRET_SHAPES = (
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),   # a JWT (Supabase legacy keys)
    re.compile(r"\bsb_secret_[A-Za-z0-9_-]+"),                                   # a Supabase secret API key
    re.compile(r"\ba[ks]-[A-Za-z0-9]{12,}"),                                     # a Modal token id / secret
)

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class SecretScrubber:
    """Replaces registered secret values, passwords in connection strings and secret-shaped tokens in text."""

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
        text = _KEYWORD_PASSWORD.sub(lambda m: m[1] + _REDACTED, text)
        for shape in _SECRET_SHAPES:
            text = shape.sub(_REDACTED, text)
        return text


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
            "message": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) or value is None else scrub(str(value))
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        # every string was scrubbed above, before encoding: scrubbing the encoded line instead would miss a secret
        # that JSON escapes (a quote, a backslash) and could eat the closing quote after a `password=` value
        return json.dumps(entry, ensure_ascii=False)


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
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return scrub(line)


class _WorkerIdFilter(logging.Filter):
    def __init__(self, worker_id: str | None) -> None:
        super().__init__()
        self.worker_id = worker_id

    def filter(self, record: logging.LogRecord) -> bool:
        if self.worker_id and not hasattr(record, "worker_id"):
            record.worker_id = self.worker_id
        return True


_configured = False


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "json",
    secrets: Iterable[str | None] = (),
    worker_id: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send every record of the process to `stream` (stderr) in the chosen format, hiding `secrets` (and the Modal
    token of the environment). Call once, at the edge (CLI or `dev`), before the work starts."""
    global _configured
    scrub.add(*secrets)
    scrub.add(*(os.environ.get(name) for name in MODAL_TOKEN_VARIABLES))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_WorkerIdFilter(worker_id))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    _configured = True
    route_library_loggers()
    logger().setLevel(logging.NOTSET)             # the project's tree follows the root's level
    library_level = logging.DEBUG if level == "DEBUG" else max(logging.WARNING, logging.getLevelName(level))
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
    logging.captureWarnings(True)                 # warnings.warn → logger "py.warnings" → the root handler
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def route_library_loggers() -> None:
    """Strip the handlers other code put on its own loggers, so that their records propagate to the root handler
    (modal adds a plain stderr handler to "modal-client" and "modal-utils" when it is imported). configure_logging
    calls it; a module that imports such a library after start-up calls it again. No-op before configure_logging.
    """
    if not _configured:
        return
    for candidate in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(candidate, logging.Logger):
            continue                              # a PlaceHolder: no handlers of its own
        for handler in list(candidate.handlers):
            if not isinstance(handler, logging.NullHandler):
                candidate.removeHandler(handler)
        candidate.propagate = True


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logger().critical("uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, trace),
                      extra={"action": "uncaught_exception"})


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logger().critical("uncaught %s in thread %s: %s", args.exc_type.__name__, name, args.exc_value,
                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
                      extra={"action": "uncaught_exception"})
