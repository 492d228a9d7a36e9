"""What a replay gives back: per-IRP outcomes, the per-queue timeline of reserved requests in
use, parked and outstanding IRPs, the pool's high-water mark, warnings and counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from fpreplay.schema import nt_error_expr

from .config import DriverModel
from .event_loop import Replay, record
from .status import (STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE,
                     STATUS_SUCCESS, STATUS_UNSUCCESSFUL)

OUTCOMES = ("normal", "reserved", "parked_reserved", "refused", "cancelled", "invalid_state",
            "alloc_failed", "parked_at_end")
OUTCOME_SCHEMA = {
    "row": pl.UInt32, "queue": pl.String, "outcome": pl.String, "status": pl.UInt32,
    "alloc_failed": pl.Boolean, "parked": pl.Boolean, "deliver_ns": pl.Int64,
    "complete_ns": pl.Int64, "park_wait_ns": pl.Int64, "reserved_id": pl.Int32,
}
# The `actual` values a request that reaches no queue keeps as its outcome (others: normal).
_OBSERVED_OUTCOMES = ("reserved", "refused", "alloc_failed", "cancelled", "invalid_state")
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


def records_frame(irp_objs: list) -> pl.DataFrame:
    """The outcomes of event-loop IRPs, read off the model (OUTCOME_SCHEMA)."""
    # Column by column (a row-wise frame of NamedTuples costs more than the records do).
    records = [record(irp) for irp in irp_objs]
    columns = zip(*records) if records else ([] for _ in OUTCOME_SCHEMA)
    return pl.DataFrame([pl.Series(name, values, dtype=dtype)
                         for (name, dtype), values in zip(OUTCOME_SCHEMA.items(), columns)])


def high_waters(replays: list[Replay], driver: DriverModel, devices: list) -> dict[str, int]:
    """reserve_high_water: the most members in use at once, per pool (pool_labels)."""
    labels = pool_labels(driver, devices)
    high = {}
    for replay in replays:
        for name, q in replay.queues.items():
            high[labels[replay.key[name]]] = q.fp.high_water if q.fp is not None else 0
    return high


def finish_diagnostics(replays: list[Replay], diag) -> None:
    """What the devices' models saw, as warnings and counters: parked IRPs cancelled as in the
    trace, lost wake-ups, the framework's own diagnostics."""
    cancelled = sum(replay.cancelled_parked for replay in replays)
    if cancelled:      # what the trace saw: the I/O manager cancelled them while they waited
        diag.count("parked_cancelled_as_in_trace", cancelled)
        diag.warn(f"{cancelled} IRP(s) the trace saw cancelled were still parked in the replay "
                  "at their observed completion: cancelled then (STATUS_CANCELLED), as the I/O "
                  "manager cancels a parked IRP")
    diagnostics = [d for replay in replays for d in replay.device.diagnostics]
    lost = sum(1 for code, _ in diagnostics if code == "LOST_WAKEUP")
    if lost:
        diag.warn(f"race window: {lost} IRP(s) parked while a reserved request went back to the "
                  "free list (lost wake-up); they wait for the next recycle")
        diag.count("lost_wakeup", lost)
    for code, detail in diagnostics:
        if code != "LOST_WAKEUP":
            diag.warn(f"{code}: {detail}")


def pool_labels(driver: DriverModel, devices: list) -> list[str]:
    """The timeline's and reserve_high_water's key for each (device, queue) pool, indexed
    device * queues + queue: the queue's name when the trace has one device, else
    "DEVICE/QUEUE" ("(unnamed)/QUEUE" for IRPs without a device)."""
    names = [q.name for q in driver.queues]
    if len(devices) <= 1:
        return names
    return [f"{'(unnamed)' if d is None else d}/{n}" for d in devices for n in names]


