"""Structured logs carry job ids and attempts; every logger of the process is routed; secrets never reach the output."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator

import pytest

import worker.logging as worker_logging
from worker.logging import LIBRARY_LOGGERS, configure_logging, logger, route_library_loggers, scrub


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put every logger, the hooks and the scrubber back."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {name: (list(lg.handlers), lg.level, lg.propagate)
             for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    for name in ("tenkaigen", *LIBRARY_LOGGERS):
        lg = logging.getLogger(name)
        saved.setdefault(name, (list(lg.handlers), lg.level, lg.propagate))
    hooks = (sys.excepthook, threading.excepthook, warnings.showwarning)
    secrets, configured = set(scrub._secrets), worker_logging._configured
    yield
    logging.captureWarnings(False)
    sys.excepthook, threading.excepthook, warnings.showwarning = hooks
    root.handlers, root.level = saved_root
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers, lg.level, lg.propagate = handlers, level, propagate
    scrub._secrets, worker_logging._configured = secrets, configured


def capture(fmt: str = "json", level: str = "DEBUG", **kwargs: object) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level=level, fmt=fmt, stream=stream, **kwargs)  # type: ignore[arg-type]
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


def test_json_lines_stay_valid_json_when_a_secret_ends_the_message_or_needs_escaping() -> None:
    stream = capture(secrets=['pw"with\\quote'])
    logger("db").error("dsn host=x user=y password=hunter3")
    logger("db").error('key pw"with\\quote here', extra={"detail": 'pw"with\\quote'})
    first, second = (json.loads(line) for line in stream.getvalue().splitlines()[-2:])
    assert first["message"] == "dsn host=x user=y password=***"
    assert second["message"] == "key *** here" and second["detail"] == "***"


def test_scrub_keeps_text_without_secrets() -> None:
    for text in ("job 1 succeeded in 2.0 s", "as-is, ak-47", "mask-0123456789abcdef", "fc-01HXYZ0123456789ABCDEF"):
        assert scrub(text) == text


@pytest.mark.parametrize("shape", [
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.Zm9vYmFyYmF6cXV4",   # a JWT
    "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz",                                          # Supabase secret key
    "ak-AbCdEf0123456789GhIjKl",                                                          # Modal token id
    "as-ZyXwVu9876543210TsRqPo",                                                          # Modal token secret
])
def test_secret_shaped_tokens_are_scrubbed_unregistered(shape: str) -> None:
    assert scrub(f"header: Bearer {shape} sent") == "header: Bearer *** sent"


# ## Every logger, every place a secret can hide, both formats
DB_PASSWORD = "Pg-Pl4nted-Passw0rd"
SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIiwicGxhbnRlZCI6dHJ1ZX0.cGxhbnRlZC1zaWduYXR1cmU"
SUPABASE_SECRET = "sb_secret_Pl4ntedSupabaseSecretKey01"
MODAL_ID = "ak-Pl4ntedModalTokenId0001"
MODAL_SECRET = "as-Pl4ntedModalTokenSecret01"
PLANTED = (DB_PASSWORD, SERVICE_KEY, SUPABASE_SECRET, MODAL_ID, MODAL_SECRET)
LOGGERS = ("tenkaigen", "tenkaigen.runner", "modal", "modal-client", "storage3", "httpx", "psycopg",
           "psycopg.pool", "apscheduler")


def plant(name: str) -> list[str]:
    """Log each planted secret in the message, the args, an exception and extra fields; return the markers that
    must arrive (the text around each secret)."""
    log = logging.getLogger(name)
    markers = []
    for i, secret in enumerate(PLANTED):
        tag = f"{name}#{i}"
        log.warning(f"in-message {tag} before {secret} after")
        log.warning("in-args %s before %s after", tag, secret)
        try:
            raise ConnectionError(f"in-exception {tag} before {secret} after")
        except ConnectionError:
            log.warning("exception %s", tag, exc_info=True)
        log.warning("in-extra %s", tag, extra={"action": f"act {secret}", "detail": f"detail {secret}",
                                                "error_code": f"code {secret}"})
        markers += [f"in-message {tag} before *** after", f"in-args {tag} before *** after",
                    f"in-exception {tag} before *** after", f"in-extra {tag}"]
    log.warning("dsn postgresql://tenkaigen_worker:%s@db.abcd.supabase.co:5432/postgres", DB_PASSWORD)
    return markers


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_planted_secret_reaches_the_output_of_any_logger(fmt: str, monkeypatch: pytest.MonkeyPatch,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    import modal  # noqa: F401  (modal puts its own stderr handler on "modal-client" at import)

    monkeypatch.setenv("MODAL_TOKEN_ID", MODAL_ID)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", MODAL_SECRET)
    # a library that installed its own handler before configure_logging: it must be taken off
    logging.getLogger("storage3").addHandler(logging.StreamHandler(sys.stderr))
    stream = capture(fmt=fmt, level="INFO", secrets=[DB_PASSWORD, SERVICE_KEY, None])
    for name in ("modal-client", "modal-utils", "storage3"):
        assert logging.getLogger(name).handlers == [] and logging.getLogger(name).propagate, name
    markers = [marker for name in LOGGERS for marker in plant(name)]
    text = stream.getvalue()
    for marker in markers:
        assert marker in text, f"{marker!r} did not arrive"
    everything = text + "".join(capfd.readouterr())
    for secret in PLANTED:
        assert secret not in everything
    assert "postgresql://tenkaigen_worker:***@db.abcd.supabase.co" in text
    if fmt == "json":
        entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert {e["logger"] for e in entries} >= set(LOGGERS)
        extras = [e for e in entries if e["message"].startswith("in-extra")]
        assert extras and all(e["detail"] == "detail ***" and e["action"] == "act ***" for e in extras)
        assert sum("in-exception" in e.get("exception", "") for e in entries) == len(LOGGERS) * len(PLANTED)
    else:
        assert "[action=act *** error_code=code ***]" in text


def test_a_library_logger_created_after_configure_logging_is_routed_and_scrubbed() -> None:
    stream = capture(secrets=[DB_PASSWORD])
    late = logging.getLogger(f"late_library_{uuid.uuid4().hex[:6]}.client")
    late.warning("late logger says %s", DB_PASSWORD)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["logger"] == late.name and entry["message"] == "late logger says ***"


def test_a_handler_a_library_adds_later_is_taken_off_by_route_library_loggers(
        capfd: pytest.CaptureFixture[str]) -> None:
    stream = capture(secrets=[DB_PASSWORD])
    late = logging.getLogger(f"late_library_{uuid.uuid4().hex[:6]}")
    late.addHandler(logging.StreamHandler(sys.stderr))     # what `import modal` does to "modal-client"
    late.propagate = False
    route_library_loggers()
    late.warning("own handler says %s", DB_PASSWORD)
    assert "own handler says ***" in stream.getvalue()
    assert DB_PASSWORD not in "".join(capfd.readouterr())


def test_library_chatter_is_held_at_warning_unless_the_level_is_debug() -> None:
    stream = capture(level="INFO")
    logging.getLogger("httpx").info("HTTP Request: GET https://x.supabase.co 200")
    logging.getLogger("hpack").debug("Decoded header")
    logger("runner").info("ours at info")
    assert "HTTP Request" not in stream.getvalue() and "ours at info" in stream.getvalue()
    stream = capture(level="DEBUG")
    logging.getLogger("httpx").info("HTTP Request: GET https://x.supabase.co 200")
    assert "HTTP Request" in stream.getvalue()


def test_the_root_has_exactly_our_handler() -> None:
    logging.getLogger().addHandler(logging.StreamHandler(sys.stdout))
    capture()
    assert len(logging.getLogger().handlers) == 1
    assert isinstance(logging.getLogger().handlers[0].formatter, worker_logging.JsonFormatter)


def test_warnings_go_through_logging_and_the_scrubber() -> None:
    stream = capture(secrets=[DB_PASSWORD])
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)
        warnings.warn(f"deprecated thing used with {DB_PASSWORD}", DeprecationWarning, stacklevel=1)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["logger"] == "py.warnings" and "deprecated thing used with ***" in entry["message"]


def test_uncaught_exceptions_are_logged_as_json_and_scrubbed() -> None:
    stream = capture(secrets=[DB_PASSWORD])
    try:
        raise RuntimeError(f"could not connect with {DB_PASSWORD}")
    except RuntimeError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["level"] == "critical" and entry["message"] == "uncaught RuntimeError: could not connect with ***"
    assert "Traceback" in entry["exception"] and DB_PASSWORD not in stream.getvalue()

    def boom() -> None:
        raise ValueError(f"thread saw {DB_PASSWORD}")

    thread = threading.Thread(target=boom, name="bg-thread")
    thread.start()
    thread.join(10)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["message"] == "uncaught ValueError in thread bg-thread: thread saw ***"
    assert DB_PASSWORD not in stream.getvalue()
