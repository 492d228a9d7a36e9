"""What a user trips on, one test per fix: narrow terminals, the next command to run, help with
examples, bad options and unwritable outputs as one line with exit 2, warnings printed once."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command

from fpreplay.replay.cli import app, main
from scenario_tables import write_scenario
from terminal_text import commands, words

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ["--policy", "always:1", "--policy", "paging:1"]


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def trace(tmp_path) -> Path:
    return write_scenario(tmp_path, "parquet")


def _one_line_exit_2(capsys, *args) -> str:
    rc, out, err = run(capsys, *args)
    assert rc == 2, err
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


# --- waits ------------------------------------------------------------------------------------

def test_waits_read_dash_when_nothing_parked(capsys, trace):
    rc, out, _ = run(capsys, "compare", trace, "--policy", "always:4", "--service-time", "5ms")
    row = next(line for line in out.splitlines() if line.startswith("always:4"))
    assert row.split()[5:8] == ["-", "-", "-"], row
    doc = json.loads(run(capsys, "compare", trace, "--policy", "always:4", "--json")[1])
    assert doc["policies"][0]["park_wait_ns"] == {"p50": 0, "p99": 0, "max": 0}


# --- what to do next --------------------------------------------------------------------------

def test_analyze_ends_on_the_sweep_to_run(capsys, trace):
    rc, out, _ = run(capsys, "analyze", trace, "--tz", "UTC")
    last = " ".join(out.split("Next:")[-1].split())
    assert commands(out) == [f"fpreplay sweep {trace} --tz UTC",
                             f"fpreplay incidents {trace} --tz UTC"]
    assert "3 IRPs" in last               # the 3 alloc_failed ones


def test_sweep_suggests_the_policy_it_found(capsys, trace):
    args = ["sweep", trace, "--service-time", "5ms", "--budget", "5ms"]
    doc = json.loads(run(capsys, *args, "--json")[1])
    n = doc["min_reserved_within_budget"]
    assert n is not None
    out = run(capsys, *args)[1]
    assert commands(out) == [f"fpreplay compare {trace} --service-time 5ms --policy always:{n}"]
    assert doc["recommendation"]["policy"] == f"always:{n}"
    # without --budget: the smallest reserve at which nothing parks
    doc = json.loads(run(capsys, "sweep", trace, "--service-time", "5ms", "--json")[1])
    out = run(capsys, "sweep", trace, "--service-time", "5ms")[1]
    assert commands(out)[0].endswith(f"--policy always:{doc['min_reserved_no_park']}")


def test_sweep_that_finds_nothing_suggests_a_bigger_max(capsys, trace):
    # with 5 ms of service, one reserved request parks the paging IRP behind the other
    out = run(capsys, "sweep", trace, "--service-time", "5ms", "--max", "1", "--kind",
              "examine:paging")[1]
    assert "nothing parks: none up to 1" in words(out)
    assert commands(out) == [
        f"fpreplay sweep {trace} --service-time 5ms --kind examine:paging --max 2"]


def test_compare_names_the_best_policy_and_the_next_command(capsys, trace):
    rc, out, _ = run(capsys, "compare", trace, "--policy", "always:1", "--policy", "always:4",
                     "--policy", "paging:4", "--service-time", "5ms")
    text = words(out)
    # always:4 rescues all 3 failed IRPs without parking; always:1 parks two, paging:4 fails one:
    # the rule picks always, sized to the most reserved requests always:4 had in use at once,
    # which is what the sweep finds
    sweep = json.loads(run(capsys, "sweep", trace, "--service-time", "5ms", "--json")[1])
    n = sweep["min_reserved_no_park"]
    assert (f"Recommended: always:{n}: the smallest reserve at which no IRP waits parked, of "
            "the kind that leaves the fewest IRPs failing (always). always:4 rescues 3 of 3 "
            "failed IRPs, regresses 0") in text, text
    assert "Trade-off: always:1 parks 2" in text
    assert commands(out) == [f"fpreplay sweep {trace} --service-time 5ms"]
    rc, out, _ = run(capsys, "compare", trace, "--policy", "paging:4")
    text = words(out)
    assert "paging:4 rescues 2 of 3" in text
    assert "still fails 1 (paging:N refuses what is not paging I/O" in text
    assert commands(out) == [f"fpreplay sweep {trace} --kind paging"]


def test_incidents_points_at_an_irp_to_explain(capsys, trace):
    rc, out, _ = run(capsys, "incidents", trace, *POLICIES)
    (command,) = commands(out)
    assert command.startswith("fpreplay compare ") and " --explain 0x" in command, out
    rc, out, err = run(capsys, *shlex.split(command)[1:])
    assert rc == 0 and "actually:" in out, err


def _healthy_trace(tmp_path) -> Path:
    """The scenario without its low-memory signals and failed completions: nothing failed."""
    import polars as pl

    from scenario_tables import scenario_events

    ev = scenario_events()
    ok = ev.filter(~pl.col("kind").is_in(["request_alloc_failed", "memory_pressure",
                                          "reserved_request_used"])
                   & (pl.col("status").is_null() | (pl.col("status") == 0)))
    path = tmp_path / "healthy.parquet"
    ok.write_parquet(path)
    return path


def test_healthy_trace_says_how_to_test_a_reserve_anyway(capsys, tmp_path):
    path = _healthy_trace(tmp_path)
    assert commands(run(capsys, "analyze", path)[1]) == [f"fpreplay sweep {path} --memory fail-all"]
    text = " ".join(run(capsys, "compare", path, "--policy", "always:2")[1].split())
    assert "no policy had anything to rescue" in text and "--memory fail-all" in text


# --- help -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(get_command(app).commands))
def test_help_shows_examples_first_and_plain_metavars(capsys, name):
    rc, out, _ = run(capsys, name, "--help")
    assert rc == 0
    assert "Examples:" in out and out.index("Examples:") < out.index("Options:")
    examples = out[out.index("Examples:"):].split("\n\n")[0]
    assert examples.count(f"fpreplay {name} ") >= 2
    assert "<list[" not in out and "<str>" not in out and "<path>" not in out


def test_top_level_help_lists_commands_in_the_order_a_user_needs_them(capsys):
    rc, out, _ = run(capsys, "--help")
    listed = re.findall(r"^  (\w+)\s{2,}", out.split("Commands:")[1], re.M)
    assert listed[:5] == ["analyze", "compare", "sweep", "incidents", "report"]
    assert "Examples:" in out and "fpreplay compare trace.etl --policy" in out


# --- bad options and outputs ------------------------------------------------------------------

def test_range_reversed_or_outside_the_trace(capsys, trace):
    err = _one_line_exit_2(capsys, "analyze", trace, "--range", "5", "1")
    assert "--range 5 1" in err and "T1 < T2" in err
    err = _one_line_exit_2(capsys, "compare", trace, "--policy", "always:1", "--range",
                           "100", "200")
    assert "no IRP, queue or memory event between 100 s and 200 s" in err
    err = _one_line_exit_2(capsys, "events", trace, "-o", trace.with_suffix(".csv"),
                           "--range", "100", "200")
    assert "--range 100 200" in err


def test_bad_tz_is_refused_even_for_an_etl(capsys, trace):
    err = _one_line_exit_2(capsys, "analyze", trace, "--tz", "Mars/Phobos")
    assert "--tz 'Mars/Phobos'" in err


def test_bad_service_time_names_its_option(capsys, trace):
    err = _one_line_exit_2(capsys, "compare", trace, "--policy", "always:1",
                           "--service-time", "abc")
    # The library speaks of the value; the CLI names the option, once.
    assert err.startswith("fpreplay: --service-time: duration 'abc':")
    assert err.count("--service-time") == 1


@pytest.mark.parametrize("args", [
    ["events", "{t}", "-o", "{d}/no/such/dir/e.csv"],
    ["irps", "{t}", "-o", "{d}/no/such/dir/i.parquet"],
    ["compare", "{t}", "--policy", "always:1", "-o", "{d}/no/such/dir/c.ndjson"],
    ["report", "{t}", "-o", "{d}/no/such/dir/r.html"],
])
def test_unwritable_output_is_one_line_and_exit_2(capsys, trace, tmp_path, args):
    err = _one_line_exit_2(capsys, *[a.format(t=trace, d=tmp_path) for a in args])
    assert "no/such/dir" in err and "cannot write: No such file or directory" in err


def test_synth_makes_the_output_folder(capsys, tmp_path):
    scenario = ROOT / "traces" / "samples" / "d-healthy" / "scenario.toml"
    if not scenario.is_file():
        pytest.skip("sample d-healthy is absent")
    out = tmp_path / "new" / "deeper" / "trace.etl"
    rc, _, err = run(capsys, "synth", scenario, "-o", out, "--quiet")
    assert rc == 0, err
    assert out.is_file() and (out.parent / "truth.json").is_file()


# --- warnings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["analyze"], ["compare", "--policy", "always:1"], ["sweep"], ["incidents"],
    ["events", "-o", "{d}/e.csv"], ["irps", "-o", "{d}/i.csv"],
])
def test_each_warning_once_on_stderr_with_or_without_json(capsys, trace, tmp_path, args):
    cmd = [a.format(d=tmp_path) for a in args]
    for extra in ([], ["--json"]):
        rc, out, err = run(capsys, cmd[0], trace, *cmd[1:], *extra)
        assert rc == 0
        lines = [line for line in err.splitlines() if line.startswith("warning:")]
        assert len(lines) == len(set(lines)), err
        if extra:
            doc = json.loads(out)
            assert sorted(f"warning: {w}" for w in doc["warnings"]) == sorted(lines)


# --- the HTML report --------------------------------------------------------------------------

def test_report_evidence_in_words_and_next_steps(capsys, trace, tmp_path):
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, "report", trace, *POLICIES, "-o", out, "-q")
    assert rc == 0, err
    page = out.read_text(encoding="utf-8")
    assert "request allocation failures" in page and "request_alloc_failed</" not in page
    assert 'class="next"' in page and "<code>fpreplay compare " in page and "Recommended:" in page
    # the whole-trace charts count seconds as --range does, from the trace start
    assert "seconds since the trace start (as --range counts)" in page


# --- incidents tell the story -----------------------------------------------------------------

def test_a_purge_inside_an_incident_is_named_with_its_time(capsys, tmp_path):
    import polars as pl

    from fpreplay.schema import conform_events
    from scenario_tables import T0, MS, scenario_events

    ev = scenario_events()
    purge = conform_events(pl.DataFrame({"ts_ns": [T0 + 1050 * MS], "kind": ["queue_purge"]}))
    path = tmp_path / "purged.parquet"
    pl.concat([ev, purge], how="diagonal_relaxed").sort("ts_ns").write_parquet(path)
    rc, out, err = run(capsys, "incidents", path, *POLICIES)
    assert rc == 0, err
    text = " ".join(out.split())
    assert re.search(r"The driver acted on its queues during the incident: purge at "
                     r"22:13:21\.050000 \(\+\d+ ms\)\.", text), text
    html = tmp_path / "r.html"
    assert run(capsys, "report", path, *POLICIES, "-o", html, "-q")[0] == 0
    page = html.read_text(encoding="utf-8")
    assert "purge at 22:13:21.050000" in page
    assert '"text":"purge"' in page   # the chart's marker where the driver purged


def test_deciding_irps_list_those_a_policy_changes_first(capsys, trace):
    doc = json.loads(run(capsys, "incidents", trace, "--policy", "paging:4", "--json")[1])
    verdicts = [r["policies"]["paging:4"]["verdict"] for i in doc["incidents"]
                for r in i["irp_list"]]
    changed = [v in ("rescued", "regressed") for v in verdicts]
    assert any(changed) and not all(changed)
    assert changed == sorted(changed, reverse=True), verdicts


def test_compare_under_a_stress_model_names_the_clean_policy(capsys, tmp_path):
    """Nothing failed for real, so under fail-all the advice is about regressions and parking,
    never "add --memory fail-all" again."""
    path = _healthy_trace(tmp_path)
    out = run(capsys, "compare", path, "--memory", "fail-all", "--policy", "paging:4",
              "--policy", "always:4")[1]
    text = words(out)
    # paging:4 refuses the 4 ordinary reads (regressed); always:4 serves them all
    assert "Recommended: always:" in text and "always:4 regresses 0" in text, text
    assert "add --memory fail-all" not in text
    assert commands(out) == [f"fpreplay sweep {path} --memory fail-all"]


def test_a_trace_without_irps_says_what_to_capture(capsys, tmp_path):
    import polars as pl

    from fpreplay.schema import conform_events
    from scenario_tables import T0

    path = tmp_path / "pressure-only.parquet"
    conform_events(pl.DataFrame({"ts_ns": [T0], "kind": ["memory_pressure"]})).write_parquet(path)
    rc, out, _ = run(capsys, "analyze", path)
    assert rc == 0
    assert out.startswith("No IRP in this trace")
    assert "DISK_IO" in out and "--provider" in out
    assert commands(out)[0].startswith("xperf -on ")
    assert "By major function" not in out          # no empty tables
    rc, out, _ = run(capsys, "compare", path, "--policy", "always:2")
    assert out.startswith("Actually, of 0 IRPs: -")


def test_explain_of_a_reused_address_tells_the_changed_ones_and_tables_the_rest(capsys):
    trace = ROOT / "traces" / "samples" / "a-paging-storm" / "trace.etl"
    if not trace.is_file():
        pytest.skip("sample a-paging-storm is absent")
    args = ["compare", trace, "--policy", "always:2", "--policy", "paging:2", "-q",
            "--explain", "0xffffc58a063404e0"]
    doc = json.loads(run(capsys, *args, "--json")[1])
    stories = doc["explain"]
    assert len(stories) > 5                      # Windows recycles IRP addresses
    changed = [s for s in stories if any(p["verdict"] != "same" for p in s["policies"])]
    out = run(capsys, *args)[1]
    assert (f"the address served {len(stories)} IRPs; {len(changed)} of them a policy changes"
            in " ".join(out.split()))
    assert out.count("  actually: ") == 5         # five told in full ...
    assert "reserved [rescued]" in out and "refused [still_failed]" in out   # ... the rest a row


@pytest.mark.parametrize("ext", ["csv", "parquet", "ndjson"])
def test_incident_table_writes_in_every_format(capsys, trace, tmp_path, ext):
    import polars as pl

    out = tmp_path / f"incidents.{ext}"
    rc, _, err = run(capsys, "incidents", trace, "-o", out, "-q")
    assert rc == 0, err
    df = {"csv": pl.read_csv, "parquet": pl.read_parquet, "ndjson": pl.read_ndjson}[ext](out)
    assert df.height == 1
    devices = df["devices"][0]
    assert (devices if ext == "csv" else ";".join(devices)) == "disk0"


def test_version(capsys):
    from fpreplay import __version__

    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.strip() == f"fpreplay {__version__}"


def test_zero_is_never_coloured_as_a_failure(capsys, trace, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    rc, out, _ = run(capsys, "compare", trace, "--policy", "always:4", "--service-time", "5ms")
    row = next(line for line in out.splitlines() if line.startswith("always:4"))
    assert re.search(r"\x1b\[32m\s*3\x1b\[0m", row), repr(row)    # 3 rescued: green
    assert "\x1b[31m" not in row, repr(row)                        # 0 failed, 0 regressed


def test_analyze_explains_its_short_outcome_headings(capsys, trace):
    out = " ".join(run(capsys, "analyze", trace)[1].split())
    for short, meaning in (("resv", "served from the reserve"), ("allocF", "request allocation "
                           "failed"), ("incompl", "never completed"), ("inval", "invalid device")):
        assert f"{short} = {meaning}" in out
        assert re.search(rf"\b{short}\b", out.split("Columns:")[0])


def test_bad_sweep_rule_is_reported_in_the_words_of_kind(capsys, trace):
    err = _one_line_exit_2(capsys, "sweep", trace, "--kind", "examine:nosuch = 1")
    assert err.startswith("fpreplay: --kind: policy 'examine:nosuch = 1': bad examine SQL")
    assert "examine:1" not in err and "examine:10" not in err   # no N the user never typed


# --- options parsed once ----------------------------------------------------------------------

def test_the_driver_config_is_read_once_per_command(capsys, trace, tmp_path, monkeypatch):
    """A sweep simulates many sizes; the driver model is parsed once and each size puts its
    policy on it, not one TOML read per simulation."""
    import fpreplay.engine.config as engine_config

    config = tmp_path / "driver.toml"
    config.write_text('[[queues]]\nname = "io"\ndefault = true\ndispatch = "parallel"\n')
    reads = []
    real = engine_config.tomllib.loads
    monkeypatch.setattr(engine_config.tomllib, "loads", lambda text: reads.append(1) or real(text))
    for cmd in (["sweep", "--max", "6"], ["compare", "--policy", "always:1", "--policy",
                                           "paging:2"], ["incidents"]):
        reads.clear()
        rc, _, err = run(capsys, cmd[0], trace, *cmd[1:], "--config", config, "--json")
        assert rc == 0, err
        assert len(reads) == 1, cmd


@pytest.mark.parametrize("option, value", [("--memory", "sometimes"), ("--service-time", "2"),
                                           ("--config", "{d}/missing.toml"),
                                           ("--policy", "always:0"), ("--kind", "sizes")])
def test_option_values_are_refused_before_any_input_is_read(capsys, tmp_path, option, value):
    """Every option is parsed before reading starts: a mistyped value costs no read of a large
    trace, and the one line names the option (the input here does not even exist)."""
    command = "sweep" if option == "--kind" else "compare"
    extra = [] if option in ("--policy", "--kind") else ["--policy", "always:1"]
    err = _one_line_exit_2(capsys, command, tmp_path / "absent.etl", *extra, option,
                           value.format(d=tmp_path))
    assert err.startswith(f"fpreplay: {option}: ") and "absent.etl" not in err
