"""Settings: every missing or bad value is reported at start, by its environment variable, with what to set."""

from __future__ import annotations

import pytest

from worker.config import Settings, env_name, known_variables, load_settings
from worker.config_checks import check_database_url, check_environment
from worker.exceptions import ConfigurationError

DSN = "postgresql://tenkaigen_worker:s3cret-pw@db.abcd.supabase.co:5432/postgres"


def test_settings_read_supabase_names_and_the_tenkaigen_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DSN)
    monkeypatch.setenv("SUPABASE_URL", "https://abcd.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-key-value")
    monkeypatch.setenv("TENKAIGEN_CONCURRENCY", "8")
    monkeypatch.setenv("TENKAIGEN_BACKEND", "placeholder")
    monkeypatch.setenv("TENKAIGEN_GPU_PRICES", '{"L40S": 0.0006}')
    settings = load_settings()
    assert settings.dsn == DSN and settings.concurrency == 8 and settings.backend == "placeholder"
    assert settings.storage == "supabase" and settings.supabase_url == "https://abcd.supabase.co"
    assert settings.gpu_prices == {"L40S": 0.0006}
    assert "s3cret-pw" not in repr(settings) and "service-key-value" not in repr(settings)


def test_a_missing_database_url_and_bad_values_are_all_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings(backend="gpu", concurrency=0, poll_interval=-1)
    message = str(error.value)
    assert "3 problems" in message or "4 problems" in message
    assert "DATABASE_URL: missing" in message
    assert "TENKAIGEN_BACKEND: must be one of 'placeholder', 'tiny', 'local', 'modal', 'noop' or 'chaos' " \
        "(got 'gpu')" in message
    assert "TENKAIGEN_CONCURRENCY: Input should be greater than or equal to 1 (got 0)" in message
    assert "TENKAIGEN_POLL_INTERVAL" in message


def test_supabase_storage_needs_the_project_url_and_service_key() -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings(database_url=DSN, backend="placeholder", storage="supabase")
    message = str(error.value)
    assert "SUPABASE_URL: missing" in message and "SUPABASE_SERVICE_ROLE_KEY: missing" in message
    assert "TENKAIGEN_STORAGE=local" in message


@pytest.mark.parametrize("dsn", [
    "postgresql://postgres.abcd:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
    "postgres://user:pw@db.abcd.supabase.co:6543/postgres",
    "host=aws-0-us-east-1.pooler.supabase.com port=6543 dbname=postgres user=postgres.abcd",
])
def test_the_transaction_pooler_is_refused_with_an_explanation(dsn: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings(database_url=dsn, backend="placeholder", storage="local")
    message = str(error.value)
    assert "DATABASE_URL" in message and "transaction" in message and "LISTEN/NOTIFY" in message
    assert "5432" in message
    assert "pw@" not in message


def test_the_session_pooler_is_accepted_without_prepared_statements() -> None:
    from worker.db import connection_kwargs

    dsn = "postgresql://postgres.abcd:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres"
    assert check_database_url(dsn) == []
    settings = load_settings(database_url=dsn, backend="placeholder", storage="local")
    assert settings.uses_supabase_pooler
    assert connection_kwargs(dsn)["prepare_threshold"] is None
    assert "prepare_threshold" not in connection_kwargs(DSN)


def test_a_malformed_database_url_is_reported() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL: not a valid PostgreSQL connection string"):
        load_settings(database_url="mysql://somewhere", backend="placeholder", storage="local")
    with pytest.raises(ConfigurationError, match="DATABASE_URL: the port is not a number"):
        load_settings(database_url="postgresql://host:notaport/db", backend="placeholder", storage="local")


def test_a_password_with_a_slash_is_not_echoed_as_the_port() -> None:
    # libpq reads 'Xk9q' (the password up to its '/') as the port: the message must not show it
    dsn = "postgresql://postgres:Xk9q/Zr7pW2@db.abcd.supabase.co:5432/postgres"
    with pytest.raises(ConfigurationError, match="percent-encode it") as raised:
        load_settings(database_url=dsn, backend="placeholder", storage="local")
    assert "Xk9q" not in str(raised.value) and "Zr7pW2" not in str(raised.value)


def test_progress_interval_must_leave_room_for_lease_renewal() -> None:
    with pytest.raises(ConfigurationError, match="TENKAIGEN_PROGRESS_INTERVAL"):
        load_settings(database_url=DSN, backend="placeholder", storage="local", lease_seconds=3,
                      progress_interval=2)


def test_every_setting_has_a_description_and_an_environment_name() -> None:
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name} has no description"
        assert env_name(name).isupper()
    assert env_name("database_url") == "DATABASE_URL"
    assert env_name("supabase_service_role_key") == "SUPABASE_SERVICE_ROLE_KEY"
    assert env_name("lease_seconds") == "TENKAIGEN_LEASE_SECONDS"


