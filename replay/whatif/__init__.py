"""The what-if computations behind `compare`, `sweep`, `incidents` and `report`, as a library.

Everything here returns polars frames and plain dicts, so a script can do what the CLI does:

    from fpreplay.replay.whatif import compare, sweep
    cmp = compare(irps, ["always:8", "paging:8"], events=events)
    cmp.summaries            # one dict per policy, the rows of `fpreplay compare`
    cmp.per_irp              # one row per IRP: actual against each policy (`compare -o`)

Every count in a summary is a count of rows of `per_irp` (the `<policy>:verdict`,
`<policy>:outcome`, `<policy>:status` and `<policy>:parked` columns), so each number can be traced
to IRPs. An IRP still parked when the trace ends (`parked_at_end`) counts as parked, and as neither
rescued nor still failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from fpreplay.errors import ConfigError
from fpreplay.schema import (
    ACTUAL_OUTCOMES, QUEUE_KINDS, STATUS_CANCELLED, STATUS_INVALID_DEVICE_STATE,
)

# `actual` values that mean the framework failed the IRP for want of memory or by policy.
FAILED_ACTUALS = ("alloc_failed", "refused")
# `actual` values that mean the IRP reached the driver.
SERVED_ACTUALS = ("ok", "reserved")
# Simulated outcomes in which the driver received the IRP.
DELIVERED_OUTCOMES = ("normal", "reserved", "parked_reserved")

# A sweep tries every size up to this; beyond it a grid plus a bisection for the answers.
SWEEP_EXHAUSTIVE = 64
# Upper bound on the pool tried when measuring peak demand: more would never be configured.
PEAK_PROBE_CAP = 65_536


@dataclass
class WhatIfSettings:
    """What every simulation of one command shares (the options of contract section 1)."""

    config: Path | None = None
    memory: str = "observed"
    service_time: str | None = None
    seed: int = 0


@dataclass
class Comparison:
    policies: list[str]
    actual: dict[str, int]
    observed: dict                       # the "what actually happened" row, same keys as a policy
    summaries: list[dict]
    per_irp: pl.DataFrame
    outcomes: dict[str, pl.DataFrame]    # policy -> SimulationResult.outcomes
    timelines: dict[str, pl.DataFrame]   # policy -> SimulationResult.timeline
    pool_sizes: dict[str, int]           # policy -> N
    warnings: list[str] = field(default_factory=list)
    _totals: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    def total(self, policy: str) -> pl.DataFrame:
        """The policy's timeline summed over queues (computed once)."""
        if policy not in self._totals:
            self._totals[policy] = total_timeline(self.timelines.get(policy))
        return self._totals[policy]


@dataclass
class Sweep:
    kind: str
    rows: pl.DataFrame
    max_reserved: int
    peak_demand: int | None
    min_reserved_no_park: int | None
    budget_ns: int | None
    min_reserved_within_budget: int | None
    warnings: list[str] = field(default_factory=list)


# --- inputs shared by every simulation --------------------------------------------------------

def queue_operations(events: pl.DataFrame | None) -> pl.DataFrame | None:
    """Queue state changes seen in the trace, replayed at their observed times (contract 6)."""
    if events is None:
        return None
    ops = events.filter(pl.col("kind").is_in(QUEUE_KINDS)).select("ts_ns", "kind", "queue")
    return ops if ops.height else None


def _window_incidents(irps: pl.DataFrame, events: pl.DataFrame | None,
                      settings: WhatIfSettings, incidents: pl.DataFrame | None = None):
    """The incidents a `--memory window` simulation fails allocations inside: those given, else
    the trace's own; none under the other memory models."""
    if incidents is not None or not settings.memory.startswith("window"):
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


def _engine():
    """The engine package: the one seam through which this module reaches it."""
    import fpreplay.engine as engine

    return engine


def pool_size(policy_text: str) -> int:
    return int(_engine().parse_policy(policy_text).reserved or 0)


