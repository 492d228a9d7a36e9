"""Readable text beside the numbers, for the `-o` tables a person opens (CSV, NDJSON).

The terminal shows an IRP as `0xffffc58a06340000`, a status as STATUS_INSUFFICIENT_RESOURCES, a
major function as READ; a CSV of bare integers would make a reader convert each. So CSV and
NDJSON outputs of every command with `-o` (replay/cli/app.py: write_table_output) get, right
after each such column, its text twin (named by schema.text_twin): `irp_hex`, `file_object_hex`,
`status_name` (and `<policy>:status_name`), `major_name`. Parquet keeps the typed columns only:
its readers have types. `queue` is already the hex text the terminal shows. An event table read
back drops the twins (parsers/table.py).
"""

from __future__ import annotations

import polars as pl

from fpreplay import schema


def _hex(v: int) -> str:
    return f"0x{v:x}"


def twin(column: str):
    """The text twin of a numeric column: its name (schema.text_twin) and the function of one
    value, or None."""
    name = schema.text_twin(column)
    if name is None:
        return None
    if name.endswith("_hex"):
        return name, _hex
    return name, schema.major_name if column == "major" else schema.status_name


def _text(df: pl.DataFrame, column: str, name: str, fn) -> pl.Expr:
    """Each distinct value formatted once (IRP addresses recur, statuses are few)."""
    values = df[column].unique().drop_nulls().to_list()
    return pl.col(column).replace_strict(values, [fn(v) for v in values], default=None,
                                         return_dtype=pl.String).alias(name)


def with_text_columns(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with each twin placed right after its numeric column (nulls stay null)."""
    order, exprs = [], []
    for c in df.columns:
        order.append(c)
        t = twin(c)
        if t is not None and df.schema[c].is_integer() and t[0] not in df.columns:
            order.append(t[0])
            exprs.append(_text(df, c, *t))
    return df.with_columns(exprs).select(order) if exprs else df
