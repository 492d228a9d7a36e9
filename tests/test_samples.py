"""The sample traces in traces/samples/: each is what its scenario makes, independent readers read
it, and fpreplay recovers the truth written beside it (contract sections 4 and 7)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import SAMPLES, etl_parser_tracelogging
from fpreplay.replay.cli import main as cli_main
from fpreplay.synth import dump_truth, synthesize

NAMES = ["a-paging-storm", "b-pool-ran-dry", "c-purge-during-incident", "d-healthy",
         "e-two-disks-every-source"]


def _truth(name: str) -> dict:
    return json.loads((SAMPLES / name / "truth.json").read_text(encoding="utf-8"))


def _inputs(name: str) -> list[str]:
    d = SAMPLES / name
    extra = [str(d / "ifr.txt"), "--tz", "UTC"] if (d / "ifr.txt").exists() else []
    return [str(d / "trace.etl"), *extra]


def _json(capsys, argv: list[str]) -> dict:
    assert cli_main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_samples_are_small():
    sizes = {p: p.stat().st_size for p in SAMPLES.glob("*/*") if p.is_file()}
    etls = [s for p, s in sizes.items() if p.suffix == ".etl"]
    assert len(etls) >= len(NAMES)
    # every sample is one whose truth these tests recover
    assert set(NAMES) == {p.name for p in SAMPLES.iterdir() if p.is_dir()}
    assert max(etls) < 700_000
    assert sum(sizes.values()) < 5_000_000
    assert (SAMPLES / "README.md").exists()


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_what_its_scenario_makes(tmp_path, name):
    # Determinism and provenance at once: regenerating from scenario.toml gives the same bytes.
    src = SAMPLES / name
    out = tmp_path / "trace.etl"
    r = synthesize(src / "scenario.toml", out, truth=tmp_path / "truth.json",
                   ifr=tmp_path / "ifr.txt" if (src / "ifr.txt").exists() else None)
    assert out.read_bytes() == (src / "trace.etl").read_bytes()
    assert dump_truth(r.truth) == (src / "truth.json").read_text(encoding="utf-8")
    if r.ifr:
        assert r.ifr.read_bytes() == (src / "ifr.txt").read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_dissect_reads_sample_to_the_end(name):
    from dissect.etl.etl import ETL

    truth = _truth(name)
    with open(SAMPLES / name / "trace.etl", "rb") as fh:
        records = list(ETL(fh))
    assert len(records) == truth["records"]
    kinds = Counter(type(r.header).__name__ for r in records)
    symbols = Counter(r.event.symbol() for r in records)
    assert kinds["EventHeader"] > 0 and kinds["PerfinfoTraceHeader"] > 0
    assert symbols["DiskIo/ReadInit"] > 0 and symbols["DiskIo/Read"] > 0
    # Decoded IRP fields: every read/write completion's IRP, flags (priority bits masked) and size
    # are those of a completed read/write IRP of the truth, and the other way round.
    cols = truth["per_irp_columns"]
    rows = [dict(zip(cols, x)) for x in truth["per_irp"]]
    want = Counter((int(x["irp"], 16), x["irp_flags"], x["bytes"]) for x in rows
                   if x["major"] in (3, 4) and x["complete_ns"] is not None)
    got = Counter((r.event.Irp, r.event.IrpFlags & ~0x000E0000, r.event.TransferSize)
                  for r in records if r.event.symbol() in ("DiskIo/Read", "DiskIo/Write"))
    assert got == want


@pytest.mark.parametrize("name", NAMES)
def test_etl_parser_decodes_sample_tracelogging(name):

    truth = _truth(name)
    events = etl_parser_tracelogging(SAMPLES / name / "trace.etl")
    names = Counter(n for n, _ in events)
    assert names["IrpDispatch"] == truth["irps"]
    a = truth["actual"]
    assert names["RequestAllocFailed"] == a["alloc_failed"] + a["refused"] + a["reserved"]
    assert names["ForwardProgressRefused"] == a["refused"]
    fields = {k for n, f in events if n == "IrpDispatch" for k in f}
    assert {"Irp", "Major", "IrpFlags", "Queue", "Device"} <= fields


@pytest.mark.parametrize("name", NAMES)
def test_irps_recover_the_truth(tmp_path, capsys, name):
    truth = _truth(name)
    out = tmp_path / "irps.parquet"
    doc = _json(capsys, ["irps", *_inputs(name), "-o", str(out), "--json", "--quiet"])
    assert doc["irps"] == truth["irps"]
    assert doc["actual"] == {k: v for k, v in truth["actual"].items() if v}
    import polars as pl

    got = pl.read_parquet(out).select("irp", "arrive_ns", "actual").sort("arrive_ns")
    want = [(int(r[0], 16), r[1], r[6]) for r in truth["per_irp"]]
    assert sorted(got.rows()) == sorted(want)


@pytest.mark.parametrize("name", NAMES)
def test_analyze_recovers_the_truth(capsys, name):
    truth = _truth(name)
    doc = _json(capsys, ["analyze", *_inputs(name), "--json", "--quiet"])
    assert doc["schema"] == "fpreplay.analyze/1"
    assert doc["irps"] == truth["irps"]
    assert doc["actual"] == truth["actual"]
    assert doc["events_lost"] == truth["events_lost"] + truth["buffers_flagged_lost"]
    assert len(doc["incidents"]) == len(truth["incidents"])
    for got, want in zip(doc["incidents"], truth["incidents"]):
        # An incident runs from its first signal to its last: inside the pressure window.
        assert want["start_ns"] <= got["start_ns"] <= got["end_ns"] <= want["end_ns"] + 10**7
        assert got["alloc_failed"] + got.get("refused", 0) <= want["failing_irps"]


@pytest.mark.parametrize("name", NAMES)
def test_compare_recovers_the_truth(capsys, name):
    truth = _truth(name)
    policies = [p["policy"] for p in truth["compare"]["policies"]]
    argv = ["compare", *_inputs(name), "--json", "--quiet"]
    for p in policies:
        argv += ["--policy", p]
    doc = _json(capsys, argv)
    assert doc["schema"] == "fpreplay.compare/1"
    assert doc["irps"] == truth["irps"] and doc["actual"] == truth["actual"]
    assert doc["policies"] == truth["compare"]["policies"]


def test_healthy_sample_raises_no_alarm():
    truth = _truth("d-healthy")
    assert truth["incidents"] == [] and truth["actual"]["ok"] == truth["irps"]
    assert all(p["rescued"] == p["parked"] == p["regressed"] == 0
               for p in truth["compare"]["policies"])


def test_samples_show_what_their_readme_says():
    a, b, c = _truth("a-paging-storm"), _truth("b-pool-ran-dry"), _truth("c-purge-during-incident")
    assert a["actual"]["alloc_failed"] > 100 and a["incidents"][0]["paging_share"] > 0.5
    by = {p["policy"]: p for p in a["compare"]["policies"]}
    assert by["always:8"]["rescued"] == a["actual"]["alloc_failed"]
    assert 0 < by["paging:8"]["still_failed"] < a["actual"]["alloc_failed"]
    assert b["parked"] > 0 and b["park_wait_ns"]["max"] > 0 and b["actual"]["reserved"] > 0
    assert b["queues"]["stordrv/default"]["reserve_high_water"] == 2
    assert c["fate"]["cancelled_parked"] > 0 and c["queue_ops"][0]["kind"] == "queue_purge"



def test_sweep_recovers_the_truth(capsys):
    truth = _truth("b-pool-ran-dry")["sweep"]
    doc = _json(capsys, ["sweep", *_inputs("b-pool-ran-dry"), "--kind", truth["kind"],
                         "--max", str(truth["max"]), "--json", "--quiet"])
    assert doc["schema"] == "fpreplay.sweep/1"
    assert doc["min_reserved_no_park"] == truth["min_reserved_no_park"] == 6
    assert [{k: r.get(k) for k in want} for r, want in zip(doc["rows"], truth["rows"])] \
        == truth["rows"]
