"""What a replay gives back: per-IRP outcomes, the per-queue timeline of reserved requests in
use, parked and outstanding IRPs, the pool's high-water mark, warnings and counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from fpreplay.schema import nt_error_expr

from .config import DriverModel
from .event_loop import Replay, record
from .status import (STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE,
                     STATUS_UNSUCCESSFUL)

OUTCOMES = ("normal", "reserved", "parked_reserved", "refused", "cancelled", "invalid_state",
            "alloc_failed", "parked_at_end")
OUTCOME_SCHEMA = {
    "row": pl.UInt32, "queue": pl.String, "outcome": pl.String, "status": pl.UInt32,
    "alloc_failed": pl.Boolean, "parked": pl.Boolean, "deliver_ns": pl.Int64,
    "complete_ns": pl.Int64, "park_wait_ns": pl.Int64, "reserved_id": pl.Int32,
}
TIMELINE_SCHEMA = {
    "queue": pl.String, "ts_ns": pl.Int64, "reserved_in_use": pl.Int64,
    "reserved_total": pl.Int64, "parked": pl.Int64, "outstanding": pl.Int64,
}


@dataclass
class SimulationResult:
    outcomes: pl.DataFrame
    timeline: pl.DataFrame
    reserve_high_water: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


def simulated_actual() -> pl.Expr:
    """The contract's `actual` vocabulary for a simulated outcome (over `outcome`, `status`), so
    that a replay can be compared with what the trace saw."""
    status = pl.col("status")
    return (pl.when(pl.col("outcome").is_in(["reserved", "parked_reserved"]))
            .then(pl.lit("reserved"))
            .when(pl.col("outcome").is_in(["refused", "alloc_failed", "cancelled",
                                           "invalid_state"])).then(pl.col("outcome"))
            .when(pl.col("outcome") == "parked_at_end").then(pl.lit("incomplete"))
            .when(status.is_null()).then(pl.lit("incomplete"))
            .when(status == STATUS_CANCELLED).then(pl.lit("cancelled"))
            .when(status == STATUS_INVALID_DEVICE_STATE).then(pl.lit("invalid_state"))
            .when(nt_error_expr(status)).then(pl.lit("failed"))
            .otherwise(pl.lit("ok")).alias("actual"))


def collect(df, irp_objs, replay, driver, fp_queues, diag) -> SimulationResult:

    # Column by column (a row-wise frame of NamedTuples costs more than the records do).
    records = [record(irp) for irp in irp_objs]
    columns = zip(*records) if records else ([] for _ in OUTCOME_SCHEMA)
    slow_out = pl.DataFrame([pl.Series(name, values, dtype=dtype)
                             for (name, dtype), values in zip(OUTCOME_SCHEMA.items(), columns)])
    del records

    # Fast rows, vectorized: normal delivery, refusal, or a non-FP allocation failure.
    refused = pl.col("_fpq") & pl.col("_not_create") & pl.col("_fail")
    fast_cols = df.filter(~pl.col("_slow")).select(
        pl.col("row"),
        pl.col("_queue").alias("queue"),
        pl.when(~pl.col("_fail")).then(pl.lit("normal"))
        .when(refused).then(pl.lit("refused")).otherwise(pl.lit("alloc_failed")).alias("outcome"),
        pl.when(~pl.col("_fail")).then(pl.when(pl.col("_hold").is_not_null())
                                       .then(pl.col("_dstatus")))
        .when(refused).then(pl.lit(STATUS_UNSUCCESSFUL, pl.UInt32))
        .otherwise(pl.lit(STATUS_INSUFFICIENT_RESOURCES, pl.UInt32)).cast(pl.UInt32)
        .alias("status"),
        (pl.col("_fail") & ~pl.col("_res")).alias("alloc_failed"),
        pl.lit(False).alias("parked"),
        pl.when(~pl.col("_fail")).then(pl.col("arrive_ns")).cast(pl.Int64).alias("deliver_ns"),
        pl.when(~pl.col("_fail")).then(pl.col("arrive_ns") + pl.col("_hold"))
        .otherwise(pl.col("arrive_ns")).cast(pl.Int64).alias("complete_ns"),
        pl.lit(None, pl.Int64).alias("park_wait_ns"),
        pl.lit(None, pl.Int32).alias("reserved_id"),
    )
    outcomes = pl.concat([fast_cols.cast(OUTCOME_SCHEMA), slow_out]).sort("row")

    timeline = _timeline(replay, df, driver, fp_queues)
    high = {name: (q.fp.high_water if q.fp is not None else 0)
            for name, q in replay.queues.items()}
    lost = sum(1 for code, _ in replay.device.diagnostics if code == "LOST_WAKEUP")
    if lost:
        diag.warn(f"race window: {lost} IRP(s) parked while a reserved request went back to the "
                  "free list (lost wake-up); they wait for the next recycle")
        diag.count("lost_wakeup", lost)
    for code, detail in replay.device.diagnostics:
        if code != "LOST_WAKEUP":
            diag.warn(f"{code}: {detail}")
    counts = outcomes["outcome"].value_counts()
    for o, c in counts.iter_rows():
        diag.count(f"outcome_{o}", c)
    return SimulationResult(outcomes=outcomes, timeline=timeline, reserve_high_water=high,
                            warnings=list(diag.warnings), counters=dict(diag.counters))


def _timeline(replay: Replay, df: pl.DataFrame, driver: DriverModel, fp_queues) -> pl.DataFrame:
    """One row per (queue, time) at which a count changed, from the model's snapshots plus the
    vectorized rows' deliveries (+1 outstanding) and completions (-1)."""
    names = [q.name for q in driver.queues]
    qid = {n: i for i, n in enumerate(names)}
    snaps = pl.DataFrame(replay.snapshots, schema={"queue": pl.String, "ts_ns": pl.Int64,
                                                   "in_use": pl.Int64, "parked": pl.Int64,
                                                   "out": pl.Int64}, orient="row")
    snaps = snaps.select(pl.col("queue").replace_strict(qid, return_dtype=pl.UInt32).alias("q"),
                         "ts_ns", "in_use", "parked", "out")
    deltas = snaps.with_columns(
        (pl.col(c) - pl.col(c).shift(1, fill_value=0).over("q")).alias(c)
        for c in ("in_use", "parked", "out"))
    fast = df.filter(~pl.col("_slow") & ~pl.col("_fail")).select(
        pl.col("_queue").replace_strict(qid, return_dtype=pl.UInt32).alias("q"),
        "arrive_ns", "_hold")
    zero = pl.lit(0, pl.Int64)
    # Each part is already in time order per queue (snapshots are taken as the loop runs, df is
    # sorted by arrival) except the completions: sort those, then merge instead of a full sort.
    plus = fast.select("q", pl.col("arrive_ns").alias("ts_ns"), zero.alias("in_use"),
                       zero.alias("parked"), pl.lit(1, pl.Int64).alias("out"))
    minus = fast.filter(pl.col("_hold").is_not_null()).select(
        "q", (pl.col("arrive_ns") + pl.col("_hold")).alias("ts_ns"), zero.alias("in_use"),
        zero.alias("parked"), pl.lit(-1, pl.Int64).alias("out")).sort("ts_ns")
    parts = []
    for i in range(len(names)):
        merged = None
        for part in (deltas, plus, minus):
            p = part.filter(pl.col("q") == i) if len(names) > 1 else part
            merged = p if merged is None else merged.merge_sorted(p, key="ts_ns")
        parts.append(merged.with_columns(pl.col(c).cum_sum()
                                         for c in ("in_use", "parked", "out")))
    tl = pl.concat(parts)
    # Keep the state after the last change at each (queue, time).
    last = (pl.col("q") != pl.col("q").shift(-1)) | (pl.col("ts_ns") != pl.col("ts_ns").shift(-1))
    tl = tl.filter(last.fill_null(True))
    # ...and only where something changed (net-zero moments, e.g. an IRP served in 0 ns, go).
    changed = pl.lit(False)
    for c in ("in_use", "parked", "out"):
        changed = changed | (pl.col(c) != pl.col(c).shift(1, fill_value=0).over("q"))
    tl = tl.filter(changed)
    totals = [fp_queues[n].reserved if fp_queues[n] is not None else 0 for n in names]
    return tl.select(
        pl.col("q").replace_strict(list(range(len(names))), names, return_dtype=pl.String)
        .alias("queue"),
        "ts_ns", pl.col("in_use").alias("reserved_in_use"),
        pl.col("q").replace_strict(list(range(len(names))), totals, return_dtype=pl.Int64)
        .alias("reserved_total"),
        "parked", pl.col("out").alias("outstanding")).cast(TIMELINE_SCHEMA)
