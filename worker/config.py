"""Worker settings: one pydantic-settings object, built once at the edge (CLI or `dev`) and passed down.

Environment variables use the `TENKAIGEN_` prefix, except the three Supabase-wide names `DATABASE_URL`,
`SUPABASE_URL` and `SUPABASE_SERVICE_ROLE_KEY`. `load_settings()` turns every problem (missing value, bad value,
impossible combination, a `TENKAIGEN_*` variable no setting reads) into one `ConfigurationError` that lists each
setting by its environment variable and says what to set. Library modules never read the environment themselves.
`tenkaigen config` and docs/configuration.md list every setting, generated from this model (config_reference.py);
the checks behind `load_settings()` are in config_checks.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from psycopg.conninfo import conninfo_to_dict
from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.exceptions import ConfigurationError

ENV_PREFIX = "TENKAIGEN_"

BackendName = Literal["placeholder", "tiny", "local", "modal", "noop", "chaos"]
StorageName = Literal["local", "supabase", "memory"]

CONCURRENCY_DEFAULT = 4
LEASE_SECONDS_DEFAULT = 10
POLL_INTERVAL_DEFAULT = 2.0
GRACE_PERIOD_DEFAULT = 120.0
PROGRESS_INTERVAL_DEFAULT = 1.0
METRICS_PORT_DEFAULT = 9464
RETENTION_DAYS_DEFAULT = 30
REAP_INTERVAL_DEFAULT = 2.0
GENERATION_TIMEOUT_DEFAULT = 900.0
MAX_RESULT_BYTES_DEFAULT = 64 * 1024 * 1024

# The one GPU price table: the `modal` backend costs each call with it and TENKAIGEN_GPU_PRICES overrides entries.
# Modal's published per-second prices (https://modal.com/pricing, read 2026-10; verify there before relying on them),
# by Modal's GPU names (older spellings such as A10G or A100 are found through worker/backends/modal_support.py
# PRICE_ALIASES). "CPU" prices the tiny variant's 2-core / 4 GiB container: 2 x $0.0000131 + 4 x $0.00000222.
GPU_PRICES_USD_PER_SECOND_DEFAULT: dict[str, float] = {
    "T4": 0.000164,
    "L4": 0.000222,
    "A10": 0.000306,
    "L40S": 0.000542,
    "A100-40GB": 0.000583,
    "A100-80GB": 0.000694,
    "RTX-PRO-6000": 0.000842,
    "H100": 0.001097,
    "H200": 0.001261,
    "B200": 0.001736,
    "CPU": round(2 * 0.0000131 + 4 * 0.00000222, 10),
}

TRANSACTION_POOLER_PORT = 6543

# `TENKAIGEN_*` variables that are not worker settings but are read by the project's own tools; the unknown-variable
# check lets them through. Each is listed in docs/configuration.md with what reads it.
OTHER_VARIABLES: dict[str, str] = {
    "TENKAIGEN_MODAL_MAX_CONTAINERS": "Read by `modal deploy modal_app/qwen_generator.py`, not by the worker: caps the "
                                      "GPU containers of each pool (default 4).",
    "TENKAIGEN_MODAL_MIN_CONTAINERS": "Read by `modal deploy modal_app/qwen_generator.py`, not by the worker: warm "
                                      "containers each GPU pool keeps at all times (default 0).",
    "TENKAIGEN_MODAL_BUFFER_CONTAINERS": "Read by `modal deploy modal_app/qwen_generator.py`, not by the worker: idle "
                                         "containers kept on top of the busy ones while a pool is active (default 0).",
    "TENKAIGEN_CHAOS_LATENCY": "Test double `chaos` only (scripts/chaos): per-call latency 'min,max' in seconds.",
    "TENKAIGEN_CHAOS_SEED": "Test double `chaos` only (scripts/chaos): seed of its fault plan.",
    "TENKAIGEN_CHAOS_STATE_DIR": "Test double `chaos` only (scripts/chaos): directory its processes share.",
    "TENKAIGEN_CHAOS_TIMEOUT_SECONDS": "Test double `chaos` only (scripts/chaos): seconds a stalled call waits.",
}


class Settings(BaseSettings):
    """Everything the worker and the CLI can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    database_url: SecretStr = Field(
        validation_alias=AliasChoices("DATABASE_URL", "TENKAIGEN_DATABASE_URL", "database_url"),
        description="PostgreSQL connection string: Supabase direct (db.<ref>.supabase.co:5432) or session pooler "
                    "(<region>.pooler.supabase.com:5432). Never the transaction pooler (port 6543).",
    )
    supabase_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPABASE_URL", "TENKAIGEN_SUPABASE_URL", "supabase_url"),
        description="Project URL, https://<ref>.supabase.co (needed by storage=supabase).",
    )
    supabase_service_role_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SUPABASE_SERVICE_ROLE_KEY", "TENKAIGEN_SUPABASE_SERVICE_ROLE_KEY", "supabase_service_role_key"),
        description="Service-role (or sb_secret_…) key used to upload results (needed by storage=supabase).",
    )

    backend: BackendName = Field(
        default="modal",
        description="Generation backend: modal (production), local (CUDA in-process), tiny (CPU smoke test), "
                    "placeholder (no ML: a PNG showing the prompt), noop (queue benchmark only), "
                    "chaos (fault-injecting test double of scripts/chaos only).",
    )
    storage: StorageName = Field(
        default="supabase",
        description="Where results go: supabase (Storage bucket generated-designs), local (a directory), "
                    "memory (queue benchmark only).",
    )
    local_storage_dir: Path = Field(
        default=Path("out/storage"),
        description="Root directory of storage=local; objects live at <dir>/<bucket>/<key>.",
    )

    worker_id: str | None = Field(
        default=None, description="Override the worker id (default <hostname>:<pid>:<random>).")
    concurrency: int = Field(default=CONCURRENCY_DEFAULT, ge=1, le=1000,
                             description="Jobs in flight at once in this process.")
    lease_seconds: int = Field(default=LEASE_SECONDS_DEFAULT, ge=2, le=3600,
                               description="Lease length; renewed every lease_seconds/3 while a job runs.")
    poll_interval: float = Field(default=POLL_INTERVAL_DEFAULT, gt=0, le=300,
                                 description="Seconds between claim polls when no NOTIFY arrives.")
    grace_period: float = Field(default=GRACE_PERIOD_DEFAULT, ge=0, le=3600,
                                description="On SIGTERM, seconds in-flight jobs get to finish before release "
                                            "(covers a cold lightning-8 generation; keep the platform's stop "
                                            "timeout above it).")
    generation_timeout_seconds: float = Field(
        default=GENERATION_TIMEOUT_DEFAULT, gt=0, le=24 * 3600,
        description="Deadline of one backend call, from start to result (for modal: queueing, cold start and "
                    "denoising); a call past it is stopped (modal: its input cancelled) and the attempt retried "
                    "(transient). Keep it at most the Modal app's startup + execution timeouts (600 + 600 s).")
    max_result_bytes: int = Field(
        default=MAX_RESULT_BYTES_DEFAULT, ge=1,
        description="Largest PNG a backend may return; a bigger one is refused before upload "
                    "(invalid_backend_result, retried).")
    progress_interval: float = Field(default=PROGRESS_INTERVAL_DEFAULT, ge=0, le=600,
                                     description="Minimum seconds between two progress writes of one job.")
    pool_size: int = Field(default=4, ge=1, le=100,
                           description="Connections in the work pool; a worker holds at most this many plus 2 "
                                       "(its claim connection and its LISTEN connection).")
    completion_batch_size: int = Field(default=200, ge=1, le=5000,
                                       description="Most completions written in one complete_jobs call.")

    metrics_port: int = Field(default=METRICS_PORT_DEFAULT, ge=0, le=65535,
                              description="Port of the /metrics, /livez and /readyz endpoint; 0 turns it off.")
    metrics_host: str = Field(default="0.0.0.0", description="Address the metrics endpoint binds to.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    log_format: Literal["json", "text"] = Field(default="json", description="json (one object a line) or text.")

    scheduler_enabled: bool = Field(default=True,
                                    description="Run maintenance (reaper, retention, gauges, cost alert).")
    reap_interval: float = Field(default=REAP_INTERVAL_DEFAULT, gt=0, le=3600,
                                 description="Seconds between expired-lease sweeps (plus up to a quarter of it, "
                                             "0.5 s at most, of jitter; the first runs at start).")
    retention_days: int = Field(default=RETENTION_DAYS_DEFAULT, ge=0, le=3650,
                                description="Finished jobs older than this are purged with their images; 0 keeps all.")
    cost_alert_usd: float | None = Field(default=None, gt=0,
                                         description="Alert when the last 24 h of generation cost exceed this.")
    cost_alert_webhook: SecretStr | None = Field(
        default=None, description="Optional URL that gets a JSON POST when the cost alert fires.")
    gpu_prices: dict[str, float] = Field(
        default_factory=lambda: dict(GPU_PRICES_USD_PER_SECOND_DEFAULT),
        description="USD per GPU-second by GPU type (JSON object), used to cost modal calls.")

    placeholder_step_seconds: float = Field(
        default=0.0, ge=0, le=10, description="Placeholder backend: pause per fake step (to watch progress).")
    modal_app_name: str = Field(default="tenkaigen-qwen", description="Deployed Modal app of the modal backend.")
    modal_class_name: str = Field(default="QwenGenerator",
                                  description="Modal class serving the GPU variants: QwenGenerator (L40S/A100, "
                                              "whole pipeline on the GPU) or QwenGeneratorOffload (A10/L4, offload).")
    modal_cpu_class_name: str = Field(default="QwenGeneratorCPU",
                                      description="Modal class serving the tiny (CPU) variant.")
    modal_environment: str | None = Field(default=None, description="Modal environment (default: the profile's).")
    modal_progress_queue: str = Field(default="tenkaigen-progress",
                                      description="Named modal.Queue the app streams progress through (one partition "
                                                  "per job); must match modal_app/protocol.py PROGRESS_QUEUE_NAME.")
    local_device: str = Field(default="cuda", description="Torch device of the local backend.")
    nunchaku_rank: int = Field(default=32, ge=1, le=1024,
                               description="Nunchaku SVDQuant rank of the 4-bit weights (32 or 128).")

    # ## Derived values
    @property
    def dsn(self) -> str:
        return self.database_url.get_secret_value()

    @property
    def uses_supabase_pooler(self) -> bool:
        host = str(conninfo_to_dict(self.dsn).get("host") or "")
        return "pooler.supabase.com" in host


def env_name(field: str) -> str:
    """The environment variable a field is read from (what a user must set)."""
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return ENV_PREFIX + field.upper()


def env_names(field: str) -> tuple[str, ...]:
    """Every environment variable a field is read from: the documented one first, then its aliases."""
    info = Settings.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return tuple(str(c) for c in info.validation_alias.choices if isinstance(c, str) and c.isupper())
    return (ENV_PREFIX + field.upper(),)


def is_secret(field: str) -> bool:
    """Whether a field holds a secret (a SecretStr): never shown, never logged."""
    return "SecretStr" in str(Settings.model_fields[field].annotation)


def known_variables() -> frozenset[str]:
    """Every `TENKAIGEN_*` (and Supabase-wide) variable the project reads."""
    return frozenset(name for field in Settings.model_fields for name in env_names(field)) | set(OTHER_VARIABLES)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and explicit overrides), or one ConfigurationError listing every problem.

    An unknown `TENKAIGEN_*` variable is a problem too: a misspelled setting must not be silently ignored."""
    # imported here: the checks (worker/config_checks.py) build on this module's model and names
    from worker.config_checks import check_environment, check_settings, describe_error, format_problems

    unknown = check_environment(os.environ)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = unknown + [describe_error(e) for e in exc.errors()]
        raise ConfigurationError(format_problems(problems)) from None
    problems = unknown + check_settings(settings)
    if problems:
        raise ConfigurationError(format_problems(problems))
    return settings
