"""Database errors as domain errors, translated once at the queue boundary (worker/queue.py and
worker/client_requests.py): a lost or refused connection is `DatabaseUnavailable` (a `Transient`, retried)."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from worker.exceptions import BadRequest, TenkaigenError, Transient


class DatabaseUnavailable(Transient):
    """The database cannot be reached right now (restart, network, pool exhausted); the call can be retried."""

    error_code = "database_unavailable"


class JobNotFound(TenkaigenError):
    """An admin call named a job that does not exist (SQLSTATE P0002 from queue.cancel_job / requeue_job)."""

    error_code = "not_found"


@contextlib.contextmanager
def translate_errors() -> Any:
    """psycopg errors -> domain errors, at this boundary only."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"database unavailable: {str(exc).strip().splitlines()[0] if str(exc) else exc}"
                                  ) from exc
    except psycopg.errors.ReadOnlySqlTransaction as exc:    # SQLSTATE 25006: writes refused for now, retry later
        raise DatabaseUnavailable(
            "database is read-only (Supabase switches a project whose disk is full to read-only; or this is a "
            "standby): free disk space or point DATABASE_URL at the primary; retrying") from exc
    except psycopg.errors.NoDataFound as exc:               # SQLSTATE P0002: "job_id: no job <id>"
        raise JobNotFound(exc.diag.message_primary or str(exc)) from exc
    except psycopg.errors.InvalidParameterValue as exc:     # SQLSTATE 22023: a request field is out of bounds
        raise BadRequest(exc.diag.message_primary or str(exc)) from exc
