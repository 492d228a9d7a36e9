"""`fpreplay events` and `fpreplay irps`: the decoded tables themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fpreplay.errors import FpreplayError
from fpreplay.replay.cli.app import (
    TEXT_SUFFIXES, app, print_warnings, write_output, write_table_output,
)
from fpreplay.replay.cli.loading import load_events, load_irps
from fpreplay.replay.cli.options import Answer, Trace, option_groups


def _require_output(answer: Answer) -> Path:
    if answer.output is None:
        raise FpreplayError("-o FILE is required (.parquet, .csv, .ndjson or .jsonl)")
    return answer.output


def _write_table(table, answer: Answer, read, keep_provenance: bool = False) -> None:
    """Both commands' ending: the table to -o, then the warnings on stderr, with --json too
    (contract section 1), as every command does. An event table keeps what reading found
    beside the events (lost-event counts, warnings) where its format can (Parquet)."""
    from fpreplay.parsers.table import provenance

    prov = provenance(read) if keep_provenance else None
    write_table_output(table, answer.output, read.inputs, prov)
    _warn(answer, read, prov)


def _warn(answer: Answer, read, prov: dict | None) -> None:
    from fpreplay.parsers.table import provenance_dropped

    dropped = prov and provenance_dropped(answer.output, prov)
    if dropped:
        read.diagnostics.warn(dropped)
    print_warnings(read.diagnostics.warnings, answer.quiet)


def _write_events_streamed(trace: Trace, answer: Answer, all_records: bool):
    """The events written to -o as the reader yields them (one .etl: nothing holds the whole
    table); None when the inputs do not stream, or their batches turned out not to be in the
    table's order (then nothing is written and the caller writes the whole table)."""
    from fpreplay.parsers.table import provenance, write_batches
    from fpreplay.replay.cli.loading import NotStreamable, stream_events

    got = []

    def sink(tmp: Path, batches, columns: dict, prov) -> None:
        """As write_table_output writes the whole table: CSV and NDJSON with the text twins."""
        if tmp.suffix.lower() in TEXT_SUFFIXES:
            import polars as pl

            from fpreplay.replay.render.text_columns import with_text_columns

            batches = (with_text_columns(b) for b in batches)
            columns = dict(with_text_columns(pl.DataFrame(schema=columns)).schema)
        write_batches(batches, tmp, columns, prov)

    def write(tmp: Path) -> None:
        got.append(stream_events(trace, lambda *a: sink(tmp, *a), answer.quiet, all_records))
        if got[0] is None:
            raise NotStreamable

    try:
        write_output(write, answer.output, trace.inputs)
    except NotStreamable:
        return None
    read = got[0]
    _warn(answer, read, provenance(read))
    return read


@app.command(short_help="Decoded, normalized events as a table (-o FILE).")
@option_groups
def events(
    all_records: Annotated[bool, typer.Option("--all", help="Keep every record (kind 'other' "
                                              "for the rest), with provider, id/opcode, version "
                                              "and header kind columns.")] = False,
    *,
    trace: Trace,
    answer: Answer,
) -> None:
    """Decode inputs into the normalized event table (schema fpreplay.events/1).

    \b
    Examples:
      fpreplay events trace.etl -o events.parquet
      fpreplay events trace.etl driver-ifr.txt --tz UTC -o events.csv
      fpreplay events trace.etl --all --json -o all.ndjson
    """
    out = _require_output(answer)
    read = _write_events_streamed(trace, answer, all_records)
    if read is None:
        read = load_events(trace, answer.quiet, all_records=all_records)
        _write_table(read.events, answer, read, keep_provenance=True)
    if answer.json:
        print(json.dumps({"schema": "fpreplay.events/1", "inputs": read.inputs,
                          "output": str(out), "rows": read.event_rows,
                          "records": read.records, "events_lost": read.events_lost,
                          "buffers_lost": read.buffers_lost,
                          "warnings": read.diagnostics.warnings}))


@app.command(short_help="IRP lifecycles as a table (-o FILE).")
@option_groups
def irps(
    *,
    trace: Trace,
    answer: Answer,
) -> None:
    """Rebuild one lifecycle per IRP instance (schema fpreplay.irps/1).

    \b
    Examples:
      fpreplay irps trace.etl -o irps.parquet
      fpreplay irps events.parquet --json -o irps.csv
    """
    out = _require_output(answer)
    read, lifecycles = load_irps(trace, answer.quiet)
    _write_table(lifecycles, answer, read)
    if answer.json:
        counts = lifecycles.group_by("actual").len().sort("actual")
        print(json.dumps({"schema": "fpreplay.irps/1", "inputs": read.inputs,
                          "output": str(out), "irps": lifecycles.height,
                          "actual": dict(zip(counts["actual"].to_list(),
                                             counts["len"].to_list())),
                          "warnings": read.diagnostics.warnings}))
