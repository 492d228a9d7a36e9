"""Events -> IRP lifecycles (contract section 4): one row per IRP instance.

The steps, each its own module or function:
1. the IRP-bearing events, typed, in time order; request-only rows take their IRP (here);
2. which instance each event belongs to: one sorted pass, state per address (instances.py);
3. one row per instance: everything several sources say about one IRP (DiskIo Init and
   completion, DrvMjFnCall, FileIo, IFR lines, driver instrumentation) merges by polars group-bys,
   each attribute from the first event of the instance that knows it (here);
4. broken lifecycles counted and reported, never dropped (broken.py);
   one device, one name: the sources' names for one device unified (devices.py);
5. what happened: `actual`, `evidence`, `alloc_failure`, service time (outcome.py).

Several inputs share one timeline by absolute time, so their events simply interleave. Request-only
events (a WDFREQUEST handle, no IRP) take the IRP of the latest earlier event that named both, else
of the next one.
"""

from __future__ import annotations

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles.broken import report_broken, report_lost
from fpreplay.lifecycles.devices import alias_map, kind_columns, unify_devices
from fpreplay.lifecycles.instances import (
    ALLOC, COMPLETE, DISPATCH, KIND_CODES, REFUSED, RESERVED, RESOURCES, assign_instances,
    layer_expr,
)
from fpreplay.lifecycles.outcome import decide_outcomes, tie_irpless_failures
from fpreplay.perf import cyclic_gc_paused
from fpreplay.schema import (
    EVENT_COLUMNS, IRP_COLUMNS, IRP_EXTENSION_COLUMNS, conform_irps, empty_irps,
)

STATUS_FLT_DISALLOW_FAST_IO = 0xC01C0004   # a fast-I/O try, not an IRP (etw-formats.md 2.4)
ALLOC_KINDS = ("request_alloc_failed", "request_resources_failed")
# `other` rows that mark the driver receiving the IRP (the IFR presentation line, VERBOSE).
DELIVERY_NAMES = ("IFR/Calling driver",)
_EVENT_COLUMNS = ("ts_ns", "kind", "irp", "request", "queue", "device", "major", "minor",
                  "irp_flags", "status", "bytes", "file_object", "event_name")


def _irp_events(events: pl.DataFrame) -> pl.DataFrame:
    """The events that can say something about an IRP, typed, with an event name."""
    ev = events.select([pl.col(c) if c in events.columns else pl.lit(None).alias(c)
                        for c in _EVENT_COLUMNS])
    ev = ev.with_columns([pl.col(c).cast(EVENT_COLUMNS[c], strict=False) for c in _EVENT_COLUMNS])
    # A table from another tool may have no event names; the kind then names the evidence.
    ev = ev.with_columns(pl.coalesce("event_name", "kind").alias("event_name"))
    # `other` rows that name an IRP or a request (IFR "Queuing WDFREQUEST … on WDFQUEUE …",
    # "Calling driver EvtIo…") add attributes (queue, request) to an open instance; they never
    # open one.
    ev = _keep(ev, pl.col("ts_ns").is_not_null() & (
        (pl.col("kind").is_in(list(KIND_CODES)) & (pl.col("kind") != "other"))
        | ((pl.col("kind") == "other")
           & (pl.col("irp").is_not_null() | pl.col("request").is_not_null()))))
    return ev.with_columns(pl.when(pl.col(c) != 0).then(pl.col(c)).alias(c)
                           for c in ("irp", "file_object"))


def _fill_irp_from_request(ev: pl.DataFrame) -> pl.DataFrame:
    """Request-only rows take the IRP of the nearest earlier (else later) row naming both."""
    need = ev["irp"].is_null() & ev["request"].is_not_null()
    if not need.any():
        return ev
    pairs = (ev.filter(pl.col("irp").is_not_null() & pl.col("request").is_not_null())
             .select("ts_ns", "request", pl.col("irp").alias("_irp_of_request"))
             .sort("ts_ns"))
    if pairs.height == 0:
        return ev
    ev = _by_time(ev)
    for strategy in ("backward", "forward"):
        joined = ev.join_asof(pairs, on="ts_ns", by="request", strategy=strategy,
                              check_sortedness=False)   # both sides sorted by ts_ns above
        ev = joined.with_columns(pl.col("irp").fill_null(pl.col("_irp_of_request"))) \
                   .drop("_irp_of_request")
    return ev


def _first(col: str) -> pl.Expr:
    return pl.col(col).drop_nulls().first().alias(col)


def _first_name(code: int | tuple, alias: str) -> pl.Expr:
    codes = (code,) if isinstance(code, int) else code
    return pl.col("event_name").filter(pl.col("_code").is_in(codes)).first().alias(alias)


def _keep(ev: pl.DataFrame, predicate: pl.Expr) -> pl.DataFrame:
    """ev.filter(predicate) without copying a table it keeps whole (the usual case)."""
    mask = ev.select(predicate.fill_null(False)).to_series()
    return ev if mask.all() else ev.filter(mask)


