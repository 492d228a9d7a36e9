"""Low-memory incidents: clusters of allocation failures, insufficient-resources completions,
forward-progress refusals and memory-pressure signals, found in the event and lifecycle tables.

A signal is one of: a `request_alloc_failed` / `request_resources_failed` / `fp_policy_refused` /
`reserved_request_used` / `memory_pressure` event, an `irp_complete` with
STATUS_INSUFFICIENT_RESOURCES, or an IRP whose `actual` is alloc_failed, refused or reserved (at
its arrival). Signals closer than `gap_ns` to the previous one join its incident, so one incident
is one stretch of low memory. Pure polars; the engine's `window` memory model reads the same frame.
"""

from __future__ import annotations

import polars as pl

from fpreplay.schema import STATUS_INSUFFICIENT_RESOURCES

# Signals this close together belong to one incident. Low-memory stretches on a real machine last
# from milliseconds to seconds; half a second keeps a storm together without merging two storms
# separated by a quiet second.
DEFAULT_GAP_NS = 500_000_000

# IRP outcomes that are themselves evidence of low memory.
FAILING_ACTUALS = ("alloc_failed", "refused", "reserved")

_SIGNAL_EVENT_KINDS = ("request_alloc_failed", "request_resources_failed", "fp_policy_refused",
                       "reserved_request_used", "memory_pressure")

INCIDENT_COLUMNS: dict[str, pl.DataType] = {
    "incident": pl.UInt32,
    "start_ns": pl.Int64,
    "end_ns": pl.Int64,
    "signals": pl.UInt32,
    "alloc_failed": pl.UInt32,
    "refused": pl.UInt32,
    "reserved": pl.UInt32,
    "insufficient_resources": pl.UInt32,
    "memory_pressure": pl.UInt32,
    "min_available_bytes": pl.UInt64,
    "irps": pl.UInt32,
    "failed_irps": pl.UInt32,
    "paging_share": pl.Float64,
    "devices": pl.List(pl.String),
    "queues": pl.List(pl.String),
}


def empty_incidents() -> pl.DataFrame:
    return pl.DataFrame(schema=INCIDENT_COLUMNS)


def _signals(events: pl.DataFrame | None, irps: pl.DataFrame | None) -> pl.DataFrame:
    """One row per low-memory signal: ts_ns, what, device, queue, bytes."""
    frames = []
    cols = ["ts_ns", "what", "device", "queue", "bytes"]
    if events is not None and events.height:
        ev = events.lazy().filter(
            pl.col("kind").is_in(_SIGNAL_EVENT_KINDS)
            | ((pl.col("kind") == "irp_complete")
               & (pl.col("status") == STATUS_INSUFFICIENT_RESOURCES)))
        frames.append(ev.select(
            pl.col("ts_ns"),
            pl.when(pl.col("kind") == "irp_complete").then(pl.lit("insufficient_resources"))
            .when(pl.col("kind").is_in(["request_alloc_failed", "request_resources_failed"]))
            .then(pl.lit("alloc_event"))
            .otherwise(pl.col("kind")).alias("what"),
            pl.col("device").cast(pl.String), pl.col("queue").cast(pl.String),
            pl.when(pl.col("kind") == "memory_pressure").then(pl.col("bytes"))
            .otherwise(None).cast(pl.UInt64).alias("bytes")))
    if irps is not None and irps.height:
        frames.append(irps.lazy().filter(pl.col("actual").is_in(FAILING_ACTUALS)).select(
            pl.col("arrive_ns").alias("ts_ns"), pl.lit("irp").alias("what"),
            pl.col("device").cast(pl.String), pl.col("queue").cast(pl.String),
            pl.lit(None, dtype=pl.UInt64).alias("bytes")))
    if not frames:
        return pl.DataFrame(schema={"ts_ns": pl.Int64, "what": pl.String, "device": pl.String,
                                    "queue": pl.String, "bytes": pl.UInt64})
    return (pl.concat([f.select(cols) for f in frames]).filter(pl.col("ts_ns").is_not_null())
            .sort("ts_ns").collect())


