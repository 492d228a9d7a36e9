"""Every command and option is documented (docs/cli.md, README) and every --json document has a
valid JSON Schema under docs/schemas/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from typer.main import get_command

from fpreplay.replay.cli import app

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = get_command(app).commands


def _section(name: str) -> str:
    m = re.search(rf"^## `fpreplay {name}\b.*?(?=^## |\Z)", CLI_MD, re.S | re.M)
    assert m, f"docs/cli.md has no section for fpreplay {name}"
    return m.group(0)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_is_documented(name):
    section = _section(name)
    assert f"fpreplay {name}" in README, f"README does not mention fpreplay {name}"
    for param in COMMANDS[name].params:
        if param.param_type_name != "option":
            continue
        assert any(f"`{o}" in section for o in param.opts), \
            f"docs/cli.md, fpreplay {name}: option {param.opts[0]} is not documented"
        assert any(re.search(rf"`{re.escape(o)}\b", README) for o in param.opts), \
            f"README does not mention {param.opts}"
        assert param.help, f"fpreplay {name} {param.opts[0]} has no --help text"
    assert COMMANDS[name].help


@pytest.mark.parametrize("name", ["analyze", "compare", "sweep", "incidents"])
def test_json_schemas_are_valid_and_strict(name):
    schema = json.loads((ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == f"fpreplay.{name}/1"
    assert schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"schema": f"fpreplay.{name}/1"})   # required fields missing


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_examples_are_the_documented_examples(name, capsys):
    """The examples `fpreplay CMD --help` opens with are those docs/cli.md shows for CMD."""
    from fpreplay.replay.cli import main

    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    examples = out.split("Examples:\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert lines
    section = _section(name)
    for line in lines:
        assert line in section, f"docs/cli.md, fpreplay {name}: example missing: {line}"
