"""Reading inputs for a command, with a byte-based progress bar on stderr when it is a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from fpreplay.parsers import ReadOptions, TraceRead, read_inputs


def _progress(quiet: bool):
    """A rich progress bar sized by input bytes, only when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from fpreplay.replay.cli.app import stderr_console

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TimeRemainingColumn(), console=stderr_console(),
                        transient=True)
    return progress


def load_events(inputs: list[Path], *, tmf=None, tz=None, providers=None, range_s=None,
                all_records: bool = False, quiet: bool = False) -> TraceRead:
    """read_inputs with the command's reading options checked first (--tz, --range) and a
    --range that holds nothing refused after."""
    from fpreplay.replay.cli.app import check_range_result, check_read_options

    check_read_options(tz, range_s)
    options = ReadOptions(tmf_dirs=list(tmf or []), all_records=all_records,
                          providers=list(providers or []), tz=tz, range_s=range_s)
    progress = _progress(quiet)
    if progress is None:
        read = read_inputs(inputs, options)
    else:
        total = sum(Path(p).stat().st_size for p in inputs if Path(p).is_file())
        with progress:
            task = progress.add_task("reading", total=total)
            options.progress = lambda n: progress.update(task, completed=n)
            read = read_inputs(inputs, options)
    check_range_result(read, range_s)
    return read


def load_irps(inputs: list[Path], **kw) -> tuple[TraceRead, pl.DataFrame]:
    from fpreplay.lifecycles import build_lifecycles

    read = load_events(inputs, **kw)
    lifecycles = build_lifecycles(read.events, read.diagnostics, read.lost_windows)
    return read, lifecycles
