"""The progress bar while reading: on stderr only, when stderr is a terminal or
FPREPLAY_PROGRESS=1 forces it; stdout (tables, --json) never changes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fpreplay.replay.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "traces" / "samples" / "a-paging-storm" / "trace.etl"
POLICIES = ["--policy", "always:8", "--policy", "paging:8"]
COMMANDS = {
    "analyze": ["analyze", SAMPLE],
    "compare --json": ["compare", SAMPLE, *POLICIES, "--json"],
    "sweep": ["sweep", SAMPLE, "--max", "3"],
    "report": ["report", SAMPLE, *POLICIES, "-o", "{tmp}/report.html"],
    "irps": ["irps", SAMPLE, "--json", "-o", "{tmp}/irps.csv"],
    "events": ["events", SAMPLE, "--json", "-o", "{tmp}/events.csv"],
}


def run(capsys, tmp_path, args) -> tuple[int, str, str]:
    rc = main([str(a).replace("{tmp}", str(tmp_path)) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_forced_bar_goes_to_stderr_and_leaves_stdout_alone(command, capsys, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("FPREPLAY_PROGRESS", "0")
    rc0, out0, err0 = run(capsys, tmp_path, COMMANDS[command])
    monkeypatch.setenv("FPREPLAY_PROGRESS", "1")
    rc1, out1, err1 = run(capsys, tmp_path, COMMANDS[command])
    assert rc0 == rc1 == 0
    assert out1 == out0
    assert "4,311 events" not in err0 and "\x1b" not in err0
    # the bar's last state: every byte of the file, the event rows decoded, the rate
    assert "573.4/573.4 kB" in err1 and "4,311 events" in err1 and "MB/s" in err1
    # the warnings after it are the same lines as without a bar
    assert err1.rstrip().endswith(err0.rstrip())


def test_no_bar_off_a_terminal_and_with_quiet(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("FPREPLAY_PROGRESS", raising=False)
    _, _, err = run(capsys, tmp_path, ["analyze", SAMPLE])
    assert "4,311 events" not in err and "\x1b" not in err
    monkeypatch.setenv("FPREPLAY_PROGRESS", "1")
    _, _, err = run(capsys, tmp_path, ["analyze", SAMPLE, "--quiet"])
    assert err == ""


def test_bar_on_a_terminal_unless_turned_off(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("FPREPLAY_PROGRESS", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _, _, err = run(capsys, tmp_path, ["analyze", SAMPLE])
    assert "4,311 events" in err
    monkeypatch.setenv("FPREPLAY_PROGRESS", "0")
    _, _, err = run(capsys, tmp_path, ["analyze", SAMPLE])
    assert "4,311 events" not in err and "\x1b" not in err
