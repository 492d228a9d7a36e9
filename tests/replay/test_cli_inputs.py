"""What a user meets before any answer: -h and -V, shell completion, `fpreplay formats`, and
inputs that are not plain files (stdin), given twice, or in a format that cannot be used."""

from __future__ import annotations

import json

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
    import subprocess
    import sys

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
