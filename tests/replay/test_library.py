"""The library (`import fpreplay`, replay/api.py): lazy, typed, polars DataFrames, and the same
numbers the CLI prints for the same trace and options (issue 14)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import fpreplay
from conftest import SAMPLES
from fpreplay.errors import ConfigError, InputError
from fpreplay.replay.cli import main

STORM = SAMPLES / "a-paging-storm" / "trace.etl"
DRY = SAMPLES / "b-pool-ran-dry" / "trace.etl"
HEAVY = ("polars", "numpy", "rich", "typer", "fpreplay.engine", "fpreplay.replay",
         "fpreplay.parsers", "fpreplay.lifecycles")


def _cli_json(capsys, *args) -> dict:
    assert main([str(a) for a in args] + ["--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


def test_import_fpreplay_loads_no_layer_until_the_library_is_used():
    probe = ("import sys, fpreplay\n"
             "before = sorted(sys.modules)\n"
             "fpreplay.open\n"
             "print(before)\nprint(sorted(sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    before, after = (eval(line) for line in done.stdout.splitlines())
    heavy = [m for m in before if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not heavy, heavy
    assert "fpreplay.replay.api" in after and "polars" in after


def test_open_reads_nothing_until_a_table_is_asked_for(tmp_path):
    path = tmp_path / "trace.etl"
    shutil.copy(STORM, path)
    trace = fpreplay.open(path)
    path.write_bytes(b"not a trace at all")   # open() read nothing: the damage shows only now
    assert "not read yet" in repr(trace)
    with pytest.raises(InputError) as e:
        trace.irps
    assert str(path) in str(e.value)


def test_bad_values_are_refused_when_opened():
    with pytest.raises(InputError, match="no such file"):
        fpreplay.open("no/such/trace.etl")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        fpreplay.open(STORM, tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="T1 < T2"):
        fpreplay.open(STORM, time_range=(2, 1))
    trace = fpreplay.open(STORM)
    with pytest.raises(ConfigError, match="always:x"):
        trace.compare(["always:x"])
    with pytest.raises(ConfigError, match="given twice"):
        trace.compare(["always:8", "always:8"])


def test_compare_and_recommendation_are_the_clis(capsys):
    policies = ["always:8", "paging:8", "examine:8:paging OR major = 4", "always:2"]
    doc = _cli_json(capsys, "compare", STORM, *[a for p in policies for a in ("--policy", p)])
    trace = fpreplay.open(STORM)
    got = trace.compare(policies)
    assert got["policy"].to_list() == ["actual", *policies]
    for row, want in zip(got.iter_rows(named=True), [doc["observed"], *doc["policies"]]):
        for k in ("policy", "rescued", "still_failed", "regressed", "parked", "cancelled",
                  "invalid_state", "reserve_high_water"):
            assert row[k] == want[k], (row["policy"], k)
        for p in ("p50", "p99", "max"):
            assert row[f"park_wait_{p}_ns"] == want["park_wait_ns"][p]
    rec = trace.recommend(policies)
    assert rec.policy == doc["recommendation"]["policy"] == "always:3"
    assert rec.trade_off.to_dicts() == doc["recommendation"]["trade_off"]
    per = trace.per_irp(policies)
    assert per.height == doc["irps"]
    assert (per["always:8:verdict"] == "rescued").sum() == got["rescued"][1]


def test_sweep_and_its_budget_are_the_clis(capsys):
    doc = _cli_json(capsys, "sweep", DRY, "--budget", "2ms")
    trace = fpreplay.open(DRY)
    rows = trace.sweep(budget="2ms")
    assert rows["reserved"].to_list() == [r["reserved"] for r in doc["rows"]]
    assert rows["parked"].to_list() == [r["parked"] for r in doc["rows"]]
    assert rows["park_wait_p99_ns"].to_list() == [r["park_wait_ns"]["p99"] for r in doc["rows"]]
    # One recommendation: the library's with the same budget is the sweep's.
    assert trace.recommend(budget="2ms").policy == doc["recommendation"]["policy"]


def test_tables_are_what_the_commands_write(tmp_path, capsys):
    irps_out, events_out = tmp_path / "irps.parquet", tmp_path / "events.parquet"
    assert main(["irps", str(STORM), "-o", str(irps_out), "-q"]) == 0
    assert main(["events", str(STORM), "-o", str(events_out), "-q"]) == 0
    doc = _cli_json(capsys, "analyze", STORM)
    trace = fpreplay.open(STORM)
    assert_frame_equal(trace.irps, pl.read_parquet(irps_out))
    assert_frame_equal(trace.events, pl.read_parquet(events_out))
    assert trace.actual == doc["actual"]
    assert trace.incidents["failed_irps"].to_list() == [i["failed_irps"]
                                                        for i in doc["incidents"]]
    assert trace.warnings.filter(pl.col("stage") == "read")["warning"].to_list() \
        == doc["warnings"]


def test_seeds_give_medians_with_their_range(capsys):
    doc = _cli_json(capsys, "compare", DRY, "--policy", "always:2", "--memory",
                    "verifier-random")
    got = fpreplay.open(DRY).compare(["always:2"], memory="verifier-random")
    row = got.row(1, named=True)
    want = doc["policies"][0]
    assert row["rescued"] == want["rescued"]
    assert (row["rescued_min"], row["rescued_max"]) == (want["range"]["rescued"]["min"],
                                                        want["range"]["rescued"]["max"])


def test_what_ifs_add_their_warnings_to_the_traces(capsys):
    doc = _cli_json(capsys, "compare", STORM, "--policy", "always:2", "--memory",
                    "verifier-random")
    trace = fpreplay.open(STORM)
    read = trace.warnings
    assert set(read["stage"]) == {"read"}
    trace.compare(["always:2"], memory="verifier-random")
    w = trace.warnings
    assert w.columns == ["stage", "warning"]
    added = w.filter(pl.col("stage") == "compare")["warning"].to_list()
    assert added and any("seed" in a for a in added)
    assert w["warning"].to_list() == doc["warnings"]   # the CLI's, in the same order


def test_default_policies_are_those_incidents_compares(capsys):
    doc = _cli_json(capsys, "incidents", STORM)
    got = fpreplay.open(STORM).compare()
    assert got["policy"].to_list()[1:] == doc["policies"]
