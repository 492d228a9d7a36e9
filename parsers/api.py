"""The one entry point from outside the parsers: options in, an event table and diagnostics out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import InputError
from fpreplay.parsers import inputs
from fpreplay.perf import cyclic_gc_paused
from fpreplay.schema import ALL_RECORD_COLUMNS, EVENT_COLUMNS, conform_events
from fpreplay.units import TimeBound


@dataclass
class ReadOptions:
    tmf_dirs: list[Path] = field(default_factory=list)   # --tmf DIR (WPP)
    all_records: bool = False                            # --all: every record is one row
    providers: list[str] = field(default_factory=list)   # --provider NAME (TraceLogging by name)
    tz: str | None = None                                # --tz for text whose clock is local time
    range_s: tuple[float, float] | None = None           # --range T1 T2, seconds after trace start
    time_range: tuple[TimeBound, TimeBound] | None = None   # --range as written (clock times too)
    progress: Callable[[int], None] | None = None        # called with bytes consumed so far
    batch_rows: int | None = None   # rows an .etl batch gathers before release (tests: tiny)
    tally: ReadTally | None = None  # counts of what reading got through, for a progress bar


@dataclass
class ReadTally:
    """How far reading has got, across every input, for a progress bar (the parsers draw
    none): bytes of the input files consumed of their total, event rows decoded so far, and
    the records (every header kind) of the inputs finished. `listener`, if set, is called with
    the tally after each change (every ~1 MB of an .etl, every batch of rows)."""

    bytes_total: int = 0      # sizes of the input files (raised as inputs turn out larger)
    bytes_read: int = 0
    events: int = 0           # event rows decoded (before several inputs' duplicates are dropped)
    records: int = 0          # records of the finished inputs (TraceRead.records)
    inputs_done: int = 0
    listener: Callable[[ReadTally], None] | None = None
    _base: int = 0            # bytes of the finished inputs

    def started(self, size: int) -> None:
        """An input of `size` bytes starts."""
        self.bytes_total = max(self.bytes_total, self._base + size)
        self._changed()

    def consumed(self, n: int) -> None:
        """`n` bytes of the current input consumed so far."""
        self.bytes_read = self._base + n
        self._changed()

    def decoded(self, rows: int) -> None:
        self.events += rows
        self._changed()

    def finished(self, size: int, records: int) -> None:
        """The current input, `size` bytes holding `records` records, is read through."""
        self._base += size
        self.bytes_read = self._base
        self.records += records
        self.inputs_done += 1
        self._changed()

    def _changed(self) -> None:
        if self.listener is not None:
            self.listener(self)


@dataclass
class TraceRead:
    """What reading some inputs produced. `events` is sorted by ts_ns (stable)."""

    events: pl.DataFrame
    diagnostics: Diagnostics
    inputs: list[str]
    records: int = 0          # records seen, every header kind (the SOURCES.md totals)
    events_lost: int = 0      # the trace header's EventsLost plus buffers flagged EVENTS_LOST
    buffers_lost: int = 0
    trace_start_ns: int | None = None
    # (start_ns, end_ns) around each buffer flagged EVENTS_LOST (None: that bound is unknown);
    # IRPs open across one may be missing events (fpreplay.lifecycles reports them).
    lost_windows: list[tuple[int | None, int | None]] = field(default_factory=list)
    # Event rows read: all in `events` (read_inputs), or after a streamed read (InputStream)
    # only those kept beside the lifecycles.
    event_rows: int = 0


def iter_input_batches(path: Path, options: ReadOptions, diagnostics: Diagnostics,
                       stats: dict) -> Iterator[pl.DataFrame]:
    """Batches of conformed events from one input. `stats` receives records/events_lost/... .
    `-` reads standard input (spooled to a temporary file: parsers/inputs.py)."""
    with inputs.local_file(path) as real:
        yield from _batches(real, str(path), options, diagnostics, stats)


def _batches(real: Path, name: str, options: ReadOptions, diagnostics: Diagnostics,
             stats: dict) -> Iterator[pl.DataFrame]:
    """The batches of `real`, the input the user calls `name` (they differ for stdin)."""
    from fpreplay.parsers import formats

    if not real.exists():
        raise InputError(name, "no such file")
    if real.is_dir():
        raise InputError(name, "is a directory, not a trace")
    tally = options.tally
    if tally is not None:
        size = real.stat().st_size
        tally.started(size)
        options = replace(options, progress=_counting(options.progress, tally))
    with inputs.named_as(real, name, diagnostics, len(diagnostics.warnings)):
        reader = formats.reader_for(formats.sniff(real))
        for batch in reader(real, options, diagnostics, stats):
            if tally is not None:
                tally.decoded(batch.height)
            yield inputs.renamed(batch, real, name)
    if tally is not None:
        tally.finished(size, int(stats.get("records", 0)))


def _counting(progress: Callable[[int], None] | None,
              tally: ReadTally) -> Callable[[int], None]:
    """The reader's bytes-consumed callback, counted into `tally` as well."""
    if progress is None:
        return tally.consumed

    def both(n: int) -> None:
        tally.consumed(n)
        progress(n)
    return both


