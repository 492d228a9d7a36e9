"""The .etl reader: buffers -> records -> decoded event rows, merged into time order, streamed.

How it stays fast (etw-formats.md sections 1 and 4), one module per idea:
  * stream.py: buffers are read one at a time from a stream (.etl, .etl.zip, .etl.gz) and walked
    by their own BufferSize; compressed buffers go through libfwnt's LZ77 Xpress;
  * walk.py: per record the hot loop reads one 8-byte prefix, looks its header kind up in
    headers.py's table and, for kernel headers, the raw HookId in a snapshot of the decoder
    registry (providers.py); only hits are decoded;
  * plans.py: IRP-bearing kernel events and TraceLogging events are decoded a flush at a time;
    everything else a decoder wants becomes an EtlRecord for it;
  * merge.py: per-CPU buffers arrive out of time order, so rows wait in a bounded pending table
    and are released once every recently active CPU has logged past them (a watermark merge).
This module reads one file through them: the circular-file order, the totals and what the
trace header says was lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import InputError
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.integrity import BufferChecks
from fpreplay.parsers.etl.merge import Merge
from fpreplay.parsers.etl.stream import iter_buffers
from fpreplay.parsers.etl.walk import Walker


def read_events(path, options, diagnostics: Diagnostics, stats: dict) -> Iterator[pl.DataFrame]:
    """Conformed event batches of one .etl (.zip/.gz) in time order; see parsers/api.py."""
    from fpreplay.schema import conform_events

    path = Path(path)
    walker = Walker(path, options, diagnostics, stats)
    merge = Merge(walker, options.batch_rows)
    checks = BufferChecks(path, diagnostics)
    progress = options.progress
    circular_start = None          # index of the oldest buffer of a wrapped circular file
    deferred: list[int] = []       # indices read in a second pass (the newest part of the ring)
    seen_any = False
    walked, end_offset = 0, 0

    def process(offset: int, data: bytes) -> None:
        """Walk one buffer the checks admit (in ring order; decompressed only then)."""
        nonlocal seen_any
        if not checks.admit(offset, data):
            return
        walker.buffer(offset, data)
        seen_any = True

    try:
        # (A helper thread reading and decompressing ahead was tried: on two cores the hand-over
        # between threads cost more than it hid, for plain, LZ77 and zipped files alike.)
        for offset, index, data in iter_buffers(path, diagnostics, progress):
            walked, end_offset = index + 1, offset + len(data)
            if index == 1 and walker.logfile is not None:
                circular_start = _circular_start(walker.logfile)
            if circular_start is not None and 1 <= index < circular_start:
                deferred.append(index)
                continue
            process(offset, data)
            for batch in merge.flush():
                yield conform_events(batch, keep_extra=True)
        if deferred:
            wanted = set(deferred)
            for offset, index, data in iter_buffers(path, Diagnostics()):
                if index in wanted:
                    process(offset, data)
                    for batch in merge.flush():
                        yield conform_events(batch, keep_extra=True)
                if index >= max(wanted):
                    break
        if not seen_any or walker.records == 0:
            raise InputError(path, "no ETW records could be read", 0)
        # (A wrapped circular file counts overwritten buffers in BuffersWritten too.)
        if walker.logfile is not None and walked < walker.logfile.BuffersWritten \
                and not walker.logfile.LogFileMode & L.EVENT_TRACE_FILE_MODE_CIRCULAR:
            diagnostics.warn(f"{path}: byte {end_offset}: trace cut short: its header says "
                             f"{walker.logfile.BuffersWritten} buffers were written, "
                             f"{walked} are present")
            diagnostics.count("etl_truncated")
        for batch in merge.flush(final=True):
            yield conform_events(batch, keep_extra=True)
    finally:
        _finish_stats(walker, stats, diagnostics)


def _circular_start(lf) -> int | None:
    """StartBuffers of a circular file that has wrapped; None when file order is ring order."""
    if lf.LogFileMode & L.EVENT_TRACE_FILE_MODE_CIRCULAR and 1 < lf.StartBuffers < (1 << 24):
        return lf.StartBuffers
    return None


def _finish_stats(walker: Walker, stats: dict, diagnostics: Diagnostics) -> None:
    path = walker.path
    stats["records"] = stats.get("records", 0) + walker.records
    lf = walker.logfile
    events_lost = (lf.EventsLost if lf is not None else 0) + stats.pop("events_lost_buffers", 0)
    buffers_lost = (lf.BuffersLost if lf is not None else 0) + stats.pop("buffers_lost_flagged", 0)
    stats["events_lost"] = stats.get("events_lost", 0) + events_lost
    stats["buffers_lost"] = stats.get("buffers_lost", 0) + buffers_lost
    if events_lost:
        diagnostics.warn(f"{path}: the trace lost events ({events_lost} by the session's count "
                         "and buffers flagged EVENTS_LOST); lifecycles across them may be "
                         "incomplete")
    if buffers_lost:
        diagnostics.warn(f"{path}: the trace lost {buffers_lost} buffer(s)")
    if walker.logfile is None and walker.records:
        diagnostics.warn(f"{path}: no EventTrace/Header record; event times are unknown")
    diagnostics.count("etl_records", walker.records)
