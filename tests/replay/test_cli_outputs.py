"""Outputs a user can trust (issue 12): no command writes over one of its own inputs, an output
is complete or absent, a full disk is one line and exit 2, and a bad --range is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import SAMPLES
from fpreplay.replay.cli import main

SAMPLE = SAMPLES / "d-healthy"


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_exit_2(capsys, *args) -> str:
    code, _, err = _run(capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_synth_never_overwrites_its_scenario(tmp_path, capsys):
    scenario = tmp_path / "sc.toml"
    shutil.copy(SAMPLE / "scenario.toml", scenario)
    before = scenario.read_bytes()
    for args in (["-o", scenario], ["-o", tmp_path / "t.etl", "--truth", scenario],
                 ["-o", tmp_path / "t.etl", "--ifr", scenario]):
        err = _one_line_exit_2(capsys, "synth", scenario, *args)
        assert "is one of the inputs" in err
        assert scenario.read_bytes() == before


def test_commands_never_overwrite_an_input_table(tmp_path, capsys):
    table = tmp_path / "events.csv"
    assert _run(capsys, "events", SAMPLE / "trace.etl", "-o", table, "-q")[0] == 0
    before = table.read_bytes()
    for command in (["events", table, "-o", table], ["irps", table, "-o", table],
                    ["compare", table, "--policy", "always:2", "-o", table]):
        err = _one_line_exit_2(capsys, *command, "-q")
        assert "is one of the inputs" in err, err
        assert table.read_bytes() == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.csv"
    out.write_text("previous contents\n")

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")

    import polars as pl

    monkeypatch.setattr(pl.DataFrame, "write_csv", full)
    err = _one_line_exit_2(capsys, "irps", SAMPLE / "trace.etl", "-o", out, "-q")
    assert "No space left on device" in err and str(out) in err
    assert out.read_text() == "previous contents\n"          # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]   # no temporary file left


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_json_to_a_full_stdout_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "fpreplay", "analyze",
                               str(SAMPLE / "trace.etl"), "--json", "-q"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], proc.stderr


@pytest.mark.parametrize("bounds, says", [
    (("5s", "1s"), "T1 < T2"),
    (("5", "1"), "--range 5 1"),
    (("x", "1"), "neither seconds"),
    (("nan", "1"), "not a time"),
])
def test_bad_range_is_one_line(capsys, bounds, says):
    err = _one_line_exit_2(capsys, "analyze", SAMPLE / "trace.etl", "--range", *bounds)
    assert says in err, err


def test_range_takes_units(capsys):
    import json

    code, out, err = _run(capsys, "analyze", SAMPLES / "a-paging-storm" / "trace.etl",
                          "--range", "900ms", "1.5s", "--json", "-q")
    assert code == 0, err
    code, out2, _ = _run(capsys, "analyze", SAMPLES / "a-paging-storm" / "trace.etl",
                         "--range", "0.9", "1.5", "--json", "-q")
    assert json.loads(out)["irps"] == json.loads(out2)["irps"] > 0
