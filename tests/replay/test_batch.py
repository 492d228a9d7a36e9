"""`fpreplay batch` (issue 13): each trace of a fleet analysed on its own gives exactly what the
single-trace commands give; a damaged trace is one row with its error; a re-run does no work; a
Dask LocalCluster gives the same dataset as one process."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import polars as pl
import pytest

from conftest import REAL, SAMPLES
from fpreplay.replay.batch import plan_traces
from fpreplay.replay.cli import main

POLICIES = ["--policy", "always:2", "--policy", "always:8"]
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _lab(tmp_path: Path, samples=("a-paging-storm", "b-pool-ran-dry", "c-purge-during-incident",
                                  "d-healthy"), real=True, damaged=True) -> Path:
    """A folder as a lab would hand it over: the samples (c with its IFR dump), the real traces
    where ../shared is present, and a damaged file."""
    lab = tmp_path / "lab"
    for name in samples:
        (lab / name).mkdir(parents=True)
        for f in (SAMPLES / name).iterdir():
            if f.name in ("trace.etl", "ifr.txt"):
                os.symlink(f, lab / name / f.name)
    if real and (REAL / "etl").is_dir():
        (lab / "real").mkdir()
        for f in sorted((REAL / "etl").iterdir()):
            os.symlink(f, lab / "real" / f.name)
    if damaged:
        good = (SAMPLES / "d-healthy" / "trace.etl").read_bytes()
        (lab / "damaged").mkdir()
        (lab / "damaged" / "cut.etl").write_bytes(b"\x00" * 64 + good[64:4096])
    return lab


def test_plan_groups_companions_by_folder_and_stem(tmp_path):
    lab = tmp_path / "lab"
    (lab / "one").mkdir(parents=True)
    for name in ("trace.etl", "ifr.txt", "scenario.toml", "truth.json", "x.tmf"):
        (lab / "one" / name).write_bytes(b"x")
    (lab / "two").mkdir()
    for name in ("run1.etl", "run1.ifr.txt", "run2.etl.gz", "notes.txt"):
        (lab / "two" / name).write_bytes(b"x")
    plan = {job.name: job for job in plan_traces([lab])}
    assert sorted(plan) == ["one__trace.etl", "two__notes.txt", "two__run1.etl", "two__run2.etl.gz"]
    one = plan["one__trace.etl"]
    assert [p.name for p in one.inputs] == ["trace.etl", "ifr.txt"]   # the only .etl takes it
    assert one.tmf == (lab / "one",)
    assert [p.name for p in plan["two__run1.etl"].inputs] == ["run1.etl", "run1.ifr.txt"]
    # Two ETW traces in one folder: a text of another stem is a trace of its own.
    assert [p.name for p in plan["two__notes.txt"].inputs] == ["notes.txt"]
    # A glob names the same files; the output directory is never an input.
    out = lab / "out"
    (out / "traces").mkdir(parents=True)
    (out / "traces" / "old.etl").write_bytes(b"x")
    globbed = plan_traces([Path(f"{lab}/**/*.etl")], out)
    assert sorted(j.name for j in globbed) == ["one__trace.etl", "two__run1.etl"]


def test_each_trace_gets_what_the_single_trace_commands_give(tmp_path, capsys):
    lab = _lab(tmp_path)
    out = tmp_path / "out"
    code, text, err = run(["batch", lab, "-o", out, *POLICIES, "--json", "-q"], capsys)
    assert code == 2, err                      # the damaged trace
    assert "1 of" in err and "damaged__cut.etl" in err
    doc = json.loads(text)
    schema = json.loads((SCHEMAS / "batch.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema)
    records = {r["trace"]: r for r in doc["traces"]}
    assert records["damaged__cut.etl"]["status"] == "error"
    assert records["damaged__cut.etl"]["exit_status"] == 2
    assert "byte" in records["damaged__cut.etl"]["error"]
    ok = [r for r in doc["traces"] if r["status"] == "ok"]
    assert len(ok) >= 4
    summary = pl.read_parquet(out / "summary.parquet")
    per_irp = pl.scan_parquet(out / "irps", hive_partitioning=True).collect()
    for r in ok:
        code, single, err = run(["compare", *r["inputs"], *POLICIES, "--json", "-q"], capsys)
        assert code == 0, err
        single = json.loads(single)
        assert r["irps"] == single["irps"] and r["actual"] == single["actual"]
        mine = summary.filter(pl.col("trace") == r["trace"], pl.col("policy") != "actual")
        for want in single["policies"]:
            got = mine.filter(pl.col("policy") == want["policy"]).row(0, named=True)
            for key in ("rescued", "still_failed", "regressed", "parked", "reserve_high_water"):
                assert got[key] == want[key], (r["trace"], want["policy"], key)
            assert got["park_wait_p99_ns"] == want["park_wait_ns"]["p99"]
        assert per_irp.filter(pl.col("trace") == r["trace"]).height == single["irps"]
        code, swept, err = run(["sweep", *r["inputs"], "--json", "-q"], capsys)
        swept = json.loads(swept)
        if swept["peak_demand"]:
            assert r["sweep"]["needed_reserved"] == swept["min_reserved_no_park"]
    # The answer across traces names the size that serves them all.
    needs = [r["sweep"]["needed_reserved"] for r in ok]
    assert doc["fleet"]["recommended_reserved"] == max(n for n in needs if n is not None)
    always8 = next(p for p in doc["fleet"]["policies"] if p["policy"] == "always:8")
    assert always8["sufficed"] == sum(1 for n in needs if n is not None and n <= 8)
    assert any(s.startswith("always:2 would have been enough") for s in
               doc["fleet"]["statements"])

    # A second run does no work and changes nothing.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")
              if p.name == "part-0.parquet"}
    code, text, _ = run(["batch", lab, "-o", out, *POLICIES, "--json", "-q"], capsys)
    again = json.loads(text)
    assert code == 2 and again["ran"] == 0 and again["skipped"] == len(doc["traces"])
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert pl.read_parquet(out / "summary.parquet").equals(summary)
    # A trace whose file changed is analysed again; the others are not.
    target = lab / "damaged" / "cut.etl"
    target.write_bytes(target.read_bytes() + b"\x00")
    code, text, _ = run(["batch", lab, "-o", out, *POLICIES, "--json", "-q"], capsys)
    assert json.loads(text)["ran"] == 1


def test_terminal_and_html_answer_across_traces(tmp_path, capsys):
    lab = _lab(tmp_path, samples=("a-paging-storm", "d-healthy"), real=False, damaged=False)
    (lab / "<script>x").mkdir()
    os.symlink(SAMPLES / "b-pool-ran-dry" / "trace.etl", lab / "<script>x" / "trace.etl")
    page = tmp_path / "fleet.html"
    code, text, err = run(["batch", lab, "-o", tmp_path / "out", *POLICIES, "-q",
                           "--report", page], capsys)
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert "<script>x" not in html and "&lt;script&gt;x/trace.etl" in html   # paths escaped
    assert "a-paging-storm__trace.etl" in html
    assert "Traces a reserve of N (always:N) is enough for" in html   # the chart
    assert "always:8 would have been enough" in html
    assert "a-paging-storm__trace.etl" in text and "d-healthy__trace.etl" in text
    # a needs 3 without parking, d nothing, b 6: always:2 is short on two, always:8 on none.
    words = " ".join(text.split())
    assert ("always:2 would have been enough (no IRP parked waiting for a reserved request) "
            "on 1 of 3 traces; the other 2 need always:3 and always:6.") in words, words
    assert "always:8 would have been enough" in words and "on 3 of 3 traces" in words


def test_process_pool_and_dask_local_cluster_give_the_same_dataset(tmp_path, capsys):
    pytest.importorskip("distributed", reason="Dask distributed is the 'cluster' extra")
    lab = _lab(tmp_path, samples=("a-paging-storm", "b-pool-ran-dry", "d-healthy"), real=False,
               damaged=True)
    outs = {}
    for label, extra in (("one", []), ("pool", ["--jobs", "2"]),
                         ("dask", ["--jobs", "2", "--scheduler", "local"])):
        outs[label] = tmp_path / label
        code, _, err = run(["batch", lab, "-o", outs[label], *POLICIES, "-q", *extra], capsys)
        assert code == 2, err

    def dataset(out: Path):
        summary = pl.read_parquet(out / "summary.parquet").drop("fpreplay")
        irps = (pl.scan_parquet(out / "irps", hive_partitioning=True).collect()
                .sort("trace", "arrive_ns", "irp"))
        return summary, irps
    base_summary, base_irps = dataset(outs["one"])
    assert base_irps.height > 0
    for label in ("pool", "dask"):
        summary, irps = dataset(outs[label])
        assert summary.equals(base_summary), label
        assert irps.equals(base_irps), label
    shutil.rmtree(tmp_path / "lab")


def test_unseeded_verifier_ranges_are_columns_a_query_can_name(tmp_path, capsys):
    """verifier-random without --seed runs seeds 1-5: each trace's row for a policy holds the
    median, its `_min`/`_max` over the seeds and the seeds themselves, the same figures
    `compare --json` gives for that trace."""
    lab = _lab(tmp_path, samples=("a-paging-storm",), real=False, damaged=False)
    out = tmp_path / "out"
    code, _, _ = run(["batch", lab, "-o", out, "--policy", "always:2", "--memory",
                      "verifier-random", "-q"], capsys)
    assert code == 0
    row = pl.read_parquet(out / "summary.parquet").filter(pl.col("policy") == "always:2").row(
        0, named=True)
    code, text, _ = run(["compare", SAMPLES / "a-paging-storm" / "trace.etl", "--policy",
                         "always:2", "--memory", "verifier-random", "--json"], capsys)
    single = next(p for p in json.loads(text)["policies"] if p["policy"] == "always:2")
    assert row["seeds"] == [1, 2, 3, 4, 5]
    for figure in ("rescued", "parked", "reserve_high_water"):
        spread = single["range"][figure]
        assert (row[f"{figure}_min"], row[figure], row[f"{figure}_max"]) == (
            spread["min"], spread["median"], spread["max"])
    assert row["park_wait_p99_ns_max"] == single["range"]["park_wait_ns"]["p99"]["max"]
