"""`tenkaigen config` and docs/configuration.md: every setting, generated from the settings model."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from worker.cli import app
from worker.config import OTHER_VARIABLES, Settings, env_name
from worker.config_reference import REGENERATE, as_markdown, settings_reference
from worker.migrate import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "configuration.md"


def test_docs_configuration_md_is_generated_from_the_settings_model() -> None:
    committed = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert committed == as_markdown(), (
        f"docs/configuration.md is stale (the settings model changed): regenerate it with `{REGENERATE}`")


def test_the_markdown_lists_every_setting_and_says_how_it_is_regenerated() -> None:
    text = as_markdown()
    assert REGENERATE in text.splitlines()[2]
    for field in Settings.model_fields:
        assert f"| `{env_name(field)}`" in text, field
    for name in OTHER_VARIABLES:
        assert f"| `{name}` |" in text


def test_config_json_gives_variable_default_type_and_meaning_of_every_setting() -> None:
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    rows = {row["variable"]: row for row in document["settings"]}
    assert set(rows) == {env_name(field) for field in Settings.model_fields}
    concurrency = rows["TENKAIGEN_CONCURRENCY"]
    assert concurrency["default"] == Settings.model_fields["concurrency"].default
    assert concurrency["type"] == "integer, 1..1000" and concurrency["description"]
    assert rows["TENKAIGEN_BACKEND"]["type"].startswith("one of: placeholder, tiny, local, modal")
    assert rows["TENKAIGEN_SCHEDULER_ENABLED"]["default"] is True
    assert rows["DATABASE_URL"]["aliases"] == ["TENKAIGEN_DATABASE_URL"] and rows["DATABASE_URL"]["required"]
    assert [o["variable"] for o in document["other_variables"]] == list(OTHER_VARIABLES)


def test_secret_settings_show_no_default_and_are_marked_secret() -> None:
    secrets = {row.variable: row for row in settings_reference() if row.secret}
    assert set(secrets) == {"DATABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "TENKAIGEN_COST_ALERT_WEBHOOK"}
    for row in secrets.values():
        assert row.default is None and "secret" in row.type
    assert [row for row in settings_reference() if not row.secret and "secret" in row.type] == []


def test_config_markdown_and_format_markdown_print_the_doc() -> None:
    for args in (["config", "--markdown"], ["config", "--format", "markdown"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and result.output == as_markdown()


def test_config_in_a_terminal_names_every_variable_whole() -> None:
    result = CliRunner().invoke(app, ["config"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for field in Settings.model_fields:
        assert env_name(field) in result.output
    assert "default: 4" in result.output


def test_config_in_a_terminal_flags_an_unknown_variable_of_the_environment() -> None:
    result = CliRunner().invoke(app, ["config"], env={"COLUMNS": "200", "TENKAIGEN_POLL_INTERVALL": "1"})
    assert result.exit_code == 0, result.output
    assert "in your environment: TENKAIGEN_POLL_INTERVALL: unknown setting (did you mean " \
        "TENKAIGEN_POLL_INTERVAL?)" in result.output


def test_an_unknown_format_is_refused() -> None:
    result = CliRunner().invoke(app, ["config", "--format", "yaml"])
    assert result.exit_code == 2 and "must be text, json or markdown" in result.output


def test_worker_help_points_at_tenkaigen_config() -> None:
    result = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "tenkaigen config" in result.output
