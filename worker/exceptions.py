"""Typed errors. The three runner-driving classes match the `error_code` values stored on a job row."""

from __future__ import annotations


class TenkaigenError(Exception):
    """Something went wrong in TenkaiGen."""

    error_code = "internal_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(TenkaigenError):
    """The worker is misconfigured; fix the named setting and start again."""

    error_code = "configuration_error"


class BadRequest(TenkaigenError):
    """The job's request cannot be generated as asked; it fails now, without retries."""

    error_code = "bad_request"


class Transient(TenkaigenError):
    """A temporary failure (backend busy, network, timeout); the job is retried with backoff."""

    error_code = "transient"


class LeaseLost(TenkaigenError):
    """This worker no longer owns the job (its lease expired or it was reassigned); the result is dropped."""

    error_code = "lease_lost"


class JobCanceled(TenkaigenError):
    """The job's owner canceled it while it was running."""

    error_code = "canceled"


class WorkerFault(TenkaigenError):
    """This worker cannot run any job right now, for a reason of its own rather than the job's (Storage refuses its
    service key). The job is handed back without using an attempt (`queue.release_jobs`), and the worker stops
    claiming for a while and reports itself unhealthy, so that no job fails because of an operator's mistake."""

    error_code = "worker_fault"


class BackendRestarted(TenkaigenError):
    """The backend's app was redeployed or stopped while it ran the job (Modal terminated the call). Neither the
    job's fault nor the worker's: the job is handed back without using an attempt (`queue.release_jobs`), and
    claims go on. A backend raises it at most once per job and process; a second time is a Transient."""

    error_code = "backend_restarted"


class InvalidBackendResult(Transient):
    """The backend returned something that is not the PNG that was asked for (empty, too large, not a PNG,
    truncated, or of another size). Nothing is uploaded. Transient on purpose: a backend answering garbage is
    most likely a deployment or infrastructure fault (a half-rolled-out image, a proxy's error page, a cut-off
    transfer), not a property of the request, so the job is retried with backoff up to max_attempts and then
    ends `failed` with this message."""

    error_code = "invalid_backend_result"