def event_columns(options: ReadOptions) -> dict:
    """The columns every event table read with these options has (a batch may lack some)."""
    cols = dict(EVENT_COLUMNS)
    if options.all_records:
        cols.update(ALL_RECORD_COLUMNS)
    return cols


def read_inputs(paths: list[Path] | list[str], options: ReadOptions | None = None,
                diagnostics: Diagnostics | None = None) -> TraceRead:
    """Read every input into one event table on one timeline (absolute UTC time); warnings go
    to `diagnostics` (a new Diagnostics by default)."""
    options = options or ReadOptions()
    if options.tmf_dirs:
        # Checked before any input: a missing or malformed TMF directory is one line (exit 2)
        # even when no input holds WPP messages; the .etl decoder reuses what is loaded here.
        from fpreplay.parsers.wpp import load_tmf_dir_once

        load_tmf_dir_once(options.tmf_dirs)
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    if sum(str(p) == inputs.STDIN for p in paths) > 1:
        raise InputError(inputs.STDIN, "standard input given more than once; it can be read once")
    per_input: list[tuple[str, list[pl.DataFrame]]] = []
    totals = {"records": 0, "events_lost": 0, "buffers_lost": 0}
    start_ns: int | None = None
    lost_windows: list = []
    seen: dict[tuple[int, str], str] = {}
    with cyclic_gc_paused():    # decoding builds millions of short-lived rows, no cycles
        for p in paths:
            with inputs.local_file(p) as real:
                if real.is_file():
                    same = seen.setdefault(inputs.fingerprint(real), str(p))
                    if same != str(p) or any(name == same for name, _ in per_input):
                        diagnostics.warn(inputs.same_trace_warning(str(p), same))
                        continue
                stats: dict = {}
                frames = list(_batches(real, str(p), options, diagnostics, stats))
            per_input.append((str(p), frames))
            for k in totals:
                totals[k] += int(stats.get(k, 0))
            lost_windows += stats.get("lost_windows", [])
            s = stats.get("trace_start_ns")
            if s is not None and (start_ns is None or s < start_ns):
                start_ns = s
    cols = event_columns(options)
    events = _one_table(per_input, diagnostics, cols)
    events = _complete(events, cols)
    if start_ns is None and events.height:
        start_ns = events["ts_ns"].min()
    time_range = options.time_range or _offsets(options.range_s)
    if time_range is not None and start_ns is not None:
        end_ns = events["ts_ns"].max() if events.height else start_ns
        lo, hi = (b.resolve(start_ns, end_ns) for b in time_range)
        events = events.filter(pl.col("ts_ns").is_between(lo, hi))
    for k in ("events_lost", "buffers_lost"):   # counted, not only warned about
        if totals[k]:
            diagnostics.count(k, totals[k])
    return TraceRead(events=events, diagnostics=diagnostics, inputs=[str(p) for p in paths],
                     trace_start_ns=start_ns, lost_windows=lost_windows,
                     event_rows=events.height, **totals)