def _by_time(ev: pl.DataFrame) -> pl.DataFrame:
    """`ev` stably sorted by ts_ns (no copy when it is already: readers deliver time order)."""
    ts = ev["ts_ns"]
    return ev if not ts.null_count() and ts.is_sorted() else ev.sort("ts_ns", maintain_order=True)


def _one_row_per_instance(ev: pl.DataFrame) -> pl.DataFrame:
    """The merge of every source's word on each instance (`_inst` of every event row). Rows of no
    instance (_inst -1) form one group that is dropped after the aggregation: cheaper than a copy
    of the event rows without them."""
    is_complete = pl.col("_code") == COMPLETE
    device_kinds = kind_columns(ev)      # several kinds of device name: one column each
    lc = ev.group_by("_inst", maintain_order=True).agg(
        pl.col("irp").first(),
        *(device_kinds or [_first("device")]),
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
    return _keep(lc, pl.col("_inst") >= 0)


def _instances(ev: pl.DataFrame, diagnostics: Diagnostics) -> pl.DataFrame:
    """Steps 2-3: events -> one row per instance with its `_note`, `arrive_ns`; and the names of
    the events that make instances (for report_broken, once the outcomes are decided)."""
    with cyclic_gc_paused():
        inst_of, closes, notes = assign_instances(ev)
    ev = ev.with_columns(pl.Series("_inst", inst_of, dtype=pl.Int64),
                         pl.Series("_closes", closes, dtype=pl.Boolean))
    del inst_of, closes
    lc = _one_row_per_instance(ev)
    note_frame = pl.DataFrame({"_inst": pl.Series(list(notes), dtype=pl.Int64),
                               "_note": pl.Series(list(notes.values()), dtype=pl.String)})
    lc = lc.join(note_frame, on="_inst", how="left")
    names = (ev.lazy().filter(pl.col("_inst") >= 0).select(pl.col("event_name").unique())
             .collect()["event_name"])
    return lc.with_columns(pl.coalesce("_arrive", "complete_ns").alias("arrive_ns")), names


def _drop_fast_io(lc: pl.DataFrame, diagnostics: Diagnostics) -> pl.DataFrame:
    fast_io = lc["status"] == STATUS_FLT_DISALLOW_FAST_IO
    if not fast_io.any():
        return lc
    n = int(fast_io.sum())
    diagnostics.count("fast_io_attempts", n)
    diagnostics.warn(f"{n} fast-I/O attempt(s) a filter refused (status 0xC01C0004, the I/O "
                     "manager then retries with an IRP) are not IRPs and are not in the table")
    return lc.filter(~fast_io.fill_null(False))


def _empty_lifecycles() -> pl.DataFrame:
    return empty_irps().with_columns(pl.lit(None, dtype=t).alias(c)
                                     for c, t in IRP_EXTENSION_COLUMNS.items())


def build_lifecycles(events: pl.DataFrame, diagnostics: Diagnostics | None = None,
                     lost_windows: list[tuple[int | None, int | None]] | None = None
                     ) -> pl.DataFrame:
    """One row per IRP instance: fpreplay.schema.IRP_COLUMNS, then IRP_EXTENSION_COLUMNS.

    lost_windows: TraceRead.lost_windows, the times around buffers flagged EVENTS_LOST; IRPs
    open across one are counted and reported as possibly incomplete."""
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    ev = _irp_events(events)
    if ev.height == 0:
        return _empty_lifecycles()
    ev = _by_time(_fill_irp_from_request(ev))
    loose = ev.filter(pl.col("irp").is_null() & pl.col("kind").is_in(ALLOC_KINDS))
    ev = _keep(ev, pl.col("irp").is_not_null()).with_columns(
        pl.col("kind").replace_strict(KIND_CODES, return_dtype=pl.Int8).alias("_code"),
        layer_expr())
    if ev.height == 0:
        if loose.height:
            tie_irpless_failures(empty_irps().with_columns(pl.lit(0).alias("_inst")), loose,
                                 diagnostics)
        return _empty_lifecycles()
    lc, names = _instances(ev, diagnostics)
    lc = unify_devices(lc, diagnostics)
    # A message names its device as its source does: in the lifecycles' words for the tie.
    loose = loose.with_columns(pl.col("device").replace(alias_map(lc)))
    lc = decide_outcomes(tie_irpless_failures(lc, loose, diagnostics), diagnostics)
    # After the outcomes: an instance whose allocation failed or was refused ended there (the
    # framework fails it in its dispatch, which no source logs as a completion), not incomplete.
    report_broken(diagnostics, lc.select(
        pl.when(pl.col("_orphan")).then(pl.lit("orphan")).otherwise(pl.col("_note"))
        .alias("_note"), "_opener", "actual"), names)
    if lost_windows:
        lc = report_lost(lc, lost_windows, diagnostics)
    lc = _drop_fast_io(lc, diagnostics).sort(["arrive_ns", "_inst"])
    # The contract's columns, then the extensions (fpreplay.schema.IRP_EXTENSION_COLUMNS).
    return conform_irps(lc.select([c for c in (*IRP_COLUMNS, *IRP_EXTENSION_COLUMNS)
                                   if c in lc.columns]), keep_extra=True)
