"""On every sample in traces/samples: analyze, compare (with the policies the sample names),
sweep, incidents and report run, and the same numbers appear in their JSON, tables and HTML;
and the numbers are those the synthesizer wrote down as the truth of the scenario."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from fpreplay.replay.cli import analysis as cmd_analysis
from fpreplay.replay.render import terminal as render
from fpreplay.replay.cli import main
from test_report_html import parse

SAMPLES = Path(__file__).resolve().parents[2] / "traces" / "samples"
NAMES = sorted(p.name for p in SAMPLES.iterdir() if (p / "scenario.toml").exists()) \
    if SAMPLES.exists() else []
_READS: dict = {}


@pytest.fixture
def cached_reads(monkeypatch):
    """Read each sample once for the whole file: reading is tested elsewhere, and the commands
    here all start from the same TraceRead."""
    real = cmd_analysis.load_irps

    def read(trace, quiet=False):
        key = (tuple(map(str, trace.inputs)), trace.range_s)
        if key not in _READS:
            _READS[key] = real(trace, quiet)
        return _READS[key]

    monkeypatch.setattr(cmd_analysis, "load_irps", read)


def _sample(name):
    d = SAMPLES / name
    inputs = [d / "trace.etl"] + ([d / "ifr.txt"] if (d / "ifr.txt").exists() else [])
    policies = tomllib.loads((d / "scenario.toml").read_text())["truth"]["policies"]
    truth = json.loads((d / "truth.json").read_text())
    return [str(p) for p in inputs], policies, truth


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def _row_text(row: dict, purges: bool | None = None) -> list[str]:
    """A compare row as the HTML prints it (purges=None) or as the terminal does: waits "-"
    when nothing parked, cancelled/invalid as one column only when some row has one."""
    w = row["park_wait_ns"]
    waits = ([render.fmt_duration(w[k]) for k in ("p50", "p99", "max")] if row["parked"]
             else ["-", "-", "-"])
    head = [str(row[k]) for k in ("rescued", "still_failed", "regressed", "parked")] + waits
    if purges is None:
        return head + [str(row[k]) for k in ("cancelled", "invalid_state", "reserve_high_water")]
    return (head + ([f"{row['cancelled']}/{row['invalid_state']}"] if purges else [])
            + [str(row["reserve_high_water"])])


@pytest.mark.skipif(not NAMES, reason="no samples under traces/samples")
@pytest.mark.parametrize("name", NAMES)
def test_sample_end_to_end(name, capsys, tmp_path, cached_reads):
    inputs, policies, truth = _sample(name)
    pol = [a for p in policies for a in ("--policy", p)]

    analyze = json.loads(_run(capsys, "analyze", *inputs, "--json", "-q"))
    assert analyze["irps"] == truth["irps"] and analyze["actual"] == truth["actual"]
    assert len(analyze["incidents"]) == len(truth["incidents"])
    for ours, theirs in zip(analyze["incidents"], truth["incidents"]):
        assert ours["start_ns"] == theirs["start_ns"]
        assert ours["failed_irps"] == theirs["failing_irps"]
        assert ours["paging_share"] == pytest.approx(theirs["paging_share"], abs=1e-4)
    text = _run(capsys, "analyze", *inputs, "-q")
    assert text.splitlines()[0].startswith(analyze["verdict"][:60])

    compare = json.loads(_run(capsys, "compare", *inputs, *pol, "--json", "-q"))
    assert compare["policies"] == truth["compare"]["policies"]
    # What actually happened: the IRPs the trace shows parked then served from the reserve, and
    # how long they waited (their delivery against their arrival).
    observed = compare["observed"]
    assert observed["parked"] == truth["fate"].get("parked_then_reserved", 0)
    if observed["parked"]:
        assert observed["park_wait_ns"] == truth["park_wait_ns"]
    table = _run(capsys, "compare", *inputs, *pol, "-q")
    rows = [compare["observed"], *compare["policies"]]
    purges = any(r["cancelled"] or r["invalid_state"] for r in rows)
    for row in rows:
        cells = _row_text(row, purges)
        pattern = r"\s+".join(map(re.escape, [row["policy"][:20], *cells]))
        # A long examine rule wraps in its column: match the numbers after the name's start.
        assert re.search(pattern, table) or re.search(r"\s+".join(map(re.escape, cells)),
                                                      table), (row["policy"], table)

    sweep = json.loads(_run(capsys, "sweep", *inputs, "--budget", "2ms", "--json", "-q"))
    n = sweep["min_reserved_no_park"]
    rows = {r["reserved"]: r for r in sweep["rows"]}
    assert rows[n]["parked"] == 0 and (n == 1 or rows[n - 1]["parked"] > 0)
    text = " ".join(_run(capsys, "sweep", *inputs, "--budget", "2ms", "-q").split())
    assert f"Smallest reserve at which nothing parks: {n}" in text
    # A healthy trace needed no reserve: the table says how to size one anyway.
    assert ("--memory fail-all" in text) == (sweep["peak_demand"] == 0)

    incidents = json.loads(_run(capsys, "incidents", *inputs, *pol, "--json", "-q"))
    assert len(incidents["incidents"]) == len(analyze["incidents"])
    whole = {r["policy"]: r for r in compare["policies"]}
    for inc in incidents["incidents"]:
        assert sum(b["arrived"] for b in inc["timeline"]) == inc["irps"]
    for p in policies:   # an incident's IRPs are some of the trace's
        for key in ("rescued", "still_failed", "regressed", "parked", "cancelled"):
            assert sum(next(r for r in i["policies"] if r["policy"] == p)[key]
                       for i in incidents["incidents"]) <= whole[p][key]

    html = tmp_path / "report.html"
    _run(capsys, "report", *inputs, *pol, "--budget", "2ms", "-o", html, "-q")
    page = parse(html)
    first: dict[str, list[str]] = {}
    for r in page.rows:
        if r and r[0] in {"actual", *policies}:
            first.setdefault(r[0], r[1:])
    for row in [compare["observed"], *compare["policies"]]:
        assert first[row["policy"]] == _row_text(row)
    assert len([i for i in page.ids if i.startswith("incident-")]) == len(analyze["incidents"])
    assert analyze["verdict"] in " ".join(page.text)
