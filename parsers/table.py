"""Normalized event tables (contract section 3) read back: Parquet, CSV, NDJSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fpreplay.errors import FpreplayError, InputError
from fpreplay.schema import EVENT_COLUMNS, conform_events


def _finish(path: Path, df: pl.DataFrame, stats: dict) -> Iterator[pl.DataFrame]:
    try:
        df = conform_events(df, keep_extra=True)
    except FpreplayError as e:
        raise InputError(path, str(e)) from None
    if "source" in df.columns:
        df = df.with_columns(pl.col("source").fill_null(str(path)))
    stats["records"] = stats.get("records", 0) + df.height
    yield df


def read_parquet(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    try:
        df = pl.read_parquet(path)
    except Exception as e:  # polars raises several types for a damaged file
        raise InputError(path, f"unreadable Parquet: {e}".splitlines()[0]) from None
    yield from _finish(path, df, stats)


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


def write_table(df: pl.DataFrame, path: Path) -> None:
    """Write a table by extension: .parquet, .csv, .ndjson/.jsonl (contract section 1, -o)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        df.write_parquet(path)
    elif suffix == ".csv":
        df.write_csv(path)
    elif suffix in (".ndjson", ".jsonl"):
        df.write_ndjson(path)
    else:
        raise FpreplayError(f"{path}: unknown output format {suffix!r} "
                            "(use .parquet, .csv, .ndjson or .jsonl)")
