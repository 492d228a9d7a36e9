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
from typer.core import TyperGroup

# The order a user meets the commands in: what happened, what a policy would do, then the tables.
COMMAND_ORDER = ("analyze", "compare", "sweep", "incidents", "report", "events", "irps", "synth")


# typer 0.29 prints a Python type after an argument's name in --help ("INPUT <list[Path]>");
# a user needs the metavar only.
_display_type = typer.core.TyperArgument.display_type_rich
typer.core.TyperArgument.display_type_rich = (
    lambda self, ctx: None if self.metavar else _display_type(self, ctx))


class _OrderedGroup(TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        rank = {n: i for i, n in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


app = typer.Typer(
    name="fpreplay",
    cls=_OrderedGroup,
    help="What your I/O did under low memory, and what it would have done under another KMDF "
         "forward-progress policy.\n\n"
         "\b\nExamples:\n"
         "  fpreplay analyze trace.etl\n"
         "  fpreplay compare trace.etl --policy always:8 --policy paging:8\n"
         "  fpreplay sweep trace.etl --budget 2ms\n"
         "  fpreplay report trace.etl -o report.html",
    epilog="Run 'fpreplay COMMAND --help' for a command's options and examples; the full "
           "reference is docs/cli.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

def _version(value: bool) -> None:
    if value:
        from fpreplay import __version__

        print(f"fpreplay {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", callback=_version,
        is_eager=True)] = False) -> None:
    """What your I/O did under low memory, and what it would have done under another KMDF
    forward-progress policy."""


# --- shared options -------------------------------------------------------------------------
Inputs = Annotated[list[Path], typer.Argument(
    metavar="INPUT", show_default=False,
    help="Traces: .etl/.etl.zip/.etl.gz, IFR or tracefmt text, tracerpt CSV/XML, xperf dumper "
         "text, or fpreplay event tables.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OutOpt = Annotated[Optional[Path], typer.Option(
    "-o", "--output", metavar="FILE", help="Write a table: .parquet, .csv, .ndjson or .jsonl.")]
ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", metavar="FILE.toml",
    help="Driver model (TOML): queues, routing, dispatch types, policies.")]
MemoryOpt = Annotated[str, typer.Option(
    "--memory", metavar="MODEL",
    help="What fails in the what-if: observed, fail-all, verifier-random[:SEED], "
         "random:P[:SEED], window.")]
ServiceTimeOpt = Annotated[Optional[str], typer.Option(
    "--service-time", metavar="DURATION",
    help="How long the driver holds an IRP the trace never saw served, e.g. 2ms.")]
RangeOpt = Annotated[Optional[tuple[float, float]], typer.Option(
    "--range", metavar="T1 T2",
    help="Only events between T1 and T2 seconds after the trace start.")]
TmfOpt = Annotated[Optional[list[Path]], typer.Option(
    "--tmf", metavar="DIR", help="Directory of TMF files for WPP messages.")]
TzOpt = Annotated[Optional[str], typer.Option(
    "--tz", metavar="ZONE",
    help="Time zone of text inputs whose clock is local time (e.g. Europe/Berlin, +02:00).")]
ProviderOpt = Annotated[Optional[list[str]], typer.Option(
    "--provider", metavar="NAME", help="Also decode this TraceLogging provider by name.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no notes on "
                                        "stderr.")]
PolicyOpt = Annotated[Optional[list[str]], typer.Option(
    "--policy", metavar="P", help="none, always:N, paging:N or examine:N:SQL; repeatable.")]


def stderr_console() -> Console:
    """Messages and progress go to stderr; colour only on a terminal and never with NO_COLOR."""
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()
    return Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=True)


def output_width() -> int | None:
    """Tables fit the terminal; off a terminal they fit COLUMNS when it is set, else 100."""
    if sys.stdout.isatty():
        return None   # rich measures the terminal (and honours COLUMNS itself)
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 100


def stdout_console() -> Console:
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    return Console(no_color=no_color, highlight=False, width=output_width())


def print_warnings(warnings: list[str], quiet: bool) -> None:
    if quiet:
        return
    err = stderr_console()
    for w in warnings:
        err.print(f"warning: {w}", markup=False)


def check_read_options(tz: str | None, range_) -> None:
    """Options about reading, checked before a byte is read: a user who mistyped --tz hears about
    it even when no input needs it (it would otherwise be ignored silently). read_inputs checks
    --tmf itself."""
    from fpreplay.errors import ConfigError

    if tz is not None:
        from fpreplay.parsers.text.common import parse_tz

        parse_tz(tz)
    if range_ is not None:
        t1, t2 = range_
        if t1 < 0 or t2 <= t1:
            raise ConfigError(f"--range {t1:g} {t2:g}: expected 0 <= T1 < T2, seconds after the "
                              "trace start")


def check_range_result(read, range_) -> None:
    """A --range that holds nothing is a mistake, not an empty answer (one line, exit 2)."""
    from fpreplay.errors import ConfigError

    if range_ is None or read.events.height or not read.records:
        return
    t1, t2 = range_
    raise ConfigError(f"--range {t1:g} {t2:g}: no IRP, queue or memory event between {t1:g} s "
                      f"and {t2:g} s after the trace start; run without --range to see the whole "
                      "trace")


def write_output(write, path: Path) -> None:
    """Write an output file; a path that cannot be written is the user's to fix (exit 2)."""
    from fpreplay.errors import FpreplayError

    try:
        write()
    except OSError as e:
        # polars raises OSErrors without strerror, their text ending in "(os error N): PATH".
        reason = e.strerror or str(e).split(" (os error")[0]
        raise FpreplayError(f"{path}: cannot write: {reason}") from None
