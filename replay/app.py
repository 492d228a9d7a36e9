"""The typer application and the options every command shares (contract section 1).

Commands live in cmd_*.py modules, each adding itself to `app`; cli.py imports them all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="fpreplay",
    help="What your I/O did under low memory, and what it would have done under another KMDF "
         "forward-progress policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# --- shared options -------------------------------------------------------------------------
Inputs = Annotated[list[Path], typer.Argument(help="Traces: .etl/.etl.zip/.etl.gz, IFR or tracefmt "
                                              "text, tracerpt CSV/XML, xperf dumper text, or "
                                              "fpreplay event tables.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OutOpt = Annotated[Optional[Path], typer.Option("-o", "--output", help="Write a table: .parquet, "
                                                ".csv, .ndjson or .jsonl.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Driver model (TOML): queues, "
                                                   "routing, dispatch types, policies.")]
MemoryOpt = Annotated[str, typer.Option("--memory", help="What fails in the what-if: observed, "
                                        "fail-all, verifier-random[:SEED], random:P[:SEED], "
                                        "window.")]
ServiceTimeOpt = Annotated[Optional[str], typer.Option("--service-time", help="How long the driver "
                                                       "holds an IRP the trace never saw served, "
                                                       "e.g. 2ms.")]
RangeOpt = Annotated[Optional[tuple[float, float]], typer.Option("--range", help="Only events "
                                                                 "between T1 and T2 seconds after "
                                                                 "the trace start.")]
TmfOpt = Annotated[Optional[list[Path]], typer.Option("--tmf", help="Directory of TMF files for "
                                                      "WPP messages.")]
TzOpt = Annotated[Optional[str], typer.Option("--tz", help="Time zone of text inputs whose clock "
                                              "is local time (e.g. Europe/Berlin, +02:00).")]
ProviderOpt = Annotated[Optional[list[str]], typer.Option("--provider", help="Also decode this "
                                                          "TraceLogging provider by name.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no notes on "
                                        "stderr.")]
PolicyOpt = Annotated[Optional[list[str]], typer.Option("--policy", help="none, always:N, paging:N "
                                                        "or examine:N:SQL; repeatable.")]


def stderr_console() -> Console:
    """Messages and progress go to stderr; colour only on a terminal and never with NO_COLOR."""
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()
    return Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    return Console(no_color=no_color, highlight=False, width=None if sys.stdout.isatty() else 100)


def print_warnings(warnings: list[str], quiet: bool) -> None:
    if quiet:
        return
    err = stderr_console()
    for w in warnings:
        err.print(f"warning: {w}", markup=False)
