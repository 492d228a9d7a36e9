"""One policy's replay set against what actually happened: the run, the per-IRP verdicts, the
compare row, and the timelines the reports draw. compare, sweep and explain build on these."""

from __future__ import annotations

import math

import polars as pl

from fpreplay.engine import Policy, simulate
from fpreplay.lifecycles.devices import alias_map
from fpreplay.replay.whatif.settings import WhatIfSettings
from fpreplay.schema import (
    ACTUAL_OUTCOMES, FAILED_ACTUALS, QUEUE_KINDS, STATUS_CANCELLED, STATUS_INVALID_DEVICE_STATE,
    nt_error_expr,
)

# `actual` values that mean the IRP reached the driver.
SERVED_ACTUALS = ("ok", "reserved")
# Simulated outcomes in which the driver received the IRP.
DELIVERED_OUTCOMES = ("normal", "reserved", "parked_reserved")


# --- inputs shared by every simulation --------------------------------------------------------

def queue_operations(events: pl.DataFrame | None, irps: pl.DataFrame | None = None, *,
                     aliases: dict[str, str] | None = None) -> pl.DataFrame | None:
    """Queue state changes seen in the trace, replayed at their observed times (contract 6), each
    on its own device: named as the lifecycles name it (an alias another source used for that
    device maps to the device's name), so the replay acts on that device's queue only."""
    if events is None:
        return None
    ops = events.filter(pl.col("kind").is_in(QUEUE_KINDS)).select("ts_ns", "kind", "queue",
                                                                   "device")
    if not ops.height:
        return None
    if aliases is None:
        aliases = alias_map(irps) if irps is not None else {}
    if aliases:
        ops = ops.with_columns(pl.col("device").replace(aliases))
    return ops


def window_incidents(irps: pl.DataFrame, events: pl.DataFrame | None,
                     settings: WhatIfSettings, incidents: pl.DataFrame | None = None):
    """The incidents a `window` memory simulation fails allocations inside: those given, else
    the trace's own; none under the other memory models."""
    if incidents is not None or not settings.window:
        return incidents
    from fpreplay.lifecycles.incidents import detect_incidents

    return detect_incidents(events, irps)


def actual_counts(irps: pl.DataFrame) -> dict[str, int]:
    """`actual` value -> IRPs, every value of the contract present (zeros included)."""
    counts = dict.fromkeys(ACTUAL_OUTCOMES, 0)
    if irps.height:
        for value, n in irps.group_by("actual").len().iter_rows():
            counts[str(value)] = counts.get(str(value), 0) + int(n)
    return counts


def run_policy(irps: pl.DataFrame, policy: Policy, settings: WhatIfSettings,
               queue_ops: pl.DataFrame | None = None, incidents: pl.DataFrame | None = None):
    """One simulation of the trace's IRPs under one policy; a SimulationResult. settings: one
    of WhatIfSettings.runs() (a seed not given is 0)."""
    return simulate(irps, settings.driver.with_policy(policy), settings.memory,
                    queue_ops=queue_ops, incidents=incidents,
                    service_time_ns=settings.service_time_ns, seed=settings.seed or 0)


def add_warnings(into: list[str], result) -> None:
    """A simulation's warnings (the engine's Diagnostics), each once."""
    for w in getattr(result, "warnings", []) or []:
        if w not in into:
            into.append(w)


def high_water(result) -> int:
    """The most reserved requests in use at once on any queue of a SimulationResult."""
    hw = getattr(result, "reserve_high_water", None) or {}
    return max((int(v) for v in hw.values()), default=0)


# --- one policy against what happened ---------------------------------------------------------