def detect_incidents(events: pl.DataFrame | None, irps: pl.DataFrame | None,
                     gap_ns: int = DEFAULT_GAP_NS) -> pl.DataFrame:
    """The incidents, in time order, one row each (columns INCIDENT_COLUMNS).

    Counts: `alloc_failed`, `refused` and `reserved` are IRPs of that `actual` that arrived inside
    the incident; `insufficient_resources` and `memory_pressure` are events. `irps` counts every
    IRP that arrived inside it; `paging_share` is the share of its failing IRPs (alloc_failed,
    refused, reserved) that were paging I/O, null when it has none.
    """
    sig = _signals(events, irps)
    if not sig.height:
        return empty_incidents()
    sig = sig.with_columns(
        (pl.col("ts_ns").diff().fill_null(gap_ns + 1) > gap_ns).cum_sum()
        .cast(pl.UInt32).alias("incident"))
    base = sig.group_by("incident", maintain_order=True).agg(
        pl.col("ts_ns").min().alias("start_ns"),
        pl.col("ts_ns").max().alias("end_ns"),
        pl.len().cast(pl.UInt32).alias("signals"),
        (pl.col("what") == "insufficient_resources").sum().cast(pl.UInt32)
        .alias("insufficient_resources"),
        (pl.col("what") == "memory_pressure").sum().cast(pl.UInt32).alias("memory_pressure"),
        pl.col("bytes").min().alias("min_available_bytes"),
        pl.col("device").drop_nulls().unique().sort().alias("sig_devices"),
        pl.col("queue").drop_nulls().unique().sort().alias("sig_queues"),
    )
    if irps is not None and irps.height:
        # Attach each IRP to the incident whose [start, end] holds its arrival.
        inside = (irps.lazy().select("arrive_ns", "actual", "paging", "device", "queue")
                  .filter(pl.col("arrive_ns").is_not_null()).sort("arrive_ns")
                  .join_asof(base.lazy().select("incident", "start_ns", "end_ns")
                             .sort("start_ns"),
                             left_on="arrive_ns", right_on="start_ns", strategy="backward")
                  .filter(pl.col("arrive_ns") <= pl.col("end_ns")).collect())
        failing = pl.col("actual").is_in(FAILING_ACTUALS)
        per = inside.group_by("incident").agg(
            pl.len().cast(pl.UInt32).alias("irps"),
            failing.sum().cast(pl.UInt32).alias("failed_irps"),
            (pl.col("actual") == "alloc_failed").sum().cast(pl.UInt32).alias("alloc_failed"),
            (pl.col("actual") == "refused").sum().cast(pl.UInt32).alias("refused"),
            (pl.col("actual") == "reserved").sum().cast(pl.UInt32).alias("reserved"),
            (failing & pl.col("paging").fill_null(False)).sum().alias("_paging_failed"),
            pl.col("device").filter(failing).drop_nulls().unique().alias("irp_devices"),
            pl.col("queue").filter(failing).drop_nulls().unique().alias("irp_queues"),
        )
        base = base.join(per, on="incident", how="left")
    else:
        base = base.with_columns(
            *[pl.lit(0, dtype=pl.UInt32).alias(c) for c in
              ("irps", "failed_irps", "alloc_failed", "refused", "reserved")],
            pl.lit(0).alias("_paging_failed"),
            pl.lit(None, dtype=pl.List(pl.String)).alias("irp_devices"),
            pl.lit(None, dtype=pl.List(pl.String)).alias("irp_queues"))
    zero = pl.lit(0, dtype=pl.UInt32)
    out = base.with_columns(
        *[pl.col(c).fill_null(zero) for c in
          ("irps", "failed_irps", "alloc_failed", "refused", "reserved")],
        pl.when(pl.col("failed_irps").fill_null(0) > 0)
        .then(pl.col("_paging_failed") / pl.col("failed_irps")).otherwise(None)
        .cast(pl.Float64).alias("paging_share"),
        pl.concat_list(pl.col("sig_devices"), pl.col("irp_devices").fill_null([]))
        .list.unique().list.sort().alias("devices"),
        pl.concat_list(pl.col("sig_queues"), pl.col("irp_queues").fill_null([]))
        .list.unique().list.sort().alias("queues"),
    )
    # Renumber from 1 in time order: the number users quote ("incident 2").
    out = out.sort("start_ns").with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).alias("incident"))
    return out.select([pl.col(c).cast(t) for c, t in INCIDENT_COLUMNS.items()])


def irps_in_incident(irps: pl.DataFrame, incident: dict) -> pl.DataFrame:
    """The IRPs that arrived inside one incident (a row of detect_incidents as a dict)."""
    return irps.filter(pl.col("arrive_ns").is_between(incident["start_ns"], incident["end_ns"]))
