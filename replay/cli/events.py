"""`fpreplay events` and `fpreplay irps`: the decoded tables themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fpreplay.errors import FpreplayError
from fpreplay.replay.cli.app import (
    Inputs, JsonOpt, OutOpt, ProviderOpt, QuietOpt, RangeOpt, TmfOpt, TzOpt, app,
    print_warnings, write_output,
)
from fpreplay.replay.cli.loading import load_events, load_irps


def _require_output(output: Path | None) -> Path:
    if output is None:
        raise FpreplayError("-o FILE is required (.parquet, .csv, .ndjson or .jsonl)")
    return output


@app.command(short_help="Decoded, normalized events as a table (-o FILE).")
def events(
    inputs: Inputs,
    output: OutOpt = None,
    all_records: Annotated[bool, typer.Option("--all", help="Keep every record (kind 'other' "
                                              "for the rest), with provider, id/opcode, version "
                                              "and header kind columns.")] = False,
    tmf: TmfOpt = None,
    tz: TzOpt = None,
    provider: ProviderOpt = None,
    range_: RangeOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Decode inputs into the normalized event table (schema fpreplay.events/1).

    \b
    Examples:
      fpreplay events trace.etl -o events.parquet
      fpreplay events trace.etl driver-ifr.txt --tz UTC -o events.csv
      fpreplay events trace.etl --all --json -o all.ndjson
    """
    from fpreplay.parsers.table import write_table

    out = _require_output(output)
    read = load_events(inputs, tmf=tmf, tz=tz, providers=provider, range_s=range_,
                       all_records=all_records, quiet=quiet)
    write_output(lambda: write_table(read.events, out), out)
    # Warnings go to stderr with --json too (contract section 1), as every command does.
    print_warnings(read.diagnostics.warnings, quiet)
    if json_:
        print(json.dumps({"schema": "fpreplay.events/1", "inputs": read.inputs,
                          "output": str(out), "rows": read.events.height,
                          "records": read.records, "events_lost": read.events_lost,
                          "buffers_lost": read.buffers_lost,
                          "warnings": read.diagnostics.warnings}))


@app.command(short_help="IRP lifecycles as a table (-o FILE).")
def irps(
    inputs: Inputs,
    output: OutOpt = None,
    tmf: TmfOpt = None,
    tz: TzOpt = None,
    provider: ProviderOpt = None,
    range_: RangeOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rebuild one lifecycle per IRP instance (schema fpreplay.irps/1).

    \b
    Examples:
      fpreplay irps trace.etl -o irps.parquet
      fpreplay irps events.parquet --json -o irps.csv
    """
    from fpreplay.parsers.table import write_table

    out = _require_output(output)
    read, lifecycles = load_irps(inputs, tmf=tmf, tz=tz, providers=provider, range_s=range_,
                                 quiet=quiet)
    write_output(lambda: write_table(lifecycles, out), out)
    print_warnings(read.diagnostics.warnings, quiet)
    if json_:
        counts = lifecycles.group_by("actual").len().sort("actual")
        print(json.dumps({"schema": "fpreplay.irps/1", "inputs": read.inputs,
                          "output": str(out), "irps": lifecycles.height,
                          "actual": dict(zip(counts["actual"].to_list(),
                                             counts["len"].to_list())),
                          "warnings": read.diagnostics.warnings}))
