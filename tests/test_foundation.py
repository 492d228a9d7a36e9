"""The contract's shared behaviour: exit statuses, one-line errors, event tables read back."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from fpreplay.replay.cli import main
from fpreplay.schema import EVENT_COLUMNS, conform_events


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("content, expect", [
    (b"", "empty file"),
    (b"hello world\nthis is not a trace\n", "no format fpreplay knows"),
    (bytes(range(256)) * 16, "not an ETW trace"),
])
def test_unreadable_input_is_one_line_and_exit_2(tmp_path, capsys, content, expect):
    bad = tmp_path / "bad.etl"
    bad.write_bytes(content)
    code, out, err = run(["events", bad, "-o", tmp_path / "x.parquet"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(bad) in lines[0] and "byte 0" in lines[0] and expect in lines[0]
    assert "Traceback" not in err


def test_missing_file_and_directory(tmp_path, capsys):
    code, _, err = run(["events", tmp_path / "nope.etl", "-o", tmp_path / "x.csv"], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run(["events", tmp_path, "-o", tmp_path / "x.csv"], capsys)
    assert code == 2 and "directory" in err


def test_unknown_command_and_option_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    assert main(["events", "--no-such-option"]) == 2


def test_unknown_output_extension(tmp_path, capsys):
    table = tmp_path / "ev.ndjson"
    table.write_text(json.dumps({"ts_ns": 1, "kind": "irp_dispatch", "irp": 16}) + "\n")
    code, _, err = run(["events", table, "-o", tmp_path / "x.xlsx"], capsys)
    assert code == 2 and "unknown output format" in err


@pytest.mark.parametrize("ext", [".parquet", ".csv", ".ndjson"])
def test_event_table_round_trip(tmp_path, capsys, ext):
    """What `fpreplay events` writes reads back as the same table, in every format."""
    rows = pl.DataFrame({
        "ts_ns": [1_600_000_000_000_000_000, 1_600_000_000_000_001_000, 1_600_000_000_000_002_000],
        "kind": ["irp_dispatch", "request_alloc_failed", "irp_complete"],
        "irp": [0xFFFFA0000000_1000, 0xFFFFA0000000_1000, 0xFFFFA0000000_1000],
        "major": [3, None, None],
        "status": [None, None, 0xC000009A],
        "device": ["disk0", "disk0", "disk0"],
    })
    src = tmp_path / "src.parquet"
    conform_events(rows).write_parquet(src)
    out = tmp_path / f"out{ext}"
    code, _, err = run(["events", src, "-o", out, "--quiet"], capsys)
    assert code == 0, err
    back = run(["events", out, "-o", tmp_path / "again.parquet", "--quiet"], capsys)
    assert back[0] == 0, back[2]
    again = pl.read_parquet(tmp_path / "again.parquet")
    assert list(again.columns)[: len(EVENT_COLUMNS)] == list(EVENT_COLUMNS)
    expected = conform_events(rows).drop("source")
    assert again.select(expected.columns).equals(expected)


def test_event_table_without_required_columns(tmp_path, capsys):
    table = tmp_path / "ev.parquet"
    pl.DataFrame({"irp": [1, 2]}).write_parquet(table)
    code, _, err = run(["events", table, "-o", tmp_path / "x.csv"], capsys)
    assert code == 2 and "ts_ns" in err and "kind" in err


def test_console_script_runs_as_module(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fpreplay.replay", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "events" in proc.stdout
