"""Low-memory incidents: clusters of allocation failures, insufficient-resources completions,
forward-progress refusals and memory-pressure signals, found in the event and lifecycle tables.

A signal is one of: a `request_alloc_failed` / `request_resources_failed` / `fp_policy_refused` /
`reserved_request_used` event, an `irp_complete` with STATUS_INSUFFICIENT_RESOURCES, an IRP whose
`actual` is alloc_failed, refused or reserved (at its arrival), or real memory pressure:

* a `memory_pressure` reading of available memory (`bytes`) below LOW_AVAILABLE_BYTES, or
* a storm of `memory_pressure` events without a reading (hard faults, working-set out-swaps): at
  least STORM_SIGNALS of them within STORM_WINDOW_NS. A machine pages all the time; a single hard
  fault, or a periodic reading of plenty of free memory, says nothing about low memory.

Signals closer than `gap_ns` to the previous one join its incident, so one incident is one
stretch of low memory. Every memory_pressure event inside an incident is counted in it. Pure
polars; the engine's `window` memory model reads the same frame.
"""

from __future__ import annotations

import polars as pl

from fpreplay.lifecycles.devices import alias_map
from fpreplay.schema import STARVED_ACTUALS, STATUS_INSUFFICIENT_RESOURCES
from fpreplay.units import parse_duration_ns

# Signals this close together belong to one incident. Low-memory stretches on a real machine last
# from milliseconds to seconds; half a second keeps a storm together without merging two storms
# separated by a quiet second.
DEFAULT_GAP_NS = parse_duration_ns("500ms")

# Windows signals LowMemoryResourceNotification at about 32 MB of available memory per 4 GB, at
# most 64 MB: below that the memory manager itself says memory is low.
LOW_AVAILABLE_BYTES = 64 * 1024 * 1024
# Hard faults / out-swaps at this rate are a storm, not ordinary paging.
STORM_SIGNALS = 500
STORM_WINDOW_NS = parse_duration_ns("1s")


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


def side_events(events: pl.DataFrame) -> pl.DataFrame:
    """The rows besides IRP lifecycles that the analyses read: every event that is not an IRP's
    dispatch, completion or `other` line (incident signals, queue operations, the
    forward-progress counts), and completions with STATUS_INSUFFICIENT_RESOURCES. A streamed
    read keeps these of each batch and lets the rest go."""
    kind = pl.col("kind")
    return events.filter(
        ~kind.is_in(["irp_dispatch", "irp_complete", "other"]).fill_null(True)
        | ((kind == "irp_complete") & (pl.col("status") == STATUS_INSUFFICIENT_RESOURCES))
        .fill_null(False))


def empty_incidents() -> pl.DataFrame:
    return pl.DataFrame(schema=INCIDENT_COLUMNS)


def _signals(events: pl.DataFrame | None, irps: pl.DataFrame | None) -> pl.DataFrame:
    """One row per low-memory signal: ts_ns, what, device, queue, bytes."""
    frames = []
    cols = ["ts_ns", "what", "device", "queue", "bytes"]
    aliases = alias_map(irps) if irps is not None else {}
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
            # a device in its source's words -> the lifecycles' name for it (devices.py)
            pl.col("device").cast(pl.String).replace(aliases), pl.col("queue").cast(pl.String),
            pl.when(pl.col("kind") == "memory_pressure").then(pl.col("bytes"))
            .otherwise(None).cast(pl.UInt64).alias("bytes")))
    if irps is not None and irps.height:
        frames.append(irps.lazy().filter(pl.col("actual").is_in(STARVED_ACTUALS)).select(
            pl.col("arrive_ns").alias("ts_ns"), pl.lit("irp").alias("what"),
            pl.col("device").cast(pl.String), pl.col("queue").cast(pl.String),
            pl.lit(None, dtype=pl.UInt64).alias("bytes")))
    if not frames:
        return pl.DataFrame(schema={"ts_ns": pl.Int64, "what": pl.String, "device": pl.String,
                                    "queue": pl.String, "bytes": pl.UInt64})
    return (pl.concat([f.select(cols) for f in frames]).filter(pl.col("ts_ns").is_not_null())
            .sort("ts_ns").collect())