def vectorized_outcomes(df: pl.DataFrame) -> pl.DataFrame:
    """Outcomes of the IRPs outside the event loop. Those reaching a queue: normal delivery,
    refusal, or a non-forward-progress allocation failure. Those reaching none (majors other
    than READ, WRITE, DEVICE_CONTROL, INTERNAL_DEVICE_CONTROL): what the trace saw, under any
    policy and memory model (forward-progress.md 3.7), with no queue."""
    fail, io = pl.col("_fail"), pl.col("_io")
    refused = pl.col("_fpq") & fail
    actual = pl.col("actual")
    observed = pl.when(actual.is_in(_OBSERVED_OUTCOMES)).then(actual).otherwise(pl.lit("normal"))
    served = ~actual.is_in(_OBSERVED_OUTCOMES) | actual.is_in(["reserved"])
    return df.filter(~pl.col("_slow")).select(
        pl.col("row"),
        pl.when(io).then(pl.col("_queue")).alias("queue"),
        pl.when(~io).then(observed)
        .when(~fail).then(pl.lit("normal"))
        .when(refused).then(pl.lit("refused")).otherwise(pl.lit("alloc_failed")).alias("outcome"),
        pl.when(~io).then(pl.when(pl.col("complete_ns").is_not_null())
                          .then(pl.col("status").fill_null(STATUS_SUCCESS)))
        .when(~fail).then(pl.when(pl.col("_hold").is_not_null()).then(pl.col("_dstatus")))
        .when(refused).then(pl.lit(STATUS_UNSUCCESSFUL, pl.UInt32))
        .otherwise(pl.lit(STATUS_INSUFFICIENT_RESOURCES, pl.UInt32)).cast(pl.UInt32)
        .alias("status"),
        pl.when(~io).then(actual == "alloc_failed").otherwise(fail & ~pl.col("_res"))
        .fill_null(False).alias("alloc_failed"),
        pl.lit(False).alias("parked"),
        pl.when(~io).then(pl.when(served).then(pl.coalesce("deliver_ns", "arrive_ns")))
        .when(~fail).then(pl.col("arrive_ns")).cast(pl.Int64).alias("deliver_ns"),
        pl.when(~io).then(pl.col("complete_ns"))
        .when(~fail).then(pl.col("arrive_ns") + pl.col("_hold"))
        .otherwise(pl.col("arrive_ns")).cast(pl.Int64).alias("complete_ns"),
        pl.lit(None, pl.Int64).alias("park_wait_ns"),
        pl.lit(None, pl.Int32).alias("reserved_id"),
    )


def empty_timeline() -> pl.DataFrame:
    return pl.DataFrame(schema=TIMELINE_SCHEMA)


def build_timeline(replays: list[Replay], fast_rows: list[pl.DataFrame], driver: DriverModel,
                   fp_queues, devices: list) -> pl.DataFrame:
    """One row per (pool, time) at which a count changed, from the model's snapshots plus the
    vectorized rows' deliveries (+1 outstanding) and completions (-1); a pool is one device's
    queue (pool_labels). IRPs that reach no queue are not counted. fast_rows: (q, arrive_ns,
    _hold) of the vectorized deliveries, chunk by chunk; built once, at the end."""
    labels = pool_labels(driver, devices)
    snaps = pl.DataFrame([s for replay in replays for s in replay.snapshots],
                         schema={"q": pl.UInt32, "ts_ns": pl.Int64, "in_use": pl.Int64,
                                 "parked": pl.Int64, "out": pl.Int64}, orient="row")
    deltas = snaps.with_columns(
        (pl.col(c) - pl.col(c).shift(1, fill_value=0).over("q")).alias(c)
        for c in ("in_use", "parked", "out"))
    fast = (pl.concat(fast_rows) if fast_rows else
            pl.DataFrame(schema={"q": pl.UInt32, "arrive_ns": pl.Int64, "_hold": pl.Int64}))
    zero = pl.lit(0, pl.Int64)
    # Each part is already in time order per queue (snapshots are taken as the loop runs, df is
    # sorted by arrival) except the completions: sort those, then merge instead of a full sort.
    plus = fast.select("q", pl.col("arrive_ns").alias("ts_ns"), zero.alias("in_use"),
                       zero.alias("parked"), pl.lit(1, pl.Int64).alias("out"))
    minus = fast.filter(pl.col("_hold").is_not_null()).select(
        "q", (pl.col("arrive_ns") + pl.col("_hold")).alias("ts_ns"), zero.alias("in_use"),
        zero.alias("parked"), pl.lit(-1, pl.Int64).alias("out")).sort("ts_ns")
    parts = []
    for i in range(len(labels)):
        merged = None
        for part in (deltas, plus, minus):
            p = part.filter(pl.col("q") == i) if len(labels) > 1 else part
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
    names = [q.name for q in driver.queues]
    totals = [fp_queues[names[i % len(names)]] for i in range(len(labels))]
    totals = [p.reserved if p is not None else 0 for p in totals]
    keys = list(range(len(labels)))
    return tl.select(
        pl.col("q").replace_strict(keys, labels, return_dtype=pl.String).alias("queue"),
        "ts_ns", pl.col("in_use").alias("reserved_in_use"),
        pl.col("q").replace_strict(keys, totals, return_dtype=pl.Int64).alias("reserved_total"),
        "parked", pl.col("out").alias("outstanding")).cast(TIMELINE_SCHEMA)
