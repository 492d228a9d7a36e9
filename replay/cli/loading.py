"""Reading inputs for a command, with a byte-based progress bar on stderr when it is a terminal.

Light to import (the commands import it when declared): the parsers and polars load when a
command reads."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fpreplay.errors import ConfigError
from fpreplay.replay.cli.app import stderr_console
from fpreplay.replay.cli.options import Trace

if TYPE_CHECKING:
    import polars as pl

    from fpreplay.parsers import TraceRead


def _progress(quiet: bool):
    """A rich progress bar sized by input bytes, only when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TimeRemainingColumn(), console=stderr_console(), transient=True)


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
        total = sum(Path(p).stat().st_size for p in trace.inputs if Path(p).is_file())
        with progress:
            task = progress.add_task("reading", total=total)
            options.progress = lambda n: progress.update(task, completed=n)
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
