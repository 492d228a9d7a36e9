"""Reading the terminal output as a user does: the commands to paste, the prose, the tables."""

from __future__ import annotations

import re

COMMAND = re.compile(r"^  (fpreplay |xperf )")


def commands(out: str) -> list[str]:
    """The commands printed to be pasted: each on a line of its own, indented by two."""
    return [line.strip() for line in out.splitlines() if COMMAND.match(line)]


def words(out: str) -> str:
    """The output as one line of words (prose wraps where the terminal ends)."""
    return " ".join(out.split())


def tables(out: str) -> list[dict]:
    """Each table: its headings (the line above the rule), its rows (the lines below, up to the
    first blank line, caption or legend) and its legend (the `Columns:` paragraph after it)."""
    lines = out.splitlines()
    found = []
    for k, line in enumerate(lines):
        if not line or set(line) != {"─"}:
            continue
        rows, j = [], k + 1
        while j < len(lines) and lines[j].strip() and not lines[j].startswith(
                ("Columns:", "Not shown")) and set(lines[j]) != {"─"}:
            rows.append(lines[j])
            j += 1
        legend = []
        while j < len(lines) and not lines[j].startswith("Columns:"):
            j += 1   # a table without its own legend shares the next one's
        while j < len(lines) and lines[j].strip():
            legend.append(lines[j])
            j += 1
        found.append({"headings": lines[k - 1].split(), "rows": rows,
                      "legend": " ".join(" ".join(legend).split()), "rule": line})
    return found