def run_policy(irps: pl.DataFrame, policy_text: str, settings: WhatIfSettings,
               queue_ops: pl.DataFrame | None = None, incidents: pl.DataFrame | None = None):
    """One simulation of the trace's IRPs under one policy; a SimulationResult."""
    engine = _engine()
    policy = engine.parse_policy(policy_text)
    driver = engine.load_driver_model(settings.config, policy)
    memory = engine.parse_memory(settings.memory)
    service = parse_duration(settings.service_time)
    return engine.simulate(irps, driver, memory, queue_ops=queue_ops, incidents=incidents,
                           service_time_ns=service, seed=settings.seed)


def parse_duration(text: str | None) -> int | None:
    """`2ms` -> 2_000_000 (the engine's parser: one syntax for every duration option)."""
    return None if text is None else int(_engine().parse_duration_ns(text))


# --- one policy against what happened ---------------------------------------------------------

def _is_error(status: pl.Expr) -> pl.Expr:
    # NTSTATUS severity "error" is the top two bits set.
    return status.fill_null(0) >= 0xC0000000


def verdicts(irps: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Per IRP: actual, simulated outcome/status/park wait, and the verdict the summary counts.

    verdict: `rescued` (failed for real, delivered in the simulation), `still_failed` (failed for
    real, failed again), `regressed` (served for real, failed in the simulation), `same`.
    """
    sim = outcomes.sort("row").select(
        "outcome", "status", "parked", "park_wait_ns", "deliver_ns",
        pl.col("complete_ns").alias("sim_complete_ns"), "reserved_id",
        pl.col("queue").alias("sim_queue"))
    if sim.height != irps.height:
        raise ValueError(f"simulation returned {sim.height} outcomes for {irps.height} IRPs")
    df = pl.concat([irps.select("actual"), sim.rename({"status": "sim_status"})],
                   how="horizontal")
    failed = pl.col("actual").is_in(FAILED_ACTUALS)
    delivered = pl.col("outcome").is_in(DELIVERED_OUTCOMES)
    error = _is_error(pl.col("sim_status"))
    return df.with_columns(
        pl.when(failed & delivered).then(pl.lit("rescued"))
        .when(failed & error).then(pl.lit("still_failed"))
        .when(pl.col("actual").is_in(SERVED_ACTUALS) & error).then(pl.lit("regressed"))
        .otherwise(pl.lit("same")).alias("verdict"),
        pl.col("parked").fill_null(False))


def _percentiles(waits: pl.Series) -> dict[str, int]:
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
        "park_wait_ns": _percentiles(served_waits["park_wait_ns"]),
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
    """What actually happened, as a compare row: failures the trace shows, nothing rescued;
    parking and the reserve's high-water mark as far as the IRPs' deliveries show them (an IRP
    served from the reserve after its arrival was parked)."""
    actual = actual_counts(irps)
    served = reserved_deliveries(irps)
    waits = served.filter(pl.col("parked"))["park_wait_ns"]
    return {
        "policy": "actual",
        "rescued": 0,
        "still_failed": actual["alloc_failed"] + actual["refused"],
        "regressed": 0,
        "parked": int(waits.len()),
        "park_wait_ns": _percentiles(waits),
        "cancelled": actual["cancelled"],
        "invalid_state": actual["invalid_state"],
        "reserve_high_water": concurrency_peak(served["deliver_ns"], served["complete_ns"]),
    }


def _high_water(result) -> int:
    hw = getattr(result, "reserve_high_water", None) or {}
    return max((int(v) for v in hw.values()), default=0)


# --- compare ----------------------------------------------------------------------------------

def compare(irps: pl.DataFrame, policies: list[str], *, events: pl.DataFrame | None = None,
            settings: WhatIfSettings | None = None,
            incidents: pl.DataFrame | None = None) -> Comparison:
    """Replay the IRPs under each policy and set each against what actually happened."""
    settings = settings or WhatIfSettings()
    if not policies:
        raise ConfigError("give at least one --policy (none, always:N, paging:N, examine:N:SQL)")
    if len(set(policies)) != len(policies):
        raise ConfigError("the same --policy is given twice")
    ops = queue_operations(events)
    incidents = _window_incidents(irps, events, settings, incidents)
    base_cols = [c for c in ("irp", "arrive_ns", "complete_ns", "device", "queue", "major",
                             "minor", "paging", "bytes", "status", "actual", "evidence")
                 if c in irps.columns]
    per_irp = irps.select(base_cols)
    summaries, outcomes, timelines, sizes, warnings = [], {}, {}, {}, []
    for p in policies:
        result = run_policy(irps, p, settings, ops, incidents)
        v = verdicts(irps, result.outcomes)
        summaries.append(summarize(p, v, _high_water(result)))
        outcomes[p] = result.outcomes
        timelines[p] = result.timeline
        sizes[p] = pool_size(p)
        for w in getattr(result, "warnings", []) or []:
            if w not in warnings:
                warnings.append(w)
        per_irp = per_irp.with_columns(
            v["outcome"].alias(f"{p}:outcome"), v["sim_status"].alias(f"{p}:status"),
            v["parked"].alias(f"{p}:parked"), v["park_wait_ns"].alias(f"{p}:park_wait_ns"),
            v["verdict"].alias(f"{p}:verdict"))
    return Comparison(policies=list(policies), actual=actual_counts(irps),
                      observed=observed_row(irps), summaries=summaries, per_irp=per_irp,
                      outcomes=outcomes, timelines=timelines, pool_sizes=sizes,
                      warnings=warnings)


def parse_irp_address(text: str) -> int:
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text, 16)
    except ValueError:
        raise ConfigError(f"--explain {text!r}: not an IRP address (e.g. 0xffffa0012345b010)") \
            from None


_STORY = {
    "normal": "a request object was allocated; the driver received it normally",
    "reserved": "allocation failed; the driver received it at once in reserved request {rid}",
    "parked_reserved": "allocation failed and no reserved request was free; parked {wait}, then "
                       "delivered in reserved request {rid}",
    "refused": "allocation failed and the policy refused it: completed with 0x{status:08X}",
    "cancelled": "completed with STATUS_CANCELLED (0x{status:08X}) by a queue purge or stop",
    "invalid_state": "the queue was not accepting: completed with 0x{status:08X}",
    "alloc_failed": "allocation failed on a queue without forward progress: completed with "
                    "0x{status:08X}",
    "parked_at_end": "allocation failed; still parked when the trace ended",
}


def _fmt_wait(ns) -> str:
    from fpreplay.replay.render.terminal import fmt_duration

    return f"for {fmt_duration(ns)}" if ns is not None else ""


def explain(cmp: Comparison, irp_text: str) -> list[dict]:
    """One IRP's story under each policy: one dict per instance of the address (reused IRPs)."""
    address = parse_irp_address(irp_text)
    rows = cmp.per_irp.with_row_index("_row").filter(pl.col("irp") == address)
    if not rows.height:
        raise ConfigError(f"--explain {irp_text}: no IRP with that address in the trace")
    stories = []
    for r in rows.iter_rows(named=True):
        entry = {k: r.get(k) for k in ("irp", "arrive_ns", "complete_ns", "device", "queue",
                                       "major", "paging", "status", "actual", "evidence")}
        entry["policies"] = []
        for p in cmp.policies:
            o = cmp.outcomes[p].sort("row").row(r["_row"], named=True)
            status = o.get("status")
            story = _STORY.get(o["outcome"], o["outcome"]).format(
                rid=o.get("reserved_id"), status=status or 0, wait=_fmt_wait(o.get("park_wait_ns")))
            entry["policies"].append({
                "policy": p, "outcome": o["outcome"], "status": status,
                "parked": bool(o.get("parked")), "park_wait_ns": o.get("park_wait_ns"),
                "deliver_ns": o.get("deliver_ns"), "complete_ns": o.get("complete_ns"),
                "reserved_id": o.get("reserved_id"), "verdict": r[f"{p}:verdict"],
                "story": story})
        stories.append(entry)
    return stories


def default_policies(irps: pl.DataFrame, settings: WhatIfSettings,
                     events: pl.DataFrame | None = None) -> list[str]:
    """When the user names no policy: no forward progress, and `always` and `paging` with a
    reserve as large as the trace's peak demand (so the difference shown is the policy's)."""
    ops = queue_operations(events)
    incidents = _window_incidents(irps, events, settings)
    peak = max(1, peak_demand(irps, "always", settings, ops, incidents))
    return ["none", f"always:{peak}", f"paging:{peak}"]


# --- sweep ------------------------------------------------------------------------------------

def sweep_policy(kind: str, n: int) -> str:
    """The policy string for pool size n of a sweep kind (always, paging, examine:SQL)."""
    if kind in ("always", "paging"):
        return f"{kind}:{n}"
    if kind.startswith("examine:") and kind[len("examine:"):].strip():
        return f"examine:{n}:{kind[len('examine:'):]}"
    raise ConfigError(f"--kind {kind!r}: expected always, paging or examine:SQL")


def peak_demand(irps: pl.DataFrame, kind: str, settings: WhatIfSettings,
                queue_ops=None, incidents=None) -> int:
    """Reserved requests in use at once when the pool never runs out."""
    cap = max(1, min(irps.height, PEAK_PROBE_CAP))
    result = run_policy(irps, sweep_policy(kind, cap), settings, queue_ops, incidents)
    return _high_water(result)


def _sweep_row(irps, kind, n, settings, ops, incidents) -> dict:
    result = run_policy(irps, sweep_policy(kind, n), settings, ops, incidents)
    s = summarize(sweep_policy(kind, n), verdicts(irps, result.outcomes), _high_water(result))
    return {"reserved": n, "rescued": s["rescued"], "still_failed": s["still_failed"],
            "regressed": s["regressed"], "parked": s["parked"],
            "park_wait_ns": s["park_wait_ns"], "reserve_high_water": s["reserve_high_water"]}


def sweep(irps: pl.DataFrame, kind: str = "always", *, max_reserved: int | None = None,
          budget_ns: int | None = None, events: pl.DataFrame | None = None,
          settings: WhatIfSettings | None = None) -> Sweep:
    """Outcomes against reserve sizes 1..max (default: up to the peak demand)."""
    settings = settings or WhatIfSettings()
    sweep_policy(kind, 1)   # validate the kind before any work
    if max_reserved is not None and max_reserved < 1:
        raise ConfigError(f"--max {max_reserved}: must be at least 1")
    ops = queue_operations(events)
    incidents = _window_incidents(irps, events, settings)
    peak = None
    if max_reserved is None:
        peak = peak_demand(irps, kind, settings, ops, incidents)
        max_reserved = max(1, peak)
    cache: dict[int, dict] = {}

    def row(n: int) -> dict:
        if n not in cache:
            cache[n] = _sweep_row(irps, kind, n, settings, ops, incidents)
        return cache[n]

    if max_reserved <= SWEEP_EXHAUSTIVE:
        sizes = list(range(1, max_reserved + 1))
    else:   # 1..16, then about 24 sizes spaced evenly on a log scale
        step = (max_reserved / 16) ** (1 / 24)
        sizes = sorted({*range(1, 17), max_reserved,
                        *(min(max_reserved, round(16 * step ** k)) for k in range(1, 25))})
    for n in sizes:
        row(n)

    def smallest(ok) -> int | None:
        # Parking and waits only shrink as the pool grows, so bisect between grid points.
        tried = sorted(cache)
        first = next((n for n in tried if ok(cache[n])), None)
        if first is None:
            return None
        lower = max([n for n in tried if n < first], default=0)
        lo, hi = lower, first
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(row(mid)):
                hi = mid
            else:
                lo = mid
        return hi

    no_park = smallest(lambda r: r["parked"] == 0)
    within = None
    if budget_ns is not None:
        within = smallest(lambda r: r["park_wait_ns"]["p99"] <= budget_ns)
    rows = [cache[n] for n in sorted(cache)]
    frame = pl.DataFrame([{**{k: v for k, v in r.items() if k != "park_wait_ns"},
                           "park_wait_p50_ns": r["park_wait_ns"]["p50"],
                           "park_wait_p99_ns": r["park_wait_ns"]["p99"],
                           "park_wait_max_ns": r["park_wait_ns"]["max"]} for r in rows],
                         schema={"reserved": pl.UInt32, "rescued": pl.UInt32,
                                 "still_failed": pl.UInt32, "regressed": pl.UInt32,
                                 "parked": pl.UInt32, "reserve_high_water": pl.UInt32,
                                 "park_wait_p50_ns": pl.Int64, "park_wait_p99_ns": pl.Int64,
                                 "park_wait_max_ns": pl.Int64})
    return Sweep(kind=kind, rows=frame, max_reserved=max_reserved, peak_demand=peak,
                 min_reserved_no_park=no_park, budget_ns=budget_ns,
                 min_reserved_within_budget=within)


def sweep_rows(s: Sweep) -> list[dict]:
    """The rows of the JSON document (contract 7), park waits nested."""
    return [{"reserved": r["reserved"], "rescued": r["rescued"],
             "still_failed": r["still_failed"], "regressed": r["regressed"],
             "parked": r["parked"], "reserve_high_water": r["reserve_high_water"],
             "park_wait_ns": {"p50": r["park_wait_p50_ns"], "p99": r["park_wait_p99_ns"],
                              "max": r["park_wait_max_ns"]}}
            for r in s.rows.iter_rows(named=True)]


# --- incidents under each policy --------------------------------------------------------------

def incident_outcomes(cmp: Comparison, incidents: pl.DataFrame,
                      irps: pl.DataFrame) -> list[dict]:
    """Per incident: what happened and, per policy, the compare row over the IRPs that arrived
    inside it; and the IRPs that decided it (those that failed or used the reserve for real, or
    whose verdict under some policy is not `same`). irps: the lifecycles `cmp` was made from."""
    out = []
    tagged = cmp.per_irp.with_row_index("_row")
    for inc in incidents.iter_rows(named=True):
        arrived_inside = pl.col("arrive_ns").is_between(inc["start_ns"], inc["end_ns"])
        inside = tagged.filter(arrived_inside)
        per_policy = []
        for p in cmp.policies:
            v = inside.select(
                "actual", pl.col(f"{p}:outcome").alias("outcome"),
                pl.col(f"{p}:status").alias("sim_status"),
                pl.col(f"{p}:park_wait_ns").alias("park_wait_ns"),
                pl.col(f"{p}:verdict").alias("verdict"),
                pl.col(f"{p}:parked").alias("parked"))
            hw = window_high_water(cmp.timelines.get(p), inc["start_ns"], inc["end_ns"])
            per_policy.append(summarize(p, v, hw))
        deciding = inside.filter(
            pl.col("actual").is_in(FAILED_ACTUALS + ("reserved",))
            | pl.any_horizontal([pl.col(f"{p}:verdict") != "same" for p in cmp.policies])
            if cmp.policies else pl.col("actual").is_in(FAILED_ACTUALS))
        out.append({"incident": inc, "observed": observed_row(irps.filter(arrived_inside)),
                    "policies": per_policy, "irps": deciding})
    return out


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
    return (pl.concat([starts, ends]).sort("ts_ns")
            .select("ts_ns", pl.col("d").cum_sum().alias("outstanding"),
                    pl.col("f").cum_sum().alias("failures")))


__all__ = [
    "WhatIfSettings", "Comparison", "Sweep", "compare", "sweep", "explain", "verdicts",
    "summarize", "actual_counts", "observed_row", "incident_outcomes", "queue_operations",
    "actual_timeline", "sweep_rows",
]