def test_a_cost_alert_webhook_without_a_threshold_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TENKAIGEN_COST_ALERT_USD: missing") as raised:
        load_settings(database_url=DSN, backend="placeholder", storage="local",
                      cost_alert_webhook="https://hooks.example.com/T0/secret-path")
    assert "secret-path" not in str(raised.value)
    settings = load_settings(database_url=DSN, backend="placeholder", storage="local", cost_alert_usd=5,
                             cost_alert_webhook="https://hooks.example.com/T0/secret-path")
    assert settings.cost_alert_usd == 5


# ## Unknown TENKAIGEN_* variables
def test_a_misspelled_variable_stops_the_worker_with_a_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENKAIGEN_CONCURENCY", "8")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(database_url=DSN, backend="placeholder", storage="local")
    assert str(raised.value) == (
        "the worker is misconfigured (1 problem):\n"
        "  - TENKAIGEN_CONCURENCY: unknown setting (did you mean TENKAIGEN_CONCURRENCY?); "
        "`tenkaigen config` lists every setting")


def test_an_unknown_variable_is_listed_with_the_other_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENKAIGEN_LEASE_SECS", "30")
    monkeypatch.setenv("TENKAIGEN_XYZZY", "1")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(backend="gpu")
    message = str(raised.value)
    assert "(4 problems)" in message
    assert "TENKAIGEN_LEASE_SECS: unknown setting (did you mean TENKAIGEN_LEASE_SECONDS?)" in message
    assert "TENKAIGEN_XYZZY: unknown setting; `tenkaigen config` lists every setting" in message   # nothing close
    assert "DATABASE_URL: missing" in message and "TENKAIGEN_BACKEND: must be one of" in message


def test_setting_names_aliases_and_other_tools_variables_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TENKAIGEN_CONCURRENCY", "tenkaigen_poll_interval", "TENKAIGEN_DATABASE_URL",
                 "TENKAIGEN_SUPABASE_URL", "TENKAIGEN_MODAL_MAX_CONTAINERS", "TENKAIGEN_CHAOS_SEED"):
        assert check_environment({name: "1"}) == [], name
    monkeypatch.setenv("TENKAIGEN_MODAL_MAX_CONTAINERS", "2")
    monkeypatch.setenv("TENKAIGEN_CHAOS_LATENCY", "0,1")
    monkeypatch.setenv("TENKAIGEN_CONCURRENCY", "3")
    assert load_settings(database_url=DSN, backend="placeholder", storage="local").concurrency == 3
    assert check_environment({"HOME": "/root", "DATABASE_URL": DSN, "MODAL_TOKEN_ID": "x"}) == []


# every TENKAIGEN_* name the project writes for its tools (scripts, chaos runs, deploys, docs) must be known
_EXAMPLE_TYPOS = {"TENKAIGEN_CONCURENCY"}   # the documented example of a misspelling


def test_every_tenkaigen_variable_the_project_names_is_a_known_variable() -> None:
    import re

    from worker.migrate import PROJECT_ROOT

    roots = ["worker", "modal_app", "scripts", "deploy", "docs", "tests/integration", "tests/acceptance",
             "README.md", "Dockerfile"]
    files = [p for r in roots for p in ([PROJECT_ROOT / r] if (PROJECT_ROOT / r).is_file()
                                        else (PROJECT_ROOT / r).rglob("*")) if p.is_file()]
    named = set()
    for path in files:
        if path.suffix in {".pyc", ".png", ".lock"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        named |= {m for m in re.findall(r"\bTENKAIGEN_[A-Z][A-Z0-9_]*[A-Z0-9]\b", text)}
    assert "TENKAIGEN_CONCURRENCY" in named and "TENKAIGEN_CHAOS_SEED" in named
    assert sorted(named - known_variables() - _EXAMPLE_TYPOS) == []


def test_tenkaigen_worker_refuses_a_misspelled_variable_before_connecting() -> None:
    import os
    import subprocess
    import sys

    from worker.migrate import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENKAIGEN_", "SUPABASE_", "DATABASE_URL"))}
    env.update(DATABASE_URL=DSN, TENKAIGEN_BACKEND="placeholder", TENKAIGEN_STORAGE="local",
               TENKAIGEN_CONCURENCY="8")
    result = subprocess.run([sys.executable, "-m", "worker", "worker"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: the worker is misconfigured (1 problem):" in result.stderr
    assert "TENKAIGEN_CONCURENCY: unknown setting (did you mean TENKAIGEN_CONCURRENCY?)" in result.stderr