def _real_pressure(sig: pl.DataFrame) -> pl.Series:
    """Which signals count: all but memory_pressure, which counts when it is a low reading or
    part of a storm (STORM_SIGNALS unread ones within STORM_WINDOW_NS)."""
    big = 1 << 62
    df = sig.select("ts_ns", "what", "bytes").with_row_index("_i")
    pressure = pl.col("what") == "memory_pressure"
    unread = df.filter(pressure & pl.col("bytes").is_null()).select("_i", "ts_ns")
    t = unread["ts_ns"]
    # Unread signals in the window ending at each one: its position minus the window's start.
    first = t.search_sorted(t - STORM_WINDOW_NS, side="left").cast(pl.Int64)
    idx = pl.int_range(0, t.len(), eager=True, dtype=pl.Int64)
    storm_end = (idx - first + 1) >= STORM_SIGNALS
    # A signal is in a storm when a later (or the same) storm-ending signal's window reaches
    # back to it: the smallest window start from here on is at or before it.
    reach = pl.Series(pl.select(pl.when(storm_end).then(first).otherwise(big)).to_series()
                      ).reverse().cum_min().reverse()
    stormy = unread.select("_i").with_columns((reach <= idx).alias("_stormy"))
    return (df.join(stormy, on="_i", how="left").sort("_i")
            .select(pl.when(~pressure).then(True)
                    .when(pl.col("bytes").is_not_null())
                    .then(pl.col("bytes") < LOW_AVAILABLE_BYTES)
                    .otherwise(pl.col("_stormy").fill_null(False)))
            .to_series())


def _with_irp_counts(base: pl.DataFrame, irps: pl.DataFrame | None) -> pl.DataFrame:
    """The incidents' IRP counts: IRPs attached to the incident whose [start, end] holds their
    arrival."""
    if irps is not None and irps.height:
        inside = (irps.lazy().select("arrive_ns", "actual", "paging", "device", "queue")
                  .filter(pl.col("arrive_ns").is_not_null()).sort("arrive_ns")
                  .join_asof(base.lazy().select("incident", "start_ns", "end_ns")
                             .sort("start_ns"),
                             left_on="arrive_ns", right_on="start_ns", strategy="backward")
                  .filter(pl.col("arrive_ns") <= pl.col("end_ns")).collect())
        failing = pl.col("actual").is_in(STARVED_ACTUALS)
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
        return base.join(per, on="incident", how="left")
    return base.with_columns(
        *[pl.lit(0, dtype=pl.UInt32).alias(c) for c in
          ("irps", "failed_irps", "alloc_failed", "refused", "reserved")],
        pl.lit(0).alias("_paging_failed"),
        pl.lit(None, dtype=pl.List(pl.String)).alias("irp_devices"),
        pl.lit(None, dtype=pl.List(pl.String)).alias("irp_queues"))


def detect_incidents(events: pl.DataFrame | None, irps: pl.DataFrame | None,
                     gap_ns: int = DEFAULT_GAP_NS) -> pl.DataFrame:
    """The incidents, in time order, one row each (columns INCIDENT_COLUMNS).

    Counts: `alloc_failed`, `refused` and `reserved` are IRPs of that `actual` that arrived inside
    the incident; `insufficient_resources` and `memory_pressure` are events. `irps` counts every
    IRP that arrived inside it; `paging_share` is the share of its failing IRPs (alloc_failed,
    refused, reserved) that were paging I/O, null when it has none.
    """
    all_signals = _signals(events, irps)
    sig = all_signals.filter(_real_pressure(all_signals)) if all_signals.height else all_signals
    if not sig.height:
        return empty_incidents()
    sig = sig.with_columns(
        (pl.col("ts_ns").diff().fill_null(gap_ns + 1) > gap_ns).cum_sum()
        .cast(pl.UInt32).alias("incident"))
    # Every memory_pressure event inside an incident belongs to it, counted or not.
    spans = (sig.group_by("incident").agg(pl.col("ts_ns").min().alias("_s"),
                                          pl.col("ts_ns").max().alias("_e")).sort("_s"))
    extra = (all_signals.filter((pl.col("what") == "memory_pressure"))
             .join(sig.select("ts_ns", "what").unique(), on=["ts_ns", "what"], how="anti")
             .sort("ts_ns")
             .join_asof(spans, left_on="ts_ns", right_on="_s", strategy="backward")
             .filter(pl.col("ts_ns") <= pl.col("_e")).drop("_s", "_e"))
    if extra.height:
        sig = pl.concat([sig, extra.select(sig.columns)]).sort("ts_ns")
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
    base = _with_irp_counts(base, irps)
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

