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
