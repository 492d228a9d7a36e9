"""The typer application, its consoles and the endings every command shares (contract section 1).

Commands live in analysis.py, events.py and synth.py, each adding itself to `app`; __init__.py
imports them all. The options they share are in options.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:   # rich is imported when a command prints, not for --help or --version
    from rich.console import Console

# The order a user meets the commands in: what happened, what a policy would do, then the tables.
COMMAND_ORDER = ("analyze", "compare", "sweep", "incidents", "report", "batch", "events", "irps",
                 "synth", "formats")


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
    # -h beside --help for every command (subcommands inherit the context setting);
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,
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
        "--version", "-V", help="Print the version and exit.", callback=_version,
        is_eager=True)] = False) -> None:
    """What your I/O did under low memory, and what it would have done under another KMDF
    forward-progress policy."""


def stderr_console() -> Console:
    """Messages and progress go to stderr; colour only on a terminal and never with NO_COLOR."""
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()
    return Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=True)


def output_width() -> int | None:
    """Tables fit the terminal; off a terminal (piped, redirected) they fit COLUMNS when it is
    set, else 80 columns."""
    if sys.stdout.isatty():
        return None   # rich measures the terminal (and honours COLUMNS itself)
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 80


def stdout_console() -> Console:
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    return Console(no_color=no_color, highlight=False, width=output_width())


def print_warnings(warnings: list[str], quiet: bool) -> None:
    if quiet:
        return
    err = stderr_console()
    for w in warnings:
        err.print(f"warning: {w}", markup=False)


def refuse_overwriting_inputs(output: Path | None, inputs) -> None:
    """No command writes over a file it reads (`synth sc.toml -o sc.toml`, `events t.csv -o
    t.csv`): the user's input would be gone before it was read."""
    from fpreplay.errors import FpreplayError

    if output is None or not Path(output).exists():
        return
    for given in inputs:
        try:
            same = Path(given).exists() and Path(output).samefile(given)
        except OSError:
            same = False
        if same:
            raise FpreplayError(f"{output}: is one of the inputs; write the output elsewhere")


def write_output(write, path: Path, inputs=()) -> None:
    """write(tmp) into a temporary file beside `path`, renamed to `path` when complete: a full
    disk or an interruption leaves no truncated output behind, and an existing file stays as it
    was (fpreplay.outputs). A path that cannot be written is the user's to fix (exit 2); so is
    an input."""
    from fpreplay.errors import FpreplayError
    from fpreplay.outputs import write_atomically

    path = Path(path)
    refuse_overwriting_inputs(path, inputs)
    try:
        write_atomically(path, write)
    except OSError as e:
        # polars raises OSErrors without strerror, their text ending in "(os error N): PATH".
        reason = e.strerror or str(e).split(" (os error")[0]
        raise FpreplayError(f"{path}: cannot write: {reason}") from None
    except Exception as e:  # polars reports some write failures as its own errors
        if type(e).__module__.startswith("polars"):
            raise FpreplayError(f"{path}: cannot write: {str(e).splitlines()[0]}") from None
        raise


TEXT_SUFFIXES = (".csv", ".ndjson", ".jsonl")


def write_table_output(df, path: Path, inputs=(), provenance: dict | None = None) -> None:
    """Every command's `-o` table (contract section 1): written by its extension; CSV and NDJSON
    with the text the terminal shows beside each number (irp_hex, status_name:
    render/text_columns.py), CSV with lists as `a;b` cells; Parquet typed, keeping
    `provenance` as its metadata."""
    import polars as pl

    from fpreplay.parsers.table import write_table
    from fpreplay.replay.render.text_columns import with_text_columns

    suffix = Path(path).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        df = with_text_columns(df)
    if suffix == ".csv":   # CSV has no lists: devices "a;b", as a cell
        df = df.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(";")
                             for c, t in df.schema.items() if isinstance(t, pl.List))
    write_output(lambda tmp: write_table(df, tmp, provenance), path, inputs)
