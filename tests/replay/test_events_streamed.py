"""`fpreplay events -o` writes as it reads (one .etl: batch by batch, never the whole table), to
the same bytes (CSV, NDJSON) or the same table and provenance (Parquet) as the whole table."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from conftest import real_trace
from fpreplay.parsers import ReadOptions, read_inputs
from fpreplay.parsers.etl import merge
from fpreplay.parsers.table import PROVENANCE_KEY, provenance
from fpreplay.replay.cli import loading, main
from fpreplay.replay.cli.app import write_table_output

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "traces" / "samples").glob("*/trace.etl"))


def _events(capsys, path: Path, out: Path, *extra) -> tuple[int, dict, str]:
    rc = main(["events", str(path), "-o", str(out), "--json", *extra])
    stdout, err = capsys.readouterr()
    return rc, json.loads(stdout), err


def _whole(path: Path, out: Path, all_records: bool) -> dict:
    """What `events` wrote before it streamed: the whole table, written at once (CSV and
    NDJSON with the text twins of the numbers)."""
    read = read_inputs([path], ReadOptions(all_records=all_records))
    prov = provenance(read)
    write_table_output(read.events, out, (), prov)
    return prov


def _same_output(capsys, tmp_path, path: Path, all_records: bool, suffix: str) -> dict:
    new, old = tmp_path / f"new{suffix}", tmp_path / f"old{suffix}"
    rc, doc, err = _events(capsys, path, new, *(["--all"] if all_records else []))
    assert rc == 0 and "Traceback" not in err
    prov = _whole(path, old, all_records)
    if suffix == ".parquet":
        assert pl.read_parquet(new).equals(pl.read_parquet(old))
        got = json.loads(pl.read_parquet_metadata(new)[PROVENANCE_KEY])
        assert got == json.loads(pl.read_parquet_metadata(old)[PROVENANCE_KEY]) == prov
    else:
        assert new.read_bytes() == old.read_bytes()
    assert doc["records"] == prov["records"] and doc["events_lost"] == prov["events_lost"]
    return doc


@pytest.mark.parametrize("suffix", [".csv", ".ndjson", ".parquet"])
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.parent.name)
def test_samples_stream_to_the_same_output(capsys, tmp_path, monkeypatch, path, suffix):
    """Small batches (many per sample), so that rows really are written batch by batch."""
    monkeypatch.setattr(merge, "PENDING_FLUSH_ROWS", 300)
    doc = _same_output(capsys, tmp_path, path, False, suffix)
    assert doc["rows"] == read_inputs([path]).events.height > 300


@pytest.mark.parametrize("all_records", [False, True])
@pytest.mark.parametrize("name", ["etl/net.4.5.2.x64.etl.zip", "etl/filtrace_diskio.etl"])
def test_real_traces_stream_to_the_same_output(capsys, tmp_path, monkeypatch, name,
                                               all_records):
    monkeypatch.setattr(merge, "PENDING_FLUSH_ROWS", 2000)
    for suffix in (".csv", ".parquet"):
        _same_output(capsys, tmp_path, real_trace(name), all_records, suffix)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batches_out_of_order_fall_back_to_the_whole_table(capsys, tmp_path, monkeypatch,
                                                           suffix):
    """A batch the whole table would have put elsewhere: nothing half-written is kept, the whole
    table is written, and the read's warnings are said once."""
    monkeypatch.setattr(merge, "PENDING_FLUSH_ROWS", 300)
    path = SAMPLES[0]
    real_checked = loading._checked

    def swapped(batches, columns):
        batches = list(batches)
        batches[0], batches[1] = batches[1], batches[0]
        return real_checked(iter(batches), columns)
    monkeypatch.setattr(loading, "_checked", swapped)
    doc = _same_output(capsys, tmp_path, path, False, suffix)
    assert len(doc["warnings"]) == len(set(doc["warnings"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"new{suffix}", f"old{suffix}"]


def test_several_inputs_are_still_merged_into_one_table(capsys, tmp_path):
    sample = ROOT / "traces" / "samples" / "c-purge-during-incident"
    out = tmp_path / "two.csv"
    rc = main(["events", str(sample / "trace.etl"), str(sample / "ifr.txt"), "-o", str(out)])
    capsys.readouterr()
    read = read_inputs([sample / "trace.etl", sample / "ifr.txt"])
    assert rc == 0 and pl.read_csv(out).height == read.events.height
