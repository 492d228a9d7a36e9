"""What a user meets before any answer: -h and -V, shell completion, `fpreplay formats`, and
inputs that are not plain files (stdin), given twice, or in a format that cannot be used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from terminal_text import tables

from conftest import SAMPLES, real_trace
from fpreplay.replay.cli import main

ETL = SAMPLES / "b-pool-ran-dry" / "trace.etl"
IFR = SAMPLES / "c-purge-during-incident" / "ifr.txt"


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


# --- short options, completion, formats ---------------------------------------------------------

def test_short_help_and_version(capsys):
    rc, out, _ = run(capsys, "-V")
    assert rc == 0 and out.startswith("fpreplay ")
    rc, out, _ = run(capsys, "-h")
    assert rc == 0 and "Usage: fpreplay" in out and "-V, --version" in out
    rc, out, _ = run(capsys, "compare", "-h")
    assert rc == 0 and "--policy" in out and "-h, --help" in out


def test_shell_completion_completes_commands_and_options(capsys, monkeypatch):
    monkeypatch.setenv("_FPREPLAY_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "fpreplay an")
    monkeypatch.setenv("COMP_CWORD", "1")
    rc = main([])
    out = capsys.readouterr().out
    assert rc == 0 and out.split() == ["analyze"], out
    monkeypatch.setenv("COMP_WORDS", "fpreplay compare --pol")
    monkeypatch.setenv("COMP_CWORD", "2")
    assert main([]) == 0
    assert capsys.readouterr().out.split() == ["--policy"]


def test_show_completion_prints_a_script():
    """In a fresh process: the script is printed by typer's callback straight to stdout."""
    import os

    done = subprocess.run([sys.executable, "-m", "fpreplay", "--show-completion", "bash"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SHELL": "/bin/bash"})
    assert done.returncode == 0 and "_FPREPLAY_COMPLETE" in done.stdout, done.stderr


def test_formats_lists_every_format_and_how(capsys):
    rc, out, _ = run(capsys, "formats")
    assert rc == 0
    for word in ("etl", "parquet", "ifr", "tracefmt", "tracerpt_csv", "tracerpt_xml",
                 "xperf_dumper", "WMI_BUFFER_HEADER", "PAR1", "wpaexporter"):
        assert word in out, word
    rc, out, _ = run(capsys, "formats", "--json")
    doc = json.loads(out)
    assert {f["name"] for f in doc["formats"]} >= {"etl", "ifr", "xperf_dumper", None}
    assert [f["read"] for f in doc["formats"] if f["name"] is None] == [False]


def test_real_wpa_export_is_one_line_naming_the_format(capsys):
    path = real_trace("text/etwanalyzer_wpa_Disk_Usage_Utilization_by_Disk.csv")
    rc, out, err = run(capsys, "analyze", path)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "wpaexporter" in err and "no IRP address" in err and str(path) in err


# --- standard input -------------------------------------------------------------------------------

def _cli(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fpreplay", *map(str, args)], input=stdin,
                          capture_output=True, timeout=300)


@pytest.mark.parametrize("path, extra", [(ETL, []), (IFR, ["--tz", "UTC"])])
def test_a_trace_piped_on_stdin_reads_as_the_file(capsys, path, extra):
    """`cat trace.etl | fpreplay analyze -` and `... analyze /dev/stdin` (a pipe, read once)
    give the file's answer; the events' source is the name the user gave."""
    rc, out, _ = run(capsys, "analyze", path, *extra, "--json", "-q")
    assert rc == 0
    from_file = json.loads(out)
    for name in ("-", "/dev/stdin"):
        done = _cli("analyze", name, *extra, "--json", "-q", stdin=path.read_bytes())
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["irps"] == from_file["irps"] > 0
        assert doc["actual"] == from_file["actual"]
        assert doc["inputs"] == [name]
        assert b"fpreplay-stdin" not in done.stdout + done.stderr   # no temporary path shown


def test_garbage_on_stdin_is_one_line_naming_stdin():
    done = _cli("analyze", "-", stdin=b"\x00\x01 not a trace " * 100)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.startswith("fpreplay: -: byte 0: ") and len(err.splitlines()) == 1, err


def test_stdin_given_twice_is_refused(capsys):
    rc, out, err = run(capsys, "analyze", "-", "-")
    assert rc == 2 and "standard input given more than once" in err


# --- the same trace twice -------------------------------------------------------------------------

def test_the_same_trace_twice_or_a_copy_is_read_once_with_a_warning(capsys, tmp_path):
    rc, out, _ = run(capsys, "analyze", ETL, "--json", "-q")
    once = json.loads(out)
    copy = tmp_path / "copy.etl"
    copy.write_bytes(ETL.read_bytes())
    for second, words in ((ETL, "is given twice"), (copy, f"is the same trace as {ETL}")):
        rc, out, err = run(capsys, "analyze", ETL, second, "--json")
        assert rc == 0
        doc = json.loads(out)
        assert doc["irps"] == once["irps"] and doc["actual"] == once["actual"]
        said = [w for w in doc["warnings"] if words in w]
        assert said and str(second) in said[0], doc["warnings"]
        assert [ln for ln in err.splitlines() if words in ln] == [f"warning: {said[0]}"]


def test_overlapping_inputs_with_identical_events_are_read_once(capsys, tmp_path):
    """A cut copy of a trace (here its event table, first two thirds) overlaps the whole one in
    time with identical events: they count once, and one warning names both inputs."""
    import polars as pl

    whole = tmp_path / "whole.parquet"
    assert run(capsys, "events", ETL, "-o", whole, "-q")[0] == 0
    table = pl.read_parquet(whole)
    cut = tmp_path / "cut.parquet"
    table.head(table.height * 2 // 3).write_parquet(cut)
    rc, out, _ = run(capsys, "analyze", whole, "--json", "-q")
    once = json.loads(out)
    rc, out, err = run(capsys, "analyze", whole, cut, "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["irps"] == once["irps"] and doc["actual"] == once["actual"]
    said = [w for w in doc["warnings"] if "overlap in time" in w]
    assert len(said) == 1 and str(cut) in said[0] and str(whole) in said[0]
    assert f"share {table.height * 2 // 3:,} identical events" in said[0]


# --- --range in clock times, --explain ADDRESS@TIME ----------------------------------------------

def _clock(ns: int) -> str:
    from fpreplay.replay.render.terminal import fmt_time

    return fmt_time(ns)   # "2026-12-05 05:06:07.123456", as the tables print it


def test_range_takes_clock_times_as_the_tables_print_them(capsys):
    rc, out, _ = run(capsys, "analyze", ETL, "--range", "0.9", "1.5", "--json", "-q")
    assert rc == 0
    by_seconds = json.loads(out)
    from fpreplay.parsers import read_inputs

    start = read_inputs([ETL]).trace_start_ns
    t1, t2 = _clock(start + 900_000_000), _clock(start + 1_500_000_000)
    for bounds in ((t1[11:], t2[11:]), (t1, t2), (t1.replace(" ", "T") + "Z", "1500ms")):
        rc, out, err = run(capsys, "analyze", ETL, "--range", *bounds, "--json", "-q")
        assert rc == 0, err
        doc = json.loads(out)
        assert doc["irps"] == by_seconds["irps"] < json.loads(
            run(capsys, "analyze", ETL, "--json", "-q")[1])["irps"]
        assert doc["actual"] == by_seconds["actual"]


def test_range_clock_time_errors_are_one_line(capsys):
    rc, out, err = run(capsys, "analyze", ETL, "--range", "25:00:00", "26:00:00")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("fpreplay: --range 25:00:00 26:00:00: ") and "time of day" in err
    rc, out, err = run(capsys, "analyze", ETL, "--range", "05:00:01", "05:00:00")
    assert rc == 2 and "T1 < T2" in err
    rc, out, err = run(capsys, "analyze", ETL, "--range", "2000-01-01T00:00:00Z",
                       "2000-01-01T00:00:01Z")
    assert rc == 2 and "no IRP, queue or memory event between" in err and "trace starts at" in err


SAMPLE_C = SAMPLES / "c-purge-during-incident" / "trace.etl"


def _reused_address() -> tuple[int, list[dict]]:
    """An address of sample c that served many IRPs, only some of which always:2 changes (the
    first to arrive not), and its IRPs in arrival order."""
    import polars as pl

    from fpreplay.lifecycles import build_lifecycles
    from fpreplay.parsers import read_inputs
    from fpreplay.replay import whatif

    read = read_inputs([SAMPLE_C])
    irps = build_lifecycles(read.events, read.diagnostics, read.lost_windows)
    per = whatif.compare(irps, whatif.parse_policies(["always:2"]), events=read.events).per_irp
    changed = pl.col("always:2:verdict") != "same"
    counts = (per.sort("arrive_ns").group_by("irp", maintain_order=True)
              .agg(pl.len().alias("n"), changed.sum().alias("changed"),
                   changed.first().alias("first_changed"))
              .filter((pl.col("n") > 5) & (pl.col("changed") > 0) & ~pl.col("first_changed")))
    address = counts["irp"][0]
    return address, per.filter(pl.col("irp") == address).sort("arrive_ns").to_dicts()


def _explain(capsys, what: str) -> tuple[int, list[dict] | None, str]:
    rc, out, err = run(capsys, "compare", SAMPLE_C, "--policy", "always:2", "--explain", what,
                       "--json", "-q")
    return rc, (json.loads(out)["explain"] if rc == 0 else None), err


def test_explain_tells_the_irps_a_policy_changes_first(capsys):
    address, rows = _reused_address()
    rc, stories, _ = _explain(capsys, f"0x{address:x}")
    assert rc == 0 and len(stories) == len(rows)
    changed = [any(p["verdict"] != "same" for p in s["policies"]) for s in stories]
    n = sum(changed)
    assert 0 < n < len(stories) and changed == [True] * n + [False] * (len(stories) - n)
    rc, out, _ = run(capsys, "compare", SAMPLE_C, "--policy", "always:2", "--explain",
                     f"0x{address:x}", "-q")
    first_row = tables(out)[0]["rows"][0]
    assert "[same]" not in first_row, out


def test_explain_address_at_a_time_picks_one_irp(capsys):
    address, rows = _reused_address()
    target = rows[len(rows) // 2]
    later = rows[len(rows) // 2 + 1]
    for when in (_clock(target["arrive_ns"])[11:],                       # as the table prints
                 _clock((target["arrive_ns"] + later["arrive_ns"]) // 2).replace(" ", "T")):
        rc, stories, err = _explain(capsys, f"0x{address:x}@{when}")
        assert rc == 0, err
        assert [s["arrive_ns"] for s in stories] == [target["arrive_ns"]]
    rc, _, err = _explain(capsys, f"0x{address:x}@{_clock(rows[0]['arrive_ns'] - 10**9)}")
    assert rc == 2 and err.startswith("fpreplay: --explain: ") and "had arrived" in err
    rc, _, err = _explain(capsys, f"0x{address:x}@half past five")
    assert rc == 2 and err.startswith("fpreplay: --explain: ") and len(err.splitlines()) == 1
