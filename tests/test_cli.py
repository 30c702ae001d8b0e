"""CLI hygiene: every command has help and is documented; entry points agree; bad input is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from genremap.cli import app

REPO = Path(__file__).resolve().parent.parent
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_commands_are_registered() -> None:
    assert {"build", "import", "report", "unmapped", "subgenres", "explain", "diff", "lint", "schema"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    info = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    assert info.help and len(info.help) > 40, f"{command} needs a docstring that teaches"
    for param in info.params:
        if param.name != "help" and getattr(param, "param_type_name", "") == "option":
            assert param.help, f"{command} --{param.name} has no help"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_documented_in_readme(command: str) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"genremap {command}" in readme, f"README.md does not document `genremap {command}`"


def test_entry_points_run_the_same_app() -> None:
    from_checkout = subprocess.run([sys.executable, str(REPO / "cli.py"), "--version"], capture_output=True, text=True)
    as_module = subprocess.run([sys.executable, "-m", "genremap", "--version"], capture_output=True, text=True)
    assert from_checkout.returncode == as_module.returncode == 0
    assert from_checkout.stdout == as_module.stdout
    assert from_checkout.stdout.startswith("genremap ")


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--format", "xml"],
        ["build", "--split", "1,2"],
        ["subgenres", "--status", "weird"],
        ["import", "does-not-exist.csv"],
        ["unmapped", "--top", "-1"],
        ["report", "--genre-source", "spotify,tidal"],
        ["report", "--rules", "no-such-folder"],
    ],
)
def test_usage_errors_are_one_line_exit_2(runner: CliRunner, tmp_path: Path, sample_db: Path, args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--db", str(sample_db)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_schema_command_prints_the_json_schema(runner: CliRunner) -> None:
    import json

    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.stdout)
    assert schema["title"] == "genremap rule file"
    assert runner.invoke(app, ["schema", "--path"]).stdout.strip().endswith("rules.schema.json")


def test_shipped_schema_validates_shipped_rules() -> None:
    import jsonschema
    import yaml

    from genremap.engine import default_rules_dir
    from genremap.engine.loader import rule_schema

    validator = jsonschema.Draft202012Validator(rule_schema())
    for path in sorted(default_rules_dir().glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")) or {}))
        assert not errors, f"{path.name}: {errors[0].message}"
