"""`compare`: the IRPs replayed under each policy, set against what actually happened; and the
same comparison cut to each low-memory incident."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import polars as pl

from fpreplay.engine import Policy
from fpreplay.replay.whatif.assumptions import trace_cannot_tell
from fpreplay.replay.whatif.outcomes import (
    actual_counts, add_warnings, high_water, observed_row, queue_operations, run_policy,
    summarize, total_timeline, verdicts, window_high_water, window_incidents,
)
from fpreplay.replay.whatif.recommend import Recommendation, from_comparison
from fpreplay.replay.whatif.seeds import combine_rows, figure_range
from fpreplay.replay.whatif.settings import WhatIfSettings, parse_policies
from fpreplay.replay.whatif.sizing import Sweep, peak_demand, recommend_size, sweep_kind
from fpreplay.schema import FAILED_ACTUALS, STARVED_ACTUALS


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
    # Several seeds run (verifier-random without a seed): their seeds, and each seed's own
    # Comparison. `summaries` are then medians with a `range` per figure (seeds.combine_rows);
    # per_irp, outcomes and timelines are the first seed's run.
    seeds: list[int] = field(default_factory=list)
    runs: list[Comparison] = field(default_factory=list, repr=False)
    _totals: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    def total(self, policy: str) -> pl.DataFrame:
        """The policy's timeline summed over queues (computed once)."""
        if policy not in self._totals:
            self._totals[policy] = total_timeline(self.timelines.get(policy))
        return self._totals[policy]


# The lifecycle columns the per-IRP table starts from, where the lifecycles have them.
_BASE_COLUMNS = ("irp", "arrive_ns", "complete_ns", "device", "queue", "major", "minor",
                 "paging", "bytes", "status", "actual", "evidence")


def compare(irps: pl.DataFrame, policies: Sequence[Policy | str], *,
            events: pl.DataFrame | None = None, settings: WhatIfSettings | None = None,
            incidents: pl.DataFrame | None = None) -> Comparison:
    """Replay the IRPs under each policy (a Policy or its text) and set each against what
    actually happened; once per seed when the seed is unknowable (WhatIfSettings.runs)."""
    settings = settings or WhatIfSettings()
    parsed = parse_policies(policies)
    irps, warnings = trace_cannot_tell(irps, settings)
    ops = queue_operations(events, irps)
    incidents = window_incidents(irps, events, settings, incidents)
    runs = [_compare_run(irps, parsed, run, ops, incidents) for run in settings.runs()]
    for r in runs:
        add_warnings(warnings, r)
    if len(runs) == 1:
        return replace(runs[0], warnings=warnings)
    return replace(runs[0], summaries=[combine_rows([r.summaries[i] for r in runs])
                                       for i in range(len(parsed))],
                   warnings=warnings, seeds=settings.seeds, runs=runs, _totals={})


def _compare_run(irps, policies: list[Policy], settings: WhatIfSettings, ops,
                 incidents) -> Comparison:
    per_irp = irps.select([c for c in _BASE_COLUMNS if c in irps.columns])
    summaries, outcomes, timelines, sizes, warnings = [], {}, {}, {}, []
    for policy in policies:
        p = policy.text
        result = run_policy(irps, policy, settings, ops, incidents)
        v = verdicts(irps, result.outcomes)
        summaries.append(summarize(p, v, high_water(result)))
        outcomes[p] = result.outcomes
        timelines[p] = result.timeline
        sizes[p] = int(policy.reserved or 0)
        add_warnings(warnings, result)
        per_irp = per_irp.with_columns(
            v["outcome"].alias(f"{p}:outcome"), v["sim_status"].alias(f"{p}:status"),
            v["parked"].alias(f"{p}:parked"), v["park_wait_ns"].alias(f"{p}:park_wait_ns"),
            v["verdict"].alias(f"{p}:verdict"))
    return Comparison(policies=[p.text for p in policies], actual=actual_counts(irps),
                      observed=observed_row(irps), summaries=summaries, per_irp=per_irp,
                      outcomes=outcomes, timelines=timelines, pool_sizes=sizes,
                      warnings=warnings)


def default_policies(irps: pl.DataFrame, settings: WhatIfSettings,
                     events: pl.DataFrame | None = None) -> list[Policy]:
    """When the user names no policy: no forward progress, and `always` and `paging` with a
    reserve as large as the trace's peak demand (so the difference shown is the policy's)."""
    ops = queue_operations(events, irps)
    incidents = window_incidents(irps, events, settings)
    peak = max(1, *(peak_demand(irps, sweep_kind("always"), run, ops, incidents)
                    for run in settings.runs()))
    return parse_policies(["none", f"always:{peak}", f"paging:{peak}"])


def incident_outcomes(cmp: Comparison, incidents: pl.DataFrame,
                      irps: pl.DataFrame) -> list[dict]:
    """Per incident: what happened and, per policy, the compare row over the IRPs that arrived
    inside it; and the IRPs that decided it (those that failed or used the reserve for real, or
    whose verdict under some policy is not `same`). irps: the lifecycles `cmp` was made from.
    With several seeds each policy's row is the median over them, with ranges; the deciding IRPs
    are the first seed's."""
    if cmp.runs:
        each = [incident_outcomes(r, incidents, irps) for r in cmp.runs]
        return [{**first, "policies": [combine_rows([e[i]["policies"][j] for e in each])
                                       for j in range(len(first["policies"]))]}
                for i, first in enumerate(each[0])]
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
            pl.col("actual").is_in(STARVED_ACTUALS)
            | pl.any_horizontal([pl.col(f"{p}:verdict") != "same" for p in cmp.policies])
            if cmp.policies else pl.col("actual").is_in(FAILED_ACTUALS))
        out.append({"incident": inc, "observed": observed_row(irps.filter(arrived_inside)),
                    "policies": per_policy, "irps": deciding})
    return out


def recommend(cmp: Comparison, irps: pl.DataFrame, *, events: pl.DataFrame | None = None,
              settings: WhatIfSettings | None = None, sized: Sweep | None = None
              ) -> Recommendation:
    """The recommendation rule (recommend.py) over a comparison: its best kind, sized by
    `sized` when that sweep is of the same kind (with its budget, as `report` has it), else by
    the compared sizes. When no compared size of the kind serves without parking, its peak
    demand is measured (one more replay per seed, the median over the seeds): the sweep's
    smallest size with no parking."""
    rec = from_comparison(cmp.summaries)
    if rec.kind is not None and sized is not None and sized.kind == rec.kind:
        return recommend_size(sized)
    if rec.kind is None or rec.reserved is not None:
        return rec
    settings = settings or WhatIfSettings()
    ops = queue_operations(events, irps)
    incidents = window_incidents(irps, events, settings)
    peaks = [peak_demand(irps, sweep_kind(rec.kind), run, ops, incidents)
             for run in settings.runs()]
    return from_comparison(cmp.summaries, {rec.kind: figure_range(peaks)["median"]})
