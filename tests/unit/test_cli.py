"""The `tenkaigen` command line: the contract's command names, each with help."""

from __future__ import annotations

from typer.testing import CliRunner

from worker.cli import app


def test_every_contract_command_exists_with_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("worker", "dev", "db", "enqueue", "jobs", "cancel", "requeue", "stats"):
        assert command in result.output
    for command in ("worker", "dev", "enqueue", "jobs", "cancel", "requeue", "stats"):
        sub = CliRunner().invoke(app, [command, "--help"])
        assert sub.exit_code == 0, sub.output


def test_listing_commands_offer_json_and_jobs_validates_status_before_connecting() -> None:
    for command in ("jobs", "stats", "enqueue", "cancel", "requeue"):
        assert "--json" in CliRunner().invoke(app, [command, "--help"], terminal_width=200).output, command
    nowhere = "postgresql://postgres:pw@127.0.0.1:1/nowhere"
    result = CliRunner().invoke(app, ["jobs", "--database-url", nowhere, "--status", "bogus"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "'bogus' is not one of" in message and "cannot connect" not in message, message
    for status in ("queued", "running", "succeeded", "failed", "canceled"):
        assert f"'{status}'" in message, message
    for job in ("not-a-job", "abc123", "0123456789abcdef0123456789abcdef0"):
        refused = CliRunner().invoke(app, ["cancel", "--database-url", nowhere, job])
        assert refused.exit_code == 2, (job, refused.output)
        assert "first 8 or more hex digits" in " ".join(refused.output.split())
