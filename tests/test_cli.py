"""Every command has help text; the CLI starts without heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from curation.cli import app

runner = CliRunner()
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_top_level_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
    cmd = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == command)
    assert (cmd.callback.__doc__ or "").strip(), f"{command} has no docstring"


def test_help_imports_no_heavy_package() -> None:
    code = (
        "import sys; from curation.cli import app\n"
        "heavy = [m for m in ('torch', 'lavis', 'fiftyone', 'transformers', 'cleanlab') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "falldown-curate" in result.output


#: Every command that opens a FiftyOne dataset (a team's shared MongoDB)
DATASET_COMMANDS = ("ingest", "check", "review", "export", "mix", "eval", "find-issues")


@pytest.mark.parametrize("command", DATASET_COMMANDS)
def test_every_dataset_command_takes_the_shared_database(command: str) -> None:
    import inspect

    cmd = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == command)
    assert "database_uri" in inspect.signature(cmd.callback).parameters
    # that each command uses it (chosen once, before any body runs) is run, not read:
    # tests/test_curator.py and tests/hostile/test_hostile_database.py run commands
    # against an unreachable --database-uri
