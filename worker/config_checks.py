"""The checks behind `load_settings()`: problems pydantic cannot see field by field, each as one line that names the
environment variable and says what to set.

- `check_environment`: a `TENKAIGEN_*` variable no setting reads (a typo would otherwise be silently ignored);
- `check_database_url`: a connection string that is not one, or one that points at a transaction pooler;
- `check_settings`: impossible combinations (storage=supabase without its URL or key, a progress interval too long
  for the lease, a webhook without a threshold, a negative price);
- `describe_error` and `format_problems`: pydantic's validation errors and the final message.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from worker.config import ENV_PREFIX, TRANSACTION_POOLER_PORT, Settings, env_name, is_secret, known_variables


def check_environment(environ: Mapping[str, str]) -> list[str]:
    """A problem for each `TENKAIGEN_*` variable that no setting reads (a typo would otherwise be ignored)."""
    known = known_variables()
    # compared without the shared prefix: an unrelated name must suggest nothing rather than any TENKAIGEN_ name
    suffixes = sorted(name.removeprefix(ENV_PREFIX) for name in known if name.startswith(ENV_PREFIX))
    problems = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() in known:
            continue
        close = difflib.get_close_matches(name.upper().removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.7)
        hint = f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else ""
        problems.append(f"{name}: unknown setting{hint}; `tenkaigen config` lists every setting")
    return problems


def describe_error(error: Any) -> str:
    loc = error.get("loc") or ("?",)
    field = str(loc[0])
    name = env_name(field) if field in Settings.model_fields else field
    if error.get("type") == "missing":
        info = Settings.model_fields.get(field)
        what = f" ({info.description})" if info is not None and info.description else ""
        return f"{name}: missing; set it{what}"
    value = error.get("input")
    shown = "" if field in _SECRET_FIELDS or value is None else f" (got {value!r})"
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "literal_error":
        message = message.replace("Input should be", "must be one of")
    return f"{name}: {message}{shown}"


_SECRET_FIELDS = frozenset(field for field in Settings.model_fields if is_secret(field))


def check_database_url(dsn: str) -> list[str]:
    """Problems with the connection string, each naming DATABASE_URL and the fix."""
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return ["DATABASE_URL: not a valid PostgreSQL connection string; use "
                "postgresql://user:password@host:5432/dbname"]
    host = str(params.get("host") or "")
    port = str(params.get("port") or "")
    ports = {p.strip() for p in port.split(",") if p.strip()}
    if any(not p.isdigit() for p in ports):
        # never echo what was parsed as the port: with a '/' in an unencoded password, it is part of the password
        return ["DATABASE_URL: the port is not a number. If the password contains '/', '@', ':', '?' or '#', "
                "percent-encode it (e.g. '/' as %2F); otherwise use postgresql://user:password@host:5432/dbname"]
    if str(TRANSACTION_POOLER_PORT) in ports:
        where = "Supabase's transaction pooler (Supavisor)" if "pooler.supabase.com" in host \
            else "a transaction pooler (port 6543)"
        return [f"DATABASE_URL: points at {where}. The worker needs a session: LISTEN/NOTIFY and session state do "
                "not work in transaction mode. Use the direct connection (db.<ref>.supabase.co:5432) or the "
                "session pooler (<region>.pooler.supabase.com, port 5432)."]
    return []


def check_settings(settings: Settings) -> list[str]:
    """Combinations that pydantic cannot see field by field."""
    problems = check_database_url(settings.dsn)
    if settings.storage == "supabase":
        if not settings.supabase_url:
            problems.append("SUPABASE_URL: missing; storage=supabase needs the project URL "
                            "(https://<ref>.supabase.co), or set TENKAIGEN_STORAGE=local")
        elif not settings.supabase_url.startswith(("https://", "http://")):
            problems.append(f"SUPABASE_URL: must start with https:// (got {settings.supabase_url!r})")
        if settings.supabase_service_role_key is None or not settings.supabase_service_role_key.get_secret_value():
            problems.append("SUPABASE_SERVICE_ROLE_KEY: missing; storage=supabase uploads with the service-role "
                            "key (Project Settings → API), or set TENKAIGEN_STORAGE=local")
    if settings.lease_seconds < 3 * settings.progress_interval:
        problems.append(f"TENKAIGEN_PROGRESS_INTERVAL: must be at most a third of TENKAIGEN_LEASE_SECONDS "
                        f"(got {settings.progress_interval} with a {settings.lease_seconds} s lease)")
    if settings.cost_alert_webhook is not None and settings.cost_alert_usd is None:
        problems.append("TENKAIGEN_COST_ALERT_USD: missing; TENKAIGEN_COST_ALERT_WEBHOOK is set but no alert fires "
                        "without a threshold (USD over the last 24 h). Set both, or unset the webhook")
    for gpu, price in settings.gpu_prices.items():
        if price < 0:
            problems.append(f"TENKAIGEN_GPU_PRICES: price of {gpu} must not be negative (got {price})")
    return problems


def format_problems(problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"the worker is misconfigured ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n{lines}"