def verdicts(irps: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Per IRP: actual, simulated outcome/status/park wait, and the verdict the summary counts
    (verdict_columns)."""
    sim = outcomes.sort("row").select(
        "outcome", "status", "parked", "park_wait_ns", "deliver_ns",
        pl.col("complete_ns").alias("sim_complete_ns"), "reserved_id",
        pl.col("queue").alias("sim_queue"))
    if sim.height != irps.height:
        raise ValueError(f"simulation returned {sim.height} outcomes for {irps.height} IRPs")
    return verdict_columns(pl.concat([irps.select("actual"), sim.rename({"status": "sim_status"})],
                                     how="horizontal"))


def verdict_columns(df: pl.DataFrame) -> pl.DataFrame:
    """`df` (actual, and a simulation's outcomes with status as sim_status) with the verdict
    the summary counts: `rescued` (failed for real, delivered in the simulation),
    `still_failed` (failed for real, failed again), `regressed` (served for real, failed in the
    simulation), `same`; parked null as false."""
    failed = pl.col("actual").is_in(FAILED_ACTUALS)
    delivered = pl.col("outcome").is_in(DELIVERED_OUTCOMES)
    error = nt_error_expr(pl.col("sim_status"))
    return df.with_columns(
        pl.when(failed & delivered).then(pl.lit("rescued"))
        .when(failed & error).then(pl.lit("still_failed"))
        .when(pl.col("actual").is_in(SERVED_ACTUALS) & error).then(pl.lit("regressed"))
        .otherwise(pl.lit("same")).alias("verdict"),
        pl.col("parked").fill_null(False))


def percentiles(waits: pl.Series) -> dict[str, int]:
    """p50, p99 and max by the nearest-rank method: every figure is the wait of a real IRP."""
    waits = waits.drop_nulls().sort()
    n = waits.len()
    if not n:
        return {"p50": 0, "p99": 0, "max": 0}

    def rank(q: float) -> int:
        return int(waits[max(0, math.ceil(q * n) - 1)])

    return {"p50": rank(0.5), "p99": rank(0.99), "max": int(waits[n - 1])}


def summarize(policy_text: str, v: pl.DataFrame, reserve_high_water: int) -> dict:
    """The compare row of contract section 7 from a `verdicts` frame."""
    served_waits = v.filter(pl.col("parked") & (pl.col("outcome") == "parked_reserved"))
    return {
        "policy": policy_text,
        "rescued": int((v["verdict"] == "rescued").sum()),
        "still_failed": int((v["verdict"] == "still_failed").sum()),
        "regressed": int((v["verdict"] == "regressed").sum()),
        "parked": int(v["parked"].sum()),
        "park_wait_ns": percentiles(served_waits["park_wait_ns"]),
        "cancelled": int((v["sim_status"] == STATUS_CANCELLED).sum()),
        "invalid_state": int((v["sim_status"] == STATUS_INVALID_DEVICE_STATE).sum()),
        "reserve_high_water": int(reserve_high_water),
    }


def concurrency_peak(starts: pl.Series, ends: pl.Series) -> int:
    """The most intervals open at once; an interval without an end stays open."""
    if not starts.len():
        return 0
    big = (1 << 62)
    ev = pl.concat([
        pl.DataFrame({"t": starts.cast(pl.Int64), "d": pl.Series([1] * starts.len())}),
        pl.DataFrame({"t": ends.cast(pl.Int64).fill_null(big), "d": pl.Series([-1] * ends.len())}),
    ]).sort(["t", "d"])   # at equal times an end frees before a start takes
    return int(ev["d"].cum_sum().max() or 0)


def reserved_deliveries(irps: pl.DataFrame) -> pl.DataFrame:
    """For each IRP served from the reserve in the trace: when it got its reserved request.

    The lifecycle's `deliver_ns` (its reserved_request_used event or IFR presentation line)
    marks the delivery; an IRP delivered after its arrival waited parked for the difference.
    Without it the delivery is taken as the arrival.
    Columns: irp, arrive_ns, complete_ns, deliver_ns, parked, park_wait_ns (parked only)."""
    # deliver_ns is an extension column: a lifecycle table without it is still valid input.
    delivered = pl.col("deliver_ns") if "deliver_ns" in irps.columns else pl.lit(None, pl.Int64)
    reserved = irps.filter(pl.col("actual") == "reserved").select(
        "irp", "arrive_ns", "complete_ns",
        pl.coalesce(delivered, pl.col("arrive_ns")).alias("deliver_ns"))
    # Parked means delivered when another reserved request was recycled: some reserved IRP
    # completed between this one's arrival and its delivery. (A delivery a few microseconds
    # after arrival with no recycle in between is instrumentation lag, not parking.)
    recycled = reserved["complete_ns"].drop_nulls().sort()
    before_arrival = recycled.search_sorted(reserved["arrive_ns"], side="right")
    before_delivery = recycled.search_sorted(reserved["deliver_ns"], side="right")
    parked = (before_delivery - before_arrival) > 0
    return reserved.with_columns(
        parked.alias("parked"),
        pl.when(parked).then(pl.col("deliver_ns") - pl.col("arrive_ns")).otherwise(None)
        .alias("park_wait_ns"))


def observed_row(irps: pl.DataFrame) -> dict:
    """What actually happened, as a compare row (observed_from over the whole table)."""
    return observed_from(actual_counts(irps), irps.filter(pl.col("actual") == "reserved"))


def observed_from(actual: dict[str, int], reserved: pl.DataFrame) -> dict:
    """What actually happened, as a compare row, from the `actual` counts and the IRPs the
    trace saw served from the reserve (in arrival order): failures the trace shows, nothing
    rescued; parking and the reserve's high-water mark as far as the IRPs' deliveries show them
    (an IRP served from the reserve after its arrival was parked)."""
    served = reserved_deliveries(reserved)
    waits = served.filter(pl.col("parked"))["park_wait_ns"]
    return {
        "policy": "actual",
        "rescued": 0,
        "still_failed": sum(actual[a] for a in FAILED_ACTUALS),
        "regressed": 0,
        "parked": int(waits.len()),
        "park_wait_ns": percentiles(waits),
        "cancelled": actual["cancelled"],
        "invalid_state": actual["invalid_state"],
        "reserve_high_water": concurrency_peak(served["deliver_ns"], served["complete_ns"]),
    }


# --- timelines ---------------------------------------------------------------------------------

def window_high_water(tl: pl.DataFrame | None, lo: int, hi: int) -> int:
    """Most reserved requests in use at once on one queue during [lo, hi], counting those
    already in use when the window opens."""
    if tl is None or not tl.height:
        return 0
    tl = tl.with_columns(pl.col("queue").cast(pl.String).fill_null("(default)"))
    carried = tl.filter(pl.col("ts_ns") < lo).group_by("queue").agg(
        pl.col("reserved_in_use").last())
    inside = tl.filter(pl.col("ts_ns").is_between(lo, hi)).select("queue", "reserved_in_use")
    both = pl.concat([carried.select(inside.columns), inside])
    return int(both["reserved_in_use"].max() or 0) if both.height else 0


TIMELINE_VALUES = ("reserved_in_use", "reserved_total", "parked", "outstanding")


def total_timeline(tl: pl.DataFrame | None) -> pl.DataFrame:
    """A simulation timeline summed over queues: each queue's last value carried forward."""
    schema = {"ts_ns": pl.Int64, **{c: pl.Int64 for c in TIMELINE_VALUES}}
    if tl is None or not tl.height:
        return pl.DataFrame(schema=schema)
    values = [c for c in TIMELINE_VALUES if c in tl.columns]
    tl = tl.with_columns(pl.col("queue").cast(pl.String).fill_null("(default)"))
    if tl["queue"].n_unique() == 1:
        out = tl.sort("ts_ns", maintain_order=True).group_by("ts_ns", maintain_order=True).last()
        return out.select("ts_ns", *[pl.col(c).cast(pl.Int64) for c in values])
    wide = (tl.sort("ts_ns", maintain_order=True)
            .pivot(on="queue", index="ts_ns", values=values, aggregate_function="last")
            .sort("ts_ns"))
    queues = tl["queue"].unique().to_list()
    wide = wide.with_columns(pl.exclude("ts_ns").forward_fill().fill_null(0))
    return wide.select("ts_ns", *[
        pl.sum_horizontal([pl.col(f"{c}_{q}") for q in queues]).cast(pl.Int64).alias(c)
        for c in values])


def actual_timeline(irps: pl.DataFrame) -> pl.DataFrame:
    """Outstanding IRPs over time, and failures, as the trace shows them: ts_ns, outstanding,
    failures (cumulative count of alloc_failed/refused IRPs)."""
    if not irps.height:
        return pl.DataFrame(schema={"ts_ns": pl.Int64, "outstanding": pl.Int64,
                                    "failures": pl.Int64})
    starts = irps.select(pl.col("arrive_ns").alias("ts_ns"), pl.lit(1, dtype=pl.Int64).alias("d"),
                         pl.col("actual").is_in(FAILED_ACTUALS).cast(pl.Int64).alias("f"))
    ends = irps.filter(pl.col("complete_ns").is_not_null()).select(
        pl.col("complete_ns").alias("ts_ns"), pl.lit(-1, dtype=pl.Int64).alias("d"),
        pl.lit(0, dtype=pl.Int64).alias("f"))
    # at one time, arrivals before completions, each in row order (the report's streamed
    # timeline, render/report_inputs.py, orders them so)
    return (pl.concat([starts, ends]).sort("ts_ns", maintain_order=True)
            .select("ts_ns", pl.col("d").cum_sum().alias("outstanding"),
                    pl.col("f").cum_sum().alias("failures")))
