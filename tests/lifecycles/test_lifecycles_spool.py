"""The IRP spool (lifecycles/spool.py) reads back the table build_lifecycles gives, in arrival
order, in chunks, as many times as asked, from memory or from its files, which close() removes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles import build_lifecycles, read_lifecycles_spooled
from fpreplay.lifecycles import spool as spool_module
from fpreplay.lifecycles.devices import alias_map
from fpreplay.parsers import InputStream, ReadOptions, read_inputs
from fpreplay.schema import conform_events

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p for p in (ROOT / "traces" / "samples").iterdir() if (p / "trace.etl").exists())


def _whole(paths):
    read = read_inputs(paths)
    return build_lifecycles(read.events, read.diagnostics, read.lost_windows), read


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_a_sample_read_into_a_spool_reads_back_the_whole_table(sample, monkeypatch):
    """Past a tiny memory threshold the rows go to Parquet files; reading twice gives the same
    chunks, each at most `rows` long, in arrival order; the warnings are the whole build's."""
    monkeypatch.setattr(spool_module, "SPOOL_MEMORY_ROWS", 50)
    paths = [sample / "trace.etl"]
    whole, whole_read = _whole(paths)
    read, spool = read_lifecycles_spooled(InputStream(paths, ReadOptions(batch_rows=200)))
    with spool:
        assert spool.height == whole.height > 0
        assert_frame_equal(spool.collect(), whole)
        chunks = list(spool.chunks(rows=37))
        assert all(0 < c.height <= 37 for c in chunks)
        assert_frame_equal(pl.concat(chunks), whole)
        arrive = pl.concat([c["arrive_ns"] for c in spool.chunks(columns=["arrive_ns"])])
        assert arrive.is_sorted()
        assert spool.aliases == alias_map(whole)
        assert read.diagnostics.warnings == whole_read.diagnostics.warnings
        files = list(spool.scratch_dir().iterdir()) if whole.height > 50 else []
    if files:
        assert not any(f.exists() for f in files)


class FrameStream:
    """An InputStream over an event table, in batches cut at `cuts` (row numbers)."""

    def __init__(self, events: pl.DataFrame, cuts: list[int], lost=None):
        self.events, self.cuts, self.lost = events, cuts, lost or []
        self.diagnostics = Diagnostics()

    def __iter__(self):
        for a, b in zip([0, *self.cuts], [*self.cuts, self.events.height]):
            yield self.events.slice(a, b - a)

    def result(self, kept):
        return SimpleNamespace(diagnostics=self.diagnostics, lost_windows=self.lost,
                               events=pl.concat(kept) if kept else None)


def test_a_trace_with_no_irp_gives_an_empty_spool_with_the_columns():
    events = conform_events(pl.DataFrame([dict(ts_ns=5, kind="memory_pressure", bytes=1)]))
    whole = build_lifecycles(events)
    assert whole.height == 0 and "arrive_ns" in whole.columns
    _, spool = read_lifecycles_spooled(FrameStream(events, []))
    with spool:
        assert spool.height == 0
        assert_frame_equal(spool.collect(), whole)
        assert list(spool.chunks()) == []
