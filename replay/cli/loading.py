"""Reading inputs for a command, with a progress bar on stderr when it is a terminal: bytes read of
the inputs' total, event rows decoded, the rate and the time left (FPREPLAY_PROGRESS=1 draws it
anywhere, =0 never; --quiet never).

Light to import (the commands import it when declared): the parsers and polars load when a
command reads."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from fpreplay.errors import ConfigError
from fpreplay.replay.cli.app import stderr_console
from fpreplay.replay.cli.options import Trace

if TYPE_CHECKING:
    import polars as pl

    from fpreplay.parsers import TraceRead


def _wants_bar(quiet: bool) -> bool:
    """--quiet: never; FPREPLAY_PROGRESS=1: always, =0: never; else when stderr is a terminal."""
    if quiet:
        return False
    forced = os.environ.get("FPREPLAY_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stderr.isatty()


def _progress(quiet: bool):
    """A rich progress bar fed by a ReadTally, or None when no bar is wanted."""
    if not _wants_bar(quiet):
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = stderr_console()
    if not console.is_terminal:   # forced on (FPREPLAY_PROGRESS=1) off a terminal
        console = Console(stderr=True, force_terminal=True, no_color=True, highlight=False)
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TextColumn("{task.fields[events]:,} events"),
                    TimeRemainingColumn(), TextColumn("left"), console=console,
                    transient=True)


def _check_range_result(read: TraceRead, time_range) -> None:
    """A --range that holds nothing is a mistake, not an empty answer (one line, exit 2)."""
    if time_range is None or read.event_rows or not read.records:
        return
    from fpreplay.replay.render.terminal import fmt_time

    t1, t2 = (b.text for b in time_range)
    w1, w2 = (f"{b.text} s" if _is_number(b.text) else b.text for b in time_range)
    start = ("" if read.trace_start_ns is None else
             f" (the trace starts at {fmt_time(read.trace_start_ns)} UTC)")
    raise ConfigError(f"--range {t1} {t2}: no IRP, queue or memory event between {w1} and {w2}"
                      f"{start}; run without --range to see the whole trace")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read(trace: Trace, quiet: bool, all_records: bool, read):
    """read(options) with the command's reading options (checked when parsed) and a progress
    bar; a --range that holds nothing refused after. read returns (TraceRead, ...)."""
    from fpreplay.parsers import ReadOptions

    options = ReadOptions(tmf_dirs=list(trace.tmf), all_records=all_records,
                          providers=list(trace.providers), tz=trace.tz,
                          time_range=trace.time_range)
    progress = _progress(quiet)
    if progress is None:
        got = read(options)
    else:
        from fpreplay.parsers import ReadTally

        with progress:
            task = progress.add_task("reading", total=None, events=0)
            options.tally = ReadTally(listener=lambda t: progress.update(
                task, total=t.bytes_total or None, completed=t.bytes_read, events=t.events))
            got = read(options)
    _check_range_result(got[0], trace.time_range)
    return got


def load_events(trace: Trace, quiet: bool = False, all_records: bool = False) -> TraceRead:
    """The whole event table of the command's inputs."""
    from fpreplay.parsers import read_inputs

    return _read(trace, quiet, all_records, lambda o: (read_inputs(trace.inputs, o),))[0]


def load_irps(trace: Trace, quiet: bool = False) -> tuple[TraceRead, pl.DataFrame]:
    """The lifecycles, streamed from the reader's batches: the TraceRead holds only the side
    events the analyses read besides them (fpreplay.lifecycles.incidents.side_events)."""
    from fpreplay.lifecycles import read_lifecycles
    from fpreplay.parsers import InputStream

    return _read(trace, quiet, False, lambda o: read_lifecycles(InputStream(trace.inputs, o)))


def load_spool(trace: Trace, quiet: bool = False):
    """load_irps with the lifecycles in an IrpSpool (read back a chunk at a time, memory bounded
    by the open IRPs): (TraceRead, IrpSpool); close the spool when done."""
    from fpreplay.lifecycles import read_lifecycles_spooled
    from fpreplay.parsers import InputStream

    return _read(trace, quiet, False,
                 lambda o: read_lifecycles_spooled(InputStream(trace.inputs, o)))


class NotStreamable(Exception):
    """The reader's batches cannot be written as they come (out of time order, other columns):
    the caller reads the whole table instead."""


def stream_events(trace: Trace, write, quiet: bool = False,
                  all_records: bool = False) -> TraceRead | None:
    """Hand the inputs' event batches to write(batches, columns, provenance) as the reader makes
    them, and return the TraceRead (its events empty; provenance() gives what a Parquet table
    keeps, once the batches are through). None when the inputs are read whole anyway (several
    inputs, a --range, not an .etl). The batches are checked to be what the whole table would
    hold in that order (time order, no unknown time, the table's columns); else NotStreamable
    is raised through write."""
    from fpreplay.parsers import InputStream, ReadOptions
    from fpreplay.parsers.api import event_columns
    from fpreplay.parsers.table import provenance

    if not InputStream(trace.inputs, ReadOptions()).streams():
        return None

    def read(options):
        stream = InputStream(trace.inputs, options)
        columns = event_columns(options)
        done: list[TraceRead] = []

        def result() -> TraceRead:
            if not done:
                done.append(stream.result([]))
            return done[0]

        write(_checked(stream, columns), columns, lambda: provenance(result()))
        return (result(),)
    return _read(trace, quiet, all_records, read)[0]


def _checked(batches, columns: dict):
    """`batches`, each as the whole table would hold its rows, else NotStreamable."""
    last = None
    for batch in batches:
        ts = batch["ts_ns"]
        if dict(batch.schema) != columns or ts.null_count() or not ts.is_sorted() or (
                last is not None and batch.height and ts[0] < last):
            raise NotStreamable
        if batch.height:
            last = ts[-1]
        yield batch
