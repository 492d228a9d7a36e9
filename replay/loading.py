"""Reading inputs for a command, with a byte-based progress bar on stderr when it is a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from fpreplay.parsers import ReadOptions, TraceRead, read_inputs


def _progress_options(quiet: bool):
    """A rich progress bar sized by input bytes, only when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from fpreplay.replay.app import stderr_console

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TimeRemainingColumn(), console=stderr_console(),
                        transient=True)
    return progress, progress


def load_events(inputs: list[Path], *, tmf=None, tz=None, providers=None, range_s=None,
                all_records: bool = False, quiet: bool = False) -> TraceRead:
    options = ReadOptions(tmf_dirs=list(tmf or []), all_records=all_records,
                          providers=list(providers or []), tz=tz, range_s=range_s)
    progress, _ = _progress_options(quiet)
    if progress is None:
        return read_inputs(inputs, options)
    total = sum(Path(p).stat().st_size for p in inputs if Path(p).is_file())
    with progress:
        task = progress.add_task("reading", total=total)
        done = {"base": 0}

        def advance(n: int) -> None:
            progress.update(task, completed=done["base"] + n)

        options.progress = advance
        return read_inputs(inputs, options)


def load_irps(inputs: list[Path], **kw) -> tuple[TraceRead, pl.DataFrame]:
    from fpreplay.lifecycles import build_lifecycles

    read = load_events(inputs, **kw)
    lifecycles = build_lifecycles(read.events, read.diagnostics, read.lost_windows)
    return read, lifecycles