class InputStream:
    """read_inputs a batch at a time: iterating yields conformed event batches in time order,
    then result(kept) gives the TraceRead. One .etl streams (its reader merges its CPUs'
    buffers into time order); several inputs, stdin, other formats or a --range are read whole
    by read_inputs (sorted, deduplicated, filtered) and come as one batch."""

    def __init__(self, paths: list[Path] | list[str], options: ReadOptions | None = None):
        self.paths = list(paths)
        self.options = options or ReadOptions()
        self.diagnostics = Diagnostics()
        self._whole: TraceRead | None = None
        self._stats: dict = {}
        self._rows = 0
        self._first_ts: int | None = None

    def streams(self) -> bool:
        """Whether iterating yields the batches as the reader makes them (else one batch)."""
        from fpreplay.parsers import formats

        o = self.options
        p = Path(self.paths[0]) if len(self.paths) == 1 else None
        return (p is not None and str(p) != inputs.STDIN and p.is_file()
                and o.range_s is None and o.time_range is None and formats.sniff(p) == "etl")

    def __iter__(self) -> Iterator[pl.DataFrame]:
        if not self.streams():
            self._whole = read_inputs(self.paths, self.options, self.diagnostics)
            yield self._whole.events
            return
        if self.options.tmf_dirs:
            from fpreplay.parsers.wpp import load_tmf_dir_once

            load_tmf_dir_once(self.options.tmf_dirs)
        with cyclic_gc_paused():    # decoding builds millions of short-lived rows, no cycles
            for batch in iter_input_batches(Path(self.paths[0]), self.options,
                                            self.diagnostics, self._stats):
                self._rows += batch.height
                lo = batch["ts_ns"].min()
                if lo is not None and (self._first_ts is None or lo < self._first_ts):
                    self._first_ts = lo
                yield batch

    def result(self, kept: list[pl.DataFrame]) -> TraceRead:
        """What was read, once the batches are consumed. Its `events`: what the caller kept of
        each batch (say the rows some analysis needs)."""
        cols = event_columns(self.options)
        frames = kept or [pl.DataFrame(schema=cols)]
        events = _complete(pl.concat(frames, how="diagonal_relaxed", rechunk=False), cols)
        if self._whole is not None:
            self._whole.events = events
            return self._whole
        stats = self._stats
        totals = {k: int(stats.get(k, 0)) for k in ("records", "events_lost", "buffers_lost")}
        for k in ("events_lost", "buffers_lost"):   # counted, not only warned about
            if totals[k]:
                self.diagnostics.count(k, totals[k])
        start = stats.get("trace_start_ns")
        return TraceRead(events=events, diagnostics=self.diagnostics,
                         inputs=[str(p) for p in self.paths],
                         trace_start_ns=self._first_ts if start is None else start,
                         lost_windows=stats.get("lost_windows", []), event_rows=self._rows,
                         **totals)


def _complete(events: pl.DataFrame, cols: dict) -> pl.DataFrame:
    """Every column of `cols` present (a reader's table may lack some), in time order."""
    events = events.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in cols.items()
                                 if c not in events.columns)
    ts = events["ts_ns"]
    if ts.null_count() or not ts.is_sorted():   # one .etl comes out in time order already
        events = events.sort("ts_ns", maintain_order=True, nulls_last=True)
    return events


def _offsets(range_s: tuple[float, float] | None) -> tuple[TimeBound, TimeBound] | None:
    if range_s is None:
        return None
    return tuple(TimeBound(f"{t:g}", offset_ns=int(t * 1e9)) for t in range_s)


def _one_table(per_input: list[tuple[str, list[pl.DataFrame]]], diagnostics: Diagnostics,
               cols: dict) -> pl.DataFrame:
    """Every input's batches as one table, events an earlier input holds already dropped from a
    later one (parsers/inputs.py). Readers yield conformed batches; they are appended without a
    copy (rechunk=False), so that the table is not held twice on a large trace."""
    tables = [(name, pl.concat([conform_events(f, keep_extra=True) for f in frames],
                               how="diagonal_relaxed", rechunk=False))
              for name, frames in per_input if frames]
    per_input.clear()
    if not tables:
        return pl.DataFrame(schema=cols)
    if len(tables) > 1:
        tables = list(zip([n for n, _ in tables],
                          inputs.drop_repeated_events(tables, diagnostics)))
    return pl.concat([t for _, t in tables], how="diagonal_relaxed", rechunk=False)
