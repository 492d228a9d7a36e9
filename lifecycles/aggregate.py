"""One row per IRP instance from its events, a batch at a time: each batch's rows of an instance
give a partial row, and partial rows of one instance (an IRP open across batches, a completion
that joins an instance closed in an earlier batch) combine into the row the whole table gives.
The device is not decided here: `_dev0`.. `_dev3` hold the first name of each kind (NAME_KINDS)
and devices.py decides, once every IRP has told what it knows of the names.

Every column is a first-non-null, a min or an any over the instance's events in time order, so
combining the partials in batch order is exact: first-non-null of the partials' first-non-nulls,
min of mins, any of anys.
"""

from __future__ import annotations

import polars as pl

from fpreplay.lifecycles.devices import NAME_KINDS, name_kind
from fpreplay.lifecycles.instances import ALLOC, COMPLETE, DISPATCH, REFUSED, RESERVED, RESOURCES

# `other` rows that mark the driver receiving the IRP (the IFR presentation line, VERBOSE).
DELIVERY_NAMES = ("IFR/Calling driver",)
DEVICE_KIND_COLUMNS = [f"_dev{k}" for k in range(len(NAME_KINDS))]

# partial column -> how partials of one instance combine (in batch order)
_FIRST_NON_NULL = (*DEVICE_KIND_COLUMNS, "queue", "major", "minor", "irp_flags",
                   "bytes", "file_object", "complete_ns", "status", "_dispatch_name",
                   "_complete_name", "_reserved_name", "_refused_name", "_alloc_name")
_FIRST = ("irp", "_orphan", "_opener")
_MIN = ("_arrive", "deliver_ns")
_ANY = ("_reserved", "_refused", "_alloc", "_request_failed", "_resources_failed",
        "_has_request")


def _first(col: str) -> pl.Expr:
    return pl.col(col).drop_nulls().first().alias(col)


def _first_name(code: int | tuple, alias: str) -> pl.Expr:
    codes = (code,) if isinstance(code, int) else code
    return pl.col("event_name").filter(pl.col("_code").is_in(codes)).first().alias(alias)


class DeviceKinds:
    """The kinds of device name (NAME_KINDS) the IRP events name, remembered across batches."""

    def __init__(self) -> None:
        self.kind_of: dict[str, int] = {}

    def expr(self, ev: pl.DataFrame) -> pl.Expr:
        """Each row's device name kind (null: no device)."""
        for name in ev["device"].drop_nulls().unique().to_list():
            if name not in self.kind_of:
                self.kind_of[name] = name_kind(name)
        return pl.col("device").replace_strict(self.kind_of, default=None,
                                               return_dtype=pl.Int8)


def partial_rows(ev: pl.DataFrame, kinds: DeviceKinds) -> pl.DataFrame:
    """Each instance's partial row over the batch's events (`_inst` of every event row). Rows of
    no instance (_inst -1) form one group that is dropped after the aggregation: cheaper than a
    copy of the event rows without them."""
    is_complete = pl.col("_code") == COMPLETE
    kind = kinds.expr(ev)
    lc = ev.group_by("_inst", maintain_order=True).agg(
        pl.col("irp").first(),
        *[pl.col("device").filter(kind == k).first().alias(f"_dev{k}")
          for k in range(len(NAME_KINDS))],
        *[_first(c) for c in ("queue", "major", "minor", "irp_flags", "bytes", "file_object")],
        pl.col("ts_ns").filter(~is_complete).min().alias("_arrive"),
        pl.col("ts_ns").filter(pl.col("_closes")).first().alias("complete_ns"),
        pl.col("status").filter(is_complete).drop_nulls().first().alias("status"),
        (pl.col("_code") == RESERVED).any().alias("_reserved"),
        (pl.col("_code") == REFUSED).any().alias("_refused"),
        pl.col("_code").is_in([ALLOC, RESOURCES]).any().alias("_alloc"),
        (pl.col("_code") == ALLOC).any().alias("_request_failed"),
        (pl.col("_code") == RESOURCES).any().alias("_resources_failed"),
        pl.col("ts_ns").filter((pl.col("_code") == RESERVED)
                               | pl.col("event_name").is_in(DELIVERY_NAMES)).min()
        .alias("deliver_ns"),
        pl.col("request").is_not_null().any().alias("_has_request"),
        (pl.col("_code").first() == COMPLETE).alias("_orphan"),
        pl.col("event_name").first().alias("_opener"),
        _first_name(DISPATCH, "_dispatch_name"),
        _first_name(COMPLETE, "_complete_name"),
        _first_name(RESERVED, "_reserved_name"),
        _first_name(REFUSED, "_refused_name"),
        _first_name((ALLOC, RESOURCES), "_alloc_name"),
    )
    mask = lc["_inst"] >= 0
    return lc if mask.all() else lc.filter(mask)


def merge_partials(partials: list[pl.DataFrame]) -> pl.DataFrame:
    """Partial rows (in batch order) -> one row per instance, in instance order (the order of
    their first events)."""
    lc = pl.concat(partials, how="vertical_relaxed") if len(partials) > 1 else partials[0]
    split = lc["_inst"].is_duplicated()
    if split.any():
        # Instances whose events span batches: their partials combine; the others stay as
        # they are (most of a big trace).
        merged = lc.filter(split).group_by("_inst", maintain_order=True).agg(
            *[_first(c) for c in _FIRST_NON_NULL],
            *[pl.col(c).first() for c in _FIRST],
            *[pl.col(c).min() for c in _MIN],
            *[pl.col(c).any() for c in _ANY])
        lc = pl.concat([lc.filter(~split), merged.select(lc.columns)])
    if not lc["_inst"].is_sorted():
        lc = lc.sort("_inst")
    return lc
