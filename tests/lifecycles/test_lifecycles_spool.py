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
from fpreplay.schema import STATUS_INSUFFICIENT_RESOURCES, conform_events

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


def _with_inverted_call_and_late_alias(events: pl.DataFrame) -> pl.DataFrame:
    """The streamed test's trace, plus an inverted-call IOCTL dispatched first and never
    completed (open for the whole trace), IRPs of a device the kernel names by its \\Device path
    all along, and near the end one IRP whose events give both that path and the driver's own
    name (an alias learned late)."""
    from tests.lifecycles.test_lifecycles_streamed import T0, US

    t_end = int(events["ts_ns"].max()) - T0
    rows = [dict(ts_ns=0, kind="irp_dispatch", irp=0xCAFE0000, major=14, device="stordrv",
                 event_name="KMDF/Dispatch")]
    for i in range(30):
        t, irp = 5 * US + i * (t_end // 40), 0xBB000000 + i * 0x100
        late = i == 29
        rows += [dict(ts_ns=t, kind="irp_dispatch", irp=irp, major=3,
                      device="\\Device\\Stor0", event_name="Kernel/Dispatch"),
                 dict(ts_ns=t + US, kind="irp_complete", irp=irp, status=0,
                      device="stordrv" if late else None, event_name="KMDF/Complete")]
    failed = events.filter((pl.col("status") == STATUS_INSUFFICIENT_RESOURCES)
                           & (pl.col("event_name") == "DiskIo/Read"))["ts_ns"]
    for t in failed.gather_every(3).to_list():    # IRP-less messages, tied by device and time
        rows.append(dict(ts_ns=t - T0 + 30 * US, kind="request_alloc_failed", device="disk0",
                         event_name="KMDF/AllocFailed"))
    extra = conform_events(pl.DataFrame([{**r, "ts_ns": T0 + r["ts_ns"]} for r in rows],
                                        infer_schema_length=None))
    return pl.concat([events, extra], how="diagonal_relaxed").sort("ts_ns", maintain_order=True)


def test_a_trace_in_tiny_batches_spills_and_reads_back_the_whole_table(monkeypatch):
    """Batches of 7 rows: IRPs open across boundaries, addresses reused across them,
    request-only events before the row naming their IRP, lost events at a boundary, an alias
    learned late, one IRP open throughout, IRP-less allocation failures tied to completions.
    Tiny thresholds make the held rows spill to runs that are merged back, the spool write
    files and the tie's candidates be pruned: the read back is the whole-table build's, and
    held rows never exceed the threshold however long the open IRP pins the watermark."""
    from fpreplay.lifecycles import finish, instances, order, outcome
    from fpreplay.lifecycles.build import LifecycleStream
    from tests.lifecycles.test_lifecycles_streamed import _trace

    monkeypatch.setattr(order, "HELD_MAX_ROWS", 40)
    monkeypatch.setattr(order, "BLOCK_ROWS", 8)
    monkeypatch.setattr(spool_module, "SPOOL_MEMORY_ROWS", 64)
    monkeypatch.setattr(finish, "PRUNE_ROWS", 1)
    for module in (finish, outcome):   # the test trace spans 3 ms: a window it can pass
        monkeypatch.setattr(module, "TIE_WINDOW_NS", 50_000)
    # closed instances settle 10 us after their close, before the message 30 us after it
    monkeypatch.setattr(instances, "CLOSED_JOIN_NS", 10_000)
    events = _with_inverted_call_and_late_alias(_trace(seed=3, irps=300))
    ts = events["ts_ns"]
    lost = [(int(ts[70]), int(ts[71])), (int(ts[500]), int(ts[530]))]
    whole_diag = Diagnostics()
    whole = build_lifecycles(events, whole_diag, lost)
    runs = []
    made = order._Run.__init__
    monkeypatch.setattr(order._Run, "__init__",
                        lambda self, *a: (runs.append(1), made(self, *a))[1])
    stream, diag = LifecycleStream(Diagnostics()), None
    held_peak = 0
    for a in range(0, events.height, 7):
        stream.feed(events.slice(a, 7))
        held = stream._order.held
        held_peak = max(held_peak, 0 if held is None else held.height)
    diag = stream.diagnostics
    with stream.finish(lost) as spool:
        streamed = spool.collect()
        assert spool.height == streamed.height
    assert runs and held_peak <= 40 + 7
    assert_frame_equal(streamed, whole)
    assert diag.warnings == whole_diag.warnings and diag.counters == whole_diag.counters
    first = whole.row(0, named=True)
    assert (first["irp"], first["actual"]) == (0xCAFE0000, "incomplete")
    early = whole.filter(pl.col("irp") == 0xBB000000).row(0, named=True)
    assert (early["device"], early["device_alias"]) == ("stordrv", "\\Device\\Stor0")
    assert any("open while a buffer flagged EVENTS_LOST" in w for w in diag.warnings)
    assert whole["evidence"].str.contains("tied by device and time").sum() >= 3
    assert stream._finisher._kept < whole.filter(
        pl.col("status") == STATUS_INSUFFICIENT_RESOURCES).height


@pytest.mark.parametrize("relative", ["etl/filtrace_diskio.etl", "etl/net.4.5.2.x64.etl.zip"])
def test_a_real_trace_read_into_a_spool_reads_back_the_whole_table(relative, real, monkeypatch):
    """Real traces in batches of 500 rows, held rows spilled past 30 and the spool in files
    past 100: the read back and the warnings are the whole-table build's."""
    from fpreplay.lifecycles import order

    monkeypatch.setattr(order, "HELD_MAX_ROWS", 30)
    monkeypatch.setattr(order, "BLOCK_ROWS", 16)
    monkeypatch.setattr(spool_module, "SPOOL_MEMORY_ROWS", 100)
    paths = [real(relative)]
    whole, whole_read = _whole(paths)
    read, spool = read_lifecycles_spooled(InputStream(paths, ReadOptions(batch_rows=500)))
    with spool:
        assert spool.height == whole.height > 100
        assert_frame_equal(spool.collect(), whole)
        assert spool.aliases == alias_map(whole)
    assert read.diagnostics.warnings == whole_read.diagnostics.warnings
    assert read.diagnostics.counters == whole_read.diagnostics.counters
