"""The command line as a whole: help for every command, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from cepletter.cli.main import cli
from tests.conftest import Invoke

COMMANDS = sorted(cli.commands)


def test_all_commands_are_there() -> None:
    expected = {"init", "items", "draft", "preview", "check", "send", "export", "archive", "approve"}
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(run: Invoke, name: str) -> None:
    command = cli.commands[name]
    assert command.help and len(command.help.strip().splitlines()[0]) > 10, f"{name} has no summary line"
    result = run(name, "-h")
    assert result.exit_code == 0
    assert f"Usage: cli {name}" in result.stdout or f"Usage: cepletter {name}" in result.stdout
    assert "cepletter " in result.stdout, f"`{name} --help` shows no example"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts} has no help text"


def test_bad_directory_is_a_usage_error(run: Invoke, tmp_path: Path) -> None:
    result = run("-C", str(tmp_path / "missing"), "items")
    assert result.exit_code == 2
    assert "-C" in result.stderr


def test_no_workspace_is_one_clear_line(run: Invoke, tmp_path: Path) -> None:
    result = run("-C", str(tmp_path), "items")
    assert result.exit_code == 1
    assert "Error: no cepletter.toml" in result.stderr
    assert "cepletter init" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_is_usage_error(run: Invoke) -> None:
    result = run("sned")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_bad_config_through_the_real_process(tmp_path: Path) -> None:
    (tmp_path / "cepletter.toml").write_text('[newsletter]\nname = "x"\nfrom = 3\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "cepletter", "-C", str(tmp_path), "items"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: cepletter.toml, line 3: [newsletter] from: expected a string, got 3")
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_version(run: Invoke) -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("cepletter, version ")
