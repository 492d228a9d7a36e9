"""The examples in README.md and docs/*.md are what fpreplay prints: a code block that opens
with `$ fpreplay ...` (continued by trailing backslashes) is run, at 80 columns from the
checkout's root, and each of its other lines must appear in the output, in order (`...` stands
for lines left out)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fpreplay.replay.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"^```\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M):
            lines = block.splitlines()
            if not lines or not lines[0].startswith("$ fpreplay "):
                continue
            command = lines.pop(0)[2:]
            while command.endswith("\\"):
                command = command[:-1] + lines.pop(0).strip()
            found.append((doc.name, command, lines))
    return found


EXAMPLES = examples()


def test_the_readme_has_checked_examples():
    assert {name for name, _, _ in EXAMPLES} >= {"README.md"}
    assert any(c.startswith("fpreplay compare ") for _, c, _ in EXAMPLES)


@pytest.mark.parametrize("doc,command,expected", EXAMPLES,
                         ids=[f"{d}:{c[:60]}" for d, c, _ in EXAMPLES])
def test_example_output_is_what_fpreplay_prints(capsys, monkeypatch, doc, command, expected):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "80")
    rc = main(shlex.split(command)[1:] + ["-q"])
    out = capsys.readouterr().out
    assert rc == 0
    printed = [line.rstrip() for line in out.splitlines()]
    at = 0
    for line in expected:
        if line.strip() == "...":
            continue
        want = line.rstrip()
        assert want in printed[at:], (f"{doc}: the example of `{command}` shows a line "
                                      f"fpreplay no longer prints (or not in this order):\n"
                                      f"{want!r}\n--- printed:\n{out}")
        at = printed.index(want, at) + 1
