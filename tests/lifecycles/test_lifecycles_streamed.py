"""Lifecycles built from the reader's batches (LifecycleStream, read_lifecycles) give the same
table and the same warnings as the whole-table build, wherever the batches split the trace."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles import build_lifecycles, read_lifecycles
from fpreplay.lifecycles.build import LifecycleStream
from fpreplay.lifecycles.incidents import side_events
from fpreplay.parsers import InputStream, ReadOptions, read_inputs
from fpreplay.schema import STATUS_INSUFFICIENT_RESOURCES, conform_events

ROOT = Path(__file__).resolve().parents[2]
US = 1_000
T0 = 1_700_000_000 * 10**9


def _trace(seed: int = 7, irps: int = 400) -> pl.DataFrame:
    """Disk IRPs from a pool of 12 addresses (reused as lookaside lists do), each dispatched by
    DiskIo Init and DrvMjFnCall, queued through IFR lines naming only the request, and completed
    by DrvComplReq, DiskIo/Read and at times FileIo/OpEnd at one instant (logged on different
    CPUs, in any order);
    some never complete (address reused later), some fail for want of memory."""
    rng = random.Random(seed)
    rows, free_at = [], {}
    t = 0
    for i in range(irps):
        t += rng.choice((0, 1, 3, 20)) * US
        addr = min(range(12), key=lambda a: (free_at.get(a, -1) > t, rng.random()))
        irp, req = 0xFFFF0000 + addr * 0x100, 0xAA000000 + i
        dev = "disk0"
        rows += [dict(ts_ns=t, kind="irp_dispatch", irp=irp, event_name="DiskIo/ReadInit",
                      device=dev, major=3, bytes=4096),
                 dict(ts_ns=t, kind="irp_dispatch", irp=irp, event_name="DiskIo/DrvMjFnCall",
                      major=3),
                 dict(ts_ns=t + US, kind="other", request=req, queue="0x51",
                      event_name="IFR/Queuing"),
                 dict(ts_ns=t + 2 * US, kind="other", irp=irp, request=req,
                      event_name="IFR/Calling driver")]
        if rng.random() < 0.05:
            rows.append(dict(ts_ns=t + 2 * US, kind="request_alloc_failed", request=req,
                             device=dev, event_name="KMDF/AllocFailed"))
        if rng.random() < 0.03:            # never completed: its address comes back later
            free_at[addr] = t
            continue
        end = t + rng.choice((1, 5, 40, 300)) * US
        status = STATUS_INSUFFICIENT_RESOURCES if rng.random() < 0.05 else 0
        done = [dict(ts_ns=end, kind="irp_complete", irp=irp, event_name="DiskIo/DrvComplReq",
                     status=status),
                dict(ts_ns=end, kind="irp_complete", irp=irp, event_name="DiskIo/Read",
                     status=status, device=dev, bytes=4096)]
        if rng.random() < 0.3:   # the file system's word too: another layer, the same tick
            done.append(dict(ts_ns=end, kind="irp_complete", irp=irp,
                             event_name="FileIo/OpEnd", status=status))
        rng.shuffle(done)
        rows += done
        free_at[addr] = end
    rows += [dict(ts_ns=t // 2, kind="memory_pressure", bytes=1 << 20),
             dict(ts_ns=t // 3, kind="queue_stop", queue="0x51", device="disk0")]
    rows.sort(key=lambda r: r["ts_ns"])
    return conform_events(pl.DataFrame([{**r, "ts_ns": T0 + r["ts_ns"]} for r in rows],
                                       infer_schema_length=None))


def _whole(events, lost=None):
    diag = Diagnostics()
    return build_lifecycles(events, diag, lost), diag


def _streamed(events, cuts, lost=None):
    diag = Diagnostics()
    stream = LifecycleStream(diag)
    for a, b in zip([0, *cuts], [*cuts, events.height]):
        stream.feed(events.slice(a, b - a))
    with stream.finish(lost) as spool:
        return spool.collect(), diag


def _same(a, b):
    (lc_a, diag_a), (lc_b, diag_b) = a, b
    assert_frame_equal(lc_a, lc_b)
    assert diag_a.warnings == diag_b.warnings
    assert diag_a.counters == diag_b.counters


def test_tiny_batches_give_the_whole_table_answer():
    events = _trace()
    ts = events["ts_ns"]
    # Windows around instants where many rows share a tick, so lost events straddle a cut.
    lost = [(int(ts[100]), int(ts[130])), (int(ts[900]), None)]
    whole = _whole(events, lost)
    assert whole[0].height > 300
    assert set(whole[0]["actual"].unique()) >= {"ok", "incomplete"}   # the trace has both
    assert any("reused" in w or "dispatched again" in w or "still open" in w
               for w in whole[1].warnings)
    for size in (1, 2, 3, 7, 50):
        _same(whole, _streamed(events, list(range(size, events.height, size)), lost))


def test_cuts_inside_an_instant_and_a_reused_address():
    """Cut between the two completions of one instant, and between an address's completion
    and the dispatch that reuses it."""
    events = _trace()
    same_tick = (events["ts_ns"].diff() == 0) & (events["kind"] == "irp_complete")
    cuts = sorted({int(i) for i in same_tick.arg_true()})[:40]
    assert cuts
    reuse = (events["kind"] == "irp_dispatch") & (events["event_name"] == "DiskIo/ReadInit")
    cuts = sorted(set(cuts) | {int(i) for i in reuse.arg_true()[:40]})
    _same(_whole(events), _streamed(events, cuts))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=2_000), max_size=40),
       st.integers(min_value=0, max_value=5))
def test_any_split_gives_the_whole_table_answer(cut_points, seed):
    events = _trace(seed, irps=150)
    cuts = sorted({c for c in cut_points if c < events.height})
    _same(_whole(events), _streamed(events, cuts))


def test_a_sample_read_in_tiny_batches_gives_the_same_lifecycles():
    """Through the .etl reader: a sample with lost events, batches of a few dozen rows."""
    trace = ROOT / "traces" / "samples" / "a-paging-storm" / "trace.etl"
    whole_read = read_inputs([trace])
    whole = build_lifecycles(whole_read.events, whole_read.diagnostics, whole_read.lost_windows)
    stream = InputStream([trace], ReadOptions(batch_rows=40))
    batches = []
    stream_iter = iter(stream)
    read, lc = read_lifecycles(_Counting(stream, stream_iter, batches))
    assert len(batches) > 20
    assert read.events_lost == whole_read.events_lost > 0
    assert read.event_rows == whole_read.events.height
    assert_frame_equal(lc, whole)
    assert read.diagnostics.warnings == whole_read.diagnostics.warnings
    # What the analyses read besides lifecycles is kept (incident signals, queue operations,
    # STATUS_INSUFFICIENT_RESOURCES completions); the IRP rows are not.
    assert read.events.height < whole_read.events.height
    assert_frame_equal(read.events, side_events(whole_read.events))


class _Counting:
    """An InputStream that records the batches it hands out."""

    def __init__(self, stream, it, seen):
        self._stream, self._it, self._seen = stream, it, seen

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __iter__(self):
        for batch in self._it:
            self._seen.append(batch.height)
            yield batch


def test_several_inputs_read_whole_give_the_same_lifecycles_and_warnings():
    """Two inputs (the .etl and the driver's IFR dump) are read whole; the warnings of the read
    and of the build come out as one build's."""
    sample = ROOT / "traces" / "samples" / "c-purge-during-incident"
    paths = [sample / "trace.etl", sample / "ifr.txt"]
    whole_read = read_inputs(paths)
    whole = build_lifecycles(whole_read.events, whole_read.diagnostics, whole_read.lost_windows)
    read, lc = read_lifecycles(InputStream(paths))
    assert_frame_equal(lc, whole)
    assert read.diagnostics.warnings == whole_read.diagnostics.warnings
    assert any("more than one source's words" in w for w in read.diagnostics.warnings)


def test_a_request_that_never_gets_an_irp_does_not_release_the_ones_that_will(monkeypatch):
    """Request-only rows wait for the row that names their IRP, at most HOLD_MAX_ROWS back: a
    request no event ever pairs with (an IFR line of a request the trace never shows) must not
    let a later request's row go before its IRP is known (its queue would be lost)."""
    from fpreplay.lifecycles import build

    irp = 0xFFFF0100
    rows = [dict(ts_ns=0, kind="other", request=0xDEAD, queue="0x77", event_name="IFR/Queuing")]
    for i in range(10):                      # IRPs that come and go meanwhile
        rows += [dict(ts_ns=(1 + i) * US, kind="irp_dispatch", irp=0xEE000000 + i, major=3,
                      device="disk0", event_name="DiskIo/ReadInit"),
                 dict(ts_ns=(1 + i) * US + 1, kind="irp_complete", irp=0xEE000000 + i,
                      status=0, event_name="DiskIo/Read")]
    rows += [dict(ts_ns=20 * US, kind="irp_dispatch", irp=irp, major=3, device="disk0",
                  event_name="DiskIo/ReadInit"),
             dict(ts_ns=21 * US, kind="other", request=0xAA01, queue="0x51",
                  event_name="IFR/Queuing"),
             dict(ts_ns=21 * US + 500, kind="irp_dispatch", irp=0xEF000000, major=3,
                  device="disk0", event_name="DiskIo/ReadInit"),
             # the next batch: the row that names the request's IRP, then its completion
             dict(ts_ns=22 * US, kind="other", irp=irp, request=0xAA01,
                  event_name="IFR/Calling driver"),
             dict(ts_ns=23 * US, kind="irp_complete", irp=irp, status=0, event_name="DiskIo/Read")]
    events = conform_events(pl.DataFrame([{**r, "ts_ns": T0 + r["ts_ns"]} for r in rows],
                                         infer_schema_length=None))
    monkeypatch.setattr(build, "HOLD_MAX_ROWS", 5)
    whole = _whole(events)
    assert whole[0].filter(pl.col("irp") == irp)["queue"].to_list() == ["0x51"]
    _same(whole, _streamed(events, [events.height - 2]))
