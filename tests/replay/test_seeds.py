"""What a trace cannot tell: the verifier's seed. Under verifier-random without a seed every
figure is a range over VERIFIER_SEEDS (median, min, max, each seed's value); with a seed, one
run as before. And the engine's warnings reach stderr and the JSON of every command."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import polars as pl
import pytest

from fpreplay.engine import parse_memory
from fpreplay.replay import whatif
from fpreplay.replay.whatif.seeds import VERIFIER_SEEDS, combine_rows, figure_range
from fpreplay.schema import conform_irps
from scenario_tables import MS, scenario_irps
from test_cli_analysis import doc_of, run, trace  # noqa: F401 - the fixture

VERIFIER = parse_memory("verifier-random")
FIGURES = ("rescued", "still_failed", "regressed", "parked", "reserve_high_water")
HEALTHY = Path(__file__).resolve().parents[2] / "traces" / "samples" / "d-healthy" / "trace.etl"


def busy_irps(n: int = 300) -> pl.DataFrame:
    """n reads served in 3 ms, one every ms, none failed: enough allocations that the verifier's
    one-in-17 failures fall differently under each seed."""
    return conform_irps(pl.DataFrame({
        "irp": list(range(0x1000, 0x1000 + n)), "major": [3] * n,
        "arrive_ns": [i * MS for i in range(n)], "complete_ns": [i * MS + 3 * MS for i in range(n)],
        "service_ns": [3 * MS] * n, "status": [0] * n, "actual": ["ok"] * n}))


def test_a_range_puts_not_found_above_every_number():
    assert figure_range([3, None, 1, 2, 5]) == {"min": 1, "median": 3, "max": None,
                                               "values": [3, None, 1, 2, 5]}
    row = combine_rows([{"policy": "always:1", "parked": p, "park_wait_ns": {"p99": w}}
                        for p, w in ((2, 30), (0, 0), (1, 10))])
    assert (row["policy"], row["parked"], row["park_wait_ns"]) == ("always:1", 1, {"p99": 10})
    assert row["range"]["parked"] == {"min": 0, "median": 1, "max": 2, "values": [2, 0, 1]}
    assert row["range"]["park_wait_ns"]["p99"]["max"] == 30


def test_without_a_seed_the_verifier_runs_every_seed_and_reports_medians():
    irps = busy_irps()
    policies = ["always:1", "paging:1"]
    settings = whatif.WhatIfSettings(memory=VERIFIER, service_time_ns=5 * MS)
    cmp = whatif.compare(irps, policies, settings=settings)
    assert cmp.seeds == list(VERIFIER_SEEDS) and len(VERIFIER_SEEDS) % 2 == 1
    alone = [whatif.compare(irps, policies, settings=whatif.WhatIfSettings(
        memory=VERIFIER, service_time_ns=5 * MS, seed=s)) for s in VERIFIER_SEEDS]
    for i, row in enumerate(cmp.summaries):
        for figure in FIGURES:
            values = [a.summaries[i][figure] for a in alone]
            assert row["range"][figure]["values"] == values
            assert row[figure] == statistics.median(values)
            assert (row["range"][figure]["min"], row["range"][figure]["max"]) == \
                (min(values), max(values))
    # The seeds really differ on this trace: a range that is always one number proves nothing.
    assert any(r["range"][f]["min"] != r["range"][f]["max"]
               for r in cmp.summaries for f in FIGURES)


@pytest.mark.parametrize("memory, seed", [("verifier-random", 3), ("verifier-random:3", None),
                                          ("random:0.5", None), ("fail-all", None)])
def test_a_known_seed_or_another_memory_model_is_one_run(memory, seed):
    settings = whatif.WhatIfSettings(memory=parse_memory(memory), seed=seed)
    assert len(settings.runs()) == 1 and settings.seeds == []
    cmp = whatif.compare(scenario_irps(), ["always:1"], settings=settings)
    assert cmp.seeds == [] and "range" not in cmp.summaries[0]


def test_a_sweep_gives_every_seed_every_size_and_answers_as_ranges():
    settings = whatif.WhatIfSettings(memory=VERIFIER)
    s = whatif.sweep(busy_irps(), "always", budget_ns=MS, settings=settings)
    assert s.seeds == list(VERIFIER_SEEDS)
    assert len(s.row_ranges) == s.rows.height
    for r, ranges in zip(whatif.sweep_rows(s), s.row_ranges):
        assert all(len(ranges[f]["values"]) == len(VERIFIER_SEEDS) for f in FIGURES)
        assert r["parked"] == ranges["parked"]["median"]
    for key in ("peak_demand", "min_reserved_no_park", "min_reserved_within_budget"):
        assert getattr(s, key) == s.ranges[key]["median"]
    one = whatif.sweep(busy_irps(), "always", budget_ns=MS, max_reserved=s.max_reserved,
                       settings=whatif.WhatIfSettings(memory=VERIFIER, seed=VERIFIER_SEEDS[0]))
    assert one.min_reserved_no_park == s.ranges["min_reserved_no_park"]["values"][0]
    assert any(r["min"] != r["max"] for r in s.ranges.values())


@pytest.mark.parametrize("command", [["compare", "--policy", "always:1", "--policy", "paging:1"],
                                     ["sweep", "--budget", "5ms"], ["incidents"]])
def test_json_lists_the_seeds_and_each_figures_range(capsys, trace, command):  # noqa: F811
    d = doc_of(capsys, command[0], trace, *command[1:], "--memory", "verifier-random")
    assert d["seeds"] == list(VERIFIER_SEEDS)
    rows = {"compare": lambda: d["policies"], "sweep": lambda: d["rows"],
            "incidents": lambda: [p for i in d["incidents"] for p in i["policies"]]}[command[0]]()
    assert rows and all(r["parked"] == r["range"]["parked"]["median"] for r in rows)
    # --seed N: exactly one run, the document as it always was, N's figures.
    second = doc_of(capsys, command[0], trace, *command[1:], "--memory", "verifier-random",
                    "--seed", str(VERIFIER_SEEDS[1]))
    assert "seeds" not in second
    if command[0] == "compare":
        for r, one in zip(d["policies"], second["policies"]):
            assert all(one[f] == r["range"][f]["values"][1] for f in FIGURES)


def test_the_terminal_shows_the_seeds_and_the_spread(capsys, monkeypatch):
    if not HEALTHY.is_file():
        pytest.skip("sample d-healthy is absent")
    monkeypatch.setenv("COLUMNS", "100")
    rc, out, err = run(capsys, "compare", HEALTHY, "--policy", "paging:4", "--memory",
                       "verifier-random")
    assert rc == 0, err
    text = " ".join(out.split())
    assert "seeds 1, 2, 3, 4, 5: median, min–max below" in text
    d = doc_of(capsys, "compare", HEALTHY, "--policy", "paging:4", "--memory", "verifier-random")
    spread = [f"{r['min']}–{r['max']}" for r in d["policies"][0]["range"].values()
              if "min" in r and r["min"] != r["max"]]
    assert spread and all(s in out for s in spread)


# --- the engine's warnings --------------------------------------------------------------------

@pytest.mark.parametrize("command", [["compare", "--policy", "always:2"], ["sweep"],
                                     ["sweep", "--max", "3"], ["incidents"],
                                     ["report", "-o", "{d}/r.html"]])
def test_engine_warnings_reach_stderr_and_json(capsys, trace, tmp_path, command):  # noqa: F811
    """A queue whose EvtIoAllocateResourcesForReservedRequest fails on its first call has no
    reserved requests (forward-progress.md 3.4): the engine says so, every command repeats it."""
    config = tmp_path / "driver.toml"
    config.write_text('[[queues]]\nname = "io"\ndefault = true\nreserved_resources_fail_at = 1\n')
    args = [a.format(d=tmp_path) for a in command] + ["--config", config]
    rc, out, err = run(capsys, args[0], trace, *args[1:])
    assert rc == 0, err
    assert "warning: queue io: EvtIoAllocateResourcesForReservedRequest fails on call 1" in err
    if command[0] != "report":
        d = json.loads(run(capsys, args[0], trace, *args[1:], "--json")[1])
        assert any(w.startswith("queue io: EvtIoAllocateResourcesForReservedRequest")
                   for w in d["warnings"])


def test_the_report_shows_each_figure_with_its_spread(capsys, tmp_path):
    if not HEALTHY.is_file():
        pytest.skip("sample d-healthy is absent")
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, "report", HEALTHY, "--policy", "paging:4", "--memory",
                     "verifier-random", "-o", out, "-q")
    assert rc == 0, err
    html = out.read_text()
    assert "seeds 1, 2, 3, 4, 5: each figure is the median over the seeds" in html
    d = doc_of(capsys, "compare", HEALTHY, "--policy", "paging:4", "--memory", "verifier-random")
    regressed = d["policies"][0]["range"]["regressed"]
    assert regressed["min"] < regressed["max"]
    assert f">{regressed['median']} ({regressed['min']}–{regressed['max']})<" in html
