"""Normalized event tables (contract section 3) read back: Parquet, CSV, NDJSON.

What reading the original inputs found beside the events (records, lost events and buffers,
the windows around lost events, the trace start, the readers' warnings) travels with a Parquet
table as its key-value metadata `fpreplay.provenance` (JSON) and comes back when the table is
read. A CSV or NDJSON table has no place for it: `fpreplay events` says so in a warning.
The metadata is untrusted like any input: checked field by field, a bad one ignored with a
warning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import polars as pl

from fpreplay.errors import FpreplayError, InputError
from fpreplay.schema import EVENT_COLUMNS, conform_events, text_twin


PROVENANCE_KEY = "fpreplay.provenance"
_MAX_WARNINGS, _MAX_WARNING_CHARS = 1000, 4000      # what a provenance may bring back


def provenance(read) -> dict:
    """What a TraceRead found beside its events, as the JSON a Parquet table keeps."""
    return {"schema": "fpreplay.provenance/1", "inputs": read.inputs, "records": read.records,
            "events_lost": read.events_lost, "buffers_lost": read.buffers_lost,
            "trace_start_ns": read.trace_start_ns,
            "lost_windows": [list(w) for w in read.lost_windows],
            "warnings": list(read.diagnostics.warnings)}


def provenance_dropped(path: Path, prov: dict) -> str | None:
    """The warning for writing `prov` to a table format without metadata (None: nothing lost)."""
    if Path(path).suffix.lower() == ".parquet" or not (
            prov["events_lost"] or prov["buffers_lost"] or prov["warnings"]):
        return None
    return (f"{path}: a {Path(path).suffix.lstrip('.').upper()} table has no place for the "
            f"lost-event counts ({prov['events_lost']} events, {prov['buffers_lost']} buffers "
            f"lost) and the {len(prov['warnings'])} warning(s) of reading its inputs: "
            "analyzing it will not repeat them (write .parquet to keep them)")


def _restore(path: Path, text: str, diagnostics, stats: dict) -> int | None:
    """Apply a table's provenance; the records it states (None: none usable)."""
    def count(value) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 62:
            raise ValueError(f"bad count {value!r}")
        return value

    def time(value) -> int | None:
        return None if value is None else count(value)

    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("schema") != "fpreplay.provenance/1":
            raise ValueError("not fpreplay.provenance/1")
        records = count(doc["records"])
        lost = {k: count(doc[k]) for k in ("events_lost", "buffers_lost")}
        start = time(doc.get("trace_start_ns"))
        windows = [(time(a), time(b)) for a, b in doc.get("lost_windows", [])]
        warnings = doc.get("warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise ValueError("warnings are not a list of text")
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        diagnostics.warn(f"{path}: its {PROVENANCE_KEY} metadata is unreadable ({e}); lost-event "
                         "counts and warnings of the original inputs are unknown")
        return None
    for k, n in lost.items():
        stats[k] = stats.get(k, 0) + n
    stats.setdefault("lost_windows", []).extend(windows)
    if start is not None:
        stats["trace_start_ns"] = start
    for w in warnings[:_MAX_WARNINGS]:          # as the original read said them, printable only
        diagnostics.warn("".join(c if c.isprintable() else "?" for c in w[:_MAX_WARNING_CHARS]))
    if len(warnings) > _MAX_WARNINGS:
        diagnostics.warn(f"{path}: {len(warnings) - _MAX_WARNINGS} more warnings of the original "
                         "inputs not repeated")
    return records


def _finish(path: Path, df: pl.DataFrame, stats: dict,
            records: int | None = None) -> Iterator[pl.DataFrame]:
    # A CSV or NDJSON table `fpreplay events` wrote carries text beside the numbers (irp_hex,
    # status_name): written for people, derived from the numbers, so not read back as data.
    df = df.drop([t for c in df.columns if (t := text_twin(c)) is not None and t in df.columns])
    try:
        df = conform_events(df, keep_extra=True)
    except FpreplayError as e:
        raise InputError(path, str(e)) from None
    if "source" in df.columns:
        df = df.with_columns(pl.col("source").fill_null(str(path)))
    stats["records"] = stats.get("records", 0) + (df.height if records is None else records)
    yield df


def read_parquet(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    try:
        df = pl.read_parquet(path)
        meta = pl.read_parquet_metadata(path)
    except Exception as e:  # polars raises several types for a damaged file
        raise InputError(path, f"unreadable Parquet: {e}".splitlines()[0]) from None
    records = None
    if PROVENANCE_KEY in meta:
        records = _restore(path, meta[PROVENANCE_KEY], diagnostics, stats)
    yield from _finish(path, df, stats, records)


def read_csv(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    try:
        df = pl.read_csv(path, schema_overrides={k: v for k, v in EVENT_COLUMNS.items()},
                         infer_schema_length=10000)
    except Exception as e:
        raise InputError(path, f"unreadable CSV event table: {e}".splitlines()[0]) from None
    yield from _finish(path, df, stats)


def read_ndjson(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    try:
        df = pl.read_ndjson(path, infer_schema_length=10000)
    except Exception as e:
        raise InputError(path, f"unreadable NDJSON event table: {e}".splitlines()[0]) from None
    yield from _finish(path, df, stats)


def write_table(df: pl.DataFrame, path: Path, prov: dict | None = None) -> None:
    """Write a table by extension: .parquet, .csv, .ndjson/.jsonl (contract section 1, -o).
    `prov` (provenance()): kept as Parquet metadata; the other formats have no place for it."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        df.write_parquet(path, metadata=None if prov is None
                         else {PROVENANCE_KEY: json.dumps(prov)})
    elif suffix == ".csv":
        df.write_csv(path)
    elif suffix in (".ndjson", ".jsonl"):
        df.write_ndjson(path)
    else:
        raise FpreplayError(f"{path}: unknown output format {suffix!r} "
                            "(use .parquet, .csv, .ndjson or .jsonl)")


def write_batches(batches: Iterable[pl.DataFrame], path: Path, columns: dict,
                  prov: Callable[[], dict] | None = None) -> None:
    """Write a table of `columns` (name -> dtype) a batch at a time, by extension as write_table
    does and to the same bytes (CSV, NDJSON) or the same table and metadata (Parquet) as
    write_table of the batches concatenated; nothing holds more than one batch. `prov()` is
    asked for once every batch is read (the warnings of the read are known only then). Each
    batch must have exactly `columns`, in order."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        from polars.io.plugins import register_io_source

        def source(with_columns, predicate, n_rows, batch_size):
            yield from batches

        table = register_io_source(source, schema=pl.Schema(columns))
        table.sink_parquet(path, metadata=None if prov is None
                           else (lambda _: {PROVENANCE_KEY: json.dumps(prov())}))
    elif suffix in (".csv", ".ndjson", ".jsonl"):
        with open(path, "wb") as f:
            first = True
            for batch in batches:
                if suffix == ".csv":
                    batch.write_csv(f, include_header=first)
                else:
                    batch.write_ndjson(f)
                first = False
            if first and suffix == ".csv":    # no rows: the header alone, as write_csv writes
                pl.DataFrame(schema=columns).write_csv(f)
    else:
        raise FpreplayError(f"{path}: unknown output format {suffix!r} "
                            "(use .parquet, .csv, .ndjson or .jsonl)")
