"""analyze, compare, sweep, incidents and report through the real CLI path: an event table written
as .parquet/.ndjson, read back by the foundation's readers, lifecycles, engine, documents."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import polars as pl
import pytest
from terminal_text import commands

from fpreplay.replay.cli import main
from scenario_tables import MS, T0, write_scenario

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
ANSI = re.compile(r"\x1b\[")
COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-8]|9[0-7])(?:;[0-9;]*)?m")  # foreground colour SGR
POLICIES = ["--policy", "always:1", "--policy", "paging:1"]

def run(capsys, *args) -> tuple[int, str, str]:
    args = [str(a) for a in args]
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def doc_of(capsys, *args) -> dict:
    rc, out, err = run(capsys, *args, "--json")
    assert rc == 0, err
    d = json.loads(out)
    name = d["schema"].split(".")[1].split("/")[0]
    jsonschema.validate(d, json.loads((SCHEMAS / f"{name}.schema.json").read_text()))
    return d


@pytest.fixture
def trace(tmp_path) -> Path:
    return write_scenario(tmp_path, "parquet")


def test_analyze_verdict_first_and_the_same_numbers_in_json(capsys, trace, tmp_path):
    d = doc_of(capsys, "analyze", trace)
    assert d["irps"] == 10 and d["events"] == 24 and d["events_lost"] == 0
    assert d["actual"]["alloc_failed"] == 3 and d["actual"]["reserved"] == 1
    [inc] = d["incidents"]
    assert (inc["alloc_failed"], inc["refused"], inc["paging_share"]) == (3, 0, 0.75)
    assert d["forward_progress"]["reserved_request_used"] == 1
    assert d["never_completed"]["count"] == 1
    assert d["never_completed"]["irps"][0]["irp"] == 0x4001

    rc, out, err = run(capsys, "analyze", trace, "-o", tmp_path / "irps.parquet")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].strip() == d["verdict"].split(" 1 served")[0] or \
        lines[0].startswith(d["verdict"][:60])
    assert re.search(r"disk0\s+10\s+1\s+0\s+3\s+1\s+0\s+0\s+1\s+4", out)
    assert re.search(r"22:13:20\.999000\s+101 ms\s+3\s+0\s+1\s+3\s+1\s+4\s+75%", out)
    assert "0x4001" in out and "READ" in out
    assert "still open at the end" in err          # the lifecycle builder's warning, on stderr
    assert pl.read_parquet(tmp_path / "irps.parquet").height == 10


def test_ndjson_input_gives_the_same_answers(capsys, tmp_path):
    a = doc_of(capsys, "analyze", write_scenario(tmp_path, "parquet"))
    b = doc_of(capsys, "analyze", write_scenario(tmp_path, "ndjson"))
    a.pop("inputs"), b.pop("inputs")
    assert a == b


def test_analyze_range_gap_and_quiet(capsys, trace):
    # Only the incident (0.9 s .. 1.5 s after the first event).
    d = doc_of(capsys, "analyze", trace, "--range", "0.9", "1.5", "--quiet")
    assert d["irps"] == 4 and d["actual"]["ok"] == 0
    # The reserved IRP comes 98 ms after the last failure: a 50 ms gap splits the incident.
    d = doc_of(capsys, "analyze", trace, "--gap", "50ms")
    assert [i["reserved"] for i in d["incidents"]] == [0, 1]
    rc, out, err = run(capsys, "analyze", trace, "-q")
    assert rc == 0 and err == ""


def test_compare_rows_table_per_irp_file_and_explain(capsys, trace, tmp_path):
    d = doc_of(capsys, "compare", trace, *POLICIES, "--service-time", "5ms", "--memory",
               "observed", "--seed", "3")
    rows = {p["policy"]: p for p in d["policies"]}
    assert rows["always:1"]["rescued"] == 3 and rows["always:1"]["parked"] == 2
    assert rows["always:1"]["park_wait_ns"] == {"p50": 4 * MS, "p99": 8 * MS, "max": 8 * MS}
    assert rows["paging:1"]["still_failed"] == 1
    assert d["observed"]["still_failed"] == 3 and d["memory"] == "observed"

    out_csv = tmp_path / "per_irp.csv"
    rc, out, _ = run(capsys, "compare", trace, *POLICIES, "--service-time", "5ms",
                     "--output", out_csv)
    assert rc == 0
    assert re.search(r"always:1\s+3\s+0\s+0\s+2\s+4 ms\s+8 ms\s+8 ms\s+1/0\s+1", out)
    assert re.search(r"actual\s+0\s+3\s+0\s+0\s", out)
    per = pl.read_csv(out_csv)
    assert (per["always:1:verdict"] == "rescued").sum() == 3
    assert (per["paging:1:verdict"] == "still_failed").sum() == 1

    d = doc_of(capsys, "compare", trace, *POLICIES, "--service-time", "5ms", "--explain",
               "0x2003", "--range", "0", "5")
    [story] = d["explain"]
    assert [p["outcome"] for p in story["policies"]] == ["parked_reserved", "refused"]
    rc, out, _ = run(capsys, "compare", trace, *POLICIES, "--service-time", "5ms",
                     "--explain", "0x2003")
    flat = " ".join(out.split())
    assert "parked for 8 ms" in flat and "refused [still_failed]" in flat


def test_compare_with_a_driver_config(capsys, trace, tmp_path):
    cfg = tmp_path / "driver.toml"
    cfg.write_text('[[queues]]\nname = "io"\nmajors = ["READ"]\ndispatch = "parallel"\n'
                   'policy = "always:2"\n[[queues]]\nname = "default"\n')
    d = doc_of(capsys, "compare", trace, "--config", cfg, "--policy", "always:1",
               "--service-time", "5ms")
    assert d["policies"][0]["rescued"] == 3


def test_sweep_json_table_and_rows_file(capsys, trace, tmp_path):
    d = doc_of(capsys, "sweep", trace, "--service-time", "5ms", "--budget", "5ms")
    assert [r["parked"] for r in d["rows"]] == [2, 1, 0]
    assert (d["peak_demand"], d["min_reserved_no_park"], d["min_reserved_within_budget"]) == \
        (3, 3, 2)
    rc, out, _ = run(capsys, "sweep", trace, "--kind", "paging", "--max", "2",
                     "--service-time", "5ms", "-o", tmp_path / "sweep.ndjson")
    assert rc == 0
    assert "Smallest reserve at which nothing parks: 2" in out
    assert pl.read_ndjson(tmp_path / "sweep.ndjson")["reserved"].to_list() == [1, 2]
    d = doc_of(capsys, "sweep", trace, "--kind", "examine:paging", "--max", "1",
               "--service-time", "5ms")
    assert d["kind"] == "examine:paging" and d["rows"][0]["still_failed"] == 1
    # Every allocation fails (KMDF verifier FailAll): the reads before the incident now use the
    # reserve too, one at a time, so the answer stays 3.
    cfg = tmp_path / "driver.toml"
    cfg.write_text('[[queues]]\nname = "default"\n')
    d = doc_of(capsys, "sweep", trace, "--memory", "fail-all", "--seed", "1", "--range", "0",
               "2", "--config", cfg, "--max", "4", "--service-time", "5ms")
    assert d["memory"] == "fail-all" and d["min_reserved_no_park"] == 3


def test_incidents_story_json_and_table(capsys, trace, tmp_path):
    d = doc_of(capsys, "incidents", trace, *POLICIES, "--service-time", "5ms")
    [inc] = d["incidents"]
    assert d["policies"] == ["always:1", "paging:1"]
    assert [p["rescued"] for p in inc["policies"]] == [3, 2]
    assert [p["parked"] for p in inc["policies"]] == [2, 1]
    assert inc["deciding_irps"] == 4
    assert {r["irp"] for r in inc["irp_list"]} == {0x2001, 0x2002, 0x2003, 0x3001}
    assert inc["timeline"][0]["policies"]["always:1"] == {"reserved_in_use": 1, "parked": 2}
    assert sum(b["arrived"] for b in inc["timeline"]) == inc["irps"] == 4

    rc, out, _ = run(capsys, "incidents", trace, *POLICIES, "--service-time", "5ms",
                     "-o", tmp_path / "inc.parquet", "--gap", "1s")
    assert rc == 0 and "Incident 1:" in out and "IRPs that decided it (4)" in out
    assert pl.read_parquet(tmp_path / "inc.parquet")["alloc_failed"].to_list() == [3]
    # Without --policy: none and the peak demand for always and paging.
    d = doc_of(capsys, "incidents", trace, "--service-time", "5ms")
    assert d["policies"] == ["none", "always:3", "paging:3"]
    # The window model fails every allocation inside a detected incident.
    cfg = tmp_path / "driver.toml"
    cfg.write_text('[[queues]]\nname = "default"\n')
    d = doc_of(capsys, "incidents", trace, "--policy", "always:4", "--memory", "window",
               "--seed", "2", "--config", cfg, "--range", "0.5", "2", "--service-time", "5ms")
    assert d["memory"] == "window" and len(d["incidents"]) == 1
    assert d["incidents"][0]["policies"][0]["rescued"] == 3


@pytest.mark.parametrize("args, words", [
    (["compare", "{t}", "--policy", "always:x"], "always:x"),
    (["compare", "{t}", "--policy", "examine:4:no_such_col = 1"], "examine"),
    (["compare", "{t}"], "--policy"),
    (["compare", "{t}", "--policy", "always:2", "--memory", "sometimes"], "sometimes"),
    (["compare", "{t}", "--policy", "always:2", "--service-time", "soon"], "soon"),
    (["compare", "{t}", "--policy", "always:2", "--explain", "0xdead"], "0xdead"),
    (["compare", "{t}", "--policy", "always:2", "--config", "{d}/missing.toml"], "missing"),
    (["compare", "{t}", "--policy", "always:2", "--config", "{d}/badmajor.toml"], "READZ"),
    (["compare", "{t}", "--policy", "always:2", "--config", "{d}/typo.toml"], "polcy"),
    (["incidents", "{t}", "--config", "{d}/notoml.toml"], "TOML"),
    (["sweep", "{t}", "--kind", "sometimes"], "--kind"),
    (["sweep", "{t}", "--budget", "2 parsecs"], "--budget"),
    (["report", "{t}", "--policy", "always:2"], "-o FILE.html"),
    (["analyze", "{d}/nope.etl"], "nope.etl"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, trace, tmp_path, args, words):
    (tmp_path / "badmajor.toml").write_text('[[queues]]\nname = "io"\nmajors = ["READZ"]\n')
    (tmp_path / "typo.toml").write_text('[[queues]]\nname = "io"\npolcy = "always:2"\n')
    (tmp_path / "notoml.toml").write_text('[[queues]\nname = \n')
    rc, out, err = run(capsys, *[a.format(t=trace, d=tmp_path) for a in args])
    assert rc == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and words in err
    assert "Traceback" not in err


def test_tables_fit_80_columns_without_colour(capsys, trace, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    for args in (["analyze", trace], ["compare", trace, *POLICIES, "--explain", "0x2002"],
                 ["sweep", trace], ["incidents", trace, *POLICIES]):
        rc, out, _ = run(capsys, *args)
        assert rc == 0
        assert not ANSI.search(out)                  # not a terminal: no colour
        # off a terminal: 80 columns (a command to paste is never wrapped)
        assert max(len(line) for line in out.splitlines() if line not in
                   [f"  {c}" for c in commands(out)]) <= 80


def test_colour_only_on_a_terminal_and_never_with_no_color(capsys, trace, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    _, out, _ = run(capsys, "analyze", trace)
    assert COLOUR.search(out)
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run(capsys, "analyze", trace)
    assert not COLOUR.search(out)          # bold may stay: NO_COLOR is about colour


def test_read_options_pass_through(capsys, trace, tmp_path):
    tmf = tmp_path / "tmf"
    tmf.mkdir()     # --tmf is checked up front: an empty or malformed directory is an error
    (tmf / "my.tmf").write_text("5d0c1bb0-8b5b-4d43-9a39-4b4d44465050 My // SRC=my.c MJ= MN=\n",
                                encoding="utf-8")
    for cmd in ("analyze", "compare", "sweep", "incidents"):
        extra = ["--policy", "always:2"] if cmd == "compare" else []
        rc, _, err = run(capsys, cmd, trace, *extra, "--tmf", tmf, "--tz", "+02:00",
                         "--provider", "My-Driver", "--quiet")
        assert rc == 0, err


def _options_in_tests() -> dict[str, set[str]]:
    """Per command, the option strings that test functions naming the command pass."""
    import ast

    used: dict[str, set[str]] = {}
    here = Path(__file__).parent
    for name in ("test_cli_analysis.py", "test_report_html.py"):
        tree = ast.parse((here / name).read_text(encoding="utf-8"))
        for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
            consts = {c.value for c in ast.walk(fn) if isinstance(c, ast.Constant)
                      and isinstance(c.value, str)}
            consts |= {w for c in list(consts) for w in c.split() if w.startswith("-")}
            names = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
            if "doc_of" in names:        # doc_of passes --json
                consts.add("--json")
            if "POLICIES" in names:      # POLICIES passes --policy
                consts.add("--policy")
            if fn.name == "test_read_options_pass_through":
                consts |= {"analyze", "compare", "sweep", "incidents"}
            for cmd in ("analyze", "compare", "sweep", "incidents", "report"):
                if cmd in consts:
                    used.setdefault(cmd, set()).update(
                        c for c in consts if c.startswith("-"))
    return used


def test_every_option_of_every_command_is_exercised():
    from typer.main import get_command

    from fpreplay.replay.cli.app import app

    used = _options_in_tests()
    group = get_command(app)
    for name in ("analyze", "compare", "sweep", "incidents", "report"):
        for p in group.commands[name].params:
            if p.param_type_name == "option":
                assert set(p.opts) & used.get(name, set()), f"{name}: no test uses {p.opts}"


def test_trace_start_is_the_first_event():
    assert T0 % 1_000_000_000 == 0
